"""Check the training-free quantizers against the reference figures, and sweep the two-stage search.

``qama reproduce [--datasets scifact dbpedia-5k] [--two-stage scifact]`` prints the tables
(`qama_rs.cli.eval_cmd`).

Every row is a factory spec (``qama_rs.index_factory``) searched by the Rust engine, fitted on the
corpus documents only and evaluated on the ``test`` split with NDCG@10 (pytrec_eval, as MTEB). Runs
hold the top 1000 documents with their scores, as MTEB's do, so ties (integer Hamming distances) are
broken by trec_eval's rule; the ``ties by id`` column breaks them by lower row number instead (the
engine's order) and keeps only that order. The 95 % interval is a bootstrap over queries
(``qama_rs.eval.metrics.bootstrap_ci``).
"""

from __future__ import annotations

import numpy as np

from qama_rs.index import index_factory

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

# (row label, spec): float queries scored asymmetrically.
ASYMMETRIC = [
    ("binary", "Binary"),
    ("binary_median", "BinaryMedian"),
    ("quaternary", "Quaternary"),
    ("lloyd_max_gauss", "LloydMax2"),
    ("lloyd_max_empirical", "LloydMaxEmp2"),
    ("calibration_free_2bit", "CalFree2"),
    ("lloyd_max_4bit", "LloydMax4"),
    ("int8", "Int8"),
    ("adaptive_bits", "Adaptive"),
    ("adaptive_bits[high_dims=64,low_dims=192,order=variance]", "Adaptive(high_dims=64,low_dims=192,order=variance)"),
    ("binary@orthogonal", "Orthogonal,Binary"),
    ("binary@hadamard", "Hadamard,Binary"),
    ("lloyd_max_gauss@orthogonal", "Orthogonal,LloydMax2"),
    ("lloyd_max_gauss@hadamard", "Hadamard,LloydMax2"),
]
# Symmetric Hamming: the query is quantized too. (gray_2bit's Gray-coded Hamming has no engine kernel:
# it is not a thermometer code; its asymmetric scores are LloydMax2's.)
SYMMETRIC = [
    ("binary", "Sign"),
    ("binary_median", "Thermo1"),
    ("binary@orthogonal", "Orthogonal,Sign"),
    ("lloyd_max_gauss thermometer", "ThermoLloydMax2"),
]
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


def _search(spec: str, docs: np.ndarray, queries: np.ndarray, k: int = 1000):
    index = index_factory(docs.shape[1], spec)
    if not index.is_trained:
        index.train(docs)
    index.add(docs)
    scores, ids = index.search(queries, min(k, len(docs)))
    return index, scores, ids


def evaluate(name: str) -> list[tuple[str, str, int, tuple[float, float, float], float | None]]:
    """Rows ``(method, scoring, bytes per doc, (NDCG@10, CI low, CI high), NDCG@10 with ties by id)``."""
    dataset, docs, queries = load(name)
    rows = []
    index, s, i = _search("Flat", docs, queries)
    rows.append(("float32", "exact", index.bytes_per_vector, ndcg(dataset, i, s), None))
    for label, spec in ASYMMETRIC:
        index, s, i = _search(spec, docs, queries)
        rows.append((label, "asym", index.bytes_per_vector, ndcg(dataset, i, s), None))
    for label, spec in SYMMETRIC:
        index, s, i = _search(spec, docs, queries)
        rows.append((label, "hamming", index.bytes_per_vector, ndcg(dataset, i, s), ndcg(dataset, i[:, :10], None)[0]))
    return rows


TWO_STAGE = [
    ("hamming→lloyd_max_gauss", "Sign,Rescore(LloydMax2,{k})"),
    ("asym→lloyd_max_gauss", "Binary,Rescore(LloydMax2,{k})"),
    ("hamming→int8", "Sign,Rescore(Int8,{k})"),
    ("hamming→float32", "Sign,RFlat({k})"),
]


def two_stage_curve(name: str) -> list[tuple[str, int, float, float, float]]:
    """Rows ``(config, k', NDCG@10, bytes scanned per doc, fraction of float32 bytes)``."""
    dataset, docs, queries = load(name)
    n, d = docs.shape
    rows = []
    for label, template in TWO_STAGE:
        for kp in [kp for kp in K_PRIMES if kp < n] + [n]:
            index, _, ids = _search(template.format(k=kp), docs, queries, k=10)
            first = index.codec.bytes_per_vector
            per_doc = (n * first + kp * (index.bytes_per_vector - first)) / n
            rows.append((label, kp, ndcg(dataset, ids, None)[0], per_doc, per_doc / (4 * d)))
    return rows
