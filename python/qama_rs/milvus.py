"""Symmetric qama-rs codes in Milvus: one collection of binary codes, searched by Hamming distance,
with optional asymmetric or float32 rescoring of the returned candidates back in qama-rs.

Install with ``pip install "qama-rs[milvus]"`` (pymilvus 2.5.x and milvus-lite 2.5.1: milvus-lite 3.x
rejects binary vectors; milvus-lite imports ``pkg_resources``, hence ``setuptools<81``).

Every symmetric qama-rs code is a binary vector whose Hamming distance is the engine's distance:
1-bit, thermometer 1.5/2-bit, hybrid and learned QAMA codes (:class:`qama_rs.engine.Quantizer`), and
the training-free ``binary`` / ``binary_median`` / ``gray_2bit`` methods. A collection holds

* ``id`` — ``INT64`` primary key (the ids of the in-process index);
* ``code`` — ``BINARY_VECTOR`` of ``8 * ceil(bits / 8)`` dimensions (Milvus needs a multiple of 8;
  the padding bits are zero in documents and queries alike, so distances are unchanged), metric
  ``HAMMING``;
* ``rescore`` — optional ``VARCHAR``: the document's compact asymmetric code
  (:class:`qama_rs.engine.AsymmetricIndex` layout, base64), for rescoring from Milvus alone.

Usage::

    from qama_rs import AsymmetricIndex, Index, Quantizer
    from qama_rs.milvus import MilvusIndex

    q = Quantizer.fit(docs, "2bit")
    with MilvusIndex(q, "codes.db", "scifact") as store:   # milvus-lite file; or "http://host:19530"
        store.add(docs, ids)                                # batched columnar upserts, tqdm bar
        D, I = store.search(queries, 10)                    # Hamming (int32 D, int64 I), like faiss
        D, I = store.search(queries, 10, k_prime=100, rescorer=asym_index)  # two-stage

Loading is idempotent and resumable: rows are *upserted* by id in batches, so re-running a load
never duplicates an id, and a checkpoint (a small JSON file, beside a milvus-lite database by
default) records the batches already committed, so a re-run after a failure sends only the rest.
The checkpoint names the collection's creation token (kept in the collection description) and a
SHA-256 of the data being loaded; a dropped collection or different data starts from batch 0.

Search is exact with ``BIN_FLAT`` (the only binary index milvus-lite offers), and equals the
in-process :class:`qama_rs.engine.Index` result including ties: Milvus breaks ties arbitrarily, so
each query asks for more hits than ``k`` until the last one is farther than the ``k``-th (at most
16,384, Milvus's top-k limit), then orders hits by (distance, id). That is the in-process order
whenever ids ascend in insertion order (the default ids).

Scaling out (Milvus standalone or cluster; the same code, another ``uri``)
-----------------------------------------------------------------------------
* Start a standalone server (Milvus 2.5, one machine): the Milvus guide "Run Milvus in Docker"
  ships ``standalone_embed.sh``; ``bash standalone_embed.sh start`` runs one container
  (``milvusdb/milvus:v2.5.x``, embedded etcd, local storage) listening on port 19530. With etcd
  and MinIO as separate services use its docker-compose file; a cluster is deployed with Milvus
  Operator or the Helm chart. Then ``MilvusIndex(q, "http://host:19530", token="root:Milvus")``:
  the same code as with a ``.db`` file (tested here against milvus-lite only).
* Index types for large collections: ``BIN_FLAT`` (exact; every query reads every code) and
  ``BIN_IVF_FLAT`` (``index_type="BIN_IVF_FLAT", index_params={"nlist": 4 * sqrt(n)}``, searched
  with ``search_params={"nprobe": 16...128}``: approximate, recall set by ``nprobe``; rescoring
  ``k_prime`` candidates in qama-rs recovers part of what the coarse step loses, and the exact tie
  order no longer applies). Milvus 2.5 lists only these two for ``BINARY_VECTOR`` — its ``HNSW``
  takes float vectors — so a graph index over binary codes needs a Milvus version that lists one
  for binary vectors (check the server's index documentation before relying on it). milvus-lite
  accepts ``BIN_FLAT`` only. For 100M+ codes: ``BIN_IVF_FLAT``, several shards, several query
  nodes.
* Memory (query nodes hold loaded segments in RAM; estimates from the stored field sizes, not
  measured on a cluster): per vector the code, plus 8 B id, plus 16 B of Milvus's own per-row
  fields (row id and timestamp), plus ``4 * ceil(b / 3)`` B for an optional ``rescore`` field of
  ``b`` bytes. ``BIN_IVF_FLAT`` holds the codes in its inverted lists (plus ``nlist`` centroids)
  and serves them from there; leave headroom (~1.5x) for growing segments and compaction.

  ============================ ===== ======= ============ ==========
  code (384-d embeddings)      code  + 24 B  100M vectors 1B vectors
  ============================ ===== ======= ============ ==========
  1-bit                        48 B  72 B    7.2 GB       72 GB
  hybrid (624 bits)            78 B  102 B   10.2 GB      102 GB
  2-bit thermometer            144 B 168 B   16.8 GB      168 GB
  ============================ ===== ======= ============ ==========

  A 2-bit asymmetric ``rescore`` field (96 B, 128 B as base64) adds 12.8 GB per 100M; rescoring
  from in-process codes or memory-mapped float32 vectors keeps it out of Milvus.

Errors are :class:`qama_rs.errors.QamaError` (a ``ValueError``; wrong types and dtypes are its
``QamaTypeError``, also a ``TypeError``): an unreachable server, a
collection whose code dimension (or bit count, or quantizer) differs from the codec's, a codec with
no binary form, bad ids or codes. A missing pymilvus / milvus-lite is an ``ImportError`` naming the
extra.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import operator
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from tqdm.auto import tqdm

from qama_rs.engine.asym import AsymmetricIndex, FloatVectors
from qama_rs.engine.index import Index as HammingIndex
from qama_rs.engine.index import new_ids, positive_int
from qama_rs.engine.quantizer import Quantizer, atomic_write, float_rows
from qama_rs.errors import QamaError, QamaTypeError

__all__ = ["BinaryCodec", "MilvusIndex", "binary_codec"]

FORMAT = "qama-rs/milvus"
FORMAT_VERSION = 1
MAX_TOP_K = 16_384  # Milvus's largest search limit (and query result window)
ID_FIELD, CODE_FIELD, RESCORE_FIELD = "id", "code", "rescore"
_REMOTE_SCHEMES = ("http", "https", "tcp", "grpc", "unix")


# ------------------------------------------------------------------------------------------ codecs
class BinaryCodec:
    """How float rows become the binary code Milvus stores: ``uint8 (n, nbytes)``, stream bit ``b``
    in bit ``b % 8`` of byte ``b // 8`` (the engine's little-endian words read as bytes)."""

    def __init__(
        self,
        encode_bytes: Callable[[Any], np.ndarray],
        nbits: int,
        name: str,
        fingerprint: str | None = None,
    ) -> None:
        self._encode_bytes = encode_bytes
        self.nbits = int(nbits)
        self.nbytes = -(-self.nbits // 8)
        self.name = name
        self.fingerprint = fingerprint  # sha256 of the quantizer's thresholds, when known

    @property
    def dim(self) -> int:
        """The ``BINARY_VECTOR`` dimension: bits rounded up to a multiple of 8."""
        return 8 * self.nbytes

    def encode(self, x: Any) -> np.ndarray:
        codes = self._encode_bytes(x)
        return _code_bytes(codes, self.nbytes, "codes")

    def __repr__(self) -> str:
        return f"BinaryCodec({self.name}, nbits={self.nbits})"


def _words_as_bytes(words: np.ndarray, nbytes: int) -> np.ndarray:
    """Engine codes ``uint64 (n, w)`` as their first ``nbytes`` little-endian bytes."""
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return np.ascontiguousarray(raw[:, :nbytes])


def _quantizer_codec(quantizer: Quantizer, name: str) -> BinaryCodec:
    fingerprint = hashlib.sha256(json.dumps(quantizer.to_dict(), sort_keys=True).encode()).hexdigest()
    nbytes = quantizer.bytes_per_vector
    return BinaryCodec(
        lambda x: _words_as_bytes(quantizer.encode(x), nbytes), quantizer.bits, name, fingerprint
    )


def _unified_index_codec(index: Any, quantizer: Quantizer) -> BinaryCodec:
    """A unified ``qama_rs.Index`` over a thermometer codec: its transforms (rotation, prefix, QAMA
    head) then the quantizer, exactly as the index encodes documents and queries."""
    transform = getattr(index, "_transform", None)
    dims = getattr(index, "dims", None)
    spec = getattr(index, "spec", type(index).__name__)
    fingerprint = _quantizer_codec(quantizer, spec).fingerprint
    nbytes = quantizer.bytes_per_vector

    def encode(x: Any) -> np.ndarray:
        rows = float_rows(x)
        if dims is not None and rows.shape[1] != dims:
            raise QamaError(f"x has {rows.shape[1]} columns; index {spec!r} takes {dims}")
        if transform is not None:
            rows = transform(rows)
        return _words_as_bytes(quantizer.encode(rows), nbytes)

    return BinaryCodec(encode, quantizer.bits, f"Index({spec!r})", fingerprint)


def binary_codec(codec: Any) -> BinaryCodec:
    """The binary form of ``codec``, or :class:`QamaError` if it has none.

    Accepted: a :class:`~qama_rs.engine.Quantizer` (thermometer codes); anything exposing one as
    ``binary_quantizer`` or ``quantizer`` (the engine's Hamming :class:`~qama_rs.engine.Index`, the
    unified ``qama_rs.Index`` over a symmetric code), or a ``first_stage`` that does
    (:class:`~qama_rs.engine.TwoStageIndex`); an object with ``encode_binary(x) -> uint8 (n, nbytes)``
    or ``uint64 (n, words)`` and ``binary_bits``; the unified ``qama_rs.Index`` whose codec is a
    thermometer code (``Sign``, ``Thermo1``/``1.5``/``2``, ``Hybrid``, after any transform: its
    ``codec.quantizer`` behind its transforms); a training-free quantizer with a Hamming variant
    (``binary``, ``binary_median``, ``gray_2bit``: ``pack_hamming(encode(x))``).
    """
    if isinstance(codec, BinaryCodec):
        return codec
    if isinstance(codec, Quantizer):
        return _quantizer_codec(codec, f"Quantizer({codec.scheme or 'levels'}, {codec.bits} bits)")
    for attribute in ("binary_quantizer", "quantizer"):
        inner = getattr(codec, attribute, None)
        if isinstance(inner, Quantizer):
            return _quantizer_codec(inner, f"{type(codec).__name__}.{attribute}")
    if callable(getattr(codec, "encode_binary", None)) and getattr(codec, "binary_bits", None):
        nbits = operator.index(codec.binary_bits)

        def encode(x: Any) -> np.ndarray:
            codes = np.asarray(codec.encode_binary(x))
            return _words_as_bytes(codes, -(-nbits // 8)) if codes.dtype == np.uint64 else codes

        return BinaryCodec(encode, nbits, type(codec).__name__)
    first_stage = getattr(codec, "first_stage", None)
    if first_stage is not None and first_stage is not codec:
        return binary_codec(first_stage)
    stage = getattr(codec, "codec", None)  # the unified qama_rs.Index: transforms, then one codec
    if isinstance(getattr(stage, "quantizer", None), Quantizer):
        return _unified_index_codec(codec, stage.quantizer)
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
        f"codec {type(codec).__name__} has no binary form: pass a qama_rs.Quantizer, an index over one, "
        "or a training-free binary method (binary, binary_median, gray_2bit)"
    )


# --------------------------------------------------------------------------------- input checks
def _code_bytes(codes: Any, nbytes: int, name: str) -> np.ndarray:
    """Codes as ``uint8 (n, nbytes)``: given as such, or as engine words ``uint64 (n, words)``."""
    if not isinstance(codes, np.ndarray):
        raise QamaTypeError(f"{name} must be a NumPy array, got {type(codes).__name__}")
    if codes.ndim != 2:
        raise QamaError(f"{name} must be 2-D, got shape {codes.shape}")
    if codes.dtype == np.uint64:
        if codes.shape[1] != -(-nbytes // 8):
            raise QamaError(
                f"{name} has {codes.shape[1]} uint64 words per row; the codec makes {-(-nbytes // 8)}"
            )
        return _words_as_bytes(codes, nbytes)
    if codes.dtype != np.uint8:
        raise QamaTypeError(
            f"{name} must be uint8 (n, {nbytes}) bytes or uint64 engine words, got {codes.dtype}"
        )
    if codes.shape[1] != nbytes:
        raise QamaError(f"{name} has {codes.shape[1]} bytes per row; the codec makes {nbytes}")
    return np.ascontiguousarray(codes)


def _check_ids(ids: Any, n: int) -> np.ndarray:
    # Row numbers by default, so re-running the same load is idempotent; explicit ids are checked as the
    # engine's indexes check them (nothing stored yet to clash with: the collection upserts).
    return new_ids(ids, n, np.empty(0, dtype=np.int64), 0)


def _check_k(k: Any, name: str = "k") -> int:
    k = positive_int(k, name)
    if k > MAX_TOP_K:
        raise QamaError(f"{name} = {k}; Milvus returns at most {MAX_TOP_K} hits per query")
    return k


def _import_pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as e:
        raise ImportError(
            'qama_rs.milvus needs pymilvus 2.5 and milvus-lite 2.5.1: pip install "qama-rs[milvus]"'
        ) from e
    return pymilvus


@contextlib.contextmanager
def _quiet_milvus_lite() -> Iterator[None]:
    """milvus-lite 2.5.1 imports the deprecated ``pkg_resources``; that warning is not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        yield


def _is_local(uri: str) -> bool:
    return urlparse(uri).scheme.lower() not in _REMOTE_SCHEMES


# ------------------------------------------------------------------------------------ the store
class MilvusIndex:
    """A Milvus collection of one codec's binary codes, searched like a faiss index.

    ``codec``: a :class:`~qama_rs.engine.Quantizer`, an index over one, or any object
    :func:`binary_codec` accepts. ``uri``: a milvus-lite database file (``*.db``, created with its
    folder's permission) or a server ``http://host:19530``; ``token`` (``"user:password"``) and
    ``db_name`` for a server. ``collection``: created on first use with the codec's dimension, or
    opened and checked (code dimension, bit count, quantizer). ``rescore_bytes``: create the
    collection with a ``VARCHAR`` field for compact rescoring codes of that many bytes per row
    (``AsymmetricIndex.bytes_per_vector``). ``index_type`` / ``index_params`` / ``search_params``:
    Milvus's (``BIN_FLAT`` exact; ``BIN_IVF_FLAT`` with ``{"nlist": ...}`` / ``{"nprobe": ...}`` on
    a server). ``timeout``: seconds to wait for the server to answer the connection;
    ``rpc_timeout``: seconds one upsert, search or query may take, retries included (pymilvus
    retries an unavailable server until then).
    """

    def __init__(
        self,
        codec: Any,
        uri: str = "qama_rs.db",
        collection: str = "qama_codes",
        *,
        rescore_bytes: int | None = None,
        token: str = "",
        db_name: str = "",
        index_type: str = "BIN_FLAT",
        index_params: dict[str, Any] | None = None,
        search_params: dict[str, Any] | None = None,
        consistency_level: str = "Strong",
        timeout: float = 10.0,
        rpc_timeout: float = 120,
    ) -> None:
        self.codec = binary_codec(codec)
        self.uri = os.fspath(uri)
        self.collection_name = collection
        self.search_params = dict(search_params or {})
        self.consistency_level = consistency_level
        # pymilvus bounds its retries by `timeout` only when it is an int (else 75 retries, ~3.5 min).
        self.rpc_timeout = max(1, math.ceil(rpc_timeout))
        self._pm = _import_pymilvus()
        self._alias = f"qama-{uuid.uuid4().hex}"
        self._count: int | None = None
        self._connect(token, db_name, timeout)
        try:
            self._collection, self._meta = self._open_or_create(rescore_bytes, index_type, index_params)
        except self._pm.exceptions.MilvusException as e:
            self.close()
            raise QamaError(
                f"Milvus at {self.uri!r} refused collection {collection!r} ({index_type}): {e.message}"
            ) from None
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------------------ connection
    def _connect(self, token: str, db_name: str, timeout: float) -> None:
        pm = self._pm
        kwargs: dict[str, Any] = {"uri": self.uri, "timeout": timeout}
        if token:
            kwargs["token"] = token
        if db_name:
            kwargs["db_name"] = db_name
        if _is_local(self.uri):
            path = Path(self.uri)
            if path.suffix != ".db":
                raise QamaError(
                    f"uri {self.uri!r}: a milvus-lite database is a file ending in .db, or use http://host:port"
                )
            if not path.parent.is_dir():
                raise QamaError(f"uri {self.uri!r}: folder {os.fspath(path.parent)!r} does not exist")
            try:
                with _quiet_milvus_lite():
                    import milvus_lite  # noqa: F401
            except ImportError as e:
                raise ImportError(
                    'a local .db uri runs milvus-lite 2.5.1: pip install "qama-rs[milvus]"'
                ) from e
        try:
            with _quiet_milvus_lite():
                pm.connections.connect(alias=self._alias, **kwargs)
        except pm.exceptions.MilvusException as e:
            raise QamaError(f"cannot reach Milvus at {self.uri!r}: {e.message}") from None

    def close(self) -> None:
        """Drops this object's connection (the collection and a milvus-lite file stay)."""
        with contextlib.suppress(Exception):
            self._pm.connections.disconnect(self._alias)

    def __enter__(self) -> MilvusIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ collection
    def _open_or_create(
        self, rescore_bytes: int | None, index_type: str, index_params: dict[str, Any] | None
    ) -> tuple[Any, dict[str, Any]]:
        pm = self._pm
        name = self.collection_name
        if pm.utility.has_collection(name, using=self._alias):
            collection = pm.Collection(name, using=self._alias)
            meta = self._check_existing(collection, rescore_bytes)
        else:
            meta = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "nbits": self.codec.nbits,
                "codec": self.codec.name,
                "fingerprint": self.codec.fingerprint,
                "rescore_bytes": rescore_bytes,
                "token": uuid.uuid4().hex,  # names this incarnation of the collection in checkpoints
            }
            fields = [
                pm.FieldSchema(ID_FIELD, pm.DataType.INT64, is_primary=True, auto_id=False),
                pm.FieldSchema(CODE_FIELD, pm.DataType.BINARY_VECTOR, dim=self.codec.dim),
            ]
            if rescore_bytes is not None:
                rescore_bytes = operator.index(rescore_bytes)
                if not 1 <= rescore_bytes <= 49_000:
                    raise QamaError(f"rescore_bytes = {rescore_bytes}; must be in 1..=49000 (VARCHAR limit)")
                fields.append(
                    pm.FieldSchema(RESCORE_FIELD, pm.DataType.VARCHAR, max_length=4 * -(-rescore_bytes // 3))
                )
            schema = pm.CollectionSchema(fields, description=json.dumps(meta))
            collection = pm.Collection(
                name, schema, using=self._alias, consistency_level=self.consistency_level
            )
            try:
                collection.create_index(
                    CODE_FIELD,
                    {"index_type": index_type, "metric_type": "HAMMING", "params": dict(index_params or {})},
                )
            except pm.exceptions.MilvusException:
                collection.drop()  # leave no half-made collection behind
                raise
        collection.load()
        return collection, meta

    def _check_existing(self, collection: Any, rescore_bytes: int | None) -> dict[str, Any]:
        name = self.collection_name
        code_field = next((f for f in collection.schema.fields if f.name == CODE_FIELD), None)
        if code_field is None or code_field.dtype != self._pm.DataType.BINARY_VECTOR:
            raise QamaError(
                f"collection {name!r} has no BINARY_VECTOR field {CODE_FIELD!r}; not a qama-rs collection"
            )
        dim = int(code_field.params["dim"])
        if dim != self.codec.dim:
            raise QamaError(
                f"collection {name!r} stores {dim}-dimensional binary codes but {self.codec.name} makes "
                f"{self.codec.dim} ({self.codec.nbits} bits); use another collection or the codec it was written with"
            )
        try:
            meta = json.loads(collection.schema.description)
        except (TypeError, json.JSONDecodeError):
            meta = {}
        if meta.get("format") != FORMAT:
            raise QamaError(
                f"collection {name!r} was not written by qama_rs.milvus (no {FORMAT!r} description)"
            )
        if meta.get("nbits") != self.codec.nbits:
            raise QamaError(
                f"collection {name!r} holds {meta.get('nbits')}-bit codes; the codec makes {self.codec.nbits}"
            )
        theirs, ours = meta.get("fingerprint"), self.codec.fingerprint
        if theirs and ours and theirs != ours:
            raise QamaError(f"collection {name!r} was written by a different quantizer (thresholds differ)")
        if rescore_bytes is not None and meta.get("rescore_bytes") != rescore_bytes:
            raise QamaError(
                f"collection {name!r} has rescore_bytes={meta.get('rescore_bytes')}, asked for {rescore_bytes}"
            )
        return meta

    @property
    def rescore_bytes(self) -> int | None:
        """Bytes of the stored compact rescoring code per row, or None when the field is absent."""
        return self._meta.get("rescore_bytes")

    @property
    def ntotal(self) -> int:
        """Rows in the collection (a strongly consistent ``count(*)``)."""
        rows = self._collection.query(expr="", output_fields=["count(*)"], consistency_level="Strong")
        self._count = int(rows[0]["count(*)"])
        return self._count

    def __len__(self) -> int:
        return self.ntotal

    def ids(self) -> np.ndarray:
        """Every stored id, ascending (pages through the collection; for tests and audits)."""
        found: list[np.ndarray] = []
        iterator = self._collection.query_iterator(
            batch_size=MAX_TOP_K // 2, expr="", output_fields=[ID_FIELD]
        )
        try:
            while rows := iterator.next():
                found.append(np.fromiter((r[ID_FIELD] for r in rows), dtype=np.int64, count=len(rows)))
        finally:
            iterator.close()
        return np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)

    def drop(self) -> None:
        """Deletes the collection and everything in it."""
        self._pm.utility.drop_collection(self.collection_name, using=self._alias)
        self._count = 0

    # ------------------------------------------------------------------------------------- write
    def add(self, x: Any, ids: Any = None, *, rescore_codes: Any = None, **load: Any) -> None:
        """Encodes float rows ``x`` with the codec and upserts them (see :meth:`add_codes`)."""
        self.add_codes(self.codec.encode(x), ids, rescore_codes=rescore_codes, **load)

    def add_index(self, index: Any, *, rescorer: AsymmetricIndex | None = None, **load: Any) -> None:
        """Upserts every code of an in-process Hamming index (``codes`` and ``ids``: the engine's
        :class:`~qama_rs.engine.Index`, or a unified index exposing its first stage), and with
        ``rescorer`` the same documents' compact codes into the ``rescore`` field."""
        first = index if isinstance(index, HammingIndex) else getattr(index, "first_stage", index)
        codes, ids = getattr(first, "codes", None), getattr(first, "ids", None)
        if codes is None and hasattr(first, "codec"):  # the unified qama_rs.Index
            codes = getattr(first.codec, "codes", None)
        if codes is None or ids is None:
            raise QamaError(f"{type(index).__name__} exposes no codes and ids to write")
        theirs = binary_codec(index)  # refuses an index whose codes are not binary
        if theirs.nbits != self.codec.nbits or theirs.fingerprint != self.codec.fingerprint:
            raise QamaError(
                f"{theirs.name} holds codes of another quantizer than this store's {self.codec.name}"
            )
        packed = None if rescorer is None else _packed_for(rescorer, np.asarray(ids))
        self.add_codes(np.asarray(codes), np.asarray(ids), rescore_codes=packed, **load)

    def add_codes(
        self,
        codes: Any,
        ids: Any = None,
        *,
        rescore_codes: Any = None,
        batch_size: int = 20_000,
        checkpoint: str | os.PathLike[str] | None = "auto",
        progress: bool = True,
        before_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        """Upserts binary codes (``uint64 (n, words)`` engine codes or ``uint8 (n, nbytes)``) under
        int64 ``ids`` (unique; default the row numbers ``0..n-1``), in columnar batches of
        ``batch_size`` rows with a progress bar.

        ``rescore_codes``: ``uint8 (n, rescore_bytes)`` packed asymmetric codes of the same rows
        (``AsymmetricIndex.codes`` order), stored when the collection has a ``rescore`` field.

        Upserts make a re-run idempotent. ``checkpoint``: a JSON file recording the batches already
        committed, so a re-run after a failure resumes at the first missing batch ("auto": beside a
        milvus-lite database, none for a server; None: always send everything). ``before_batch(i,
        rows_committed)`` is called before batch ``i`` is sent; raising aborts the load (a deadline,
        or a test's injected failure) with every committed batch kept.
        """
        codes = _code_bytes(codes, self.codec.nbytes, "codes")
        n = len(codes)
        ids = _check_ids(ids, n)
        packed = self._check_rescore_codes(rescore_codes, n)
        batch_size = _check_batch(batch_size)
        path = self._checkpoint_path(checkpoint)
        fingerprint = _fingerprint(ids, codes, packed, batch_size)
        done = self._resume_from(path, fingerprint)
        batches = -(-n // batch_size)
        with tqdm(
            total=n,
            initial=min(done * batch_size, n),
            unit="codes",
            disable=not progress,
            desc=f"milvus {self.collection_name}",
        ) as bar:
            for i in range(done, batches):
                lo, hi = i * batch_size, min((i + 1) * batch_size, n)
                if before_batch is not None:
                    before_batch(i, lo)
                self._upsert(ids[lo:hi], codes[lo:hi], None if packed is None else packed[lo:hi])
                self._save_checkpoint(path, fingerprint, i + 1, batches)
                bar.update(hi - lo)
        self._collection.flush(timeout=self.rpc_timeout)
        self._count = None

    def _check_rescore_codes(self, rescore_codes: Any, n: int) -> np.ndarray | None:
        width = self.rescore_bytes
        if rescore_codes is None:
            if width is not None and n:
                raise QamaError(
                    f"collection {self.collection_name!r} stores rescoring codes: pass rescore_codes"
                )
            return None
        if width is None:
            raise QamaError(
                f"collection {self.collection_name!r} has no rescore field; create it with rescore_bytes="
            )
        if not isinstance(rescore_codes, np.ndarray) or rescore_codes.dtype != np.uint8:
            raise QamaTypeError("rescore_codes must be a NumPy uint8 array (n, rescore_bytes)")
        if rescore_codes.shape != (n, width):
            raise QamaError(f"rescore_codes must have shape ({n}, {width}), got {rescore_codes.shape}")
        return np.ascontiguousarray(rescore_codes)

    def _upsert(self, ids: np.ndarray, codes: np.ndarray, packed: np.ndarray | None) -> None:
        raw, width = codes.tobytes(), codes.shape[1]
        columns: list[Any] = [ids.tolist(), [raw[r * width : (r + 1) * width] for r in range(len(ids))]]
        if self.rescore_bytes is not None:
            assert packed is not None
            columns.append([base64.b64encode(row.tobytes()).decode("ascii") for row in packed])
        try:
            self._collection.upsert(columns, timeout=self.rpc_timeout)
        except self._pm.exceptions.MilvusException as e:
            raise QamaError(
                f"Milvus at {self.uri!r} rejected a batch of {len(ids)} codes: {e.message}"
            ) from e

    # ------------------------------------------------------------------------------ checkpoints
    def _checkpoint_path(self, checkpoint: Any) -> Path | None:
        if checkpoint is None:
            return None
        if checkpoint == "auto":
            if not _is_local(self.uri):
                return None
            db = Path(self.uri)
            return db.with_name(f"{db.name}.{self.collection_name}.load.json")
        return Path(checkpoint)

    def _resume_from(self, path: Path | None, fingerprint: str) -> int:
        if path is None or not path.exists():
            return 0
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return 0
        same = (
            state.get("format") == f"{FORMAT}/load"
            and state.get("collection") == self.collection_name
            and state.get("token") == self._meta.get("token")
            and state.get("fingerprint") == fingerprint
        )
        return int(state.get("batches_committed", 0)) if same else 0

    def _save_checkpoint(self, path: Path | None, fingerprint: str, committed: int, batches: int) -> None:
        if path is None:
            return
        state = {
            "format": f"{FORMAT}/load",
            "collection": self.collection_name,
            "token": self._meta.get("token"),
            "fingerprint": fingerprint,
            "batches_committed": committed,
            "batches": batches,
        }
        atomic_write(path, lambda f: f.write(json.dumps(state).encode()))

    # ------------------------------------------------------------------------------------ search
    def search(
        self,
        xq: Any,
        k: int,
        *,
        k_prime: int | None = None,
        rescorer: Any = None,
        rescore_queries: Any = None,
        rescore_ids: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encodes float queries with the codec and searches the collection.

        Without ``rescorer``: Hamming top-k, ``(D int32, I int64)`` both ``(q, min(k, ntotal))``,
        ascending, ties by lower id (the in-process :class:`~qama_rs.engine.Index` order).

        With ``rescorer``: two-stage — the Hamming top-``k_prime`` (default ``10 * k``) candidates
        from Milvus, rescored in qama-rs, returning the best ``k``: ``(D float32, I int64)``,
        descending. ``rescorer`` is an :class:`~qama_rs.engine.AsymmetricIndex` holding the same ids
        (in-process codes; an *empty* one with the right table scores the codes stored in the
        collection's ``rescore`` field instead), or float32 vectors (:class:`FloatVectors`, an
        array or a ``.npy`` path) whose row ``r`` is the document with id ``rescore_ids[r]``
        (default id ``r``). ``rescore_queries``: the queries in the rescorer's space (e.g.
        ``method.prepare_query(xq)``); default ``xq``.
        """
        k = _check_k(k)
        if rescorer is None:
            if k_prime is not None:
                raise QamaError("k_prime sets the candidates of a rescorer; pass rescorer= too")
            return self.search_codes(self.codec.encode(xq), k)
        k_prime = _check_k(min(10 * k, MAX_TOP_K) if k_prime is None else k_prime, "k_prime")
        _, candidates = self.search_codes(self.codec.encode(xq), k_prime)
        q2 = xq if rescore_queries is None else rescore_queries
        if np.shape(q2)[:1] != (len(candidates),):
            raise QamaError(f"rescore_queries must have {len(candidates)} rows, got shape {np.shape(q2)}")
        return self._rescore(q2, candidates, k, rescorer, rescore_ids)

    def search_codes(self, qcodes: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` (Hamming only) for already encoded queries (``uint64`` words or ``uint8``
        bytes)."""
        k = _check_k(k)
        qbytes = _code_bytes(qcodes, self.codec.nbytes, "qcodes")
        n = self._count if self._count is not None else self.ntotal
        if n == 0:
            raise QamaError(f"collection {self.collection_name!r} is empty; add codes before searching")
        k_eff = min(k, n)
        distances = np.empty((len(qbytes), k_eff), dtype=np.int32)
        ids = np.empty((len(qbytes), k_eff), dtype=np.int64)
        pending = np.arange(len(qbytes))
        limit = min(n, MAX_TOP_K, max(2 * k_eff, k_eff + 32))
        while len(pending):
            unresolved = []
            for qi, (hit_ids, hit_dist) in zip(
                pending, self._raw_search(qbytes[pending], limit), strict=True
            ):
                # Every hit at the k-th distance is in hand once the last hit is farther (or all came back).
                complete = len(hit_ids) < limit or limit >= min(n, MAX_TOP_K)
                ranked = np.sort(hit_dist)
                if not complete and len(ranked) >= k_eff and ranked[-1] == ranked[k_eff - 1]:
                    unresolved.append(qi)
                    continue
                order = np.lexsort((hit_ids, hit_dist))[:k_eff]
                got = len(order)
                distances[qi, :got], ids[qi, :got] = hit_dist[order], hit_ids[order]
                distances[qi, got:], ids[qi, got:] = np.iinfo(np.int32).max, -1  # faiss's "no result"
            pending = np.asarray(unresolved, dtype=np.int64)
            limit = min(n, MAX_TOP_K, 4 * limit)
        return distances, ids

    def _raw_search(self, qbytes: np.ndarray, limit: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        params = {"metric_type": "HAMMING", "params": self.search_params}
        per_request = max(1, min(1024, (1 << 22) // max(limit, 1)))  # keep replies well under gRPC limits
        for lo in range(0, len(qbytes), per_request):
            chunk = qbytes[lo : lo + per_request]
            try:
                result = self._collection.search(
                    [row.tobytes() for row in chunk],
                    CODE_FIELD,
                    params,
                    limit=limit,
                    consistency_level=self.consistency_level,
                    timeout=self.rpc_timeout,
                )
            except self._pm.exceptions.MilvusException as e:
                raise QamaError(f"Milvus search on {self.uri!r} failed: {e.message}") from e
            for hits in result:
                yield np.asarray(hits.ids, dtype=np.int64), np.rint(hits.distances).astype(np.int32)

    # --------------------------------------------------------------------------------- rescoring
    def _rescore(
        self, q2: Any, candidates: np.ndarray, k: int, rescorer: Any, rescore_ids: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        if (candidates < 0).any():
            raise QamaError(
                "Milvus returned fewer candidates than its row count; retry after the load settles"
            )
        if isinstance(rescorer, AsymmetricIndex):
            if len(rescorer) > 0:
                return rescorer.rescore(q2, candidates, k)
            return self._rescore_stored(q2, candidates, k, rescorer)
        vectors = rescorer if isinstance(rescorer, FloatVectors) else FloatVectors(rescorer)
        row_ids = (
            np.arange(len(vectors), dtype=np.int64)
            if rescore_ids is None
            else _check_ids(rescore_ids, len(vectors))
        )
        rows = _rows_of(row_ids, candidates)
        scores, best = vectors.rescore_rows(q2, rows, k)
        return scores, row_ids[best]

    def _rescore_stored(
        self, q2: Any, candidates: np.ndarray, k: int, table: AsymmetricIndex
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rescoring with the compact codes stored in the collection: fetch the candidates' codes,
        put them in a scratch index (ascending ids, so ties fall to the lower id), rescore."""
        width = self.rescore_bytes
        if width is None:
            raise QamaError(
                f"collection {self.collection_name!r} stores no rescoring codes; pass an AsymmetricIndex holding them"
            )
        if table.bytes_per_vector != width:
            raise QamaError(
                f"the rescorer's codes take {table.bytes_per_vector} bytes; the collection stores {width}"
            )
        unique = np.unique(candidates)
        packed = np.empty((len(unique), width), dtype=np.uint8)
        found = np.zeros(len(unique), dtype=bool)
        for lo in range(0, len(unique), MAX_TOP_K // 2):
            chunk = unique[lo : lo + MAX_TOP_K // 2]
            rows = self._collection.query(
                expr=f"{ID_FIELD} in {chunk.tolist()}",
                output_fields=[ID_FIELD, RESCORE_FIELD],
                consistency_level=self.consistency_level,
            )
            for row in rows:
                at = int(np.searchsorted(unique, row[ID_FIELD]))
                packed[at] = np.frombuffer(base64.b64decode(row[RESCORE_FIELD]), dtype=np.uint8)
                found[at] = True
        if not found.all():
            raise QamaError(f"id {int(unique[~found][0])} has no stored rescoring code")
        scratch = AsymmetricIndex(table.recon[:, : table.levels], table.quantizer)
        scratch.add_packed(packed, unique)
        return scratch.rescore(q2, candidates, k)

    def __repr__(self) -> str:
        return f"MilvusIndex({self.codec!r}, uri={self.uri!r}, collection={self.collection_name!r})"


def _rows_of(row_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions in ``row_ids`` of every id in ``wanted`` (any shape); an unknown id is an error."""
    order = np.argsort(row_ids, kind="stable")
    keys = row_ids[order]
    at = np.searchsorted(keys, wanted).clip(0, len(keys) - 1)
    hit = keys[at] == wanted
    if not hit.all():
        raise QamaError(f"candidate id {int(wanted[~hit][0])} has no rescoring vector (see rescore_ids)")
    return order[at]


def _packed_for(rescorer: AsymmetricIndex, ids: np.ndarray) -> np.ndarray:
    """The rescorer's packed codes in the order of ``ids``."""
    return np.ascontiguousarray(rescorer.codes[_rows_of(np.asarray(rescorer.ids), ids)])


def _check_batch(batch_size: Any) -> int:
    return positive_int(batch_size, "batch_size")


def _fingerprint(ids: np.ndarray, codes: np.ndarray, packed: np.ndarray | None, batch_size: int) -> str:
    digest = hashlib.sha256(f"{batch_size}:{codes.shape}".encode())
    digest.update(ids.tobytes())
    digest.update(codes.tobytes())
    if packed is not None:
        digest.update(packed.tobytes())
    return digest.hexdigest()
