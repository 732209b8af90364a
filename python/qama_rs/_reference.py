"""Pure-NumPy reference of the Rust engine, written for clarity, not speed.

The parity tests compare every `qama_rs._core` operation with these functions. Bit order (the one
contract): dimension ``j`` with ``L_j`` levels owns ``L_j - 1`` consecutive stream bits; stream bit
``p`` of that group is set iff the code is ``> p``; stream bit ``b`` is bit ``b % 64`` of word
``b // 64``, i.e. ``np.packbits(bits, bitorder="little")`` read as little-endian uint64.
"""

from __future__ import annotations

import numpy as np


def _offsets(levels: np.ndarray) -> np.ndarray:
    """First stream bit of each dimension, plus the total at the end."""
    return np.concatenate([[0], np.cumsum(np.asarray(levels, dtype=np.int64) - 1)])


def _dim_of_bit(levels: np.ndarray) -> np.ndarray:
    """For each stream bit (= each threshold), the dimension that owns it."""
    levels = np.asarray(levels, dtype=np.int64)
    return np.repeat(np.arange(len(levels)), levels - 1)


def quantize(x: np.ndarray, thresholds: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Codes ``uint8 (n, d)``: how many of its dimension's thresholds each value strictly exceeds."""
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("x contains a non-finite value")
    above = x[:, _dim_of_bit(levels)] > np.asarray(thresholds, dtype=np.float32)[None, :]
    return np.add.reduceat(above.astype(np.int64), _offsets(levels)[:-1], axis=1).astype(np.uint8)


def thermometer_bits(codes: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """0/1 stream bits ``uint8 (n, sum(levels - 1))`` of codes ``(n, d)``."""
    dim_of_bit = _dim_of_bit(levels)
    position = np.arange(len(dim_of_bit)) - _offsets(levels)[dim_of_bit]
    return (np.asarray(codes)[:, dim_of_bit] > position[None, :]).astype(np.uint8)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Packs 0/1 bytes ``(n, nbits)`` into ``uint64 (n, ceil(nbits / 64))``, zero-padded."""
    bits = np.asarray(bits, dtype=np.uint8)
    n, nbits = bits.shape
    words = -(-nbits // 64)
    packed = np.packbits(bits, axis=1, bitorder="little")
    padded = np.zeros((n, words * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view("<u8").astype(np.uint64)


def unpack_bits(words: np.ndarray, nbits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``(n, words)`` to 0/1 bytes ``(n, nbits)``."""
    as_bytes = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, count=nbits, bitorder="little")


def expand(codes: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Thermometer-expands and packs codes ``(n, d)`` into ``uint64 (n, words)``."""
    return pack_bits(thermometer_bits(codes, levels))


def collapse(packed: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Levels ``uint8 (n, d)`` of packed thermometer codes (assumed well formed)."""
    bits = unpack_bits(packed, int(_offsets(levels)[-1])).astype(np.int64)
    return np.add.reduceat(bits, _offsets(levels)[:-1], axis=1).astype(np.uint8)


def encode(x: np.ndarray, thresholds: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``quantize`` then ``expand``."""
    return expand(quantize(x, thresholds, levels), levels)


def prefix_mask(words: int, nbits: int) -> np.ndarray:
    """``uint64 (words,)`` with the first ``nbits`` stream bits set."""
    return pack_bits(np.arange(words * 64)[None, :] < nbits)[0]


def hamming_distances(queries: np.ndarray, database: np.ndarray, nbits: int | None = None) -> np.ndarray:
    """All-pairs Hamming distances ``int32 (q, n)`` over the first ``nbits`` bits (default all)."""
    words = queries.shape[1]
    mask = prefix_mask(words, words * 64 if nbits is None else nbits)
    out = np.empty((len(queries), len(database)), dtype=np.int32)
    for i, query in enumerate(queries):
        out[i] = np.bitwise_count((database ^ query) & mask).sum(axis=1, dtype=np.int64)
    return out


def search(
    queries: np.ndarray, database: np.ndarray, k: int, nbits: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k: ``(distances int32, ids int64)`` of shape ``(q, min(k, n))``, ascending by
    distance, ties by lower row number (a stable sort keeps row order among equal distances)."""
    distances = hamming_distances(queries, database, nbits)
    kk = min(k, len(database))
    order = np.argsort(distances, axis=1, kind="stable")[:, :kk]
    return np.take_along_axis(distances, order, axis=1), order.astype(np.int64)
