"""A flat (exhaustive) Hamming index over quantized codes, with faiss's shape of API:
``index.add(x)``, ``D, I = index.search(xq, k)``.

Search is exact: per query the ``min(k, ntotal)`` nearest codes by Hamming distance (= L1 distance
between levels, thanks to thermometer codes), ties broken by insertion order. ``dims=m`` searches
the Matryoshka prefix of the first ``m`` quantized values of the same stored codes.

File format (version 1), all integers little-endian::

    magic      8 bytes  b"QAMAIDX\\0"
    version    u32      1
    layout     u32      1 = rows of uint64 words, qama-core bit order (see tests/_reference.py)
    ntotal     u64      number of vectors
    words      u64      words per code
    qlen       u64      bytes of the quantizer section (a multiple of 8, so codes stay aligned)
    quantizer  qlen     Quantizer.to_dict() as UTF-8 JSON, space-padded
    codes      ntotal * words * 8 bytes (uint64)
    ids        ntotal * 8 bytes (int64)
    sha256     32 bytes over everything above
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from qama_rs import _core
from qama_rs.engine.quantizer import Quantizer, atomic_write
from qama_rs.errors import QamaError, QamaTypeError

MAGIC = b"QAMAIDX\0"
FORMAT_VERSION = 1
LAYOUT_U64_WORDS = 1
_HEADER = struct.Struct("<8sIIQQQ")
_DIGEST_BYTES = 32


def search(
    queries: np.ndarray,
    database: np.ndarray,
    k: int,
    dims: int | None = None,
    *,
    quantizer: Quantizer | None = None,
    nbits: int | None = None,
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Hamming top-k of ``uint64 (q, words)`` query codes against ``uint64 (n, words)``
    database codes: ``(distances int32, ids int64)``, both ``(q, min(k, n))``, ascending by distance,
    ties by lower row number.

    All bits are compared unless a prefix is named: ``dims=m`` (quantized values; needs the
    ``quantizer`` that made the codes to know where they end) or ``nbits`` (stream bits).
    ``backend`` forces a kernel from :func:`available_backends` (tests and benchmarks).
    """
    k = _check_k(k)
    if dims is not None:
        if nbits is not None:
            raise QamaError("give dims or nbits, not both")
        if quantizer is None:
            raise QamaError("dims counts quantized values; pass quantizer= to map it to bits, or use nbits=")
        nbits = quantizer.prefix_bits(dims)
    return _core.search(queries, database, k, nbits, backend)


def new_ids(ids: Any, m: int, existing: np.ndarray, next_id: int) -> np.ndarray:
    """The int64 ids of ``m`` rows being added: ``next_id, next_id + 1, ...`` when ``ids`` is None, else
    ``ids`` checked (integers, shape ``(m,)``, within int64, unique, none already in ``existing``)."""
    if ids is None:
        return np.arange(next_id, next_id + m, dtype=np.int64)
    array = np.asarray(ids)
    if array.dtype.kind not in "iu":
        raise QamaTypeError(f"ids must be integers, got dtype {array.dtype}")
    if array.shape != (m,):
        raise QamaError(f"ids must have shape ({m},), got {array.shape}")
    if array.dtype.kind == "u" and m and int(array.max()) > np.iinfo(np.int64).max:
        raise QamaError("ids must fit in int64")
    array = array.astype(np.int64)
    if len(np.unique(array)) != m:
        raise QamaError("ids contains duplicates")
    clash = np.isin(array, existing)
    if clash.any():
        raise QamaError(f"id {int(array[np.argmax(clash)])} is already in the index")
    return array


def positive_int(value: Any, name: str) -> int:
    """``value`` as a Python int if it is an integer > 0; else QamaTypeError / QamaError naming ``name``."""
    try:
        value = operator.index(value)
    except TypeError:
        raise QamaTypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if value <= 0:
        raise QamaError(f"{name} = {value}; must be positive")
    return value


def _check_k(k: Any) -> int:
    return positive_int(k, "k")


