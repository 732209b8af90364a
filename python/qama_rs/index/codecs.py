"""Codec adapters: one interface over every way the engine stores and scores documents.

Each adapter takes float vectors (after the spec's transforms), stores codes in :class:`Rows`
buffers (or memory-mapped file sections) and scores with the Rust kernels of ``qama_rs._core``:

* :class:`FlatCodec` — float32 (or float16-rounded) vectors, exact inner product (``float_rescore``
  over document blocks);
* :class:`ThermoCodec` — protocol (C), thermometer codes of a :class:`~qama_rs.engine.Quantizer`,
  symmetric Hamming (``search``); the score is ``-distance``;
* :class:`PerDimCodec` — protocol (A), one code per dimension and a reconstruction table, float query
  scored asymmetrically (``asym_search_blocked`` / ``asym_search`` / ``asym_rescore``), the same
  kernels and kernel choice as :class:`~qama_rs.engine.AsymmetricIndex`;
* :class:`LutCodec` — protocol (B), byte codes scored through per-query lookup tables
  (``lut_search`` / ``lut_rescore``, the kernels of :class:`~qama_rs.engine.asym.LutIndex`).

Every adapter returns ``(scores float32, rows int64)`` of shape ``(nq, min(k, n))``, higher scores
first, ties by lower row — one convention for all codecs.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from qama_rs import _core
from qama_rs.engine.asym import recon_table
from qama_rs.engine.quantizer import Quantizer
from qama_rs.index._errors import QamaError
from qama_rs.index.store import Rows

__all__ = ["Codec", "FlatCodec", "LutCodec", "PerDimCodec", "ThermoCodec"]

# Candidate entries per float_rescore call of a flat scan (bounds the (nq, block) id matrix).
_FLAT_BLOCK_ENTRIES = 1 << 22


def merge_topk(scores: list[np.ndarray], rows: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the best ``k`` of several partial top-k lists: score descending, ties by lower row."""
    s = np.concatenate(scores, axis=1)
    r = np.concatenate(rows, axis=1)
    order = np.lexsort((r, -s.astype(np.float64)), axis=1)[:, :k]
    return np.take_along_axis(s, order, axis=1), np.take_along_axis(r, order, axis=1)


