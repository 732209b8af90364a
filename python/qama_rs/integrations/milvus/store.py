"""The Milvus collection of one codec's binary codes: its schema, batched idempotent upserts, and the
Hamming search (with optional rescoring of the candidates in qama-rs, :mod:`.rescore`).

A collection holds ``id`` (``INT64`` primary key), ``code`` (``BINARY_VECTOR``, metric ``HAMMING``) and
optionally ``rescore`` (``VARCHAR``: a compact code, base64); its description records the format, the
codec's bit count and fingerprints, and a creation token the load journal (:mod:`.checkpoint`) names.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from tqdm.auto import tqdm

from qama_rs.engine import args
from qama_rs.errors import QamaError, QamaTypeError
from qama_rs.index import Index
from qama_rs.integrations.milvus import rescore as second_stage
from qama_rs.integrations.milvus.checkpoint import LoadJournal, data_fingerprint, journal_path
from qama_rs.integrations.milvus.codec import binary_codec, code_bytes, stored_rows

__all__ = ["MAX_TOP_K", "MilvusIndex"]

FORMAT = "qama-rs/milvus"
FORMAT_VERSION = 1
MAX_TOP_K = 16_384  # Milvus's largest search limit (and query result window)
ID_FIELD, CODE_FIELD, RESCORE_FIELD = "id", "code", "rescore"
_REMOTE_SCHEMES = ("http", "https", "tcp", "grpc", "unix")
_INT64_MAX = np.iinfo(np.int64).max


# --------------------------------------------------------------------------------- input checks
def check_ids(ids: Any, n: int) -> np.ndarray:
    """int64 ids of ``n`` rows: the row numbers by default (so re-running the same load is idempotent),
    else non-negative, unique integers (``-1`` marks a missing result)."""
    if ids is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(ids, str | bytes):
        raise QamaTypeError("ids must be a sequence of integers (one per row), not a string")
    try:
        array = np.asarray(ids)
    except (TypeError, ValueError) as err:
        raise QamaTypeError(f"ids must be a sequence of integers: {err}") from None
    if array.size == 0 and n == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu" or array.dtype == np.bool_:
        raise QamaTypeError(f"ids must be integers, got dtype {array.dtype}")
    if array.shape != (n,):
        raise QamaError(f"ids must have shape ({n},) (one per row), got {array.shape}")
    if array.dtype.kind == "u" and int(array.max()) > _INT64_MAX:
        raise QamaError("ids must fit in int64")
    array = array.astype(np.int64)
    if int(array.min()) < 0:
        raise QamaError(f"ids must be non-negative (-1 marks a missing result), got {int(array.min())}")
    if len(np.unique(array)) != n:
        raise QamaError("ids contains duplicates")
    return array


def positive_int(value: Any, name: str, high: int | None = MAX_TOP_K) -> int:
    value = args.positive_int(value, name)
    if high is not None and value > high:
        raise QamaError(f"{name} = {value}; Milvus returns at most {high} hits per query")
    return value


def _import_pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as e:
        raise ImportError(
            'qama_rs.integrations.milvus needs pymilvus 2.5 and milvus-lite 2.5.1: pip install "qama-rs[milvus]"'
        ) from e
    return pymilvus


@contextlib.contextmanager
def _quiet_milvus_lite() -> Iterator[None]:
    """milvus-lite 2.5.1 imports the deprecated ``pkg_resources``; that warning is not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        yield


def is_local(uri: str) -> bool:
    return urlparse(uri).scheme.lower() not in _REMOTE_SCHEMES


