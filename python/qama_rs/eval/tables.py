"""The paper's tables (Markdown + JSON) and the Pareto plot, written under ``results/``.

:func:`build_tables` evaluates every column's factory spec at every Matryoshka prefix on every dataset and
writes

* ``main_table.md`` — rows 384/192/128/96/48 dims; columns 1-bit without training (sign), QAMA 1-bit,
  1.5-bit, hybrid, 2-bit and fp32 (filled only when a trained ``head`` is given), fp32 of the base model;
* ``training_free_table.md`` — the same rows for methods without training: sign, per-dimension quantile
  thresholds at 1/1.5/hybrid/2 bits (symmetric Hamming in the engine), int8, fp16, fp32;
* ``storage_table.md`` — at full dimension: bits/dim, bytes/vector, size of 1M vectors, savings and NDCG@10
  relative to fp32;
* ``tables.json`` — all of the above plus every raw result (schema below); ``pareto.png``.

Cells are the mean NDCG@10 over the datasets with a bootstrap 95 % CI (each dataset's queries resampled
1,000 times independently), followed by one table per dataset.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qama_rs.data.beir import load_beir
from qama_rs.data.embed import DatasetEmbeddings, dataset_embeddings, default_model_path
from qama_rs.engine.quantizer import atomic_write
from qama_rs.eval.metrics import bootstrap_mean_ci
from qama_rs.eval.runner import evaluate_dims, format_result

__all__ = [
    "MAIN_COLUMNS",
    "MAIN_DIMS",
    "SCHEMA_VERSION",
    "TRAINING_FREE_COLUMNS",
    "Column",
    "apply_head",
    "build_tables",
]

SCHEMA_VERSION = 1
MAIN_DIMS = (384, 192, 128, 96, 48)


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: the factory spec that fills it, and whether it needs the head.

    A head column's spec is the codec applied to the head: behind a ``QAMA(...)`` stage for a trained QAMA
    model (its learned codes), or to the outputs of a plain transform head."""

    key: str
    label: str
    spec: str
    uses_head: bool = False


MAIN_COLUMNS = (
    Column("sign_1bit", "1-bit sign (no training)", "Sign"),
    Column("qama_1bit", "QAMA 1-bit", "Thermo1", uses_head=True),
    Column("qama_1.5bit", "QAMA 1.5-bit", "Thermo1.5", uses_head=True),
    Column("qama_hybrid", "QAMA hybrid", "Hybrid", uses_head=True),
    Column("qama_2bit", "QAMA 2-bit", "Thermo2", uses_head=True),
    Column("qama_fp32", "QAMA fp32", "Flat", uses_head=True),
    Column("fp32", "fp32 (base)", "Flat"),
)

TRAINING_FREE_COLUMNS = (
    Column("sign_1bit", "sign 1-bit", "Sign"),
    Column("quantile_1bit", "quantile 1-bit", "Thermo1"),
    Column("quantile_1.5bit", "quantile 1.5-bit", "Thermo1.5"),
    Column("quantile_hybrid", "quantile hybrid", "Hybrid"),
    Column("quantile_2bit", "quantile 2-bit", "Thermo2"),
    Column("int8", "int8 (asym.)", "Int8"),
    Column("fp16", "fp16", "Flat16"),
    Column("fp32", "fp32 (base)", "Flat"),
)


def _has_learned_thresholds(head) -> bool:
    return all(hasattr(head, attr) for attr in ("features", "quantizer", "levels"))


def _head_label(head) -> str:
    """The head as a ``QAMA(...)`` stage names it (a loaded model is handed to the factory as well)."""
    return str(getattr(head, "path", None) or "head")


def apply_head(head, x: np.ndarray) -> np.ndarray:
    """Run float embeddings through a transform head: ``head.transform(x)``, ``head.encode(x)`` or ``head(x)``."""
    for attr in ("transform", "encode"):
        fn = getattr(head, attr, None)
        if callable(fn):
            return np.ascontiguousarray(fn(x), dtype=np.float32)
    if callable(head):
        return np.ascontiguousarray(head(x), dtype=np.float32)
    raise TypeError("head must have a transform(x) or encode(x) method, or be callable on a (n, d) array")


def _head_outputs(head, embeddings: DatasetEmbeddings) -> DatasetEmbeddings:
    """The dataset's documents and queries passed through a transform head."""
    return dataclasses.replace(
        embeddings, docs=apply_head(head, embeddings.docs), queries=apply_head(head, embeddings.queries)
    )


def _column_run(column: Column, head, embeddings: DatasetEmbeddings, outputs: DatasetEmbeddings):
    """``(spec, head for the factory, embeddings)`` of a column. QAMA columns use a trained head's learned
    codes (``QAMA(...),<codec>``); a head without them (a plain transform) gets the codec fitted on its
    ``outputs`` (noted in the tables)."""
    if not column.uses_head:
        return column.spec, None, embeddings
    if _has_learned_thresholds(head):
        return f"QAMA({_head_label(head)}),{column.spec}", head, embeddings
    return column.spec, None, outputs


