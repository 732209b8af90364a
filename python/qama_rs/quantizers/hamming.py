"""NumPy reference for Hamming distances and exact top-k (the Rust engine's contract, slowly).

Distances are popcounts of XORed packed bytes; top-k orders by distance (or by descending score),
ties broken by the lower document index — the same order as ``qama_rs.search``.
"""

from __future__ import annotations

import numpy as np

# Rows of the (queries × docs × bytes) XOR temporary per block; keeps memory near 64 MiB.
_BLOCK_BYTES = 1 << 26


def hamming_distances(query_bits: np.ndarray, doc_bits: np.ndarray) -> np.ndarray:
    """``(q, b)`` and ``(n, b)`` packed uint8 → ``(q, n)`` int32 Hamming distances."""
    for arg, name in ((query_bits, "query_bits"), (doc_bits, "doc_bits")):
        if not isinstance(arg, np.ndarray) or arg.dtype != np.uint8 or arg.ndim != 2:
            raise TypeError(f"{name} must be a 2-D uint8 array of packed bits")
    if query_bits.shape[1] != doc_bits.shape[1]:
        raise ValueError(f"query_bits has {query_bits.shape[1]} bytes per row, doc_bits {doc_bits.shape[1]}")
    q, n, b = query_bits.shape[0], doc_bits.shape[0], doc_bits.shape[1]
    out = np.empty((q, n), dtype=np.int32)
    rows = max(1, _BLOCK_BYTES // max(1, n * b))
    for start in range(0, q, rows):
        block = query_bits[start : start + rows, None, :] ^ doc_bits[None, :, :]
        out[start : start + rows] = np.bitwise_count(block).sum(axis=2, dtype=np.int32)
    return out


def topk_smallest(distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` smallest values ascending, ties by lower column; ``k > n`` gives ``n``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = distances.shape[1]
    k = min(k, n)
    # A stable argsort on the values keeps equal values in column order: the tie rule for free.
    ids = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, ids, axis=1), ids.astype(np.int64)


def topk_largest(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` largest scores descending, ties by lower column."""
    _, ids = topk_smallest(-scores, k)
    return np.take_along_axis(scores, ids, axis=1), ids
