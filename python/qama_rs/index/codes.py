"""Searching bare arrays of packed thermometer codes (no index object): ``qama_rs.search``."""

from __future__ import annotations

from typing import Any

import numpy as np

from qama_rs import _core
from qama_rs.engine.args import positive_int
from qama_rs.engine.quantizer import Quantizer
from qama_rs.errors import QamaError, QamaTypeError

__all__ = ["search"]


def _codes(array: Any, name: str) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise QamaTypeError(f"{name} must be a NumPy uint64 array, got {type(array).__name__}")
    if array.dtype != np.uint64:
        raise QamaTypeError(f"{name} must have dtype uint64, got {array.dtype}")
    if array.ndim != 2:
        raise QamaError(f"{name} must be 2-D (n, words), got shape {array.shape}")
    return np.ascontiguousarray(array)


def search(
    queries: np.ndarray,
    database: np.ndarray,
    k: int,
    dims: int | None = None,
    *,
    quantizer: Quantizer | None = None,
    nbits: int | None = None,
    isa: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Hamming top-k of ``uint64 (q, words)`` query codes against ``uint64 (n, words)`` database codes:
    ``(distances int32, rows int64)``, both ``(q, min(k, n))``, ascending by distance, ties by lower row.

    All bits are compared unless a prefix is named: ``dims=m`` (quantized values; needs the ``quantizer``
    that made the codes to know where they end) or ``nbits`` (stream bits). ``isa`` forces a kernel level
    of :func:`qama_rs.available_isas` (tests and benchmarks)."""
    k = positive_int(k, "k")
    q, db = _codes(queries, "queries"), _codes(database, "database")
    if q.shape[1] != db.shape[1]:
        raise QamaError(f"queries has {q.shape[1]} words per row but database has {db.shape[1]}")
    if dims is not None:
        if nbits is not None:
            raise QamaError("give dims or nbits, not both")
        if quantizer is None:
            raise QamaError("dims counts quantized values; pass quantizer= to map it to bits, or use nbits=")
        nbits = quantizer.prefix_bits(dims)
    if len(db) == 0:
        raise QamaError("the database is empty (n = 0); nothing to search")
    if db.flags.writeable:
        # The engine reads the store in place without the GIL: another thread writing the caller's array
        # meanwhile must not change the answer (the index's own arrays are never written during a call).
        db = db.copy()
    codec = _core.HammingCodec(db.shape[1], nbits, isa)
    store = _core.Store([db, np.zeros(0, dtype=np.uint64)], np.array([[0, len(db), 0, 0]], dtype=np.uint64))
    scores, rows = codec.search(q, store, k)
    return (-scores).astype(np.int32), rows
