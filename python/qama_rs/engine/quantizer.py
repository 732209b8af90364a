"""Threshold quantizers: per-dimension ascending thresholds turned into packed thermometer codes.

A value's code is the number of its dimension's thresholds it strictly exceeds, so a dimension
with ``L`` levels has ``L - 1`` thresholds and ``L - 1`` code bits; Hamming distance between codes is
the L1 distance between levels. Named schemes (per input dimension):

* ``"1bit"`` 2 levels, ``"1.5bit"`` 3 levels, ``"2bit"`` 4 levels;
* ``"hybrid"`` (the QAMA paper's mix): of ``D`` input dimensions, the first quarter 2-bit, the
  second 1.5-bit, the third 1-bit, and the last quarter "0.5-bit": reduced to ``D / 8`` values, then
  1-bit. 384 input dimensions give 96*3 + 96*2 + 96 + 48 = 624 bits (78 bytes).

Dimensions here (``dims``, ``levels``, ``prefix_bits``) count *quantized values*, the units of the
code stream; they equal input dimensions except in the pair-reduced tail of a training-free hybrid
quantizer, where two input dimensions make one value. ``dims=m`` everywhere means the Matryoshka
prefix of the first ``m`` quantized values, i.e. the first ``prefix_bits(m)`` bits of the code.

Training-free hybrid (``Quantizer.fit(x, "hybrid")``) reduces the last quarter by averaging
consecutive pairs of input dimensions, at fit and encode time alike (recorded as
``pair_reduce_start``). A trained QAMA head does its own reduction (a learned layer) and hands over
already-reduced values with explicit ``levels`` (``qama_rs.qama.thresholds.scheme_levels`` gives the
same level lists), so no reduction is applied.
"""

from __future__ import annotations

import json
import operator
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qama_rs import _core
from qama_rs.engine import args
from qama_rs.engine.files import atomic_write
from qama_rs.errors import QamaError, QamaTypeError, QamaWarning

FORMAT = "qama-rs/quantizer"
FORMAT_VERSION = 1
MAX_LEVELS = 256

_UNIFORM_SCHEMES = {"1bit": 2, "1.5bit": 3, "2bit": 4}
SCHEMES = (*_UNIFORM_SCHEMES, "hybrid")


