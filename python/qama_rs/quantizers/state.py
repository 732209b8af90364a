"""Codec state: what a codec's ``to_state()`` returns and its ``from_state()`` accepts.

A state is a dict whose values are JSON-ready scalars, strings and small lists, or numpy arrays: every
large table (a basis, a mean, centroids, per-component bounds, values and orders) is an array with
the exact dtype the codec computes with, so a saved and reloaded codec encodes and scores bit for bit
like the fitted one. Ragged per-component tables are one flat array plus an ``int64`` offsets array
(``key`` and ``key + "_offsets"``; component ``j`` owns ``flat[offsets[j]:offsets[j + 1]]``).

``from_state`` gets the arrays back read-only and C-contiguous, possibly memory-mapped: it never writes
into them and keeps views where it can. Every array is checked (dtype, shape, finite values) and a
bad one raises :class:`~qama_rs.errors.QamaError` naming the codec and the key, so a corrupt file
never crashes or answers wrongly. States written before arrays (nested JSON lists) are read too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qama_rs.errors import QamaError

__all__ = [
    "check_orthonormal",
    "corrupt",
    "flatten",
    "ragged",
    "state_array",
    "state_float",
    "state_int",
    "state_str",
]


def corrupt(owner: str, what: str) -> QamaError:
    """The error of a bad saved state (``owner``: the codec class)."""
    return QamaError(f"{owner}: corrupt saved state ({what})")


def flatten(parts: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    """Ragged 1-D arrays as ``(flat, offsets)``: one C-contiguous ``dtype`` array and ``int64`` offsets."""
    sizes = [int(np.asarray(p).size) for p in parts]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if not parts:
        return np.zeros(0, dtype=dtype), offsets
    flat = np.concatenate([np.asarray(p, dtype=dtype).ravel() for p in parts])
    return np.ascontiguousarray(flat, dtype=dtype), offsets


def state_array(
    state: dict, key: str, owner: str, dtype, shape: tuple | None = None, ndim: int | None = None
):
    """``state[key]`` as a ``dtype`` array (a view of a saved array, never a writeable copy of it).

    A numpy array must already have ``dtype`` (a file section of another dtype is corrupt); a list (a
    state from before arrays) is converted. ``shape`` entries of ``None`` match any length. Float arrays
    must be finite.
    """
    if key not in state:
        raise corrupt(owner, f"{key!r} is missing")
    value = state[key]
    dtype = np.dtype(dtype)
    if isinstance(value, np.ndarray):
        if value.dtype != dtype:
            raise corrupt(owner, f"{key!r} has dtype {value.dtype}, expected {dtype}")
        array = value
    elif isinstance(value, list | tuple):
        try:
            array = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError, OverflowError) as err:
            raise corrupt(owner, f"{key!r}: {err}") from None
    else:
        raise corrupt(owner, f"{key!r} is a {type(value).__name__}, expected an array")
    if ndim is None and shape is not None:
        ndim = len(shape)
    if ndim is not None and array.ndim != ndim:
        raise corrupt(owner, f"{key!r} has shape {array.shape}, expected {ndim} dimensions")
    if shape is not None and any(
        want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
    ):
        raise corrupt(owner, f"{key!r} has shape {array.shape}, expected {shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise corrupt(owner, f"{key!r} holds a non-finite value")
    return array


def ragged(state: dict, key: str, owner: str, dtype, count: int, optional: bool = False) -> list[np.ndarray]:
    """``count`` 1-D ``dtype`` arrays: views of ``state[key]`` cut at ``state[key + "_offsets"]``, or
    (a state from before arrays) a list of lists. ``optional``: a list entry may be ``None`` (then an
    empty array), and a missing key means ``count`` empty arrays."""
    if optional and state.get(key) is None:
        return [np.zeros(0, dtype=dtype)] * count
    value = state.get(key)
    if isinstance(value, list | tuple):  # legacy: one nested list per component
        if len(value) != count:
            raise corrupt(owner, f"{key!r} has {len(value)} entries, expected {count}")
        parts = []
        for j, part in enumerate(value):
            if part is None and optional:
                parts.append(np.zeros(0, dtype=dtype))
            elif isinstance(part, list | tuple):
                parts.append(state_array({key: part}, key, owner, dtype, ndim=1))
            else:
                raise corrupt(owner, f"{key!r}[{j}] is {part!r}, expected a list")
        return parts
    flat = state_array(state, key, owner, dtype, ndim=1)
    offsets = state_array(state, key + "_offsets", owner, np.int64, shape=(count + 1,))
    if offsets[0] != 0 or offsets[-1] != len(flat) or np.any(np.diff(offsets) < 0):
        raise corrupt(owner, f"{key + '_offsets'!r} do not cut the {len(flat)} values of {key!r}")
    return [flat[offsets[j] : offsets[j + 1]] for j in range(count)]


def state_int(
    state: dict, key: str, owner: str, low: int = 0, high: int | None = None, optional: bool = False
):
    """``state[key]`` as an int in ``low..high`` (``None`` allowed when ``optional``)."""
    value = state.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise corrupt(owner, f"{key!r} = {value!r}, expected an integer")
    if value < low or (high is not None and value > high):
        raise corrupt(owner, f"{key!r} = {value}, expected {low}..{high if high is not None else 'inf'}")
    return int(value)


def check_orthonormal(basis: np.ndarray, owner: str, key: str = "basis") -> None:
    """Refuses a ``(d, k)`` basis whose columns are not orthonormal (to float32 precision). The Gram
    matrix in float32 (its rounding, ~``d`` x 6e-8, stays far below the 1e-4 tolerance): half the float64
    product's time (384 x 384: 0.7 vs 1.4 ms), which every load of a PCA codec pays."""
    b = np.asarray(basis, dtype=np.float32)
    gram = b.T @ b
    if not np.allclose(gram, np.eye(basis.shape[1], dtype=np.float32), atol=1e-4):
        raise corrupt(owner, f"{key!r} does not have orthonormal columns")


def state_float(state: dict, key: str, owner: str, low: float = -np.inf) -> float:
    """``state[key]`` as a finite float of at least ``low``."""
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise corrupt(owner, f"{key!r} = {value!r}, expected a number")
    if not np.isfinite(value) or value < low:
        raise corrupt(owner, f"{key!r} = {value!r}, expected a finite number >= {low}")
    return float(value)


def state_str(state: dict, key: str, owner: str, choices: tuple[str, ...], default: Any = None) -> str:
    """``state[key]`` as one of ``choices`` (``default`` when missing, if given)."""
    value = state.get(key, default)
    if value not in choices:
        raise corrupt(owner, f"{key!r} = {value!r}, expected one of {choices}")
    return value