def _cell(results: dict, key: str, dims: int, datasets: Sequence[str], n_resamples: int, seed: int):
    found = [results.get((key, name, dims)) for name in datasets]
    if any(r is None for r in found):
        return None
    lo, hi = bootstrap_mean_ci([r["per_query"] for r in found], n_resamples=n_resamples, seed=seed)
    return {
        "ndcg@10": float(np.mean([r["ndcg@10"] for r in found])),
        "ci95": [lo, hi],
        "bytes_per_vector": found[0]["bytes_per_vector"],
        "bits": found[0]["bits"],
        "spec": found[0].get("spec"),
        "per_dataset": {r["dataset"]: {"ndcg@10": r["ndcg@10"], "ci95": r["ci95"]} for r in found},
    }


def _grid(columns, results, dims_list, datasets, n_resamples, seed) -> dict:
    return {
        "columns": [{"key": c.key, "label": c.label} for c in columns],
        "rows": [
            {
                "dims": dims,
                "cells": {c.key: _cell(results, c.key, dims, datasets, n_resamples, seed) for c in columns},
            }
            for dims in dims_list
        ],
    }


def _fmt(cell, dataset: str | None = None) -> str:
    if cell is None:
        return "—"
    if dataset is not None:
        cell = cell["per_dataset"][dataset]
    lo, hi = cell["ci95"]
    return f"{cell['ndcg@10']:.4f} [{lo:.3f}, {hi:.3f}]"


