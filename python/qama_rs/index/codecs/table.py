"""Codes scored through per-query byte tables (float queries, asymmetric): the engine's ``TableCodec``.

* :class:`PerDimCodec` — protocol (A): an object with ``fit``, ``encode -> uint8 (n, dims)``,
  ``reconstruction_values``, ``prepare_query`` (optional ``row_scale``): one code per dimension, packed
  ``bits`` ∈ {1, 2, 4, 8} a code; a query ``q'`` scores ``Σ_j q'_j · recon[j, c_j]``. After training, a
  codec whose query map is a shift (``prepare_query(x) == x + b``) and whose codes are thresholds of the
  raw values (every training-free quantizer of :mod:`qama_rs.quantizers`) is kept as tables — thresholds,
  reconstruction table, shift — so it saves, loads and encodes in Rust; others are kept as the live
  object (saving needs ``to_state()`` / ``from_state()``).
* :class:`LutCodec` — protocol (B): an object with ``fit``, ``encode -> uint8 (n, m)``, ``query_luts ->
  float32 (nq, m, 256)`` (optional ``row_scale``): product codes, PQ, bit-allocated PCA codes.

Codes of at most 4 bits (and byte-LUT codecs whose tables are nibble-separable: ``nibble_tables``) are
stored in the 32-row block layout the quantized kernel scans (AVX2 ``vpshufb``, exact re-scoring); the
rest row-major, scanned with the float tables. Both give the same top-k.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qama_rs import _core
from qama_rs.engine.quantizer import Quantizer
from qama_rs.errors import QamaError, QamaTypeError
from qama_rs.index.codecs.base import Codec, join_state, split_state

__all__ = ["LutCodec", "PerDimCodec", "recon_table"]

_BITS_FOR_LEVELS = ((2, 1), (4, 2), (16, 4), (256, 8))


def affine_of(recon: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(base, step)`` float32 with ``recon[:, v] == base + step * v`` exactly in float32 (the product
    rounded, then the sum) for all 256 values of a byte code, or None. Such codes are decoded and scored as
    float rows (``_core.Affine8Codec``: the products the byte tables hold, summed as ``Flat`` sums them),
    a scan without a 256-entry table per dimension and query. The step is recovered from the ends (within
    two float32 steps) and checked at every value."""
    if recon.ndim != 2 or recon.shape[1] != 256 or not recon.shape[0]:
        return None
    base = np.ascontiguousarray(recon[:, 0], dtype=np.float32)
    codes = np.arange(256, dtype=np.float32)
    guess = ((recon[:, 255].astype(np.float64) - base) / 255.0).astype(np.float32)
    candidates, up, down = [guess], guess, guess
    for _ in range(2):
        up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down, np.float32(-np.inf))
        candidates += [up, down]
    step = np.full_like(guess, np.nan)
    for c in candidates:
        fits = np.isnan(step) & (base[:, None] + c[:, None] * codes[None, :] == recon).all(axis=1)
        step[fits] = c[fits]
    return None if np.isnan(step).any() else (base, step)


def recon_table(values: Any) -> tuple[np.ndarray, int, int]:
    """``(table, bits, levels)`` from reconstruction values: a ``(dims, levels)`` float array, or one 1-D
    array per dimension (dimensions may have fewer levels). ``table`` is float32 ``(dims, 2^bits)``,
    zero-padded past each dimension's levels; ``bits`` the smallest of 1, 2, 4, 8 that holds them."""
    if isinstance(values, np.ndarray) and values.ndim == 2:
        rows: Sequence[Any] = list(values)
    elif isinstance(values, np.ndarray):
        raise QamaError(f"recon must be 2-D (dims, levels) or a list of 1-D arrays, got shape {values.shape}")
    elif isinstance(values, Sequence) and not isinstance(values, str | bytes):
        rows = values
    else:
        raise QamaTypeError(f"recon must be an array or a list of arrays, got {type(values).__name__}")
    if len(rows) == 0:
        raise QamaError("recon is empty; it needs one row per dimension")
    arrays = []
    for j, row in enumerate(rows):
        row = np.asarray(row)
        if row.dtype.kind not in "fiu" or row.ndim != 1 or row.size == 0:
            raise QamaError(f"recon[{j}] must be a non-empty 1-D array of real numbers, got {row.dtype} {row.shape}")
        arrays.append(row.astype(np.float32))
    levels = max(len(a) for a in arrays)
    bits = next((b for cap, b in _BITS_FOR_LEVELS if levels <= cap), None)
    if bits is None:
        raise QamaError(f"recon has {levels} levels per dimension; at most 256 are supported")
    table = np.zeros((len(arrays), 1 << bits), dtype=np.float32)
    for j, a in enumerate(arrays):
        table[j, : len(a)] = a
    if not np.isfinite(table).all():
        j, c = np.argwhere(~np.isfinite(table))[0]
        raise QamaError(f"recon[{j}][{c}] is not finite")
    return table, bits, levels


