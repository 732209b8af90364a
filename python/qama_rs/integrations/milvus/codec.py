"""What Milvus stores for a vector: the binary code (``BINARY_VECTOR``) whose Hamming distance is the
qama-rs distance, and the codecs that make one.

Milvus packs a binary vector as bytes, bit ``b`` of the vector in bit ``b % 8`` of byte ``b // 8``: the
engine's little-endian ``uint64`` code words read as bytes, so no bit is moved. The vector's dimension is
the code's bit count rounded up to a multiple of 8 (Milvus's rule); the padding bits are zero in documents
and queries alike, so distances are unchanged.

:func:`binary_codec` accepts a :class:`~qama_rs.Quantizer` (thermometer codes: ``1bit``, ``1.5bit``,
``2bit``, ``hybrid``, a QAMA head's learned thresholds), a :class:`qama_rs.Index` whose codec is a
thermometer code (``Sign``, ``Thermo*``, ``Hybrid``, ``ThermoLloydMax{b}``, after any transform; a
``Rescore``/``RFlat`` stage after it is ignored: Milvus holds the first stage), or a training-free
quantizer of :mod:`qama_rs.quantizers` with a Hamming variant (``binary``, ``binary_median``,
``gray_2bit``). :func:`stored_rows` reads the codes an :class:`~qama_rs.Index` holds (what
``MilvusIndex.add_index`` writes).
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from qama_rs.engine.args import float_rows
from qama_rs.engine.quantizer import Quantizer
from qama_rs.errors import QamaError, QamaTypeError
from qama_rs.index import Index

__all__ = ["BinaryCodec", "binary_codec", "code_bytes", "stored_rows"]


class BinaryCodec:
    """How float rows become the binary code Milvus stores: ``uint8 (n, nbytes)``.

    ``fingerprint``: SHA-256 of the quantizer's thresholds, when known; ``transforms``: SHA-256 of the
    transforms an index applies before them (rotation signs, prefix, head), None without any. A
    collection remembers both, so codes of another quantizer are never mixed into it."""

    def __init__(
        self,
        encode_bytes: Callable[[Any], np.ndarray],
        nbits: int,
        name: str,
        fingerprint: str | None = None,
        transforms: str | None = None,
    ) -> None:
        self._encode_bytes = encode_bytes
        self.nbits = int(nbits)
        self.nbytes = -(-self.nbits // 8)
        self.name = name
        self.fingerprint = fingerprint
        self.transforms = transforms

    @property
    def dim(self) -> int:
        """The ``BINARY_VECTOR`` dimension: bits rounded up to a multiple of 8."""
        return 8 * self.nbytes

    def encode(self, x: Any) -> np.ndarray:
        return code_bytes(self._encode_bytes(x), self.nbytes, "codes")

    def same_codes(self, other: BinaryCodec) -> bool:
        """Whether ``other`` makes the codes this codec makes (same bits, thresholds and transforms)."""
        return (
            self.nbits == other.nbits
            and self.fingerprint == other.fingerprint
            and self.transforms == other.transforms
        )

    def __repr__(self) -> str:
        return f"BinaryCodec({self.name}, nbits={self.nbits})"


def words_as_bytes(words: np.ndarray, nbytes: int) -> np.ndarray:
    """Engine codes ``uint64 (n, w)`` as their first ``nbytes`` little-endian bytes."""
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return np.ascontiguousarray(raw[:, :nbytes])


def code_bytes(codes: Any, nbytes: int, name: str) -> np.ndarray:
    """Codes as ``uint8 (n, nbytes)``: given as such, or as engine words ``uint64 (n, words)``."""
    if not isinstance(codes, np.ndarray):
        raise QamaTypeError(f"{name} must be a NumPy array, got {type(codes).__name__}")
    if codes.ndim != 2:
        raise QamaError(f"{name} must be 2-D, got shape {codes.shape}")
    if codes.dtype == np.uint64:
        words = -(-nbytes // 8)
        if codes.shape[1] != words:
            raise QamaError(f"{name} has {codes.shape[1]} uint64 words per row; the codec makes {words}")
        return words_as_bytes(codes, nbytes)
    if codes.dtype != np.uint8:
        raise QamaTypeError(f"{name} must be uint8 (n, {nbytes}) bytes or uint64 engine words, got {codes.dtype}")
    if codes.shape[1] != nbytes:
        raise QamaError(f"{name} has {codes.shape[1]} bytes per row; the codec makes {nbytes}")
    return np.ascontiguousarray(codes)


def _fingerprint(quantizer: Quantizer) -> str:
    return hashlib.sha256(json.dumps(quantizer.to_dict(), sort_keys=True).encode()).hexdigest()


def _quantizer_codec(quantizer: Quantizer, name: str) -> BinaryCodec:
    nbytes = quantizer.bytes_per_vector
    return BinaryCodec(
        lambda x: words_as_bytes(quantizer.encode(x), nbytes), quantizer.bits, name, _fingerprint(quantizer)
    )


# ``qama_rs.Index`` has no public way to encode rows through its transforms or to read its stored codes;
# the two functions below are the only places this package reads the index's internals.
def _index_codec(index: Index, quantizer: Quantizer) -> BinaryCodec:
    """An index over a thermometer codec: its transforms (rotation, prefix, QAMA head), then the
    quantizer, exactly as the index encodes documents and queries."""
    transforms = list(index._pipe.transforms)
    digest = None
    if transforms:
        h = hashlib.sha256()
        for t in transforms:
            meta, arrays = t.state()
            h.update(f"{type(t).__name__}:{json.dumps(meta, sort_keys=True, default=str)}".encode())
            for key in sorted(arrays):
                h.update(key.encode())
                h.update(np.ascontiguousarray(arrays[key]).tobytes())
        digest = h.hexdigest()
    nbytes, dims = quantizer.bytes_per_vector, index.dims

    def encode(x: Any) -> np.ndarray:
        return words_as_bytes(quantizer.encode(index._transform(float_rows(x, "x", dims))), nbytes)

    return BinaryCodec(encode, quantizer.bits, f"Index({index.spec!r})", _fingerprint(quantizer), digest)


def stored_rows(index: Index) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, ids)``: the codes ``index``'s codec stores, row-major (``uint64`` words of a thermometer
    code, packed ``uint8`` of a per-dimension code), and their int64 ids; insertion order for a flat
    index, list by list for a partitioned one."""
    if not isinstance(index, Index):
        raise QamaTypeError(f"expected a qama_rs.Index, got {type(index).__name__}")
    if not index.is_trained:
        raise QamaError(f"index {index.spec!r} is not trained; it holds no codes")
    with index._lock:  # codes and ids read together, never half an add
        store = index._stores[0]
        if store.scaled:
            raise QamaError(f"index {index.spec!r} stores a scale factor per row; its codes alone do not score")
        if len(index) == 0:
            return np.zeros((0, store.row_units), dtype=store.dtype), np.zeros(0, dtype=np.int64)
        if not store.labelled:
            return store.list_rows(0)[0], np.array(index.ids, dtype=np.int64)
        parts = [store.list_rows(lst) for lst in range(store.lists)]
        rows = np.concatenate([p[0] for p in parts])
        ids = np.concatenate([p[1] for p in parts]).astype(np.int64)  # a partition's labels are ids
        return rows, ids


