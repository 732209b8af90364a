"""Asymmetric search: float32 queries scored against compact per-dimension codes, and two-stage
search (Hamming candidates from an :class:`~qama_rs.Index`, rescored asymmetrically or with float32
vectors).

Scoring. A document is stored as one code ``c_j`` per dimension, ``bits`` bits each (``bits`` ∈
{1, 2, 4, 8}, the smallest that holds the reconstruction table's levels). A float32 query ``q``
scores it as ``Σ_j q_j · recon[j, c_j]``, where ``recon`` (``(dims, levels)`` float32) is what each
code decodes to: Lloyd-Max levels times σ plus the median, int8 scales, ±1 signs, centroids. So
``score(q, codes) == q @ reconstruct(codes).T`` up to float32 rounding; the engine's exact
summation order is documented in ``qama_core::asym`` and reproduced bit for bit by
``tests/_reference.py.asym_scores``.

Methods that score in a transformed space (centring, rotation, ``q ⊙ σ``) hand their prepared
queries to :meth:`AsymmetricIndex.search` (e.g. ``method.prepare_query(xq)``) and their codes to
:meth:`AsymmetricIndex.add_codes` (``method.encode(x)``), with ``method.reconstruction_values`` as
the table.

Per-row scales. Codecs with a per-vector length correction give ``row_scale`` on add: a document
then scores ``row_scale_i * Σ_j q_j · recon[j, c_ij]`` (one float32 product, in every kernel).

Byte-LUT codecs. :class:`LutIndex` stores ``uint8 (n, m)`` codes (product codes, PQ, packed trits)
and scores them with the caller's per-query tables ``luts (nq, m, 256)``; ``LutIndex(nibble_tables=True)``
(for nibble-packed codecs such as ``pca_nibble``) scans them with the quantized block kernel.

Errors are :class:`~qama_rs.errors.QamaError` (``QamaTypeError`` for types). Indexes are safe to
search from many threads, also while one thread adds (see :class:`AsymmetricIndex`).

Speed. A full scan (:meth:`AsymmetricIndex.search`) of codes of at most 4 bits uses the quantized
block kernel (codes transposed in blocks of 32 documents, 4-bit lookups with AVX2 ``vpshufb``,
exact float re-scoring of the few documents that might make the top-k), so results equal the
float scan's exactly. That needs a transposed copy of the codes, built on the first search after
an ``add`` and kept: a searched index holds its codes twice. 8-bit codes use the float tables.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qama_rs import _core
from qama_rs.engine.index import Index, _check_k, new_ids, positive_int
from qama_rs.engine.quantizer import Quantizer, atomic_write, float_rows
from qama_rs.errors import QamaError, QamaTypeError

MAGIC = b"QAMAASY\0"
FORMAT_VERSION = 2
_HEADER = struct.Struct("<8sIIQQQQ")  # magic, version, bits, ntotal, dims, levels, qlen
_FLAGS = struct.Struct("<II")  # version 2: flags, reserved
_FLAG_ROW_SCALE = 1
_FLAG_NIBBLE_TABLES = 2  # LUT index: scanned in the block layout
LUT_MAGIC = b"QAMALUT\0"
LUT_FORMAT_VERSION = 1
_LUT_HEADER = struct.Struct("<8sIIQQ")  # magic, version, flags, ntotal, m
_DIGEST_BYTES = 32
_BITS_FOR_LEVELS = ((2, 1), (4, 2), (16, 4), (256, 8))

__all__ = ["AsymmetricIndex", "FloatVectors", "LutIndex", "TwoStageIndex", "recon_table"]


def recon_table(values: Any) -> tuple[np.ndarray, int, int]:
    """``(table, bits, levels)`` from reconstruction values: a ``(dims, levels)`` float array, or one
    1-D array per dimension (``method.reconstruction_values``; dimensions may have fewer levels).

    ``table`` is float32 ``(dims, 2^bits)``, zero-padded past each dimension's levels; ``bits`` is the
    smallest of 1, 2, 4, 8 with ``2^bits >= levels`` (the largest level count).
    """
    if isinstance(values, np.ndarray) and values.ndim == 2:
        rows: Sequence[Any] = list(values)
    elif isinstance(values, np.ndarray):
        raise QamaError(
            f"recon must be 2-D (dims, levels) or a list of 1-D arrays, got shape {values.shape}"
        )
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
            raise QamaError(
                f"recon[{j}] must be a non-empty 1-D array of real numbers, got {row.dtype} {row.shape}"
            )
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


class _Rows:
    """Ids of stored rows and the way back from ids to row numbers."""

    def __init__(self) -> None:
        self.ids = np.zeros(0, dtype=np.int64)
        self.n = 0
        self.next_id = 0
        self.are_rows = True  # ids == arange(n)
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    def new_ids(self, ids: Any, m: int) -> np.ndarray:
        return new_ids(ids, m, self.ids[: self.n], self.next_id)

    def append(self, new_ids: np.ndarray) -> None:
        m = len(new_ids)
        if self.n + m > len(self.ids):
            self.ids = _grow(self.ids, self.n, max(self.n + m, 2 * len(self.ids), 1024))
        self.ids[self.n : self.n + m] = new_ids
        if m:
            self.are_rows = self.are_rows and bool(np.array_equal(new_ids, np.arange(self.n, self.n + m)))
            self.next_id = max(self.next_id, int(new_ids.max()) + 1)
            self._sorted = None
        self.n += m

    def rows_of(self, ids: Any, name: str = "ids") -> np.ndarray:
        """Row numbers of ``ids`` (any shape); unknown ids are a ``QamaError``."""
        array = np.asarray(ids)
        if array.dtype.kind not in "iu":
            raise QamaTypeError(f"{name} must be integers, got dtype {array.dtype}")
        array = array.astype(np.int64)
        if self.are_rows:
            bad = (array < 0) | (array >= self.n)
            if bad.any():
                raise QamaError(f"{name} contains id {int(array[bad][0])}, which is not in the index")
            return array
        if self._sorted is None:
            order = np.argsort(self.ids[: self.n], kind="stable")
            self._sorted = (self.ids[: self.n][order], order)
        keys, order = self._sorted
        at = np.searchsorted(keys, array).clip(0, max(self.n - 1, 0))
        found = keys[at] == array if self.n else np.zeros(array.shape, dtype=bool)
        if not found.all():
            raise QamaError(f"{name} contains id {int(array[~found][0])}, which is not in the index")
        return order[at].astype(np.int64)

    def ids_of(self, rows: np.ndarray) -> np.ndarray:
        return rows if self.are_rows else self.ids[rows]


class _Scales:
    """Optional per-row scales (float32, with spare capacity like the code buffer): absent until the
    first add that gives ``row_scale``; rows added before then scale by 1."""

    def __init__(self) -> None:
        self.buffer: np.ndarray | None = None

    def append(self, n: int, row_scale: Any, m: int) -> None:
        if row_scale is None and self.buffer is None:
            return
        if row_scale is None:
            scale = np.ones(m, dtype=np.float32)
        else:
            scale = np.asarray(row_scale)
            if scale.dtype.kind not in "fiu":
                raise QamaTypeError(f"row_scale must be a real array, got dtype {scale.dtype}")
            if scale.shape != (m,):
                raise QamaError(f"row_scale must have shape ({m},), got {scale.shape}")
            scale = scale.astype(np.float32)
            if not np.isfinite(scale).all():
                at = int(np.argmax(~np.isfinite(scale)))
                raise QamaError(f"row_scale[{at}] = {scale[at]} is not finite")
        if self.buffer is None:
            self.buffer = np.ones(max(n + m, 1024), dtype=np.float32)
        elif n + m > len(self.buffer):
            self.buffer = _grow(self.buffer, n, max(n + m, 2 * len(self.buffer)))
        self.buffer[n : n + m] = scale

    def view(self, n: int) -> np.ndarray | None:
        return None if self.buffer is None else _readonly(self.buffer[:n])


class _StoredCodes:
    """What `AsymmetricIndex` and `LutIndex` share: packed ``uint8`` code rows (``_codes``), their ids
    (``_rows``) and optional row scales (``_scales``), exposed as read-only views without copies."""

    _codes: np.ndarray
    _rows: _Rows
    _scales: _Scales
    _blocks: tuple[int, np.ndarray] | None

    @property
    def ntotal(self) -> int:
        return self._rows.n

    def __len__(self) -> int:
        return self._rows.n

    @property
    def codes(self) -> np.ndarray:
        """Read-only view ``uint8 (ntotal, bytes of codes per vector)`` of the stored codes (no copy)."""
        return _readonly(self._codes[: self._rows.n])

    @property
    def row_scale(self) -> np.ndarray | None:
        """Read-only view ``float32 (ntotal,)`` of the row scales, or None without any."""
        return self._scales.view(self._rows.n)

    @property
    def ids(self) -> np.ndarray:
        """Read-only view ``int64 (ntotal,)`` of the stored ids."""
        return _readonly(self._rows.ids[: self._rows.n])

    def _blocks_locked(self, n: int, codes: np.ndarray) -> np.ndarray:
        """The block layout of the first ``n`` rows ``codes``, cached until rows are added (caller
        holds ``_lock``)."""
        if self._blocks is None or self._blocks[0] != n:
            self._blocks = (n, _readonly(_core.asym_to_blocks(codes)))
        return self._blocks[1]


class AsymmetricIndex(_StoredCodes):
    """Compact per-dimension codes of documents, searched exactly by float32 queries.

    ``recon``: reconstruction values, ``(dims, levels)`` or one array per dimension (see
    :func:`recon_table`). ``quantizer``: optional :class:`~qama_rs.Quantizer` with ``dims`` quantized
    values and at most ``levels`` levels each, so that :meth:`add` accepts float vectors; without it
    use :meth:`add_codes` (``uint8 (n, dims)`` codes) or :meth:`add_packed`.

    ``row_scale`` (optional on every add, float32 ``(n,)``, any sign): a per-document factor, so a
    document scores ``row_scale_i * Σ_j q_j · recon[j, c_ij]`` (length or norm corrections). Once
    any add gives scales, documents added without them scale by 1; scales cost 4 bytes per vector.

    ``D, I = index.search(xq, k)`` returns float32 scores (descending; ties by insertion order) and
    int64 ids, both ``(q, min(k, ntotal))``, like faiss's ``IndexFlatIP``.

    Threads: searches may run from many threads at once, also while another thread adds; each
    search sees the documents added before it started (adds only append; a lock orders them).
    """

    def __init__(self, recon: Any, quantizer: Quantizer | None = None) -> None:
        self._recon, self._bits, self._levels = recon_table(recon)
        self._recon.flags.writeable = False
        if quantizer is not None:
            if not isinstance(quantizer, Quantizer):
                raise QamaTypeError(f"quantizer must be a qama_rs.Quantizer, got {type(quantizer).__name__}")
            if quantizer.dims != self.dims:
                raise QamaError(
                    f"quantizer has {quantizer.dims} quantized values, recon has {self.dims} rows"
                )
            if int(quantizer.levels.max()) > self._levels:
                raise QamaError(
                    f"quantizer makes up to {int(quantizer.levels.max())} levels, recon has {self._levels}"
                )
        self._quantizer = quantizer
        self._row_bytes = -(-self.dims * self._bits // 8)
        self._codes = np.zeros((0, self._row_bytes), dtype=np.uint8)
        self._rows = _Rows()
        self._scales = _Scales()
        self._lock = threading.Lock()
        # Block-layout copy of the first n rows for full scans, built lazily: (n, blocks).
        self._blocks: tuple[int, np.ndarray] | None = None

    # -------------------------------------------------------------------------------- contents
    @property
    def dims(self) -> int:
        """Dimensions (codes per document)."""
        return int(self._recon.shape[0])

    @property
    def bits(self) -> int:
        """Bits per stored code."""
        return self._bits

    @property
    def levels(self) -> int:
        """Codes a dimension may take (the reconstruction table's columns as given)."""
        return self._levels

    @property
    def recon(self) -> np.ndarray:
        """Read-only float32 ``(dims, 2^bits)`` reconstruction table (zero past ``levels``)."""
        return self._recon

    @property
    def quantizer(self) -> Quantizer | None:
        return self._quantizer

    @property
    def bytes_per_vector(self) -> int:
        """Stored bytes per document: ``ceil(dims * bits / 8)``, plus 4 with row scales."""
        return self._row_bytes + (0 if self._scales.buffer is None else 4)

    def reconstruct(self, ids: Any = None) -> np.ndarray:
        """Float32 vectors ``(m, dims)`` the stored codes of ``ids`` (default: all) stand for (times
        their row scales, if any)."""
        rows = np.arange(self.ntotal) if ids is None else self._rows.rows_of(np.ravel(ids))
        codes = _core.asym_unpack(np.ascontiguousarray(self._codes[rows]), self.dims, self._bits)
        vectors = self._recon[np.arange(self.dims), codes]
        scale = self.row_scale
        return vectors if scale is None else vectors * scale[rows, None]

    # ------------------------------------------------------------------------------------- add
    def add(self, x: Any, ids: Any = None, row_scale: Any = None) -> None:
        """Quantizes float rows ``x`` with the index's quantizer and stores them."""
        if self._quantizer is None:
            raise QamaError("this index has no quantizer; use add_codes(codes) or add_packed(packed)")
        self.add_codes(self._quantizer.quantize(x), ids, row_scale)

    def add_codes(self, codes: Any, ids: Any = None, row_scale: Any = None) -> None:
        """Stores ``uint8 (n, dims)`` codes, each below :attr:`levels`. ``ids`` (int64, unique, new)
        default to consecutive numbers after the largest id so far; ``row_scale`` see the class."""
        if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8:
            raise QamaTypeError("codes must be a NumPy uint8 array (n, dims)")
        if codes.ndim != 2 or codes.shape[1] != self.dims:
            raise QamaError(f"codes must have shape (n, {self.dims}), got {codes.shape}")
        if codes.size and int(codes.max()) >= self._levels:
            row, col = np.argwhere(codes >= self._levels)[0]
            raise QamaError(f"codes[{row}, {col}] = {codes[row, col]} is not below levels = {self._levels}")
        self._append(_core.asym_pack(np.ascontiguousarray(codes), self._bits), ids, row_scale)

    def add_packed(self, packed: Any, ids: Any = None, row_scale: Any = None) -> None:
        """Stores already packed ``uint8 (n, ceil(dims * bits / 8))`` codes (``qama_rs.asym_pack``
        layout)."""
        if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8:
            raise QamaTypeError("packed must be a NumPy uint8 array (n, row_bytes)")
        if packed.ndim != 2 or packed.shape[1] != self._row_bytes:
            raise QamaError(f"packed must have shape (n, {self._row_bytes}), got {packed.shape}")
        packed = np.ascontiguousarray(packed)
        if len(packed) and self._levels < (1 << self._bits):
            codes = _core.asym_unpack(packed, self.dims, self._bits)
            if int(codes.max()) >= self._levels:
                raise QamaError(f"packed holds a code not below levels = {self._levels}")
        self._append(packed, ids, row_scale)

    def _append(self, packed: np.ndarray, ids: Any, row_scale: Any) -> None:
        with self._lock:
            n, m = self._rows.n, len(packed)
            new_ids = self._rows.new_ids(ids, m)
            self._scales.append(n, row_scale, m)
            if n + m > len(self._codes):
                self._codes = _grow(self._codes, n, max(n + m, 2 * len(self._codes), 1024))
            # Rows past n: no search reads them until n moves (searches snapshot n under the lock).
            self._codes[n : n + m] = packed
            self._rows.append(new_ids)

    def _snapshot(self, blocked: bool = False) -> tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(n, codes, row_scale, blocks)`` of the rows stored now, as read-only views the engine
        reads in place (later adds write only past ``n`` or into a new buffer)."""
        with self._lock:
            n = self._rows.n
            codes = _readonly(self._codes[:n])
            blocks = self._blocks_locked(n, codes) if blocked else None
            return n, codes, self._scales.view(n), blocks

    # ---------------------------------------------------------------------------------- search
    def _queries(self, xq: Any, name: str = "xq") -> np.ndarray:
        q = float_rows(xq, name)
        if q.shape[1] != self.dims:
            raise QamaError(f"{name} has {q.shape[1]} columns, the index has {self.dims} dimensions")
        return q

    def _check_not_empty(self) -> None:
        if self._rows.n == 0:
            raise QamaError("the index is empty; add vectors before searching")

    def search(self, xq: Any, k: int, kernel: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k by asymmetric score of float queries ``xq`` ``(q, dims)``: ``(D float32, I
        int64)``, both ``(q, min(k, ntotal))``, scores descending, ties by insertion order.

        ``kernel`` (tests, benchmarks): ``"avx2"`` the quantized block kernel (bits <= 4), or the
        float-table row kernels ``"interleaved"`` / ``"scalar"``; default: the fastest. Every kernel
        returns the same scores and ids.
        """
        k = _check_k(k)
        self._check_not_empty()
        q = self._queries(xq)
        if kernel is None:
            kernel = "avx2" if self._bits <= 4 and "avx2" in _core.asym_kernels() else "interleaved"
        if kernel == "avx2" and self._bits > 4:
            raise QamaError(f"kernel 'avx2' needs codes of at most 4 bits; these have {self._bits}")
        n, codes, scale, blocks = self._snapshot(blocked=kernel == "avx2")
        if blocks is not None:
            scores, rows = _core.asym_search_blocked(q, self._recon, blocks, n, k, kernel, scale)
        else:
            scores, rows = _core.asym_search(q, self._recon, codes, k, kernel, scale)
        return scores, self._rows.ids_of(rows)

    def score(self, xq: Any, ids: Any) -> np.ndarray:
        """Asymmetric scores ``float32 (q, m)`` of each query against the documents ``ids`` ``(q, m)``
        (or ``(m,)``, the same for every query), in the given order."""
        self._check_not_empty()
        q = self._queries(xq)
        n, codes, scale, _ = self._snapshot()
        rows = self._candidate_rows(ids, len(q), n)
        return _core.asym_score_candidates(q, self._recon, codes, rows, scale)

    def rescore(self, xq: Any, ids: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``min(k, m)`` of each query's candidate ids ``(q, m)`` (distinct per query) by
        asymmetric score: ``(D float32, I int64)``, descending, ties by insertion order."""
        k = _check_k(k)
        self._check_not_empty()
        q = self._queries(xq)
        n, codes, scale, _ = self._snapshot()
        rows = self._candidate_rows(ids, len(q), n)
        scores, best = _core.asym_rescore(q, self._recon, codes, rows, k, scale)
        return scores, self._rows.ids_of(best)

    def _candidate_rows(self, ids: Any, nq: int, n: int) -> np.ndarray:
        return _candidate_rows(self._rows, ids, nq, n)

    # ------------------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the index atomically (a failed save leaves an existing file intact). Format
        (version 2, little-endian): header ``magic b"QAMAASY\\0", version u32, bits u32, ntotal u64,
        dims u64, levels u64, qlen u64, flags u32 (1 = row scales), reserved u32``; the float32
        table ``(dims, 2^bits)``; the quantizer as space-padded JSON (``qlen`` bytes, 0 without
        one); the packed codes; int64 ids; float32 row scales (with flag 1); each section
        zero-padded to 8 bytes; then a SHA-256 of everything before it. Version 1 files (no flags,
        no scales) still load."""

        def write(f: Any) -> None:
            digest = hashlib.sha256()
            for chunk in self._file_chunks():
                f.write(chunk)
                digest.update(chunk)
            f.write(digest.digest())

        atomic_write(path, write)

    def _file_chunks(self) -> Iterator[bytes | memoryview]:
        qjson = b"" if self._quantizer is None else json.dumps(self._quantizer.to_dict()).encode()
        qjson += b" " * (-len(qjson) % 8)
        n, codes, scale, _ = self._snapshot()
        flags = 0 if scale is None else _FLAG_ROW_SCALE
        yield _HEADER.pack(MAGIC, FORMAT_VERSION, self._bits, n, self.dims, self._levels, len(qjson))
        yield _FLAGS.pack(flags, 0)
        yield _padded(np.ascontiguousarray(self._recon, dtype="<f4").tobytes())
        yield qjson
        yield _padded(codes.tobytes())
        yield np.ascontiguousarray(self._rows.ids[:n], dtype="<i8").tobytes()
        if scale is not None:
            yield _padded(np.ascontiguousarray(scale, dtype="<f4").tobytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AsymmetricIndex:
        """Reads a file written by :meth:`save`; a truncated, corrupted, foreign or newer-version file
        raises :class:`~qama_rs.errors.QamaError` saying which."""
        data = Path(path).read_bytes()
        name = os.fspath(path)
        if len(data) < _HEADER.size + _DIGEST_BYTES:
            if not data.startswith(MAGIC[: len(data)]):
                raise QamaError(f"{name}: not a qama-rs asymmetric index (bad magic)")
            raise QamaError(f"{name}: truncated qama-rs asymmetric index ({len(data)} bytes)")
        magic, version, bits, n, dims, levels, qlen = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise QamaError(f"{name}: not a qama-rs asymmetric index (bad magic)")
        if version not in (1, FORMAT_VERSION):
            raise QamaError(
                f"{name}: asymmetric index format version {version} is not supported (this is {FORMAT_VERSION})"
            )
        flags, header_size = 0, _HEADER.size
        if version >= 2:
            if len(data) < _HEADER.size + _FLAGS.size + _DIGEST_BYTES:
                raise QamaError(f"{name}: truncated qama-rs asymmetric index ({len(data)} bytes)")
            flags, _ = _FLAGS.unpack_from(data, _HEADER.size)
            header_size += _FLAGS.size
        if (
            bits not in (1, 2, 4, 8)
            or not 1 <= levels <= (1 << bits)
            or not 1 <= dims < 2**40
            or n >= 2**48
            or qlen % 8
            or qlen >= 2**40
            or flags & ~_FLAG_ROW_SCALE
        ):
            raise QamaError(f"{name}: corrupt header (bits={bits}, dims={dims}, levels={levels}, flags={flags})")
        row_bytes = -(-dims * bits // 8)
        recon_at = header_size
        quantizer_at = recon_at + _pad8(dims * (1 << bits) * 4)
        codes_at = quantizer_at + qlen
        ids_at = codes_at + _pad8(n * row_bytes)
        scale_at = ids_at + n * 8
        end = scale_at + (_pad8(4 * n) if flags & _FLAG_ROW_SCALE else 0)
        expected = end + _DIGEST_BYTES
        if len(data) != expected:
            state = "truncated" if len(data) < expected else "corrupt (trailing bytes)"
            raise QamaError(
                f"{name}: {state} qama-rs asymmetric index: {len(data)} bytes, header says {expected}"
            )
        if hashlib.sha256(memoryview(data)[:-_DIGEST_BYTES]).digest() != data[-_DIGEST_BYTES:]:
            raise QamaError(f"{name}: corrupt qama-rs asymmetric index (checksum mismatch)")
        table = np.frombuffer(data, dtype="<f4", count=dims << bits, offset=recon_at).reshape(dims, -1)
        quantizer = None
        if qlen:
            try:
                quantizer = Quantizer.from_dict(json.loads(data[quantizer_at:codes_at]))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise QamaError(f"{name}: corrupt quantizer section ({e})") from None
        index = cls(table[:, :levels].astype(np.float32), quantizer)
        if index.bits != bits:
            raise QamaError(f"{name}: header says {bits} bits, {levels} levels need {index.bits}")
        codes = np.frombuffer(data, dtype=np.uint8, count=n * row_bytes, offset=codes_at).reshape(
            n, row_bytes
        )
        ids = np.frombuffer(data, dtype="<i8", count=n, offset=ids_at)
        scale = None
        if flags & _FLAG_ROW_SCALE:
            scale = np.frombuffer(data, dtype="<f4", count=n, offset=scale_at).astype(np.float32)
        index.add_packed(codes.copy(), ids.astype(np.int64), scale)
        return index

    def __repr__(self) -> str:
        return f"AsymmetricIndex(dims={self.dims}, bits={self._bits}, levels={self._levels}, ntotal={self.ntotal})"


class LutIndex(_StoredCodes):
    """Byte-LUT codes (product codes, PQ with 256 centroids per sub-space, base-3 packed trits),
    searched exactly with per-query lookup tables.

    A document is ``m`` code bytes (``uint8 (n, m)``; ``m`` is fixed by the first add) and an
    optional ``row_scale`` (float32, any sign; see :class:`AsymmetricIndex`). A query is ``m`` tables
    of 256 float32 entries, ``luts (nq, m, 256)`` (e.g. ``codec.query_luts(xq)``), and scores a
    document ``row_scale_i * Σ_b luts[q, b, codes[i, b]]`` (float32, summed over ``b`` in order, as in
    ``tests/_reference.py.lut_scores``).

    ``D, I = index.search(luts, k)``: float32 scores descending (ties by insertion order) and int64
    ids, both ``(nq, min(k, ntotal))``. Thread-safe like :class:`AsymmetricIndex`.

    ``nibble_tables=True`` (codecs whose tables are nibble-separable, ``codec.nibble_tables``): searches
    scan a block-layout copy of the codes (built on the first search after an add) with the quantized
    kernel when the CPU has AVX2 — the same results, several times faster for such tables.
    """

    def __init__(self, nibble_tables: bool = False) -> None:
        self._m: int | None = None
        self._codes = np.zeros((0, 0), dtype=np.uint8)
        self._rows = _Rows()
        self._scales = _Scales()
        self._lock = threading.Lock()
        self.nibble_tables = bool(nibble_tables)
        self._blocks: tuple[int, np.ndarray] | None = None

    @property
    def m(self) -> int | None:
        """Code bytes per document (None before the first add)."""
        return self._m

    @property
    def bytes_per_vector(self) -> int:
        """Stored bytes per document: ``m``, plus 4 with row scales."""
        return (self._m or 0) + (0 if self._scales.buffer is None else 4)

    def add_codes(self, codes: Any, ids: Any = None, row_scale: Any = None) -> None:
        """Stores ``uint8 (n, m)`` codes; ``ids`` (int64, unique, new) default to consecutive numbers
        after the largest id so far; ``row_scale`` float32 ``(n,)``."""
        if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8:
            raise QamaTypeError(f"codes must be a NumPy uint8 array (n, m), got {type(codes).__name__}")
        if codes.ndim != 2 or codes.shape[1] == 0 or (self._m is not None and codes.shape[1] != self._m):
            want = "m >= 1" if self._m is None else str(self._m)
            raise QamaError(f"codes must have shape (n, {want}), got {codes.shape}")
        with self._lock:
            if self._m is None:
                self._m = int(codes.shape[1])
                self._codes = np.zeros((0, self._m), dtype=np.uint8)
            n, m = self._rows.n, len(codes)
            new_ids = self._rows.new_ids(ids, m)
            self._scales.append(n, row_scale, m)
            if n + m > len(self._codes):
                self._codes = _grow(self._codes, n, max(n + m, 2 * len(self._codes), 1024))
            self._codes[n : n + m] = codes
            self._rows.append(new_ids)

    add = add_codes

    def _snapshot(self) -> tuple[int, np.ndarray, np.ndarray | None]:
        with self._lock:
            n = self._rows.n
            return n, _readonly(self._codes[:n]), self._scales.view(n)

    def _blocked(self, n: int, codes: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._blocks_locked(n, codes)

    def _luts(self, luts: Any) -> np.ndarray:
        array = np.asarray(luts)
        if array.dtype.kind != "f":
            raise QamaTypeError(f"luts must be a floating-point array, got dtype {array.dtype}")
        if array.ndim != 3 or array.shape[1:] != (self._m, 256):
            raise QamaError(f"luts must have shape (nq, {self._m}, 256), got {array.shape}")
        return np.ascontiguousarray(array, dtype=np.float32)

    def _check_not_empty(self) -> None:
        if self._rows.n == 0:
            raise QamaError("the index is empty; add codes before searching")

    def search(self, luts: Any, k: int, kernel: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k by byte-LUT score: ``(D float32, I int64)``, both ``(nq, min(k, ntotal))``,
        descending, ties by insertion order. ``kernel`` (tests, benchmarks): ``"avx2"`` the quantized
        block kernel, ``"scalar"`` / ``"interleaved"`` the float row kernels; default: ``"avx2"`` for
        ``nibble_tables`` on a CPU with AVX2, else the fastest row kernel. Every kernel returns the
        same scores and ids."""
        k = _check_k(k)
        self._check_not_empty()
        tables = self._luts(luts)
        if kernel is None and self.nibble_tables and "avx2" in _core.asym_kernels():
            kernel = "avx2"
        n, codes, scale = self._snapshot()
        if kernel == "avx2":
            scores, rows = _core.lut_search_blocked(tables, self._blocked(n, codes), n, k, scale, kernel)
        else:
            scores, rows = _core.lut_search(tables, codes, k, scale, kernel)
        return scores, self._rows.ids_of(rows)

    def score(self, luts: Any, ids: Any) -> np.ndarray:
        """Scores ``float32 (nq, c)`` of each query against documents ``ids`` ``(nq, c)`` (or
        ``(c,)``), in the given order."""
        self._check_not_empty()
        tables = self._luts(luts)
        n, codes, scale = self._snapshot()
        rows = _candidate_rows(self._rows, ids, len(tables), n)
        return _core.lut_score_candidates(tables, codes, rows, scale)

    def rescore(self, luts: Any, ids: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``min(k, c)`` of each query's distinct candidate ids ``(nq, c)``."""
        k = _check_k(k)
        self._check_not_empty()
        tables = self._luts(luts)
        n, codes, scale = self._snapshot()
        rows = _candidate_rows(self._rows, ids, len(tables), n)
        scores, best = _core.lut_rescore(tables, codes, rows, k, scale)
        return scores, self._rows.ids_of(best)

    # ------------------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the index atomically. Format (version 1, little-endian): header ``magic
        b"QAMALUT\\0", version u32, flags u32 (1 = row scales, 2 = nibble tables), ntotal u64, m u64``; the codes
        ``(ntotal, m)`` uint8; int64 ids; float32 row scales (with flag 1); each section zero-padded
        to 8 bytes; then a SHA-256 of everything before it."""
        n, codes, scale = self._snapshot()
        ids = np.ascontiguousarray(self._rows.ids[:n], dtype="<i8")
        flags = (0 if scale is None else _FLAG_ROW_SCALE) | (_FLAG_NIBBLE_TABLES if self.nibble_tables else 0)
        header = _LUT_HEADER.pack(LUT_MAGIC, LUT_FORMAT_VERSION, flags, n, self._m or 0)
        chunks = [header, _padded(codes.tobytes()), ids.tobytes()]
        if scale is not None:
            chunks.append(_padded(np.ascontiguousarray(scale, dtype="<f4").tobytes()))

        def write(f: Any) -> None:
            digest = hashlib.sha256()
            for chunk in chunks:
                f.write(chunk)
                digest.update(chunk)
            f.write(digest.digest())

        atomic_write(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = False) -> LutIndex:
        """Reads a file written by :meth:`save` (checksum verified). ``mmap=True`` maps the file
        read-only and searches the codes in place (pages load on demand; a later add copies them
        into memory). Damaged, foreign or newer files raise :class:`~qama_rs.errors.QamaError`."""
        name = os.fspath(path)
        size = os.path.getsize(path)
        if size < _LUT_HEADER.size + _DIGEST_BYTES:
            head = Path(path).read_bytes()
            if not head.startswith(LUT_MAGIC[: len(head)]):
                raise QamaError(f"{name}: not a qama-rs LUT index (bad magic)")
            raise QamaError(f"{name}: truncated qama-rs LUT index ({size} bytes)")
        if mmap:
            data: Any = np.memmap(path, dtype=np.uint8, mode="r")
        else:
            data = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
        magic, version, flags, n, m = _LUT_HEADER.unpack_from(data)
        if magic != LUT_MAGIC:
            raise QamaError(f"{name}: not a qama-rs LUT index (bad magic)")
        if version != LUT_FORMAT_VERSION:
            raise QamaError(
                f"{name}: LUT index format version {version} is not supported (this is {LUT_FORMAT_VERSION})"
            )
        if flags & ~(_FLAG_ROW_SCALE | _FLAG_NIBBLE_TABLES) or n >= 2**48 or m >= 2**32 or (n and not m):
            raise QamaError(f"{name}: corrupt header (flags={flags}, ntotal={n}, m={m})")
        codes_at = _LUT_HEADER.size
        ids_at = codes_at + _pad8(n * m)
        scale_at = ids_at + 8 * n
        end = scale_at + (_pad8(4 * n) if flags & _FLAG_ROW_SCALE else 0)
        if size != end + _DIGEST_BYTES:
            state = "truncated" if size < end + _DIGEST_BYTES else "corrupt (trailing bytes)"
            raise QamaError(f"{name}: {state} qama-rs LUT index: {size} bytes, header says {end + _DIGEST_BYTES}")
        if hashlib.sha256(memoryview(data[:end])).digest() != bytes(data[end:]):
            raise QamaError(f"{name}: corrupt qama-rs LUT index (checksum mismatch)")
        index = cls(nibble_tables=bool(flags & _FLAG_NIBBLE_TABLES))
        if m:
            index._m = int(m)
        codes = data[codes_at : codes_at + n * m].reshape(n, m)
        ids = np.frombuffer(bytes(data[ids_at:scale_at]), dtype="<i8").astype(np.int64)
        index._rows.append(ids)
        index._codes = _readonly(codes) if mmap else codes.copy()
        if flags & _FLAG_ROW_SCALE:
            scale = np.frombuffer(bytes(data[scale_at : scale_at + 4 * n]), dtype="<f4").astype(np.float32)
            index._scales.buffer = scale
        return index

    def __repr__(self) -> str:
        nibble = ", nibble_tables=True" if self.nibble_tables else ""
        return f"LutIndex(m={self._m}, ntotal={self.ntotal}{nibble})"


def _candidate_rows(rows: _Rows, ids: Any, nq: int, n: int) -> np.ndarray:
    """Row numbers ``int64 (nq, c)`` of candidate ids ``(nq, c)`` or ``(c,)`` (the same for every
    query), each below ``n`` (the snapshot's row count)."""
    found = rows.rows_of(ids)
    if found.ndim == 1:
        found = np.broadcast_to(found, (nq, len(found)))
    if found.ndim != 2 or found.shape[0] != nq:
        raise QamaError(f"ids must have shape ({nq}, m) or (m,), got {np.shape(ids)}")
    if found.size and int(found.max()) >= n:
        raise QamaError(f"ids contains id {int(rows.ids[int(found.max())])}, added after this call began")
    return np.ascontiguousarray(found, dtype=np.int64)


def _readonly(array: np.ndarray) -> np.ndarray:
    """A read-only view (the engine reads read-only arrays in place instead of copying them)."""
    view = array.view()
    view.flags.writeable = False
    return view


class FloatVectors:
    """Float32 document vectors for second-stage rescoring: row ``r`` is the ``r``-th document added
    to the first-stage index. From an array, or from a ``.npy`` path opened with
    ``np.load(mmap_mode="r")``: only the candidates' rows are read from disk."""

    def __init__(self, vectors: Any) -> None:
        if isinstance(vectors, str | os.PathLike):
            array = np.load(vectors, mmap_mode="r")
            if array.dtype != np.float32 or array.ndim != 2:
                raise QamaError(
                    f"{os.fspath(vectors)}: needs a 2-D float32 array, got {array.dtype} {array.shape}"
                )
            if not array.flags.c_contiguous:
                raise QamaError(f"{os.fspath(vectors)}: stored in Fortran order; save a C-ordered array")
        else:
            array = float_rows(vectors, "vectors")
        # Read-only: the engine then reads the rows in place (a writeable array would be copied on
        # every call). The caller must not write `vectors` while searches run.
        self._vectors = _readonly(array)

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors

    @property
    def ntotal(self) -> int:
        return int(self._vectors.shape[0])

    def __len__(self) -> int:
        return self.ntotal

    @property
    def dims(self) -> int:
        return int(self._vectors.shape[1])

    def rescore_rows(self, xq: Any, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``min(k, m)`` of each query's distinct candidate rows ``int64 (q, m)`` by dot
        product: ``(scores float32, rows int64)``, descending, ties by lower row."""
        q = float_rows(xq, "xq")
        if q.shape[1] != self.dims:
            raise QamaError(f"xq has {q.shape[1]} columns, the vectors have {self.dims}")
        return _core.float_rescore(q, self._vectors, np.ascontiguousarray(rows, dtype=np.int64), _check_k(k))

    def __repr__(self) -> str:
        return f"FloatVectors(ntotal={self.ntotal}, dims={self.dims})"


class TwoStageIndex:
    """Two-stage search: Hamming top-``k_prime`` over the first stage's codes, then the best ``k`` of
    those candidates by a finer score.

    ``first_stage``: an :class:`~qama_rs.Index` (1-bit or expanded codes). ``rescorer``: an
    :class:`AsymmetricIndex` holding the same documents under the same ids (compact codes scored
    against the float query), or float32 vectors (a :class:`FloatVectors`, an array, or a ``.npy``
    path, memory-mapped) whose row ``r`` is the ``r``-th document added to ``first_stage``. Only the
    candidates are rescored, so a query reads every first-stage code plus ``k_prime`` finer ones.
    """

    def __init__(self, first_stage: Index, rescorer: Any, k_prime: int = 100) -> None:
        if not isinstance(first_stage, Index):
            raise QamaTypeError(f"first_stage must be a qama_rs.Index, got {type(first_stage).__name__}")
        if not isinstance(rescorer, AsymmetricIndex | FloatVectors):
            rescorer = FloatVectors(rescorer)
        self._first = first_stage
        self._rescorer = rescorer
        self.k_prime = positive_int(k_prime, "k_prime")
        self._row_map: tuple[int, _Rows] | None = None

    @property
    def first_stage(self) -> Index:
        return self._first

    @property
    def rescorer(self) -> AsymmetricIndex | FloatVectors:
        return self._rescorer

    def __len__(self) -> int:
        return len(self._first)

    def candidates(self, xq: Any, k_prime: int | None = None, dims: int | None = None) -> np.ndarray:
        """First-stage ids ``int64 (q, min(k_prime, ntotal))``, nearest first (Hamming, ties by
        insertion order). ``dims`` searches the Matryoshka prefix of the first-stage codes."""
        return self._first.search(xq, self.k_prime if k_prime is None else k_prime, dims)[1]

    def search(
        self,
        xq: Any,
        k: int,
        k_prime: int | None = None,
        dims: int | None = None,
        rescore_queries: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(D float32, I int64)``, both ``(q, min(k, k_prime, ntotal))``: the candidates' second-stage
        scores, descending (ties by insertion order), and their ids.

        ``rescore_queries``: the float queries the second stage scores with, when its scoring space
        differs from the first stage's input (e.g. ``method.prepare_query(xq)``); default ``xq``.
        """
        k = _check_k(k)
        k_prime = self.k_prime if k_prime is None else positive_int(k_prime, "k_prime")
        n = len(self._first)
        if len(self._rescorer) != n:
            raise QamaError(f"the first stage holds {n} vectors but the rescorer {len(self._rescorer)}")
        ids = self.candidates(xq, k_prime, dims)
        q2 = xq if rescore_queries is None else rescore_queries
        if np.shape(q2)[:1] != (len(ids),):
            raise QamaError(f"rescore_queries must have {len(ids)} rows, got shape {np.shape(q2)}")
        if isinstance(self._rescorer, AsymmetricIndex):
            return self._rescorer.rescore(q2, ids, k)
        rows = self._rows().rows_of(ids)
        scores, best = self._rescorer.rescore_rows(q2, rows, k)
        return scores, self._first.ids[best]

    def _rows(self) -> _Rows:
        """Id → row map of the first stage, rebuilt when it grew (ids are only ever appended)."""
        n = len(self._first)
        if self._row_map is None or self._row_map[0] != n:
            rows = _Rows()
            rows.append(np.asarray(self._first.ids, dtype=np.int64))
            self._row_map = (n, rows)
        return self._row_map[1]

    def __repr__(self) -> str:
        return f"TwoStageIndex({self._first!r}, {self._rescorer!r}, k_prime={self.k_prime})"


def _pad8(size: int) -> int:
    return size + (-size % 8)


def _padded(raw: bytes) -> bytes:
    return raw + b"\0" * (-len(raw) % 8)


def _grow(array: np.ndarray, live: int, capacity: int) -> np.ndarray:
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[:live] = array[:live]
    return grown
