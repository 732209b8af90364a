"""The factory index file: a JSON header and raw array sections, checksummed, written atomically,
readable in full or memory-mapped.

Layout (version 2; integers little-endian; every section starts on a 64-byte boundary)::

    magic         8 bytes  b"QAMAFIDX"
    version       u32      2 (version 1 files, whose codec tables sat in the JSON header, still load)
    reserved      u32      0
    header_len    u64      bytes of the JSON header (space-padded to a multiple of 64)
    header_sha256 32 bytes of the JSON header
    (zero padding to offset 64)
    header        header_len bytes of UTF-8 JSON: spec, dims, ntotal, small stage parameters, and for
                  each section its offset, dtype, shape and SHA-256
    sections      raw little-endian arrays (stored rows in the layout the kernels scan, ids, names,
                  and every large table: bases, centroids, codebooks), zero-padded
    file_sha256   32 bytes over everything before it

A full read checks the file's SHA-256 (which covers every section). A memory-mapped read checks the magic,
version, header checksum, the sizes and the file length, then maps the sections without reading them
(:func:`verify_sections` reads and checks them on demand), so a 10M-row index opens in milliseconds
and its codes reach the kernels as views of the mapping.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from qama_rs.engine.files import atomic_write
from qama_rs.errors import QamaError

__all__ = ["FORMAT_VERSION", "MAGIC", "READABLE_VERSIONS", "read_index", "verify_sections", "write_index"]

MAGIC = b"QAMAFIDX"
FORMAT_VERSION = 2
#: Versions :func:`read_index` accepts (the header says which; the index converts version 1 states).
READABLE_VERSIONS = (1, 2)
#: Magic bytes of the 0.1 engine classes' files, and the class that wrote each.
_OLD_ENGINE_FILES = {b"QAMAIDX\0": "HammingIndex", b"QAMAASY\0": "AsymmetricIndex", b"QAMALUT\0": "LutIndex"}
_PREAMBLE = struct.Struct("<8sIIQ32s")  # magic, version, reserved, header_len, header_sha256
_ALIGN = 64
_DIGEST = 32
# dtypes a section may have (little-endian, fixed width): nothing that needs pickling.
_DTYPES = {"<u1", "<u2", "<u8", "<i8", "<f2", "<f4", "<f8", "|u1", "|b1"}


def _pad(size: int) -> int:
    return -size % _ALIGN


def _le(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    return array.astype(array.dtype.newbyteorder("<"), copy=False) if array.dtype.byteorder == ">" else array


def write_index(
    path: str | os.PathLike[str], header: dict[str, Any], sections: dict[str, np.ndarray]
) -> None:
    """Writes ``header`` (JSON-ready) and ``sections`` (name -> array) atomically."""
    arrays = {name: _le(a) for name, a in sections.items()}
    table: dict[str, Any] = {}
    offset = 0  # relative to the first section; fixed up once the header length is known
    for name, a in arrays.items():
        table[name] = {
            "offset": offset,
            "dtype": a.dtype.str,
            "shape": list(a.shape),
            "sha256": hashlib.sha256(memoryview(a.reshape(-1).view(np.uint8))).hexdigest(),
        }
        offset += a.nbytes + _pad(a.nbytes)
    # The header holds absolute offsets, which depend on its own length: iterate to a fixed point.
    base = _ALIGN
    while True:
        for entry, rel in zip(table.values(), _relative_offsets(arrays), strict=True):
            entry["offset"] = base + rel
        text = json.dumps({**header, "sections": table}, sort_keys=True, allow_nan=False).encode()
        text += b" " * _pad(len(text))
        if _ALIGN + len(text) == base:
            break
        base = _ALIGN + len(text)

    def write(f: Any) -> None:
        digest = hashlib.sha256()
        for chunk in _chunks(text, arrays):
            f.write(chunk)
            digest.update(chunk)
        f.write(digest.digest())

    atomic_write(path, write)


def _relative_offsets(arrays: dict[str, np.ndarray]) -> Iterator[int]:
    offset = 0
    for a in arrays.values():
        yield offset
        offset += a.nbytes + _pad(a.nbytes)


def _chunks(text: bytes, arrays: dict[str, np.ndarray]) -> Iterator[bytes | memoryview]:
    pre = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, 0, len(text), hashlib.sha256(text).digest())
    yield pre + b"\0" * (_ALIGN - len(pre))
    yield text
    for a in arrays.values():
        if a.nbytes:
            yield memoryview(a.reshape(-1).view(np.uint8))
        if _pad(a.nbytes):
            yield b"\0" * _pad(a.nbytes)


def read_index(
    path: str | os.PathLike[str], mmap_mode: bool = False
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(header, sections)`` of an index file; arrays are read-only views of the file's bytes (or of its
    mapping). A foreign, truncated, corrupt or newer-version file raises :class:`QamaError` saying which."""
    name = os.fspath(path)
    path = Path(path)
    if not path.is_file():
        raise QamaError(f"{name}: no such index file")
    if mmap_mode:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise QamaError(f"{name}: empty file, not a qama-rs index")
            data: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    else:
        data = path.read_bytes()
        size = len(data)
    header = _read_header(data, size, name)
    if not mmap_mode:
        if hashlib.sha256(memoryview(data)[:-_DIGEST]).digest() != data[-_DIGEST:]:
            raise QamaError(f"{name}: corrupt qama-rs index (file checksum mismatch)")
    # The file checksum covers every section, so a full read needs no per-section pass.
    sections = {key: _section(data, entry, key, name) for key, entry in header["sections"].items()}
    return header, sections


