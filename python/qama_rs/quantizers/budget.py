"""Budget chooser: given corpus documents and a byte budget, the codec (and its dimensions) with the
best recall@10 on pseudo-queries, plus the frontier it chose from.

No labels and no real queries are needed: ``n_queries`` documents drawn at random are held out and
used as queries against the rest (the codecs are fitted on the rest only), and each candidate's
recall@10 against the exact float32 top-10 is measured with the engine's byte-LUT search. Held-out
documents stand in for queries because they come from the same corpus; the bench reports how well
that tracks real-query recall. The chosen spec is an index codec stage: ``index_factory(dims, spec)``.

    qama frontier --dataset scifact --budget 48          (the command: qama_rs.cli.frontier_cmd)
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from qama_rs.errors import QamaError
from qama_rs.quantizers.allocated import (
    Allocated,
    AllocatedNibbleScaled,
    AllocatedScaled,
    TritRotation,
    _check_int,
)
from qama_rs.quantizers.base import check_embeddings
from qama_rs.quantizers.product import PcaProduct


def codec_spec(codec: Any) -> str:
    """The codec stage ``name(key=value,...)`` of ``codec``: ``qama_rs.index_factory(dims, spec)`` builds an
    index over an equal, unfitted codec (the index registry resolves the name)."""
    if isinstance(codec, TritRotation):
        return f"trit_rotation(seed={codec.seed})"
    if isinstance(codec, Allocated):
        return f"{codec.name}(budget_bytes={codec.budget_bytes})"
    if isinstance(codec, PcaProduct):
        dims = "" if codec.dims is None else f",dims={codec.dims}"
        return f"pca_pq(m={codec.m_bytes}{dims})"
    raise QamaError(f"no spec for {type(codec).__name__}")


def candidates(budget_bytes: int, dim: int) -> list[Any]:
    """Unfitted codecs that fit ``budget_bytes`` at ``dim`` input dimensions: the allocated scalar
    codes (with and without the 4-byte length factor, and its nibble-packed twin that the block
    kernel scans several times faster), PCA + PQ at three sub-space widths (4, 6, 8 components a
    byte, budgets up to 64 bytes), and the trit rotation code when it fits."""
    budget_bytes = _check_int(budget_bytes, "budget_bytes", 1)
    out: list[Any] = [Allocated(budget_bytes=budget_bytes)]
    if budget_bytes > AllocatedScaled.factor_bytes + 4:
        out.append(AllocatedScaled(budget_bytes=budget_bytes))
        out.append(AllocatedNibbleScaled(budget_bytes=budget_bytes))
    if budget_bytes <= 64:
        widths = sorted(
            {min(dim, w * budget_bytes) for w in (4, 6, 8) if w * budget_bytes <= dim}
            | {min(dim, 4 * budget_bytes)}
        )
        out += [PcaProduct(m=budget_bytes, dims=w) for w in widths if w >= budget_bytes]
    if -(-dim // 5) + TritRotation.factor_bytes <= budget_bytes:
        out.append(TritRotation())
    return out


def _lut_topk(codec, docs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    from qama_rs import _core

    codes = codec.encode(docs)
    segments = [codes, np.zeros(0, dtype=np.uint8)]
    table = np.array([[0, len(codes), 0, 0]], dtype=np.uint64)
    scale = None
    if hasattr(type(codec), "row_scale"):
        scale = [np.ascontiguousarray(codec.row_scale(docs), dtype=np.float32), np.zeros(0, dtype=np.float32)]
    store = _core.Store(segments, table, None, scale)
    return _core.TableCodec.given(codes.shape[1], "rows").search(codec.query_luts(queries), store, k)[1]


def pseudo_query_split(n: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(document rows, held-out query rows) of a seeded random split."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_queries:]), np.sort(order[:n_queries])


def choose_codec(docs, budget_bytes: int, n_queries: int = 200, seed: int = 0, codecs=None, progress=None):
    """``(spec, table)``: the codec spec with the best pseudo-query recall@10 among those whose
    ``bytes_per_vector`` fits ``budget_bytes``, and every candidate's row ``{"spec", "bytes",
    "recall10", "seconds"}`` sorted by bytes then recall (over-budget candidates are measured with
    ``"fits": False`` and never chosen). Ties go to fewer bytes. ``codecs``: candidates to use instead
    of :func:`candidates` (unfitted objects of protocol B)."""
    x = check_embeddings(docs, "docs")
    budget_bytes = _check_int(budget_bytes, "budget_bytes", 1)
    n_queries = _check_int(n_queries, "n_queries", 1)
    if x.shape[0] < n_queries + 20:
        raise QamaError(
            f"docs: {x.shape[0]} documents; the chooser needs at least n_queries + 20 = {n_queries + 20}"
        )
    doc_rows, query_rows = pseudo_query_split(len(x), n_queries, seed)
    base, queries = x[doc_rows], x[query_rows]
    exact = queries @ base.T
    truth = np.argpartition(-exact, 9, axis=1)[:, :10]
    table = []
    for codec in candidates(budget_bytes, x.shape[1]) if codecs is None else codecs:
        start = time.perf_counter()
        codec.fit(base)
        ids = _lut_topk(codec, base, queries, 10)
        recall = float(np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(ids, truth, strict=True)]))
        nbytes = int(codec.bytes_per_vector)
        row = {
            "spec": codec_spec(codec) if codecs is None else _label(codec),
            "bytes": nbytes,
            "recall10": recall,
            "fits": nbytes <= budget_bytes,
            "seconds": time.perf_counter() - start,
        }
        table.append(row)
        if progress:
            progress(row)
    fitting = [r for r in table if r["fits"]]
    if not fitting:
        raise QamaError(f"budget_bytes = {budget_bytes}: no candidate codec fits")
    best = max(fitting, key=lambda r: (r["recall10"], -r["bytes"]))
    table.sort(key=lambda r: (r["bytes"], -r["recall10"]))
    return best["spec"], table


def _label(codec) -> str:
    try:
        return codec_spec(codec)
    except QamaError:
        return repr(codec)


def format_table(table: list[dict], chosen: str) -> str:
    lines = ["| codec | bytes | pseudo-query recall@10 | fits | s |", "|---|---:|---:|---|---:|"]
    for r in table:
        mark = " **chosen**" if r["spec"] == chosen else ""
        lines.append(
            f"| `{r['spec']}`{mark} | {r['bytes']} | {r['recall10']:.3f} | {'yes' if r['fits'] else 'no'} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)
