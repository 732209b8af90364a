"""NDCG@10 of a trained QAMA head on a BEIR split: float slices and symmetric Hamming search per scheme.

    python train/evaluate.py --model runs/scifact --dataset scifact [--split test] [--json out.json]

Documents and queries are embedded with the base model (cached), passed through the head, sliced to each
Matryoshka level and (for the quantized rows) encoded with the model's thresholds; queries are quantized with
the same thresholds (symmetric search). Search uses the Rust engine (`qama_rs.Index`) when the extension is
built, else an exact NumPy Hamming search with the engine's tie rule (lower document index first). Scores go
to pytrec_eval as ``k - rank`` so its own tie-breaking never reorders our list.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

K = 10


def hamming_topk_numpy(qbits: np.ndarray, dbits: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k by Hamming distance over 0/1 bit rows; ties by lower document index."""
    q = qbits.astype(np.float32)
    d = dbits.astype(np.float32)
    dist = q.sum(1)[:, None] + d.sum(1)[None, :] - 2.0 * q @ d.T
    return np.argsort(np.rint(dist).astype(np.int64), axis=1, kind="stable")[:, :k]


def thermometer(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """0/1 thermometer bits of ``values`` (n, f) under padded thresholds (f, width) (+inf = no bit)."""
    return (values[:, :, None] > thresholds[None]).reshape(len(values), -1)


def cosine_topk(q: np.ndarray, d: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(q @ d.T), axis=1, kind="stable")[:, :k]


def run_from_ids(query_ids, doc_ids, top: np.ndarray) -> dict[str, dict[str, float]]:
    return {
        qid: {doc_ids[j]: float(K - r) for r, j in enumerate(row)}
        for qid, row in zip(query_ids, top.tolist(), strict=True)
    }


def evaluate(model_dir: str, dataset: str, split: str = "test", engine: str = "auto") -> dict:
    from qama_rs.data.beir import load_beir, resolve_dataset
    from qama_rs.data.embed import dataset_embeddings
    from qama_rs.eval.metrics import ndcg_at_10
    from qama_rs.qama.model import QamaModel

    model = QamaModel.load(model_dir)
    data = load_beir(resolve_dataset(dataset), split=split)
    emb = dataset_embeddings(data)
    use_engine = engine == "rust"
    if engine == "auto":
        try:
            import qama_rs  # noqa: F401
            from qama_rs import Index  # noqa: F401

            use_engine = True
        except ImportError:
            use_engine = False
    results: dict[str, dict[str, float]] = {"float32": {}}
    base_run = run_from_ids(emb.query_ids, emb.doc_ids, cosine_topk(emb.queries, emb.docs, K))
    results["base float32"] = {str(model.dim): ndcg_at_10(data.qrels, base_run)[0]}
    for dims in model.levels:
        top = cosine_topk(model.transform(emb.queries, dims), model.transform(emb.docs, dims), K)
        results["float32"][str(dims)] = ndcg_at_10(data.qrels, run_from_ids(emb.query_ids, emb.doc_ids, top))[
            0
        ]
        for scheme in model.schemes:
            fq = model.features(emb.queries, dims, scheme)
            fd = model.features(emb.docs, dims, scheme)
            if use_engine:
                index = model.quantizer(dims, scheme)
                from qama_rs import Index

                idx = Index(index)
                idx.add(fd)
                _, top = idx.search(fq, K)
            else:
                thresholds = model.thresholds.get(dims, scheme).numpy()
                top = hamming_topk_numpy(thermometer(fq, thresholds), thermometer(fd, thresholds), K)
            score = ndcg_at_10(data.qrels, run_from_ids(emb.query_ids, emb.doc_ids, np.asarray(top)))[0]
            results.setdefault(scheme, {})[str(dims)] = score
    return {
        "dataset": dataset,
        "split": split,
        "engine": "rust" if use_engine else "numpy",
        "ndcg@10": results,
    }


def format_table(report: dict) -> str:
    rows = report["ndcg@10"]
    dims = sorted({int(d) for r in rows.values() for d in r}, reverse=True)
    lines = ["| | " + " | ".join(f"{d} d" for d in dims) + " |", "|---|" + "---:|" * len(dims)]
    for name, values in rows.items():
        lines.append(
            f"| {name} | "
            + " | ".join(f"{values[str(d)]:.4f}" if str(d) in values else "" for d in dims)
            + " |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--split", default="test")
    parser.add_argument("--engine", choices=("auto", "rust", "numpy"), default="auto")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = evaluate(args.model, args.dataset, args.split, args.engine)
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(" ".join(sys.argv))
    print(f"{args.dataset}/{args.split}, engine={report['engine']}, NDCG@10")
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
