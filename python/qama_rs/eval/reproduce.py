"""Check the training-free quantizers against the reference figures, and sweep the two-stage search.

``python -m qama_rs.eval.reproduce [--datasets scifact dbpedia-5k] [--two-stage scifact]``

Every method is fitted on the corpus documents only and evaluated on the ``test`` split with NDCG@10
(pytrec_eval, as MTEB). Runs hold the top 1000 documents with their scores, as MTEB's do, so ties
(integer Hamming distances) are broken by trec_eval's rule; the ``ties by id`` column breaks them
by lower row number instead (the engine's order) and keeps only that order. The 95 % interval is a
bootstrap over queries (``qama_rs.eval.metrics.bootstrap_ci``).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from qama_rs.quantizers import TwoStageSearch, make_method
from qama_rs.quantizers.hamming import topk_largest, topk_smallest

# README.md reference figures (all-MiniLM-L6-v2, 384 d, NDCG@10 on test).
REFERENCE = {
    "scifact": {
        "float32": 0.6451,
        "int8": 0.646,
        "binary hamming": 0.5864,
        "binary": 0.6228,
        "binary_median": 0.6138,
        "lloyd_max_gauss": 0.6576,
    },
    "dbpedia-5k": {
        "float32": 0.5114,
        "int8": 0.5122,
        "binary hamming": 0.4918,
        "binary": 0.5155,
        "binary_median": 0.5136,
        "lloyd_max_gauss": 0.5105,
    },
}

ASYMMETRIC = [
    ("binary", "none", {}),
    ("binary_median", "none", {}),
    ("quaternary", "none", {}),
    ("lloyd_max_gauss", "none", {}),
    ("lloyd_max_empirical", "none", {}),
    ("calibration_free_2bit", "none", {}),
    ("lloyd_max_4bit", "none", {}),
    ("int8", "none", {}),
    ("adaptive_bits", "none", {}),
    ("adaptive_bits", "none", {"high_dims": 64, "low_dims": 192, "order": "variance"}),
    ("binary", "orthogonal", {}),
    ("binary", "hadamard", {}),
    ("lloyd_max_gauss", "orthogonal", {}),
    ("lloyd_max_gauss", "hadamard", {}),
]
SYMMETRIC = [("binary", "none"), ("binary_median", "none"), ("gray_2bit", "none"), ("binary", "orthogonal")]
K_PRIMES = [10, 20, 30, 50, 100, 200, 300, 500, 1000]


def load(name: str):
    from qama_rs.data.beir import load_beir, resolve_dataset
    from qama_rs.data.embed import dataset_embeddings

    dataset = load_beir(resolve_dataset(name), split="test")
    emb = dataset_embeddings(dataset, progress=False)
    if list(emb.doc_ids) != list(dataset.doc_ids):
        raise RuntimeError("document embeddings are not aligned with the dataset")
    row = {qid: i for i, qid in enumerate(emb.query_ids)}
    queries = emb.queries[[row[q] for q in dataset.query_ids]]
    return dataset, emb.docs, queries


def ndcg(dataset, ids: np.ndarray, scores: np.ndarray | None) -> tuple[float, float, float]:
    """NDCG@10 and its 95 % bootstrap interval over queries."""
    from qama_rs.eval.metrics import bootstrap_ci, ndcg_at_10, run_from_topk

    mean, per_query = ndcg_at_10(
        dataset.qrels, run_from_topk(dataset.query_ids, dataset.doc_ids, ids, scores)
    )
    return (mean, *bootstrap_ci(per_query))


def level_l1(query_codes: np.ndarray, doc_codes: np.ndarray) -> np.ndarray:
    """Sum of per-dimension level differences = Hamming distance of thermometer codes."""
    out = np.empty((query_codes.shape[0], doc_codes.shape[0]), dtype=np.int32)
    docs = doc_codes.astype(np.int16)
    for r in range(query_codes.shape[0]):
        out[r] = np.abs(docs - query_codes[r].astype(np.int16)).sum(axis=1)
    return out


def evaluate(name: str) -> list[tuple[str, str, int, tuple[float, float, float], float | None]]:
    """Rows ``(method, scoring, bytes per doc, (NDCG@10, CI low, CI high), NDCG@10 with ties by id)``."""
    dataset, docs, queries = load(name)
    rows = []
    s, i = topk_largest(queries @ docs.T, 1000)
    rows.append(("float32", "exact", docs.shape[1] * 4, ndcg(dataset, i, s), None))
    for method, rotation, kwargs in ASYMMETRIC:
        q = make_method(method, rotation=rotation, seed=0, **kwargs).fit(docs)
        codes = q.encode(docs)
        s, i = topk_largest(q.score(queries, codes), 1000)
        label = q.name + ("" if not kwargs else f"[{','.join(f'{k}={v}' for k, v in kwargs.items())}]")
        rows.append((label, "asym", q.bytes_per_vector, ndcg(dataset, i, s), None))
    for method, rotation in SYMMETRIC:
        q = make_method(method, rotation=rotation, seed=0).fit(docs)
        dist = q.hamming_distances(queries, q.encode(docs))
        rows.append((q.name, "hamming", q.bytes_per_vector, *_symmetric(dataset, dist)))
    # Thermometer codes of the same 2-bit levels as gray_2bit: 3 bits a dimension, exact level distance.
    q = make_method("lloyd_max_gauss").fit(docs)
    dist = level_l1(q.encode(queries), q.encode(docs))
    rows.append(
        ("lloyd_max_gauss thermometer", "hamming", 3 * docs.shape[1] // 8, *_symmetric(dataset, dist))
    )
    return rows


def _symmetric(dataset, dist: np.ndarray):
    dist, i = topk_smallest(dist, 1000)
    return ndcg(dataset, i, -dist.astype(np.float64)), ndcg(dataset, i[:, :10], None)[0]


def two_stage_curve(name: str) -> list[tuple[str, int, float, float, float]]:
    """Rows ``(config, k', NDCG@10, bytes scanned per doc, fraction of float32 bytes)``."""
    dataset, docs, queries = load(name)
    n, d = docs.shape
    rows = []
    configs = [
        ("hamming→lloyd_max_gauss", TwoStageSearch()),
        ("asym→lloyd_max_gauss", TwoStageSearch(first_stage_mode="asymmetric")),
        ("hamming→int8", TwoStageSearch(rescorer=make_method("int8"))),
        ("hamming→float32", TwoStageSearch(rescorer="float32")),
    ]
    for label, search in configs:
        search.fit(docs)
        k_primes = [kp for kp in K_PRIMES if kp < n] + [n]
        for kp, ids in search.sweep(queries, k_primes, k=10).items():
            per_doc = search.bytes_scanned(kp) / n
            rows.append((label, kp, ndcg(dataset, ids, None)[0], per_doc, per_doc / (4 * d)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=["scifact", "dbpedia-5k"])
    parser.add_argument("--two-stage", nargs="*", default=["scifact"], dest="two_stage", metavar="DATASET")
    args = parser.parse_args(argv)
    for name in args.datasets:
        t0 = time.time()
        ref = REFERENCE.get(name, {})
        print(f"\n## {name}: NDCG@10 (test)\n")
        print("| method | scoring | bytes/doc | NDCG@10 | 95 % CI | ties by id | reference |")
        print("|---|---|---:|---:|---|---:|---:|")
        for method, scoring, nbytes, (value, lo, hi), by_id in evaluate(name):
            key = method if scoring != "hamming" else f"{method} hamming"
            ref_value = ref.get(key, ref.get(method) if scoring != "hamming" else None)
            tie = "" if by_id is None else f"{by_id:.4f}"
            ref_text = "" if ref_value is None else f"{ref_value:.4f}"
            print(
                f"| {method} | {scoring} | {nbytes} | {value:.4f} | {lo:.3f}–{hi:.3f} | {tie} | {ref_text} |"
            )
        print(f"\n({time.time() - t0:.1f} s)")
    for name in args.two_stage:
        print(f"\n## {name}: two-stage search, k = 10\n")
        print("| stages | k' | NDCG@10 | bytes scanned / doc | of float32 |")
        print("|---|---:|---:|---:|---:|")
        for label, kp, value, per_doc, frac in two_stage_curve(name):
            print(f"| {label} | {kp} | {value:.4f} | {per_doc:.1f} | 1/{1 / frac:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
