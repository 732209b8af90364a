"""Shared pieces of the ``TableCodec`` tests: the bit widths, instruction-set levels and layouts under
test, random cases, a bit-exact float comparison, and ``Store`` builders (one list, or several lists
split over a base and a tail segment at non-zero offsets)."""

from __future__ import annotations

import numpy as np

from qama_rs import _core

BITS = [1, 2, 4, 8]
ISAS = _core.available_isas()
LAYOUTS = ["rows", "blocks"]


def random_case(rng, n, dims, bits, nq=3):
    codes = rng.integers(0, 1 << bits, size=(n, dims), dtype=np.uint8)
    recon = rng.normal(size=(dims, 1 << bits)).astype(np.float32)
    queries = rng.normal(size=(nq, dims)).astype(np.float32)
    return codes, recon, queries


def bits_equal(a, b):
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def layouts_for(bits):
    """The block layout holds codes of at most 4 bits (nibble tables)."""
    return LAYOUTS if bits <= 4 else ["rows"]


def store(rows, layout="rows", labels=None, scale=None):
    """One list of ``rows`` (row-major ``uint8 (n, row_bytes)``) in ``layout``: a base segment and an
    empty tail, the shape the index builds."""
    n = len(rows)
    data = _core.to_blocks(rows) if layout == "blocks" else rows
    return _core.Store(
        [data, np.zeros(0, dtype=np.uint8)],
        np.array([[0, n, 0, 0]], dtype=np.uint64),
        None if labels is None else [np.asarray(labels, dtype=np.uint64), np.zeros(0, dtype=np.uint64)],
        None if scale is None else [np.asarray(scale, dtype=np.float32), np.zeros(0, dtype=np.float32)],
    )


def split_store(rows, layout, lists, labels=None, scale=None, gap=1):
    """``rows`` in lists of the given sizes (in order), each list's first half in a base segment and
    the rest in a tail segment after ``gap`` blocks of unrelated rows, so offsets are not zero:
    positions, labels and scales must follow the table, not the arrays."""
    n, row_bytes = rows.shape
    assert sum(lists) == n
    pad = 32 * gap
    segments = {"base": [], "tail": [np.full((pad, row_bytes), 0xA5, dtype=np.uint8)]}
    label_parts = {"base": [], "tail": [np.full(pad, 999_999, np.uint64)]}
    scale_parts = {"base": [], "tail": [np.full(pad, 7.0, np.float32)]}
    offsets = {"base": 0, "tail": pad}
    table, at = [], 0
    for size in lists:
        entry = []
        for part, lo, hi in (("base", at, at + size // 2), ("tail", at + size // 2, at + size)):
            count = hi - lo
            padded = -(-count // 32) * 32 if layout == "blocks" else count
            block = np.zeros((padded, row_bytes), np.uint8)
            block[:count] = rows[lo:hi]
            segments[part].append(block)
            if labels is not None:
                label_parts[part].append(np.concatenate([labels[lo:hi], np.zeros(padded - count, np.uint64)]))
            if scale is not None:
                scale_parts[part].append(np.concatenate([scale[lo:hi], np.ones(padded - count, np.float32)]))
            entry += [offsets[part], count]
            offsets[part] += padded
        table.append(entry)
        at += size

    def joined(parts, dtype, shape=()):
        return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros((0, *shape), dtype))

    def segment(parts):
        rows_ = joined(parts, np.uint8, (row_bytes,))
        return _core.to_blocks(rows_) if layout == "blocks" else rows_

    return _core.Store(
        [segment(segments["base"]), segment(segments["tail"])],
        np.array(table, dtype=np.uint64),
        None if labels is None else [joined(label_parts[p], np.uint64) for p in ("base", "tail")],
        None if scale is None else [joined(scale_parts[p], np.float32) for p in ("base", "tail")],
    )