def binary_codec(codec: Any) -> BinaryCodec:
    """The binary form of ``codec`` (see the module docs), or :class:`~qama_rs.QamaError` if it has none.

    Also accepted: an object exposing a :class:`~qama_rs.Quantizer` as ``binary_quantizer`` or
    ``quantizer`` (an index's codec adapter, ``index.codec``), or one with ``encode_binary(x) -> uint8
    (n, nbytes)`` (or ``uint64 (n, words)``) and ``binary_bits``.
    """
    if isinstance(codec, BinaryCodec):
        return codec
    if isinstance(codec, Quantizer):
        return _quantizer_codec(codec, f"Quantizer({codec.scheme or 'levels'}, {codec.bits} bits)")
    if isinstance(codec, Index):
        if not codec.is_trained:
            raise QamaError(f"index {codec.spec!r} is not trained; train it before using it with Milvus")
        quantizer = getattr(codec.codec, "quantizer", None)
        if not isinstance(quantizer, Quantizer):
            raise QamaError(
                f"index {codec.spec!r} has no binary form (its codec scores float queries, not symmetric "
                "Hamming codes); Milvus stores binary codes only: use Sign, Thermo1/1.5/2, Hybrid or "
                "ThermoLloydMax{b}, and rescore with this index (search(..., rescorer=))"
            )
        return _index_codec(codec, quantizer)
    for attribute in ("binary_quantizer", "quantizer"):
        inner = getattr(codec, attribute, None)
        if isinstance(inner, Quantizer):
            return _quantizer_codec(inner, f"{type(codec).__name__}.{attribute}")
    if callable(getattr(codec, "encode_binary", None)) and getattr(codec, "binary_bits", None):
        nbits = operator.index(codec.binary_bits)

        def encode(x: Any) -> np.ndarray:
            codes = np.asarray(codec.encode_binary(x))
            return words_as_bytes(codes, -(-nbits // 8)) if codes.dtype == np.uint64 else codes

        return BinaryCodec(encode, nbits, type(codec).__name__)
    if callable(getattr(codec, "pack_hamming", None)) and callable(getattr(codec, "encode", None)):
        name = getattr(codec, "name", type(codec).__name__)
        try:
            probe = codec.hamming_bits(codec.encode(np.zeros((1, codec.input_dim), dtype=np.float32)))
        except NotImplementedError:
            raise QamaError(
                f"codec {name!r} has no binary form (no symmetric Hamming code); Milvus stores binary "
                "codes only: use a thermometer Quantizer or binary / binary_median / gray_2bit"
            ) from None
        return BinaryCodec(lambda x: codec.pack_hamming(codec.encode(x)), probe.shape[1], name)
    raise QamaError(
        f"codec {type(codec).__name__} has no binary form: pass a qama_rs.Quantizer, a qama_rs.Index over a "
        "thermometer code, or a training-free binary method (binary, binary_median, gray_2bit)"
    )