def _read_header(data: Any, size: int, name: str) -> dict[str, Any]:
    if size < _ALIGN + _DIGEST:
        if bytes(data[: min(size, 8)]) != MAGIC[: min(size, 8)]:
            raise QamaError(f"{name}: not a qama-rs index (bad magic)")
        raise QamaError(f"{name}: truncated qama-rs index ({size} bytes)")
    magic, version, _, header_len, header_sha = _PREAMBLE.unpack_from(data, 0)
    if magic != MAGIC:
        writer = _OLD_ENGINE_FILES.get(bytes(magic))
        if writer:
            raise QamaError(
                f"{name}: written by qama_rs.{writer}, which qama-rs 0.2 removed; rebuild the index with "
                "qama_rs.index_factory(dims, spec) (e.g. 'Thermo1', 'LloydMax2', 'pca_pq(m=24)') from the "
                "embeddings, or load the file with qama-rs 0.1 and add its vectors to a factory index"
            )
        raise QamaError(f"{name}: not a qama-rs index (bad magic)")
    if version not in READABLE_VERSIONS:
        raise QamaError(
            f"{name}: index format version {version} is not supported (this qama-rs reads {READABLE_VERSIONS}); "
            "a newer qama-rs wrote it"
        )
    if header_len > size - _ALIGN - _DIGEST:
        raise QamaError(
            f"{name}: truncated qama-rs index (header of {header_len} bytes in a {size}-byte file)"
        )
    text = bytes(data[_ALIGN : _ALIGN + header_len])
    if hashlib.sha256(text).digest() != header_sha:
        raise QamaError(f"{name}: corrupt qama-rs index (header checksum mismatch)")
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise QamaError(f"{name}: corrupt index header ({err})") from None
    if not isinstance(header, dict) or not isinstance(header.get("sections", {}), dict):
        raise QamaError(f"{name}: corrupt index header (not an object)")
    header["format_version"] = version
    end = _ALIGN + header_len
    for key, entry in header.get("sections", {}).items():
        nbytes = _nbytes(entry, key, name)
        end = max(end, int(entry["offset"]) + nbytes + _pad(nbytes))
    if size != end + _DIGEST:
        state = "truncated" if size < end + _DIGEST else "corrupt (trailing bytes)"
        raise QamaError(f"{name}: {state} qama-rs index: {size} bytes, header says {end + _DIGEST}")
    return header


def _nbytes(entry: dict[str, Any], key: str, name: str) -> int:
    try:
        dtype = np.dtype(entry["dtype"])
        shape = [int(s) for s in entry["shape"]]
        offset = int(entry["offset"])
    except (KeyError, TypeError, ValueError):
        raise QamaError(f"{name}: corrupt index header (section {key!r})") from None
    if entry["dtype"] not in _DTYPES or any(s < 0 for s in shape) or offset < _ALIGN or offset % _ALIGN:
        raise QamaError(
            f"{name}: corrupt index header (section {key!r}: {entry['dtype']} {shape} at {offset})"
        )
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def _section(data: Any, entry: dict[str, Any], key: str, name: str) -> np.ndarray:
    dtype = np.dtype(entry["dtype"])
    shape = tuple(int(s) for s in entry["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    array = np.frombuffer(data, dtype=dtype, count=count, offset=int(entry["offset"])).reshape(shape)
    if dtype.byteorder not in ("=", "|") and dtype.byteorder != ("<" if np.little_endian else ">"):
        array = array.astype(dtype.newbyteorder("="))  # big-endian hosts only
    return array


def verify_sections(header: dict[str, Any], sections: dict[str, np.ndarray], name: str = "index") -> None:
    """Checks every section against its SHA-256 in the header (reads all of a mapped file)."""
    for key, entry in header["sections"].items():
        digest = hashlib.sha256(
            memoryview(np.ascontiguousarray(sections[key]).reshape(-1).view(np.uint8))
        ).hexdigest()
        if digest != entry["sha256"]:
            raise QamaError(f"{name}: corrupt qama-rs index (section {key!r} checksum mismatch)")