class Index:
    """Stores packed codes of one :class:`Quantizer` with int64 ids and searches them exactly.

    Threads: searches may run from many threads at once, also while another thread adds; each
    search sees the vectors added before it started. Adds only append (into spare capacity or a new
    buffer) under a lock, and a search hands the engine a read-only view of the rows that existed
    when it took the lock, which the engine reads in place (no copy).
    """

    def __init__(self, quantizer: Quantizer) -> None:
        if not isinstance(quantizer, Quantizer):
            raise QamaTypeError(f"quantizer must be a qama_rs.Quantizer, got {type(quantizer).__name__}")
        self._quantizer = quantizer
        # Row buffers with spare capacity (amortized growth); rows [:_n] are live.
        self._codes = np.zeros((0, quantizer.words), dtype=np.uint64)
        self._ids = np.zeros(0, dtype=np.int64)
        self._n = 0
        self._next_id = 0
        self._ids_are_rows = True  # ids == arange(n): search can skip the id lookup
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------- contents
    @property
    def quantizer(self) -> Quantizer:
        return self._quantizer

    @property
    def ntotal(self) -> int:
        """Number of stored vectors."""
        return self._n

    def __len__(self) -> int:
        return self._n

    @property
    def codes(self) -> np.ndarray:
        """Read-only view ``uint64 (ntotal, words)`` of the stored codes (no copy)."""
        view = self._codes[: self._n]
        view.flags.writeable = False
        return view

    @property
    def ids(self) -> np.ndarray:
        """Read-only view ``int64 (ntotal,)`` of the stored ids."""
        view = self._ids[: self._n]
        view.flags.writeable = False
        return view

    def add(self, x: Any, ids: Any = None) -> None:
        """Encodes float rows ``x`` ``(n, input_dims)`` and stores them. ``ids`` (int64, unique,
        not yet in the index) default to consecutive numbers after the largest id so far."""
        self.add_codes(self._quantizer.encode(x), ids)

    def add_codes(self, codes: Any, ids: Any = None) -> None:
        """Stores already encoded ``uint64 (n, words)`` codes (e.g. from ``Quantizer.encode``)."""
        codes = _code_rows(codes, self._quantizer.words, "codes")
        with self._lock:
            self._append(codes, ids)

    def _append(self, codes: np.ndarray, ids: Any) -> None:
        new_ids = self._check_new_ids(ids, len(codes))
        m = len(codes)
        if self._n + m > len(self._codes):
            capacity = max(self._n + m, 2 * len(self._codes), 1024)
            self._codes = _grow(self._codes, self._n, capacity)
            self._ids = _grow(self._ids, self._n, capacity)
        self._codes[self._n : self._n + m] = codes
        self._ids[self._n : self._n + m] = new_ids
        if m:
            self._ids_are_rows = self._ids_are_rows and bool(
                np.array_equal(new_ids, np.arange(self._n, self._n + m))
            )
            self._next_id = max(self._next_id, int(new_ids.max()) + 1)
        self._n += m

    def _check_new_ids(self, ids: Any, m: int) -> np.ndarray:
        return new_ids(ids, m, self._ids[: self._n], self._next_id)

    # ----------------------------------------------------------------------------------- search
    def search(self, xq: Any, k: int, dims: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Encodes float queries ``xq`` and returns ``(D int32, I int64)``, both
        ``(q, min(k, ntotal))``: Hamming distances ascending, ties by insertion order, and ids.
        ``dims=m`` compares only the first ``m`` quantized values; ``xq`` may then have either the
        full ``input_dims`` columns or just the prefix's."""
        k = _check_k(k)
        self._check_not_empty()
        m = self._quantizer.dims if dims is None else dims
        return self.search_codes(self._quantizer.encode(xq, m), k, m)

    def search_codes(self, qcodes: Any, k: int, dims: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` for already encoded queries ``uint64 (q, w)``; ``w`` may be the full word
        count or that of the ``dims`` prefix (missing words count as zero bits)."""
        k = _check_k(k)
        self._check_not_empty()
        nbits = self._quantizer.prefix_bits(self._quantizer.dims if dims is None else dims)
        words = self._quantizer.words
        qcodes = np.asarray(qcodes)
        prefix_words = -(-nbits // 64)
        if qcodes.ndim == 2 and qcodes.dtype == np.uint64 and prefix_words <= qcodes.shape[1] < words:
            padded = np.zeros((len(qcodes), words), dtype=np.uint64)
            padded[:, : qcodes.shape[1]] = qcodes
            qcodes = padded
        qcodes = _code_rows(qcodes, words, "qcodes")
        with self._lock:
            codes, ids, ids_are_rows = self._codes[: self._n].view(), self._ids, self._ids_are_rows
        codes.flags.writeable = False  # read in place: later adds write only past these rows
        distances, rows = _core.search(qcodes, codes, k, nbits)
        if ids_are_rows:
            return distances, rows
        return distances, ids[rows]

    def _check_not_empty(self) -> None:
        if self._n == 0:
            raise QamaError("the index is empty; add vectors before searching")

    # ------------------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the index (format above) atomically: a failed save leaves an existing file intact."""

        def write(f: Any) -> None:
            digest = hashlib.sha256()
            with self._lock:
                n, codes, ids = self._n, self._codes, self._ids
            for chunk in _file_chunks(self._quantizer, codes[:n], ids[:n]):
                f.write(chunk)
                digest.update(chunk)
            f.write(digest.digest())

        atomic_write(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Index:
        """Reads a file written by :meth:`save`. A truncated, corrupted, foreign or newer-version
        file raises ``QamaError`` saying which."""
        data = Path(path).read_bytes()
        name = os.fspath(path)
        if len(data) < _HEADER.size + _DIGEST_BYTES:
            if not data.startswith(MAGIC[: len(data)]):
                raise QamaError(f"{name}: not a qama-rs index (bad magic)")
            raise QamaError(f"{name}: truncated qama-rs index ({len(data)} bytes)")
        magic, version, layout, n, words, qlen = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise QamaError(f"{name}: not a qama-rs index (bad magic)")
        if version != FORMAT_VERSION:
            raise QamaError(
                f"{name}: index format version {version} is not supported (this is {FORMAT_VERSION})"
            )
        if layout != LAYOUT_U64_WORDS:
            raise QamaError(f"{name}: unknown code layout {layout}")
        codes_at = _HEADER.size + qlen
        ids_at = codes_at + n * words * 8
        expected = ids_at + n * 8 + _DIGEST_BYTES
        if len(data) != expected:
            state = "truncated" if len(data) < expected else "corrupt (trailing bytes)"
            raise QamaError(f"{name}: {state} qama-rs index: {len(data)} bytes, header says {expected}")
        body = memoryview(data)[:-_DIGEST_BYTES]
        if hashlib.sha256(body).digest() != data[-_DIGEST_BYTES:]:
            raise QamaError(f"{name}: corrupt qama-rs index (checksum mismatch)")
        try:
            quantizer = Quantizer.from_dict(json.loads(data[_HEADER.size : codes_at]))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise QamaError(f"{name}: corrupt quantizer section ({e})") from None
        if quantizer.words != words:
            raise QamaError(
                f"{name}: header says {words} words per code, the quantizer makes {quantizer.words}"
            )
        index = cls(quantizer)
        codes = np.frombuffer(data, dtype="<u8", count=n * words, offset=codes_at).reshape(n, words)
        ids = np.frombuffer(data, dtype="<i8", count=n, offset=ids_at)
        index.add_codes(codes.astype(np.uint64), ids.astype(np.int64))
        return index

    def __repr__(self) -> str:
        return f"Index({self._quantizer!r}, ntotal={self._n})"


def _file_chunks(quantizer: Quantizer, codes: np.ndarray, ids: np.ndarray) -> Iterator[bytes | memoryview]:
    """The file's sections in order (everything the checksum covers)."""
    qjson = json.dumps(quantizer.to_dict()).encode()
    qjson += b" " * (-len(qjson) % 8)
    n, words = codes.shape
    yield _HEADER.pack(MAGIC, FORMAT_VERSION, LAYOUT_U64_WORDS, n, words, len(qjson))
    yield qjson
    yield _raw_bytes(codes, "<u8")
    yield _raw_bytes(ids, "<i8")


def _raw_bytes(array: np.ndarray, dtype: str) -> memoryview:
    """The array's bytes in ``dtype``'s byte order, without a copy when it already matches."""
    return np.ascontiguousarray(array, dtype=dtype).reshape(-1).view(np.uint8).data


def _code_rows(codes: Any, words: int, name: str) -> np.ndarray:
    """``codes`` as ``uint64 (n, words)``; other dtypes are a ``QamaTypeError`` (codes are bit patterns,
    never converted)."""
    if not isinstance(codes, np.ndarray):
        raise QamaTypeError(f"{name} must be a NumPy uint64 array, got {type(codes).__name__}")
    if codes.dtype != np.uint64:
        raise QamaTypeError(f"{name} must have dtype uint64, got {codes.dtype}")
    if codes.ndim != 2 or codes.shape[1] != words:
        raise QamaError(f"{name} must have shape (n, {words}), got {codes.shape}")
    return np.ascontiguousarray(codes)


def _grow(array: np.ndarray, live: int, capacity: int) -> np.ndarray:
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[:live] = array[:live]
    return grown
