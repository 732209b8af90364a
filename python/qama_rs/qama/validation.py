"""A validation signal from documents alone: held-out documents used as queries.

For each held-out document, the base model's exact float32 top-10 among all *other* documents is the target;
the codes' recall@10 is the share of it their symmetric Hamming search (Rust engine) returns. No query or
label is needed, so it serves for model selection on any corpus (code rotation per level and scheme,
early stopping). How well it tracks test NDCG@10 is measured in train/README.md.
"""

from __future__ import annotations

import numpy as np

__all__ = ["float_neighbours", "holdout_rows", "label_free_recall"]


def holdout_rows(n: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` distinct row numbers of ``n`` documents (sorted), drawn with a fixed seed."""
    if not 1 <= count < n:
        raise ValueError(f"count must be in 1..{n - 1}, got {count}")
    return np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False))


def float_neighbours(docs: np.ndarray, rows: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact float32 top-``k`` (by inner product) of ``docs[rows]`` among all docs, each query's own row
    excluded: ``int64 (len(rows), k)``."""
    if k >= len(docs):
        raise ValueError(f"k must be < the number of documents ({len(docs)}), got {k}")
    sims = docs[rows] @ docs.T
    sims[np.arange(len(rows)), rows] = -np.inf
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.take_along_axis(sims, top, 1).argsort(1)[:, ::-1]
    return np.take_along_axis(top, order, 1)


def label_free_recall(features: np.ndarray, quantizer, rows: np.ndarray, target: np.ndarray) -> float:
    """Recall@k of the symmetric Hamming search of ``features`` (all documents, quantized by
    ``quantizer``) for the queries ``features[rows]``, against ``target`` (`float_neighbours`)."""
    from qama_rs.engine import Index

    k = target.shape[1]
    index = Index(quantizer)
    index.add(np.ascontiguousarray(features, dtype=np.float32))
    _, ids = index.search(np.ascontiguousarray(features[rows], dtype=np.float32), k + 1)
    hits = 0
    for row, found, wanted in zip(rows, ids, target, strict=True):
        found = [i for i in found if i != row][:k]
        hits += len(set(found) & set(wanted.tolist()))
    return hits / (k * len(rows))