# ------------------------------------------------------------------------------------ the store
class MilvusIndex:
    """A Milvus collection of one codec's binary codes, searched like a faiss index.

    ``codec``: a :class:`~qama_rs.Quantizer`, a :class:`qama_rs.Index` over a thermometer code, or any
    object :func:`~qama_rs.integrations.milvus.binary_codec` accepts. ``uri``: a milvus-lite database file
    (``*.db``, created with its folder's permission) or a server ``http://host:19530``; ``token``
    (``"user:password"``) and ``db_name`` for a server. ``collection``: created on first use with the
    codec's dimension, or opened and checked (code dimension, bit count, quantizer, transforms).
    ``rescore_bytes``: create the collection with a ``VARCHAR`` field for compact rescoring codes of that
    many bytes per row (the rescoring index's ``bytes_per_vector``). ``index_type`` / ``index_params`` /
    ``search_params``: Milvus's (``BIN_FLAT`` exact; ``BIN_IVF_FLAT`` with ``{"nlist": ...}`` /
    ``{"nprobe": ...}`` on a server). ``timeout``: seconds to wait for the server to answer the
    connection; ``rpc_timeout``: seconds one upsert, search or query may take, retries included (pymilvus
    retries an unavailable server until then).
    """

    def __init__(
        self,
        codec: Any,
        uri: str | os.PathLike[str] = "qama_rs.db",
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
        if is_local(self.uri):
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
                raise ImportError('a local .db uri runs milvus-lite 2.5.1: pip install "qama-rs[milvus]"') from e
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
                "transforms": self.codec.transforms,
                "rescore_bytes": rescore_bytes,
                "token": uuid.uuid4().hex,  # names this incarnation of the collection in load journals
            }
            fields = [
                pm.FieldSchema(ID_FIELD, pm.DataType.INT64, is_primary=True, auto_id=False),
                pm.FieldSchema(CODE_FIELD, pm.DataType.BINARY_VECTOR, dim=self.codec.dim),
            ]
            if rescore_bytes is not None:
                rescore_bytes = positive_int(rescore_bytes, "rescore_bytes", high=None)
                if rescore_bytes > 49_000:
                    raise QamaError(f"rescore_bytes = {rescore_bytes}; must be in 1..=49000 (VARCHAR limit)")
                meta["rescore_bytes"] = rescore_bytes
                fields.append(
                    pm.FieldSchema(RESCORE_FIELD, pm.DataType.VARCHAR, max_length=4 * -(-rescore_bytes // 3))
                )
            schema = pm.CollectionSchema(fields, description=json.dumps(meta))
            collection = pm.Collection(name, schema, using=self._alias, consistency_level=self.consistency_level)
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
        name, codec = self.collection_name, self.codec
        code_field = next((f for f in collection.schema.fields if f.name == CODE_FIELD), None)
        if code_field is None or code_field.dtype != self._pm.DataType.BINARY_VECTOR:
            raise QamaError(
                f"collection {name!r} has no BINARY_VECTOR field {CODE_FIELD!r}; not a qama-rs collection"
            )
        dim = int(code_field.params["dim"])
        if dim != codec.dim:
            raise QamaError(
                f"collection {name!r} stores {dim}-dimensional binary codes but {codec.name} makes "
                f"{codec.dim} ({codec.nbits} bits); use another collection or the codec it was written with"
            )
        try:
            meta = json.loads(collection.schema.description)
        except (TypeError, json.JSONDecodeError):
            meta = {}
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise QamaError(
                f"collection {name!r} was not written by qama_rs.integrations.milvus (no {FORMAT!r} description)"
            )
        if meta.get("nbits") != codec.nbits:
            raise QamaError(f"collection {name!r} holds {meta.get('nbits')}-bit codes; the codec makes {codec.nbits}")
        theirs, ours = meta.get("fingerprint"), codec.fingerprint
        if theirs and ours and theirs != ours:
            raise QamaError(f"collection {name!r} was written by a different quantizer (thresholds differ)")
        # Collections written before transforms were recorded have no such key: nothing to compare.
        if "transforms" in meta and meta["transforms"] != codec.transforms:
            raise QamaError(
                f"collection {name!r} was written through other transforms (rotation, prefix or head) than "
                f"{codec.name}'s"
            )
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
        iterator = self._collection.query_iterator(batch_size=MAX_TOP_K // 2, expr="", output_fields=[ID_FIELD])
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

    def add_index(self, index: Index, *, rescorer: Index | None = None, **load: Any) -> None:
        """Upserts every code of an in-process :class:`qama_rs.Index` over this store's thermometer
        code, under the index's ids; with ``rescorer`` (an index of one per-dimension codec, e.g.
        ``LloydMax2``, holding the same ids) also the same documents' compact codes into the ``rescore``
        field. ``load``: as for :meth:`add_codes`."""
        theirs = binary_codec(index)  # refuses an index whose codes are not binary
        if not isinstance(index, Index):
            raise QamaTypeError(f"index must be a qama_rs.Index, got {type(index).__name__}")
        if not theirs.same_codes(self.codec):
            raise QamaError(f"{theirs.name} holds codes of another quantizer than this store's {self.codec.name}")
        codes, ids = stored_rows(index)
        packed = None
        if rescorer is not None:
            rows, row_ids = stored_rows(second_stage.check_rescorer(rescorer))
            if rows.dtype != np.uint8:
                raise QamaError(
                    f"rescorer {rescorer.spec!r} stores {rows.dtype} rows; the rescore field holds the packed "
                    "codes of one per-dimension codec (LloydMax2, Binary, ...)"
                )
            packed = rows[second_stage.positions_of(row_ids, ids, f"the rescorer {rescorer.spec!r}")]
        self.add_codes(codes, ids, rescore_codes=packed, **load)

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
        ``batch_size`` rows with a progress bar (stderr).

        ``rescore_codes``: ``uint8 (n, rescore_bytes)`` packed compact codes of the same rows (what
        ``Index.add_codes`` of the rescoring index takes), stored when the collection has a ``rescore``
        field.

        Upserts make a re-run idempotent. ``checkpoint``: a JSON journal recording the batches already
        committed, so a re-run after a failure resumes at the first missing batch ("auto": beside a
        milvus-lite database, none for a server; None: always send everything). ``before_batch(i,
        rows_committed)`` is called before batch ``i`` is sent; raising aborts the load (a deadline,
        or a test's injected failure) with every committed batch kept.
        """
        codes = code_bytes(codes, self.codec.nbytes, "codes")
        n = len(codes)
        ids = check_ids(ids, n)
        packed = self._check_rescore_codes(rescore_codes, n)
        batch_size = positive_int(batch_size, "batch_size", high=None)
        journal = LoadJournal(
            journal_path(checkpoint, self.uri, self.collection_name, is_local(self.uri)),
            self.collection_name,
            self._meta.get("token"),
            data_fingerprint(ids, codes, packed, batch_size),
        )
        batches = -(-n // batch_size)
        done = min(journal.committed(), batches)
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
                journal.record(i + 1, batches)
                bar.update(hi - lo)
        self._collection.flush(timeout=self.rpc_timeout)
        self._count = None

    def _check_rescore_codes(self, rescore_codes: Any, n: int) -> np.ndarray | None:
        width = self.rescore_bytes
        if rescore_codes is None:
            if width is not None and n:
                raise QamaError(f"collection {self.collection_name!r} stores rescoring codes: pass rescore_codes")
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
            raise QamaError(f"Milvus at {self.uri!r} rejected a batch of {len(ids)} codes: {e.message}") from e

    # ------------------------------------------------------------------------------------ search
    def search(
        self,
        xq: Any,
        k: int,
        *,
        k_prime: int | None = None,
        rescorer: Index | None = None,
        rescore_queries: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encodes float queries with the codec and searches the collection.

        Without ``rescorer``: Hamming top-k, ``(D int32, I int64)`` both ``(q, min(k, ntotal))``,
        ascending distance, ties by lower id (the order of :func:`qama_rs.search`; a ``Thermo*``
        :class:`qama_rs.Index` returns the same with ``D = -distance``).

        With ``rescorer``: two-stage — Milvus's Hamming top-``k_prime`` (default ``10 * k``) candidates,
        rescored in qama-rs by ``rescorer``, a :class:`qama_rs.Index` holding the same ids (compact codes
        such as ``LloydMax2``, or ``Flat`` float32 vectors, mapped or in memory; a trained *empty* one
        scores the codes stored in the collection's ``rescore`` field instead): ``(D float32, I int64)``,
        both ``(q, k)``, higher is better, ``I = -1`` past the candidates (see :mod:`.rescore`).
        ``rescore_queries``: the queries in the rescorer's space when it indexes other vectors than
        ``xq`` (e.g. full-width vectors behind a prefix code); default ``xq``.
        """
        k = positive_int(k, "k")
        if rescorer is None:
            if k_prime is not None or rescore_queries is not None:
                raise QamaError("k_prime and rescore_queries set the second stage; pass rescorer= too")
            return self.search_codes(self.codec.encode(xq), k)
        rescorer = second_stage.check_rescorer(rescorer)
        k_prime = positive_int(min(10 * k, MAX_TOP_K) if k_prime is None else k_prime, "k_prime")
        queries = xq if rescore_queries is None else rescore_queries
        if np.ndim(queries) != 2 or np.shape(queries)[1] != rescorer.dims:
            name = "xq" if rescore_queries is None else "rescore_queries"
            raise QamaError(
                f"{name} has shape {np.shape(queries)}; the rescorer {rescorer.spec!r} takes {rescorer.dims} "
                "columns (pass rescore_queries= in the rescorer's space)"
            )
        _, candidates = self.search_codes(self.codec.encode(xq), k_prime)
        if np.shape(queries)[0] != len(candidates):
            raise QamaError(f"rescore_queries must have {len(candidates)} rows, got shape {np.shape(queries)}")
        if (candidates < 0).any():
            raise QamaError("Milvus returned fewer candidates than its row count; retry after the load settles")
        if len(rescorer) == 0:
            rescorer = self._stored_rescorer(rescorer, candidates)
        return second_stage.rescore(rescorer, queries, candidates, k)

    def search_codes(self, qcodes: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` (Hamming only) for already encoded queries (``uint64`` words or ``uint8``
        bytes)."""
        k = positive_int(k, "k")
        qbytes = code_bytes(qcodes, self.codec.nbytes, "qcodes")
        n = self._count if self._count is not None else self.ntotal
        if n == 0:
            raise QamaError(f"collection {self.collection_name!r} is empty; add codes before searching")
        k_eff = min(k, n)
        distances = np.empty((len(qbytes), k_eff), dtype=np.int32)
        ids = np.empty((len(qbytes), k_eff), dtype=np.int64)
        pending = np.arange(len(qbytes))
        # Milvus breaks ties arbitrarily: ask for more hits than k until the last is farther than the k-th.
        limit = min(n, MAX_TOP_K, max(2 * k_eff, k_eff + 32))
        while len(pending):
            unresolved = []
            for qi, (hit_ids, hit_dist) in zip(pending, self._raw_search(qbytes[pending], limit), strict=True):
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

    def _stored_rescorer(self, template: Index, candidates: np.ndarray) -> Index:
        """The candidates' compact codes fetched from the ``rescore`` field, in a scratch copy of the
        trained, empty ``template``."""
        width = self.rescore_bytes
        if width is None:
            raise QamaError(
                f"collection {self.collection_name!r} stores no rescoring codes; pass a rescorer index "
                "holding the documents"
            )
        if template.bytes_per_vector != width:
            raise QamaError(
                f"the rescorer {template.spec!r} stores {template.bytes_per_vector} bytes per vector; the "
                f"collection stores {width}"
            )
        unique = np.unique(candidates)
        packed = np.empty((len(unique), width), dtype=np.uint8)
        found = np.zeros(len(unique), dtype=bool)
        for lo in range(0, len(unique), MAX_TOP_K // 2):
            chunk = unique[lo : lo + MAX_TOP_K // 2]
            try:
                rows = self._collection.query(
                    expr=f"{ID_FIELD} in {chunk.tolist()}",
                    output_fields=[ID_FIELD, RESCORE_FIELD],
                    consistency_level=self.consistency_level,
                    timeout=self.rpc_timeout,
                )
            except self._pm.exceptions.MilvusException as e:
                raise QamaError(f"Milvus query on {self.uri!r} failed: {e.message}") from e
            for row in rows:
                at = int(np.searchsorted(unique, row[ID_FIELD]))
                packed[at] = np.frombuffer(base64.b64decode(row[RESCORE_FIELD]), dtype=np.uint8)
                found[at] = True
        if not found.all():
            raise QamaError(f"id {int(unique[~found][0])} has no stored rescoring code")
        return second_stage.scratch_index(template, packed, unique)

    def __repr__(self) -> str:
        return f"MilvusIndex({self.codec!r}, uri={self.uri!r}, collection={self.collection_name!r})"
