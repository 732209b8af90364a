"""A validation signal from documents alone: held-out documents used as queries.

For each held-out document, the base model's exact float32 top-10 among all *other* documents is the target;
the codes' recall@10 is the share of it their symmetric Hamming search (Rust engine) returns. No query or
label is needed, so it serves for model selection on any corpus (code rotation per level and scheme,
early stopping). How well it tracks test NDCG@10 is measured in train/README.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from qama_rs.index.tune import exact_neighbours
from qama_rs.qama.rotation import quantization_rotation

__all__ = [
    "ROTATION_MODES_TRIED",
    "float_neighbours",
    "holdout_rows",
    "label_free_recall",
    "select_code_rotation",
    "validation_split",
]

#: The code-rotation candidates ``"auto"`` tries per (level, scheme): the head's own frame, a random
#: rotation, the quantization rotation (qama_rs.qama.rotation).
ROTATION_MODES_TRIED = ("none", "random", "itq")


def holdout_rows(n: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` distinct row numbers of ``n`` documents (sorted), drawn with a fixed seed."""
    if not 1 <= count < n:
        raise ValueError(f"count must be in 1..{n - 1}, got {count}")
    return np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False))


def float_neighbours(docs: np.ndarray, rows: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact float32 top-``k`` (by inner product, ties by lower row) of ``docs[rows]`` among all docs, each
    query's own row excluded: ``int64 (len(rows), k)`` (:func:`qama_rs.index.tune.exact_neighbours`)."""
    if k >= len(docs):
        raise ValueError(f"k must be < the number of documents ({len(docs)}), got {k}")
    rows = np.asarray(rows, dtype=np.int64)
    docs = np.ascontiguousarray(docs, dtype=np.float32)
    return exact_neighbours(docs, docs[rows], k, own=rows)


def label_free_recall(features: np.ndarray, quantizer, rows: np.ndarray, target: np.ndarray) -> float:
    """Recall@k of the symmetric Hamming search of ``features`` (all documents, quantized by
    ``quantizer``) for the queries ``features[rows]``, against ``target`` (`float_neighbours`)."""
    from qama_rs.index import search

    k = target.shape[1]
    codes = quantizer.encode(np.ascontiguousarray(features, dtype=np.float32))
    _, ids = search(codes[rows], codes, k + 1)
    hits = 0
    for row, found, wanted in zip(rows, ids, target, strict=True):
        found = [i for i in found if i != row][:k]
        hits += len(set(found) & set(wanted.tolist()))
    return hits / (k * len(rows))


def validation_split(
    docs: np.ndarray, seed: int = 0, fit_limit: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, fit_rows, target)`` for `select_code_rotation`: 10 % of the documents (at most 1,000) held out
    as validation queries, the other rows to fit on (a seeded subsample of at most ``fit_limit``: a d x d
    rotation is well determined by far fewer rows than a large corpus has), and the held-out rows' float32
    top-10 among all documents."""
    n = len(docs)
    if n < 12:
        raise ValueError(
            f"the label-free validation needs at least 12 documents (one held out, its top-10 among the rest), "
            f"got {n}; with fewer, set thresholds.rotation = 'none'"
        )
    rows = holdout_rows(n, min(1000, max(1, n // 10)), seed=seed)
    fit_rows = np.setdiff1d(np.arange(n), rows)
    if fit_limit is not None and len(fit_rows) > fit_limit:
        fit_rows = np.sort(np.random.default_rng(seed).choice(fit_rows, fit_limit, replace=False))
    return rows, fit_rows, float_neighbours(docs, rows)


def select_code_rotation(
    features: np.ndarray,
    levels: Sequence[int],
    split: tuple[np.ndarray, np.ndarray, np.ndarray],
    quantizer_for: Callable[[np.ndarray], object],
    modes: Sequence[str] = ROTATION_MODES_TRIED,
    iterations: int = 20,
    seed: int = 0,
    cells: str = "quantile",
) -> tuple[np.ndarray, dict[str, float]]:
    """The code rotation of ``modes`` whose codes score best on the label-free signal, and every score.

    ``features``: the unrotated quantizer inputs of all documents ``(n, w)``; ``levels``: levels per
    feature; ``split``: `validation_split` of the same documents; ``quantizer_for(rotated_features)``
    returns the engine quantizer fitted to them; ``iterations``, ``seed``, ``cells``: of the quantization
    rotation (`qama_rs.qama.rotation.quantization_rotation`). Ties keep the earlier mode.
    """
    rows, fit_rows, target = split
    plain = np.asarray(features, dtype=np.float64)
    width = plain.shape[1]
    scores: dict[str, float] = {}
    best: tuple[float, np.ndarray] | None = None
    for mode in modes:
        if mode == "none":
            rotation = np.eye(width)
        elif mode in ("random", "itq"):
            steps = iterations if mode == "itq" else 0
            rotation = quantization_rotation(plain[fit_rows], levels, steps, seed=seed, cells=cells)
        else:
            raise ValueError(f"unknown rotation mode {mode!r}; modes are {ROTATION_MODES_TRIED}")
        rotated = (plain @ rotation).astype(np.float32)
        scores[mode] = label_free_recall(rotated, quantizer_for(rotated), rows, target)
        if best is None or scores[mode] > best[0]:
            best = (scores[mode], rotation)
    if best is None:
        raise ValueError("modes must name at least one rotation mode")
    return best[1], scores