def _grid_markdown(title: str, grid: dict, datasets: Sequence[str], note: str) -> str:
    header = "| dims | " + " | ".join(c["label"] for c in grid["columns"]) + " |"
    rule = "|---:|" + "---:|" * len(grid["columns"])
    out = [f"# {title}", "", note, ""]
    sections = [("Mean over " + ", ".join(datasets), None)] + [(name, name) for name in datasets]
    for heading, dataset in sections if len(datasets) > 1 else [(datasets[0], datasets[0])]:
        out += [f"## {heading}", "", header, rule]
        for row in grid["rows"]:
            cells = [_fmt(row["cells"][c["key"]], dataset) for c in grid["columns"]]
            out.append(f"| {row['dims']} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _storage(columns, grid: dict, full_dims: int) -> dict:
    row = next(r for r in grid["rows"] if r["dims"] == full_dims)
    fp32 = row["cells"].get("fp32")
    fp32_bytes = 4.0 * full_dims
    rows = []
    for column in columns:
        cell = row["cells"][column["key"]]
        if cell is None:
            continue
        nbytes = float(cell["bytes_per_vector"])
        rows.append(
            {
                "key": column["key"],
                "label": column["label"],
                "spec": cell.get("spec"),
                "nominal_bits_per_dim": float(cell["bits"]),
                "bits_per_dim": nbytes * 8.0 / full_dims,
                "bytes_per_vector": nbytes,
                "mb_per_million": nbytes,  # 1e6 vectors × bytes / 1e6 bytes per MB
                "savings_pct": 100.0 * (1.0 - nbytes / fp32_bytes),
                "ndcg@10": cell["ndcg@10"],
                "relative_to_fp32_pct": 100.0 * cell["ndcg@10"] / fp32["ndcg@10"] if fp32 else None,
            }
        )
    return {"dims": full_dims, "rows": rows}


def _storage_markdown(storage: dict, datasets: Sequence[str]) -> str:
    out = [
        f"# Storage and quality at {storage['dims']} dims",
        "",
        "Nominal bits/dim count information (log2 of the levels; hybrid = 2, 1.5, 1, 0.5 over four quarters). "
        "Stored bits/dim and bytes/vector are what the index keeps and scans: thermometer-expanded codes for the "
        "threshold methods (2-bit = 3 bits, 1.5-bit = 2 bits per dimension). Size = 1M vectors, codes only. "
        f"NDCG@10 is the mean over {', '.join(datasets)}. Spec: the `qama_rs.index_factory` string that "
        "builds the index (every figure is computed by it, in the Rust engine).",
        "",
        "| format | spec | nominal bits/dim | stored bits/dim | bytes/vector | 1M vectors | savings vs fp32 | NDCG@10 "
        "| % of fp32 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in storage["rows"]:
        rel = "—" if r["relative_to_fp32_pct"] is None else f"{r['relative_to_fp32_pct']:.1f} %"
        out.append(
            f"| {r['label']} | {'`' + r['spec'] + '`' if r.get('spec') else '—'} | {r['nominal_bits_per_dim']:g} | {r['bits_per_dim']:.3g} | {r['bytes_per_vector']:g} | {r['mb_per_million']:.1f} MB | "
            f"{r['savings_pct']:.1f} % | {r['ndcg@10']:.4f} | {rel} |"
        )
    return "\n".join(out) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def build_tables(
    datasets: Sequence[str] = ("scifact", "dbpedia-5k"),
    head=None,
    out_dir: str | os.PathLike[str] = "results",
    *,
    model: str | None = None,
    dims: Sequence[int] = MAIN_DIMS,
    k: int = 1000,
    n_resamples: int = 1000,
    seed: int = 0,
    cache_dir=None,
    plot: bool = True,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Evaluate every column at every prefix on every dataset; write the tables and plot under ``out_dir``.

    ``head`` fills the QAMA columns: a trained QAMA model through ``QAMA(...),<codec>`` specs (its learned
    codes, its Matryoshka levels), or any transform (``transform(x)``/``encode(x)`` or callable) whose
    outputs the columns' codecs are fitted on. ``progress`` prints each result to stderr. Returns the
    ``tables.json`` content. Raises ``ValueError`` for an empty dataset list or a prefix larger than the
    embedding.
    """
    if isinstance(datasets, str):
        datasets = [datasets]
    datasets = list(datasets)
    if not datasets:
        raise ValueError("datasets must name at least one dataset")
    dims_list = [int(d) for d in dims]
    if not dims_list or any(d < 1 for d in dims_list):
        raise ValueError(f"dims must be positive integers, got {list(dims)!r}")
    out = Path(out_dir)
    columns = {c.key: c for c in MAIN_COLUMNS + TRAINING_FREE_COLUMNS}
    wanted = [c for c in columns.values() if head is not None or not c.uses_head]

    results: dict[tuple[str, str, int], dict] = {}
    names = []
    model_path = default_model_path() if model is None else str(model)
    for dataset in datasets:
        data = load_beir(dataset)
        names.append(data.name)
        embeddings = dataset_embeddings(data, model_path, cache_dir=cache_dir, progress=progress)
        if max(dims_list) > embeddings.dim:
            raise ValueError(
                f"dims {max(dims_list)} exceeds the {embeddings.dim}-d embeddings of {data.name}"
            )
        # A plain transform head: its outputs of this dataset, once for every head column.
        outputs = embeddings if head is None or _has_learned_thresholds(head) else _head_outputs(head, embeddings)
        for column in wanted:
            spec, column_head, column_embeddings = _column_run(column, head, embeddings, outputs)
            for result in evaluate_dims(
                data, spec, dims_list, name=column.key, head=column_head, embeddings=column_embeddings,
                k=k, n_resamples=n_resamples, seed=seed,
            ):  # fmt: skip
                result["column"] = column.key
                results[(column.key, data.name, result["dims"])] = result
                if progress:
                    print(f"{column.key:<16} " + format_result(result), file=sys.stderr, flush=True)

    main = _grid(MAIN_COLUMNS, results, dims_list, names, n_resamples, seed)
    free = _grid(TRAINING_FREE_COLUMNS, results, dims_list, names, n_resamples, seed)
    storage_columns = [
        {"key": c.key, "label": c.label}
        for c in {c.key: c for c in TRAINING_FREE_COLUMNS + MAIN_COLUMNS}.values()
    ]
    merged = _grid([columns[c["key"]] for c in storage_columns], results, dims_list, names, n_resamples, seed)
    storage = _storage(storage_columns, merged, max(dims_list))

    qama_note = "QAMA columns: no head given (—)."
    if head is not None:
        qama_note = (
            "QAMA columns: head "
            + str(getattr(head, "name", type(head).__name__))
            + (
                " (learned thresholds)."
                if _has_learned_thresholds(head)
                else "; quantile thresholds fitted on the head outputs (the head has no learned thresholds)."
            )
        )
    model_label = Path(model_path).name
    if model_label == "model":  # the bundled package keeps its files in <package>/model
        model_label = Path(model_path).parent.name
    note = (
        f"NDCG@10 [bootstrap 95 % CI, {n_resamples} resamples] of {model_label} embeddings, "
        "exhaustive search of the Matryoshka prefix (float: truncated and renormalized; codes: first dims "
        f"quantized dimensions, symmetric Hamming). {qama_note}"
    )
    payload = {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # The bundled model by package name, not by this machine's install path.
        "model": model_label if model is None else model_path,
        "head": None if head is None else str(getattr(head, "name", type(head).__name__)),
        "datasets": names,
        "dims": dims_list,
        "k": k,
        "n_resamples": n_resamples,
        "seed": seed,
        "python": platform.python_version(),
        "tables": {"main": main, "training_free": free, "storage": storage},
        "results": [
            {key: (model_label if key == "model" and model is None else value) for key, value in r.items() if key != "per_query"}
            for r in results.values()
        ],
    }

    # Every results file names the command that regenerates it.
    footer = f"\nReproduce: `{command}`\n" if command else ""
    payload["command"] = command
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "main_table.md", _grid_markdown("QAMA main table: NDCG@10", main, names, note) + footer)
    _write_atomic(
        out / "training_free_table.md",
        _grid_markdown("Training-free baselines: NDCG@10", free, names, note) + footer,
    )
    _write_atomic(out / "storage_table.md", _storage_markdown(storage, names) + footer)
    _write_atomic(out / "tables.json", json.dumps(payload, indent=1) + "\n")
    if plot:
        from qama_rs.eval.plots import pareto_plot

        pareto_plot(payload, out / "pareto.png")
    return payload