class Codec:
    """Base adapter. Subclasses set ``kind`` and implement the storage and scoring hooks."""

    kind = "codec"
    #: True when the codec learns nothing from data (its ``train`` only records the width).
    training_free = False

    def __init__(self, label: str) -> None:
        self.label = label
        self.dims: int | None = None
        self.trained = False

    # --------------------------------------------------------------------------------- training
    def train(self, x: np.ndarray) -> None:
        self.dims = x.shape[1]
        self._train(x)
        self.trained = True

    def _train(self, x: np.ndarray) -> None:  # pragma: no cover - overridden
        pass

    # ---------------------------------------------------------------------------------- storage
    @property
    def ntotal(self) -> int:
        raise NotImplementedError

    def add(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def keep(self, mask: np.ndarray) -> None:
        raise NotImplementedError

    @property
    def bytes_per_vector(self) -> int:
        raise NotImplementedError

    # ---------------------------------------------------------------------------------- scoring
    def search(self, q: np.ndarray, k: int, dims: int | None) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def rescore(self, q: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise QamaError(f"codec {self.label!r} cannot rescore candidates; use Flat or a per-dimension codec")

    def supports_prefix(self) -> bool:
        return False

    # ------------------------------------------------------------------------------ persistence
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(JSON-ready metadata, arrays)``: everything :meth:`restore` needs."""
        raise NotImplementedError

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


# ----------------------------------------------------------------------------------------- float


class FlatCodec(Codec):
    """Float vectors scored by exact inner product. ``half=True`` stores float16 (the file holds 2 bytes
    a value; in memory the rounded values are widened to float32 for the kernel)."""

    kind = "flat"
    training_free = True

    def __init__(self, label: str, half: bool = False) -> None:
        super().__init__(label)
        self.half = half
        self._vectors = Rows(np.float32, (0,))

    def _train(self, x: np.ndarray) -> None:
        self._vectors = Rows(np.float32, (x.shape[1],))

    @property
    def ntotal(self) -> int:
        return self._vectors.n

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors.view

    def add(self, x: np.ndarray) -> None:
        self._vectors.append(x.astype(np.float16).astype(np.float32) if self.half else x)

    def keep(self, mask: np.ndarray) -> None:
        self._vectors.keep(mask)

    @property
    def bytes_per_vector(self) -> int:
        return self.dims * (2 if self.half else 4)

    def supports_prefix(self) -> bool:
        return True

    def search(self, q, k, dims):
        if dims is not None and dims < self.dims:
            q = q.copy()
            q[:, dims:] = 0.0
        n, nq = self.ntotal, len(q)
        block = max(1, _FLAT_BLOCK_ENTRIES // max(nq, 1))
        kk = min(k, n)
        parts_s, parts_r = [], []
        for start in range(0, n, block):
            stop = min(n, start + block)
            rows = np.ascontiguousarray(
                np.broadcast_to(np.arange(start, stop, dtype=np.int64), (nq, stop - start))
            )
            s, r = _core.float_rescore(q, self.vectors, rows, min(kk, stop - start))
            parts_s.append(s)
            parts_r.append(r)
        if len(parts_s) == 1:
            return parts_s[0], parts_r[0]
        return merge_topk(parts_s, parts_r, kk)

    def rescore(self, q, rows, k):
        return _core.float_rescore(q, self.vectors, np.ascontiguousarray(rows, dtype=np.int64), k)

    def state(self):
        data = self.vectors.astype(np.float16) if self.half else self.vectors
        return {"dims": self.dims, "half": self.half}, {"vectors": data}

    def restore(self, meta, arrays):
        self.dims = int(meta["dims"])
        self.half = bool(meta["half"])
        self._vectors = Rows(np.float32, (self.dims,))
        vectors = arrays["vectors"]
        if self.half:
            # float16 cannot feed the float32 kernel: widen once (the one codec a mapped load copies).
            self._vectors.append(vectors.astype(np.float32))
        else:
            self._vectors.attach(vectors)
        self.trained = True


# ----------------------------------------------------------------------------------- thermometer


class ThermoCodec(Codec):
    """Protocol (C): thermometer codes of a :class:`Quantizer`, searched by symmetric Hamming distance.

    ``scheme``: ``"1bit"``, ``"1.5bit"``, ``"2bit"``, ``"hybrid"`` (per-dimension quantiles of the training
    vectors) or ``"sign"`` (1 bit, threshold 0, nothing to learn). ``quantizer``: a ready quantizer (a QAMA
    head's learned thresholds) used as given.
    """

    kind = "thermo"

    def __init__(self, label: str, scheme: str, quantizer: Quantizer | None = None) -> None:
        super().__init__(label)
        self.scheme = scheme
        self.quantizer = quantizer
        self.training_free = scheme == "sign" or quantizer is not None
        self._codes = Rows(np.uint64, (0,))

    def _train(self, x: np.ndarray) -> None:
        if self.quantizer is None:
            if self.scheme == "sign":
                self.quantizer = Quantizer(np.zeros(x.shape[1], dtype=np.float32), 2)
            else:
                self.quantizer = Quantizer.fit(x, self.scheme)
        if self.quantizer.input_dims != x.shape[1]:
            raise QamaError(
                f"{self.label}: the quantizer takes {self.quantizer.input_dims} columns, the vectors have {x.shape[1]}"
            )
        self._codes = Rows(np.uint64, (self.quantizer.words,))

    @property
    def ntotal(self) -> int:
        return self._codes.n

    @property
    def codes(self) -> np.ndarray:
        return self._codes.view

    def add(self, x):
        self._codes.append(self.quantizer.encode(x))

    def add_codes(self, codes: np.ndarray) -> None:
        words = self.quantizer.words
        if (
            not isinstance(codes, np.ndarray)
            or codes.dtype != np.uint64
            or codes.ndim != 2
            or codes.shape[1] != words
        ):
            raise QamaError(f"codes must be a uint64 array of shape (n, {words}) for {self.label!r}")
        self._codes.append(codes)

    def keep(self, mask):
        self._codes.keep(mask)

    @property
    def bytes_per_vector(self) -> int:
        # What is stored: whole uint64 words (padding bits included).
        return self.quantizer.words * 8

    def supports_prefix(self) -> bool:
        return True

    def encode_queries(self, q: np.ndarray, dims: int | None) -> tuple[np.ndarray, int]:
        m = self.quantizer.dims if dims is None else dims
        codes = self.quantizer.encode(q, m)
        if codes.shape[1] < self.quantizer.words:  # a prefix: missing words count as zero bits
            full = np.zeros((len(codes), self.quantizer.words), dtype=np.uint64)
            full[:, : codes.shape[1]] = codes
            codes = full
        return codes, self.quantizer.prefix_bits(m)

    def search(self, q, k, dims):
        qcodes, nbits = self.encode_queries(q, dims)
        distances, rows = _core.search(qcodes, self.codes, min(k, self.ntotal), nbits)
        return -distances.astype(np.float32), rows

    def state(self):
        return {"quantizer": self.quantizer.to_dict(), "scheme": self.scheme}, {"codes": self.codes}

    def restore(self, meta, arrays):
        self.quantizer = Quantizer.from_dict(meta["quantizer"])
        self.scheme = meta["scheme"]
        self.dims = self.quantizer.input_dims
        codes = arrays["codes"]
        if codes.dtype != np.uint64 or codes.ndim != 2 or codes.shape[1] != self.quantizer.words:
            raise QamaError(
                f"codes section has {codes.dtype} {codes.shape}, expected (n, {self.quantizer.words}) uint64"
            )
        self._codes = Rows(np.uint64, (self.quantizer.words,))
        self._codes.attach(codes)
        self.trained = True


# --------------------------------------------------------------------------------- per-dimension


def _row_scale_supported() -> bool:
    """Whether this build's asymmetric kernels take a per-row scale (``row_scale=``)."""
    try:
        return "row_scale" in inspect.signature(_core.asym_search).parameters
    except (TypeError, ValueError):
        return "row_scale" in (_core.asym_search.__text_signature__ or "")


class PerDimCodec(Codec):
    """Protocol (A): ``impl`` (``fit``, ``encode -> uint8 (n, dims)``, ``reconstruction_values``,
    ``prepare_query``, optional ``row_scale``) stored as compact codes and scored asymmetrically.

    After training, a codec whose query map is a shift (``prepare_query(x) == x + b``) and whose codes are
    thresholds of the raw values (every training-free quantizer of :mod:`qama_rs.quantizers`) is kept as
    tables — thresholds, reconstruction table, shift — so it saves, loads and encodes in Rust. Others are
    kept as the live object (saving them needs ``to_state()`` / ``from_state()``).
    """

    kind = "perdim"

    def __init__(self, label: str, impl: Any) -> None:
        super().__init__(label)
        self.impl = impl
        self.encoder: Quantizer | None = None  # tables mode: Rust encoding of the codes
        self.shift: np.ndarray | None = None  # tables mode: prepare_query(x) = x + shift
        self.recon: np.ndarray | None = None
        self.bits = 0
        self.levels = 0
        self.has_row_scale = hasattr(type(impl), "row_scale")
        self._codes = Rows(np.uint8, (0,))
        self._scales = Rows(np.float32, ())
        # Block layout (32 rows transposed) for full scans, built on the first search, or mapped from a
        # file saved in that layout; the row layout is then rebuilt only if rows are needed.
        self._blocks: np.ndarray | None = None
        self._n = 0

    # --------------------------------------------------------------------------------- training
    def _train(self, x):
        self.impl.fit(x)
        self.recon, self.bits, self.levels = recon_table(self.impl.reconstruction_values)
        self.recon.flags.writeable = False
        self._capture_tables(x)
        self._codes = Rows(np.uint8, (self.row_bytes,))
        self._scales = Rows(np.float32, ())
        self._blocks, self._n = None, 0

    def _capture_tables(self, x: np.ndarray) -> None:
        """Tables mode when the codec is thresholds on raw values and a shifted query (checked exactly)."""
        impl = self.impl
        if self.has_row_scale or not all(
            hasattr(type(impl), a) for a in ("thresholds", "levels", "to_code_space")
        ):
            return
        try:
            d = x.shape[1]
            shift = np.asarray(impl.prepare_query(np.zeros((1, d), dtype=np.float32)), dtype=np.float32)[0]
            probe = x[: min(len(x), 64)]
            if shift.shape != (d,) or not np.array_equal(impl.prepare_query(probe), probe + shift):
                return
            if not np.array_equal(impl.to_code_space(probe), probe):
                return
            thresholds = impl.thresholds
            encoder = Quantizer(np.concatenate(thresholds).astype(np.float32), np.asarray(impl.levels))
            if not np.array_equal(encoder.quantize(probe), impl.encode(probe)):
                return
        except (ValueError, TypeError, AttributeError):
            return
        self.encoder, self.shift = encoder, shift

    @property
    def row_bytes(self) -> int:
        return -(-self.recon.shape[0] * self.bits // 8)

    @property
    def code_dims(self) -> int:
        return int(self.recon.shape[0])

    # ---------------------------------------------------------------------------------- storage
    @property
    def ntotal(self) -> int:
        return self._n

    @property
    def codes(self) -> np.ndarray:
        """Row-layout packed codes ``uint8 (n, row_bytes)`` (rebuilt from the blocks of a file saved in
        block layout the first time rows are needed: rescoring, add, remove)."""
        if self._codes.n != self._n:
            self._codes = Rows(np.uint8, (self.row_bytes,))
            self._codes.attach(_core.asym_from_blocks(self._blocks, self._n, self.row_bytes))
        return self._codes.view

    def _block_kernel(self) -> str | None:
        """The block kernel of a full scan (codes of at most 4 bits), or None for the row kernel."""
        if self.bits > 4:
            return None
        return "avx2" if "avx2" in _core.asym_kernels() else ("scalar" if self._blocks is not None else None)

    def encode(self, x: np.ndarray) -> np.ndarray:
        codes = self.encoder.quantize(x) if self.encoder is not None else self.impl.encode(x)
        codes = np.ascontiguousarray(codes)
        if codes.dtype != np.uint8 or codes.shape != (len(x), self.code_dims):
            raise QamaError(
                f"codec {self.label!r} encoded to {codes.dtype} {codes.shape}, expected uint8 (n, {self.code_dims})"
            )
        return codes

    def add(self, x):
        if not len(x):
            return
        if self.has_row_scale:
            scale = np.ascontiguousarray(self.impl.row_scale(x), dtype=np.float32)
            if scale.shape != (len(x),):
                raise QamaError(
                    f"codec {self.label!r}: row_scale returned shape {scale.shape}, expected ({len(x)},)"
                )
            self._scales.append(scale)
        self._append_packed(_core.asym_pack(self.encode(x), self.bits))

    def add_codes(self, codes: np.ndarray) -> None:
        if self.has_row_scale:
            raise QamaError(f"codec {self.label!r} needs per-vector scales; add float vectors instead")
        if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8 or codes.ndim != 2:
            raise QamaError(
                f"codes must be a uint8 array (n, {self.code_dims}) or packed (n, {self.row_bytes})"
            )
        if codes.shape[1] == self.code_dims and not (self.bits == 8 and self.code_dims == self.row_bytes):
            codes = _core.asym_pack(np.ascontiguousarray(codes), self.bits)
        if codes.shape[1] != self.row_bytes:
            raise QamaError(
                f"codes must have {self.code_dims} (unpacked) or {self.row_bytes} (packed) columns, got {codes.shape[1]}"
            )
        self._append_packed(np.ascontiguousarray(codes))

    def _append_packed(self, packed: np.ndarray) -> None:
        self.codes  # noqa: B018 - materializes the row layout of a block-layout file first
        self._codes.append(packed)
        self._n = self._codes.n
        self._blocks = None

    def keep(self, mask):
        self.codes  # noqa: B018 - as above
        self._codes.keep(mask)
        self._n = self._codes.n
        if self.has_row_scale:
            self._scales.keep(mask)
        self._blocks = None

    @property
    def bytes_per_vector(self) -> int:
        return self.row_bytes + (4 if self.has_row_scale else 0)

    # ---------------------------------------------------------------------------------- scoring
    def prepare(self, q: np.ndarray) -> np.ndarray:
        if self.shift is not None:
            return np.ascontiguousarray(q + self.shift, dtype=np.float32)
        prepared = np.ascontiguousarray(self.impl.prepare_query(q), dtype=np.float32)
        if prepared.shape != (len(q), self.code_dims):
            raise QamaError(
                f"codec {self.label!r}: prepare_query gave {prepared.shape}, expected ({len(q)}, {self.code_dims})"
            )
        return prepared

    def supports_prefix(self) -> bool:
        return self.code_dims == self.dims and self.shift is not None

    def _scale_args(self) -> dict[str, Any]:
        if not self.has_row_scale:
            return {}
        if not _row_scale_supported():
            raise QamaError(
                f"codec {self.label!r} has per-vector scales, and this build's asymmetric kernels take none "
                "(rebuild the extension with row_scale support)"
            )
        return {"row_scale": self._scales.view}

    def search(self, q, k, dims):
        prepared = self.prepare(q)
        if dims is not None and dims < self.code_dims:
            prepared[:, dims:] = 0.0
        n = self.ntotal
        extra = self._scale_args()
        kernel = self._block_kernel()
        if kernel is not None:
            if self._blocks is None:
                self._blocks = _core.asym_to_blocks(self.codes)
            return _core.asym_search_blocked(
                prepared, self.recon, self._blocks, n, min(k, n), kernel, **extra
            )
        return _core.asym_search(prepared, self.recon, self.codes, min(k, n), "interleaved", **extra)

    def rescore(self, q, rows, k):
        extra = self._scale_args()
        return _core.asym_rescore(
            self.prepare(q), self.recon, self.codes, np.ascontiguousarray(rows, dtype=np.int64), k, **extra
        )

    # ------------------------------------------------------------------------------ persistence
    def state(self):
        meta: dict[str, Any] = {"bits": self.bits, "levels": self.levels, "dims": self.dims, "n": self._n}
        arrays = {"recon": self.recon}
        if self.bits <= 4:
            # Saved in the block layout the full scan reads, so a mapped load scans the file in place.
            if self._blocks is None:
                self._blocks = _core.asym_to_blocks(self.codes)
            meta["layout"] = "blocks"
            arrays["blocks"] = self._blocks
        else:
            meta["layout"] = "rows"
            arrays["codes"] = self.codes
        if self.has_row_scale:
            arrays["row_scale"] = self._scales.view
        if self.encoder is not None:
            meta["mode"] = "tables"
            meta["encoder"] = self.encoder.to_dict()
            arrays["shift"] = self.shift
        elif hasattr(type(self.impl), "to_state"):
            meta["mode"] = "object"
            meta["object"] = self.impl.to_state()
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
            self.has_row_scale = False
        else:
            if not hasattr(type(self.impl), "from_state"):
                raise QamaError(
                    f"codec {self.label!r}: {type(self.impl).__name__} has no from_state() to load with"
                )
            self.impl = type(self.impl).from_state(meta["object"])
            self.has_row_scale = hasattr(type(self.impl), "row_scale")
        self._codes = Rows(np.uint8, (self.row_bytes,))
        self._blocks = None
        if meta["layout"] == "blocks":
            blocks, self._n = arrays["blocks"], int(meta["n"])
            if (
                blocks.dtype != np.uint8
                or blocks.ndim != 1
                or blocks.size != -(-self._n // 32) * 32 * self.row_bytes
            ):
                raise QamaError(
                    f"blocks section has {blocks.dtype} {blocks.shape}, expected {self._n} rows of {self.row_bytes} bytes"
                )
            self._blocks = blocks
        else:
            codes = arrays["codes"]
            if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != self.row_bytes:
                raise QamaError(
                    f"codes section has {codes.dtype} {codes.shape}, expected (n, {self.row_bytes}) uint8"
                )
            self._codes.attach(codes)
            self._n = len(codes)
        self._scales = Rows(np.float32, ())
        if self.has_row_scale:
            self._scales.attach(arrays["row_scale"])
        self.trained = True


# ------------------------------------------------------------------------------------ byte LUTs


class LutCodec(Codec):
    """Protocol (B): ``impl`` (``fit``, ``encode -> uint8 (n, m)``, ``query_luts -> float32 (nq, m, 256)``,
    optional ``row_scale``) scored by the engine's byte-LUT kernels (``lut_search`` / ``lut_rescore``):
    ``score_i = row_scale_i * sum_b lut[b, code_ib]``. Saving needs ``impl.to_state()`` /
    ``type(impl).from_state(state)`` (the queries' tables come from the codec). A codec whose
    ``nibble_tables`` is true (nibble-packed ``pca_nibble*``) is scanned in the block layout by the
    quantized kernel (``lut_search_blocked``, AVX2) when the CPU has it: the same results, faster."""

    kind = "lut"

    def __init__(self, label: str, impl: Any) -> None:
        super().__init__(label)
        self.impl = impl
        self.has_row_scale = hasattr(type(impl), "row_scale")
        self.m: int | None = None
        self._codes = Rows(np.uint8, (0,))
        self._scales = Rows(np.float32, ())
        # The block layout of the stored codes, rebuilt on the first search after a change.
        self._blocks: np.ndarray | None = None

    def _train(self, x):
        self.impl.fit(x)
        self.m = None
        self._blocks = None

    @property
    def ntotal(self) -> int:
        return self._codes.n

    @property
    def codes(self) -> np.ndarray:
        return self._codes.view

    def add(self, x):
        if not len(x):
            return
        codes = np.ascontiguousarray(self.impl.encode(x))
        if codes.dtype != np.uint8 or codes.ndim != 2 or len(codes) != len(x):
            raise QamaError(
                f"codec {self.label!r} encoded to {codes.dtype} {codes.shape}, expected uint8 (n, m)"
            )
        if self.m is None:
            self.m = codes.shape[1]
            self._codes = Rows(np.uint8, (self.m,))
        elif codes.shape[1] != self.m:
            raise QamaError(f"codec {self.label!r} encoded {codes.shape[1]} bytes a vector, earlier {self.m}")
        if self.has_row_scale:
            scale = np.ascontiguousarray(self.impl.row_scale(x), dtype=np.float32)
            if scale.shape != (len(x),):
                raise QamaError(
                    f"codec {self.label!r}: row_scale returned shape {scale.shape}, expected ({len(x)},)"
                )
            self._scales.append(scale)
        self._codes.append(codes)
        self._blocks = None

    def keep(self, mask):
        self._codes.keep(mask)
        if self.has_row_scale:
            self._scales.keep(mask)
        self._blocks = None

    @property
    def bytes_per_vector(self) -> int:
        return (self.m if self.m is not None else int(self.impl.bytes_per_vector)) + (
            4 if self.has_row_scale else 0
        )

    def luts(self, q: np.ndarray) -> np.ndarray:
        luts = np.ascontiguousarray(self.impl.query_luts(q), dtype=np.float32)
        if luts.shape != (len(q), self.m, 256):
            raise QamaError(
                f"codec {self.label!r}: query_luts gave {luts.shape}, expected ({len(q)}, {self.m}, 256)"
            )
        return luts

    def _scale(self):
        return self._scales.view if self.has_row_scale else None

    def search(self, q, k, dims):
        if dims is not None:
            raise QamaError(f"dims: codec {self.label!r} has no Matryoshka prefix search")
        if getattr(self.impl, "nibble_tables", False) and "avx2" in _core.asym_kernels():
            if self._blocks is None:
                self._blocks = _core.asym_to_blocks(self.codes)
                self._blocks.flags.writeable = False
            return _core.lut_search_blocked(
                self.luts(q), self._blocks, self.ntotal, min(k, self.ntotal), self._scale()
            )
        return _core.lut_search(self.luts(q), self.codes, min(k, self.ntotal), self._scale())

    def rescore(self, q, rows, k):
        return _core.lut_rescore(
            self.luts(q), self.codes, np.ascontiguousarray(rows, dtype=np.int64), k, self._scale()
        )

    def state(self):
        if not hasattr(type(self.impl), "to_state"):
            raise QamaError(
                f"codec {self.label!r} ({type(self.impl).__name__}) cannot be saved: it has no to_state()/from_state()"
            )
        arrays = {"codes": self.codes}
        if self.has_row_scale:
            arrays["row_scale"] = self._scales.view
        return {"m": self.m, "dims": self.dims, "object": self.impl.to_state()}, arrays

    def restore(self, meta, arrays):
        if not hasattr(type(self.impl), "from_state"):
            raise QamaError(
                f"codec {self.label!r}: {type(self.impl).__name__} has no from_state() to load with"
            )
        self.impl = type(self.impl).from_state(meta["object"])
        self.has_row_scale = hasattr(type(self.impl), "row_scale")
        self.m, self.dims = meta["m"], int(meta["dims"])
        codes = arrays["codes"]
        if codes.dtype != np.uint8 or codes.ndim != 2:
            raise QamaError(f"codes section has {codes.dtype} {codes.shape}, expected uint8 (n, m)")
        self._codes = Rows(np.uint8, (codes.shape[1],))
        self._codes.attach(codes)
        self._blocks = None
        self._scales = Rows(np.float32, ())
        if self.has_row_scale:
            self._scales.attach(arrays["row_scale"])
        self.trained = True