def _scheme_levels(scheme: str, input_dims: int) -> np.ndarray:
    """Level count of each quantized value of a named scheme over ``input_dims`` input dimensions.

    For ``"hybrid"`` the result has ``7 * input_dims / 8`` entries (``input_dims`` must be a multiple
    of 8): ``[4] * D/4 + [3] * D/4 + [2] * D/4 + [2] * D/8``; the last ``D/8`` values are the reduced
    "0.5-bit" quarter.
    """
    input_dims = operator.index(input_dims)
    if input_dims < 1:
        raise QamaError(f"input_dims = {input_dims}; must be positive")
    if scheme in _UNIFORM_SCHEMES:
        return np.full(input_dims, _UNIFORM_SCHEMES[scheme], dtype=np.uint16)
    if scheme == "hybrid":
        if input_dims % 8:
            raise QamaError(f"the hybrid scheme needs input dims divisible by 8, got {input_dims}")
        quarter = input_dims // 4
        return np.array([4] * quarter + [3] * quarter + [2] * quarter + [2] * (quarter // 2), dtype=np.uint16)
    raise QamaError(f"scheme = {scheme!r}; known schemes: {', '.join(SCHEMES)}")


def float_rows(x: Any, name: str = "x") -> np.ndarray:
    """``x`` as a C-contiguous finite ``float32 (n, d)`` array (thresholds take any finite magnitude)."""
    return args.float_rows(x, name, bounded=False)


def _check_dims_arg(dims: Any, total: int) -> int:
    if dims is None:
        return total
    try:
        m = operator.index(dims)
    except TypeError:
        raise QamaTypeError(f"dims must be an int, got {type(dims).__name__}") from None
    if not 1 <= m <= total:
        raise QamaError(f"dims = {m}; must be in 1..={total} (quantized values of this quantizer)")
    return m


def _engine_input(values: np.ndarray, x: Any) -> np.ndarray:
    """``values`` marked read-only when it is a temporary of ours (a conversion or reduction of
    ``x``), so the engine reads it in place; a view of the caller's array stays writeable and the
    binding copies it (another thread may write the caller's array during the call)."""
    if isinstance(x, np.ndarray) and np.may_share_memory(values, x):
        return values
    values.flags.writeable = False
    return values


def _readonly(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


class Quantizer:
    """Per-dimension levels and ascending thresholds, plus how inputs become quantized values.

    Build one with :meth:`fit` (training-free, per-dimension quantiles) or from explicit thresholds:

    * ``Quantizer(thresholds_2d)`` with shape ``(d, L - 1)``: ``d`` dimensions of ``L`` levels; with
      per-dimension ``levels`` as well, row ``j`` holds ``levels[j] - 1`` thresholds then ``+inf``
      padding (the layout of :mod:`qama_rs.qama.thresholds`);
    * ``Quantizer(flat, levels)`` with ``levels`` an int or a per-dimension sequence and ``flat`` the
      thresholds of all dimensions concatenated in order (``sum(levels - 1)`` values);
    * ``Quantizer([t_0, t_1, ...])`` with one 1-D sequence per dimension (``len(t_j) + 1`` levels).

    ``pair_reduce_start=s`` makes input columns ``s, s+1, ...`` be averaged in consecutive pairs
    into quantized values ``s, s+1, ...`` (training-free hybrid); by default inputs are quantized
    as they are.
    """

    def __init__(
        self,
        thresholds: Any,
        levels: int | Sequence[int] | np.ndarray | None = None,
        *,
        pair_reduce_start: int | None = None,
        scheme: str | None = None,
    ) -> None:
        flat, level_counts = _normalize_thresholds(thresholds, levels)
        self._levels = level_counts
        self._thresholds = flat
        self._offsets = np.concatenate([[0], np.cumsum(level_counts.astype(np.int64) - 1)])
        dims = len(level_counts)
        if pair_reduce_start is not None:
            pair_reduce_start = operator.index(pair_reduce_start)
            if not 0 <= pair_reduce_start < dims:
                raise QamaError(f"pair_reduce_start = {pair_reduce_start}; must be in 0..{dims - 1}")
        self._pair_reduce_start = pair_reduce_start
        if scheme is not None and scheme not in SCHEMES:
            raise QamaError(f"scheme = {scheme!r}; known schemes: {', '.join(SCHEMES)}")
        self._scheme = scheme
        # The engine's checked thresholds per prefix length, made on first use (see ``_engine``).
        self._engines: dict[int, Any] = {}

    # ----------------------------------------------------------------------------------- building
    @classmethod
    def fit(
        cls,
        x: Any,
        scheme: str | None = None,
        *,
        levels: int | Sequence[int] | None = None,
    ) -> Quantizer:
        """Training-free quantizer: per-dimension quantile thresholds of ``x`` ``(n, d)``.

        A dimension with ``L`` levels gets the quantiles ``k / L`` for ``k = 1 .. L - 1`` (NumPy's
        linear interpolation), so each level holds about ``1 / L`` of the fitted values. Give a
        ``scheme`` (default ``"1bit"``: per-dimension medians) or explicit ``levels`` (an int or a
        per-dimension sequence), not both. ``"hybrid"`` averages the last quarter in pairs first.

        Needs at least 2 rows; a dimension whose fitted values are all equal gets a
        :class:`~qama_rs.errors.QamaWarning` (its thresholds coincide, so its code is the same for every
        document). The quantiles are taken a block of dimensions at a time (float64 copies of a few
        columns, never of all of ``x``), each exactly the whole-array quantile of its column.
        """
        if scheme is not None and levels is not None:
            raise QamaError("give either scheme or levels, not both")
        x = float_rows(x)
        if len(x) == 0:
            raise QamaError("x has no rows to fit thresholds on")
        if len(x) < 2:
            raise QamaError(
                "x has 1 row; fitting quantile thresholds needs at least 2 documents "
                "(one row gives no spread to place thresholds in)"
            )
        input_dims = x.shape[1]
        pair_reduce_start = None
        if levels is not None:
            level_counts = _level_array(levels, input_dims)
            scheme = None
        else:
            scheme = "1bit" if scheme is None else scheme
            level_counts = _scheme_levels(scheme, input_dims)
            if scheme == "hybrid":
                pair_reduce_start = 3 * input_dims // 4
        thresholds = np.empty(int(np.sum(level_counts.astype(np.int64) - 1)), dtype=np.float32)
        offsets = np.concatenate([[0], np.cumsum(level_counts.astype(np.int64) - 1)])
        constant = np.zeros(len(level_counts), dtype=bool)
        width = max(1, _FIT_BLOCK_BYTES // (8 * len(x)))
        for count in np.unique(level_counts):
            dims_with = np.flatnonzero(level_counts == count)
            quantiles = np.arange(1, count) / count
            for start in range(0, len(dims_with), width):
                dims = dims_with[start : start + width]
                values = _fit_values(x, dims, pair_reduce_start)
                constant[dims] = values.min(axis=0) == values.max(axis=0)
                # Column by column the quantile of the whole matrix (no reduction across columns).
                per_dim = np.quantile(values, quantiles, axis=0, overwrite_input=True).T
                for row, j in zip(per_dim, dims, strict=True):
                    thresholds[offsets[j] : offsets[j + 1]] = row
        if constant.any():
            dims = np.flatnonzero(constant)
            shown = ", ".join(map(str, dims[:8].tolist())) + (", ..." if len(dims) > 8 else "")
            many = len(dims) != 1
            warnings.warn(
                f"Quantizer.fit: {len(dims)} dimension{'s' if many else ''} of x ({shown}) "
                f"{'have' if many else 'has'} zero spread (every fitted value equal): "
                f"{'their codes carry' if many else 'its code carries'} no information; "
                "fit on more (and more varied) documents",
                QamaWarning,
                stacklevel=2,
            )
        return cls(thresholds, level_counts, pair_reduce_start=pair_reduce_start, scheme=scheme)

    # --------------------------------------------------------------------------------- properties
    @property
    def dims(self) -> int:
        """Quantized values per vector (the code's dimensions)."""
        return len(self._levels)

    @property
    def input_dims(self) -> int:
        """Columns an input row must have (``dims``, plus the second of each reduced pair)."""
        return self.input_dims_for(self.dims)

    @property
    def levels(self) -> np.ndarray:
        """Read-only ``uint16 (dims,)`` level count of each quantized value."""
        return _readonly(self._levels)

    @property
    def thresholds(self) -> np.ndarray:
        """Read-only ``float32`` thresholds of every dimension, concatenated in order."""
        return _readonly(self._thresholds)

    @property
    def scheme(self) -> str | None:
        """The named scheme this quantizer was fitted with, or None for explicit levels."""
        return self._scheme

    @property
    def pair_reduce_start(self) -> int | None:
        """First input column (and quantized value) of the pair-averaged tail, or None."""
        return self._pair_reduce_start

    @property
    def bits(self) -> int:
        """Bits of one code (the sum of ``levels - 1``)."""
        return int(self._offsets[-1])

    @property
    def words(self) -> int:
        """``uint64`` words of one stored code (``bits`` rounded up to 64; padding bits are zero)."""
        return -(-self.bits // 64)

    @property
    def bytes_per_vector(self) -> int:
        """Bytes of one code, ``ceil(bits / 8)`` (the index stores ``words * 8``)."""
        return -(-self.bits // 8)

    def thresholds_of(self, dim: int) -> np.ndarray:
        """Read-only thresholds of quantized value ``dim``."""
        return _readonly(self._thresholds[self._offsets[dim] : self._offsets[dim + 1]])

    def prefix_bits(self, dims: int) -> int:
        """Bits covered by the first ``dims`` quantized values (a Matryoshka prefix)."""
        return int(self._offsets[_check_dims_arg(dims, self.dims)])

    def input_dims_for(self, dims: int) -> int:
        """Input columns that produce the first ``dims`` quantized values."""
        m = _check_dims_arg(dims, self.dims)
        s = self._pair_reduce_start
        return m if s is None or m <= s else s + 2 * (m - s)

    # ---------------------------------------------------------------------------------- encoding
    def reduce(self, x: Any, dims: int | None = None) -> np.ndarray:
        """The ``float32 (n, dims)`` values that get quantized: ``x`` itself, or with the reduced
        tail averaged in pairs. ``x`` has ``input_dims`` columns or exactly the columns of the
        ``dims`` prefix (``input_dims_for(dims)``)."""
        m = _check_dims_arg(dims, self.dims)
        return self._reduce(self._checked(x, m), m)

    def _checked(self, x: Any, m: int) -> np.ndarray:
        x = float_rows(x)
        needed = self.input_dims_for(m)
        if x.shape[1] not in (self.input_dims, needed):
            wanted = f"{self.input_dims}" if needed == self.input_dims else f"{self.input_dims} or {needed}"
            raise QamaError(f"x has {x.shape[1]} columns; this quantizer takes {wanted} for dims={m}")
        return x

    def _reduce(self, x: np.ndarray, m: int) -> np.ndarray:
        s = self._pair_reduce_start
        if s is None or m <= s:
            return np.ascontiguousarray(x[:, :m])
        return _pair_reduce(x[:, : self.input_dims_for(m)], s, m)

    def _engine(self, m: int) -> Any:
        """``_core.Thresholds`` of the first ``m`` values, checked once and kept (encoding one query must
        not re-check every threshold)."""
        engine = self._engines.get(m)
        if engine is None:
            engine = self._engines[m] = _core.Thresholds(self._thresholds[: self._offsets[m]], self._levels[:m])
        return engine

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_engines": {}}  # engine objects are remade, not pickled

    def _blocks(self, x: Any, m: int, method: str) -> np.ndarray:
        """The engine's ``method`` (``encode`` / ``quantize``) over ``x`` a block of rows at a time: the
        engine copies a block of the caller's writeable array (another thread may write it during the
        call), never all of it, and a pair-reduced block is a temporary of one block."""
        x = self._checked(x, m)
        kernel = getattr(self._engine(m), method)
        step = max(1, _ENCODE_BLOCK_BYTES // max(1, 4 * x.shape[1]))
        if len(x) <= step:
            return kernel(_engine_input(self._reduce(x, m), x))
        parts = [kernel(_engine_input(self._reduce(x[i : i + step], m), x)) for i in range(0, len(x), step)]
        return np.concatenate(parts)

    def quantize(self, x: Any, dims: int | None = None) -> np.ndarray:
        """Levels ``uint8 (n, dims)`` of ``x`` (before thermometer expansion)."""
        return self._blocks(x, _check_dims_arg(dims, self.dims), "quantize")

    def encode(self, x: Any, dims: int | None = None) -> np.ndarray:
        """Packed thermometer codes ``uint64 (n, words)`` of float rows ``x``.

        With ``dims=m`` only the first ``m`` quantized values are encoded, giving
        ``ceil(prefix_bits(m) / 64)`` words: exactly the leading words of the full code (with the
        bits past the prefix zeroed). Non-finite input raises ``QamaError``.
        """
        return self._blocks(x, _check_dims_arg(dims, self.dims), "encode")

    # ------------------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (format tag and version included)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "scheme": self._scheme,
            "pair_reduce_start": self._pair_reduce_start,
            "levels": self._levels.tolist(),
            # float32 -> Python float is exact, and JSON round-trips doubles exactly.
            "thresholds": self._thresholds.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Quantizer:
        """Inverse of :meth:`to_dict`; a wrong format tag or version raises ``QamaError``."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise QamaError(f"not a qama-rs quantizer (expected format {FORMAT!r})")
        if data.get("version") != FORMAT_VERSION:
            raise QamaError(
                f"quantizer format version {data.get('version')!r} is not supported (this is {FORMAT_VERSION})"
            )
        try:
            return cls(
                np.asarray(data["thresholds"], dtype=np.float32),
                np.asarray(data["levels"]),
                pair_reduce_start=data.get("pair_reduce_start"),
                scheme=data.get("scheme"),
            )
        except KeyError as e:
            raise QamaError(f"quantizer description lacks {e}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the quantizer as JSON, atomically (an existing file survives a failed save)."""
        payload = json.dumps(self.to_dict()).encode()
        atomic_write(path, lambda f: f.write(payload))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Quantizer:
        """Reads a file written by :meth:`save`; anything else raises ``QamaError``."""
        raw = Path(path).read_bytes()
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise QamaError(f"{path}: not a qama-rs quantizer file ({e})") from None
        return cls.from_dict(data)

    # ---------------------------------------------------------------------------------- dunders
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantizer):
            return NotImplemented
        return (
            np.array_equal(self._levels, other._levels)
            and np.array_equal(self._thresholds, other._thresholds)
            and self._pair_reduce_start == other._pair_reduce_start
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-looking value type: equality, no hash

    def __repr__(self) -> str:
        scheme = self._scheme or "custom"
        reduce = "" if self._pair_reduce_start is None else f", pair_reduce_start={self._pair_reduce_start}"
        return f"Quantizer(scheme={scheme!r}, dims={self.dims}, bits={self.bits}{reduce})"


def encode(x: Any, quantizer: Quantizer, dims: int | None = None) -> np.ndarray:
    """``quantizer.encode(x, dims)``: packed ``uint64 (n, words)`` codes of float rows ``x``."""
    return quantizer.encode(x, dims)


def _pair_reduce(x: np.ndarray, start: int, dims: int) -> np.ndarray:
    """Keeps columns ``:start`` and averages the following columns in consecutive pairs, up to
    ``dims`` values in all, into one new float32 array. Fit (:func:`_fit_values`) computes the same
    float32 values column by column."""
    end = start + 2 * (dims - start)
    out = np.empty((len(x), dims), dtype=np.float32)
    out[:, :start] = x[:, :start]
    tail = out[:, start:]
    np.add(x[:, start:end:2], x[:, start + 1 : end : 2], out=tail)
    tail *= np.float32(0.5)
    return out


#: Bytes of float32 input :meth:`Quantizer.encode` / ``quantize`` hand the engine at a time.
_ENCODE_BLOCK_BYTES = 16 * 2**20
#: Bytes of the float64 column block :meth:`Quantizer.fit` takes quantiles of at a time.
_FIT_BLOCK_BYTES = 8 * 2**20


def _fit_values(x: np.ndarray, dims: np.ndarray, pair_reduce_start: int | None) -> np.ndarray:
    """Float64 ``(n, len(dims))``: the values quantized dimensions ``dims`` take (input columns, or a
    pair-averaged tail in float32 exactly as :func:`_pair_reduce` computes it), widened to float64."""
    s = pair_reduce_start
    if s is None or dims[-1] < s:
        return x[:, dims].astype(np.float64)
    first = np.where(dims < s, dims, s + 2 * (dims - s))
    values = x[:, first]
    pairs = dims >= s
    values[:, pairs] = (x[:, first[pairs]] + x[:, first[pairs] + 1]) * np.float32(0.5)
    return values.astype(np.float64)


def _level_array(levels: Any, dims: int | None) -> np.ndarray:
    """Validated ``uint16`` levels from an int (``dims`` copies) or a per-dimension sequence."""
    if isinstance(levels, (int, np.integer)):
        if dims is None:
            raise QamaError("an int levels needs the number of dimensions")
        levels = [int(levels)] * dims
    array = np.asarray(levels)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise QamaTypeError(
            f"levels must be an int or a 1-D sequence of ints, got {array.dtype} shape {array.shape}"
        )
    if len(array) == 0:
        raise QamaError("levels must name at least one dimension")
    if dims is not None and len(array) != dims:
        raise QamaError(f"levels names {len(array)} dimensions, expected {dims}")
    bad = np.flatnonzero((array < 2) | (array > MAX_LEVELS))
    if len(bad):
        j = int(bad[0])
        raise QamaError(f"levels[{j}] = {array[j]}; each dimension needs 2..={MAX_LEVELS} levels")
    return array.astype(np.uint16)


def _normalize_thresholds(thresholds: Any, levels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flat ``float32`` thresholds and ``uint16`` levels from the accepted constructor forms."""
    if not isinstance(thresholds, np.ndarray) and isinstance(thresholds, (list, tuple)) and thresholds:
        per_dim = [np.asarray(t) for t in thresholds]
        if all(t.ndim == 1 for t in per_dim) and levels is None:
            level_counts = _level_array([len(t) + 1 for t in per_dim], None)
            flat = np.concatenate([t.astype(np.float64) for t in per_dim])
            return _check_threshold_values(flat, level_counts), level_counts
    array = np.asarray(thresholds)
    if array.dtype.kind not in "fiu":
        raise QamaTypeError(f"thresholds must be numeric, got dtype {array.dtype}")
    if array.ndim == 2:
        dims, width = array.shape
        level_counts = _level_array(width + 1 if levels is None else levels, dims)
        if np.any(level_counts > width + 1):
            raise QamaError(f"thresholds has {width} columns, too few for {int(level_counts.max())} levels")
        # Rows of dimensions with fewer levels are padded with +inf (the head's layout).
        keep = np.arange(width)[None, :] < (level_counts.astype(np.int64) - 1)[:, None]
        if not np.all(np.isposinf(array[~keep])):
            raise QamaError("thresholds padding (columns past levels - 1 of a row) must be +inf")
        return _check_threshold_values(array[keep], level_counts), level_counts
    if array.ndim != 1:
        raise QamaError(f"thresholds must be 1-D (flat) or 2-D (dims, levels - 1), got shape {array.shape}")
    if levels is None:
        raise QamaError("flat thresholds need levels (an int or one per dimension)")
    if isinstance(levels, (int, np.integer)):
        per = int(levels) - 1
        if per < 1 or len(array) % per:
            raise QamaError(f"{len(array)} thresholds do not split into dimensions of {levels} levels")
        level_counts = _level_array(levels, len(array) // per)
    else:
        level_counts = _level_array(levels, None)
    expected = int(np.sum(level_counts.astype(np.int64) - 1))
    if len(array) != expected:
        raise QamaError(
            f"thresholds has {len(array)} values but levels needs {expected} (sum of levels - 1)"
        )
    return _check_threshold_values(array, level_counts), level_counts


def _check_threshold_values(flat: np.ndarray, level_counts: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(flat, dtype=np.float32)
    if not np.isfinite(values).all():
        raise QamaError(
            f"thresholds has a non-finite value at position {int(np.argmin(np.isfinite(values)))}"
        )
    offsets = np.concatenate([[0], np.cumsum(level_counts.astype(np.int64) - 1)])
    descending = np.flatnonzero(np.diff(values) < 0)
    # A drop between the last threshold of one dimension and the first of the next is allowed.
    boundaries = set((offsets[1:-1] - 1).tolist())
    for i in descending:
        if int(i) not in boundaries:
            j = int(np.searchsorted(offsets, i, side="right") - 1)
            raise QamaError(f"thresholds of dimension {j} are not ascending")
    return values
