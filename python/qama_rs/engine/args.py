"""Argument checks every layer shares: integers in a range and float row matrices, with errors that name the
user's argument."""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from qama_rs import _core
from qama_rs.errors import QamaError, QamaTypeError

__all__ = ["CHECK_CHUNK", "as_int", "check_int", "float_rows", "plain_rows", "positive_int", "row_limit"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32 = np.dtype(np.float32)
#: Rows checked at a time by :func:`float_rows` (no temporary the size of the input).
CHECK_CHUNK = 1 << 16
#: Values up to which :func:`float_rows` checks in one Rust pass (with the GIL held: a few microseconds).
SMALL_CHECK = 1 << 16


def as_int(value: Any, name: str) -> int:
    """``value`` as an int (NumPy integers and other ``__index__`` types too); bools are refused."""
    if isinstance(value, bool):
        raise QamaTypeError(f"{name} must be an int, got bool")
    try:
        return operator.index(value)
    except TypeError:
        raise QamaTypeError(f"{name} must be an int, got {type(value).__name__}") from None


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int above 0 (a count of results, rows or bytes); bools are refused."""
    value = as_int(value, name)
    if value <= 0:
        raise QamaError(f"{name} = {value}; must be positive")
    return value


def check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``low..high`` (no upper limit when ``high`` is None); bools are refused."""
    value = as_int(value, name)
    if value < low or (high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f"at least {low}"
        raise QamaError(f"{name} = {value}; must be {bound}")
    return value


def row_limit(dims: int) -> float:
    """The magnitude below which inner products of two ``dims``-dimensional rows stay inside float32."""
    return (_FLOAT32_MAX / (4.0 * max(dims, 1))) ** 0.5


def plain_rows(x: Any, dims: int, limit: float | None = None) -> bool:
    """Whether ``x`` is already what :func:`float_rows` returns for it unchanged: a small, aligned, C-contiguous
    ``float32 (n >= 1, dims)`` array of finite values within :func:`row_limit` (one Rust pass; ``limit``: that
    bound, where the caller keeps it). A search takes such queries as they are; anything else goes through
    :func:`float_rows` and its errors."""
    return (
        type(x) is np.ndarray
        and x.dtype is _FLOAT32
        and x.ndim == 2
        and x.shape[1] == dims
        and 0 < x.size <= SMALL_CHECK
        and x.flags.carray  # C-contiguous, aligned (and writeable: a read-only array takes the full path)
        and _core.peak_abs(x) <= (row_limit(dims) if limit is None else limit)
    )


def float_rows(
    x: Any, name: str = "x", dims: int | None = None, *, allow_empty: bool = True, bounded: bool = True
) -> np.ndarray:
    """``x`` as C-contiguous finite ``float32 (n, dims)`` (any ``dims`` when None), or a clear error naming
    ``name``. With ``bounded``, values whose inner products would overflow float32 are refused too."""
    if isinstance(x, np.ndarray):
        array = x
    else:
        try:
            array = np.asarray(x)
        except (ValueError, TypeError) as err:
            raise QamaTypeError(f"{name} must be a 2-D float array: {err}") from None
    if array.dtype.kind != "f":
        raise QamaTypeError(f"{name} must be a floating-point array, got dtype {array.dtype}")
    if array.ndim != 2:
        raise QamaError(f"{name} must be 2-D (n, {dims or 'd'}), got shape {array.shape}")
    if dims is not None and array.shape[1] != dims:
        raise QamaError(f"{name} has {array.shape[1]} columns, the index takes {dims}")
    if not allow_empty and len(array) == 0:
        raise QamaError(f"{name} has no rows")
    array = np.ascontiguousarray(array, dtype=np.float32)
    d = max(array.shape[1], 1)
    limit = row_limit(d) if bounded else math.inf
    if array.size <= SMALL_CHECK and array.flags.aligned:  # one Rust pass (NaN where a value is not finite)
        if _core.peak_abs(array) <= limit:
            return array
    for start in range(0, len(array), CHECK_CHUNK):
        block = array[start : start + CHECK_CHUNK]
        if not block.size:
            continue
        # max and min carry NaN and inf: two reductions check finiteness and magnitude at once.
        peak = max(float(block.max()), -float(block.min()))
        if peak <= limit and peak != math.inf:
            continue
        if not math.isfinite(peak):
            row, col = np.argwhere(~np.isfinite(block))[0]
            raise QamaError(f"{name} has a non-finite value (NaN or inf) at row {start + row}, column {col}")
        raise QamaError(
            f"{name} has values of magnitude {peak:.3g}; inner products of {d}-dimensional vectors "
            f"overflow float32 above {limit:.3g} (normalize the vectors)"
        )
    return array