def _row_scale(impl: Any, x: np.ndarray, label: str) -> np.ndarray:
    return _checked_scale(impl.row_scale(x), len(x), label)


def _checked_scale(scale: Any, n: int, label: str) -> np.ndarray:
    scale = np.ascontiguousarray(scale, dtype=np.float32)
    if scale.shape != (n,):
        raise QamaError(f"codec {label!r}: row_scale returned shape {scale.shape}, expected ({n},)")
    return scale


class _ObjectCodec(Codec):
    """A table codec driving a codec object ``impl`` (its ``fit``, ``encode``, optional ``row_scale``)."""

    kind = "table"
    residual = True

    def __init__(self, label: str, impl: Any) -> None:
        super().__init__(label)
        self._set_impl(impl)

    def _set_impl(self, impl: Any) -> None:
        self.impl = impl
        self.scaled = hasattr(type(impl), "row_scale")

    def _restore_impl(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """The codec object from its saved ``to_state()`` (meta ``"object"`` and the ``object.`` arrays)."""
        if not hasattr(type(self.impl), "from_state"):
            raise QamaError(f"codec {self.label!r}: {type(self.impl).__name__} has no from_state() to load with")
        self._set_impl(type(self.impl).from_state(join_state(meta["object"], arrays, "object.")))


class PerDimCodec(_ObjectCodec):
    """Protocol (A), see the module docs."""

    def __init__(self, label: str, impl: Any) -> None:
        super().__init__(label, impl)
        self.encoder: Quantizer | None = None  # tables mode: Rust encoding of the codes
        self.shift: np.ndarray | None = None  # tables mode: prepare_query(x) = x + shift
        self.recon: np.ndarray | None = None
        self.bits = 0
        self.levels = 0

    @property
    def block_rows(self) -> int:  # type: ignore[override]
        return 32 if self.bits <= 4 else 1

    @property
    def row_units(self) -> int:
        return -(-self.recon.shape[0] * self.bits // 8)

    @property
    def code_dims(self) -> int:
        return int(self.recon.shape[0])

    def _train(self, x):
        self.impl.fit(x)
        self._set_recon(self.impl.reconstruction_values)
        self._capture_tables(x)

    def _set_recon(self, values: Any) -> None:
        self.recon, self.bits, self.levels = recon_table(values)
        self.recon.flags.writeable = False

    def _capture_tables(self, x: np.ndarray) -> None:
        """Tables mode when the codec is thresholds on raw values and a shifted query (checked exactly)."""
        impl = self.impl
        if self.scaled or not all(hasattr(type(impl), a) for a in ("thresholds", "levels", "to_code_space")):
            return
        try:
            d = x.shape[1]
            shift = np.asarray(impl.prepare_query(np.zeros((1, d), dtype=np.float32)), dtype=np.float32)[0]
            probe = x[: min(len(x), 64)]
            if shift.shape != (d,) or not np.array_equal(impl.prepare_query(probe), probe + shift):
                return
            if not np.array_equal(impl.to_code_space(probe), probe):
                return
            encoder = Quantizer(np.concatenate(impl.thresholds).astype(np.float32), np.asarray(impl.levels))
            if not np.array_equal(encoder.quantize(probe), impl.encode(probe)):
                return
        except (ValueError, TypeError, AttributeError):
            return
        self.encoder, self.shift = encoder, shift

    def encode(self, x):
        codes = self.encoder.quantize(x) if self.encoder is not None else self.impl.encode(x)
        codes = np.ascontiguousarray(codes)
        if codes.dtype != np.uint8 or codes.shape != (len(x), self.code_dims):
            raise QamaError(
                f"codec {self.label!r} encoded to {codes.dtype} {codes.shape}, expected uint8 (n, {self.code_dims})"
            )
        scale = _row_scale(self.impl, x, self.label) if self.scaled else None
        return _core.pack_codes(codes, self.bits), scale

    def pack(self, codes: np.ndarray) -> np.ndarray:
        """Already encoded codes (one per dimension, or packed) as stored rows."""
        if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8 or codes.ndim != 2:
            raise QamaTypeError(f"codes must be a uint8 array (n, {self.code_dims}) or packed (n, {self.row_units})")
        if codes.shape[1] == self.code_dims and not (self.bits == 8 and self.code_dims == self.row_units):
            if codes.size and int(codes.max()) >= self.levels:
                raise QamaError(f"codes hold a value not below the {self.levels} levels of {self.label!r}")
            codes = _core.pack_codes(np.ascontiguousarray(codes), self.bits)
        if codes.shape[1] != self.row_units:
            raise QamaError(
                f"codes must have {self.code_dims} (unpacked) or {self.row_units} (packed) columns, got {codes.shape[1]}"
            )
        return np.ascontiguousarray(codes)

    def _engine(self, dims):
        affine = None if self.scaled else affine_of(self.recon)
        if affine is not None:  # byte codes decoded and scored as float rows: no byte tables
            return _core.Affine8Codec(*affine)
        return _core.TableCodec.recon(self.recon, "blocks" if self.block_rows > 1 else "rows")

    def queries(self, q, dims=None):
        if self.shift is not None:
            prepared = np.ascontiguousarray(q + self.shift, dtype=np.float32)
        else:
            prepared = np.ascontiguousarray(self.impl.prepare_query(q), dtype=np.float32)
            if prepared.shape != (len(q), self.code_dims):
                raise QamaError(
                    f"codec {self.label!r}: prepare_query gave {prepared.shape}, expected ({len(q)}, {self.code_dims})"
                )
        if dims is not None and dims < self.code_dims:
            prepared[:, dims:] = 0.0
        return prepared

    def prefix_dims(self):
        return self.code_dims if self.code_dims == self.dims and self.shift is not None else None

    def state(self):
        meta: dict[str, Any] = {"bits": self.bits, "levels": self.levels, "dims": self.dims}
        arrays = {"recon": self.recon}
        if self.encoder is not None:
            meta["mode"] = "tables"
            meta["encoder"] = self.encoder.to_dict()
            arrays["shift"] = self.shift
        elif hasattr(type(self.impl), "to_state"):
            meta["mode"] = "object"
            meta["object"], objs = split_state(self.impl.to_state(), "object.")
            arrays.update(objs)
        else:
            raise QamaError(
                f"codec {self.label!r} ({type(self.impl).__name__}) cannot be saved: it is not a threshold "
                "codec with a shifted query, and has no to_state()/from_state()"
            )
        return meta, arrays

    def restore(self, meta, arrays):
        self.bits, self.levels, self.dims = int(meta["bits"]), int(meta["levels"]), int(meta["dims"])
        recon = np.array(arrays["recon"], dtype=np.float32)
        if recon.ndim != 2 or recon.shape[1] != 1 << self.bits:
            raise QamaError(f"recon section has shape {recon.shape}, expected (dims, {1 << self.bits})")
        recon.flags.writeable = False
        self.recon = recon
        if meta["mode"] == "tables":
            self.encoder = Quantizer.from_dict(meta["encoder"])
            self.shift = np.array(arrays["shift"], dtype=np.float32)
            self.scaled = False
        else:
            self._restore_impl(meta, arrays)
        self._engines = {}
        self.trained = True


class LutCodec(_ObjectCodec):
    """Protocol (B), see the module docs: ``score_i = row_scale_i * Σ_b lut[b, code_ib]``."""

    def __init__(self, label: str, impl: Any) -> None:
        super().__init__(label, impl)
        self.m: int | None = None

    @property
    def block_rows(self) -> int:  # type: ignore[override]
        return 32 if getattr(self.impl, "nibble_tables", False) else 1

    @property
    def row_units(self) -> int:
        return int(self.m)

    def _train(self, x):
        self.impl.fit(x)
        m = getattr(self.impl, "m", None)
        self.m = int(m if m is not None else np.shape(self.impl.encode(x[:1]))[1])

    def encode(self, x):
        if self.scaled and hasattr(self.impl, "encode_with_scale"):  # one pass: codes and factors together
            codes, scale = self.impl.encode_with_scale(x)
            scale = _checked_scale(scale, len(x), self.label)
        else:
            codes = self.impl.encode(x)
            scale = _row_scale(self.impl, x, self.label) if self.scaled else None
        codes = np.ascontiguousarray(codes)
        if codes.dtype != np.uint8 or codes.shape != (len(x), self.m):
            raise QamaError(f"codec {self.label!r} encoded to {codes.dtype} {codes.shape}, expected uint8 (n, {self.m})")
        return codes, scale

    @property
    def _projected(self) -> bool:
        """Whether the engine builds the tables from float queries (the codec has ``projection()``)."""
        return hasattr(type(self.impl), "projection")

    def _engine(self, dims):
        layout = "blocks" if self.block_rows > 1 else "rows"
        if self._projected:
            return _core.TableCodec.projected(*self.impl.projection(), layout)
        return _core.TableCodec.given(self.m, layout)

    def queries(self, q, dims=None):
        if dims is not None:
            raise QamaError(f"dims: codec {self.label!r} has no Matryoshka prefix search")
        if self._projected:
            return q
        luts = np.ascontiguousarray(self.impl.query_luts(q), dtype=np.float32)
        if luts.shape != (len(q), self.m, 256):
            raise QamaError(f"codec {self.label!r}: query_luts gave {luts.shape}, expected ({len(q)}, {self.m}, 256)")
        return luts

    def state(self):
        if not hasattr(type(self.impl), "to_state"):
            raise QamaError(
                f"codec {self.label!r} ({type(self.impl).__name__}) cannot be saved: it has no to_state()/from_state()"
            )
        meta, arrays = split_state(self.impl.to_state(), "object.")
        return {"m": self.m, "dims": self.dims, "object": meta}, arrays

    def restore(self, meta, arrays):
        self._restore_impl(meta, arrays)
        self.m, self.dims = int(meta["m"]), int(meta["dims"])
        self._engines = {}
        self.trained = True
