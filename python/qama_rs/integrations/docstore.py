"""The SQLite document table of the vector stores, and the metadata-filter language compiled to SQL.

One SQLite file (or ``:memory:``), standard-library :mod:`sqlite3`, JSON for metadata, no pickle::

    meta(name TEXT PRIMARY KEY, value TEXT)             -- JSON values: format, store id, dims, spec, ...
    docs(key INTEGER PRIMARY KEY AUTOINCREMENT,         -- the document's id in the vector index
         doc_id TEXT UNIQUE, text TEXT, metadata TEXT,  -- metadata: a JSON object
         vector BLOB)                                   -- float32 little-endian, the embedding as given

``AUTOINCREMENT`` never hands out a key twice, even after deletes, so the ids in an index snapshot name the
same documents for the life of the file, and rows with a key above the snapshot's last key are exactly the
ones added after it (:mod:`qama_rs.integrations.collection` replays them on load). Every write is one
transaction, committed with ``synchronous=FULL``: a batch is stored whole or not at all.

Filters (:func:`compile_filter`) are dicts, MongoDB-style::

    {"year": 2020}                                  equality (same as {"year": {"$eq": 2020}})
    {"year": {"$gte": 2000, "$lt": 2010}}           range: $gt $gte $lt $lte (numbers with numbers, strings with strings)
    {"lang": {"$in": ["en", "de"]}}                 $in / $nin: one of / none of
    {"title": {"$ne": "x"}}                         $ne
    {"tags": {"$contains": "rct"}}                  an array holding the value, or a string holding it as a substring
    {"title": {"$icontains": "Covid"}}              a string holding it, ignoring case (str.casefold)
    {"note": {"$exists": False}}                    the key is absent ($exists: True: present, even if null)
    {"note": {"$empty": True}}                      absent, null, "" or []
    {"$and": [f, g]}, {"$or": [f, g]}, {"$not": f}  several keys in one dict are combined with $and

Values compare by JSON type: ``1`` matches ``1`` and ``1.0`` but not ``"1"`` or ``true``. As in MongoDB, ``$ne``
and ``$nin`` also match documents without the key, and ``{"k": None}`` matches an absent key or a null value.
Metadata keys are compared whole (``"a.b"`` is the key ``a.b``, not a path).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qama_rs.index import QamaError, QamaTypeError

__all__ = ["DocStore", "Row", "compile_filter"]

FORMAT = "qama-rs/docstore"
FORMAT_VERSION = 1
# Keys per "IN (...)" statement: far below SQLite's 32,766 bound parameters.
_CHUNK = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    vector BLOB NOT NULL
);
"""


def _in_chunks(conn: sqlite3.Connection, statement: str, values: Sequence[Any]) -> Iterator[Any]:
    """The result rows of ``statement`` (its ``{}`` the ``IN`` list) over every one of ``values``, run
    ``_CHUNK`` values at a time."""
    for start in range(0, len(values), _CHUNK):
        part = list(values[start : start + _CHUNK])
        yield from conn.execute(statement.format(",".join("?" * len(part))), part)


@dataclass(frozen=True)
class Row:
    """One stored document (without its vector)."""

    key: int
    doc_id: str
    text: str
    metadata: dict[str, Any]


def dumps_metadata(metadata: Any, where: str) -> str:
    """``metadata`` as JSON text; anything JSON cannot hold exactly is a clear error naming ``where``."""
    if metadata is None:
        return "{}"
    if not isinstance(metadata, Mapping):
        raise QamaTypeError(f"{where}: metadata must be a dict, got {type(metadata).__name__}")
    bad = next((k for k in metadata if not isinstance(k, str)), None)
    if bad is not None:
        raise QamaTypeError(f"{where}: metadata keys must be strings, got {bad!r}")
    try:
        return json.dumps(dict(metadata), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise QamaTypeError(
            f"{where}: metadata must be JSON (str, number, bool, None, list, dict): {err}"
        ) from None


class DocStore:
    """The document table in ``path`` (created if missing) or, with ``path=None``, in SQLite's private temporary
    database (deleted when closed).

    Thread-safe for one process: the connection is shared across threads (LangChain's async methods run the
    sync ones in an executor) and every call holds the caller's lock (:class:`~qama_rs.integrations.
    collection.Collection` serializes them)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else Path(path)
        # "" is SQLite's private temporary database: on disk once it outgrows the page cache, deleted on close,
        # so an unsaved store holds only its codes (and a bounded page cache) in memory.
        self._conn = self._connect("" if path is None else str(path))

    @staticmethod
    def _connect(target: str) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise QamaError(f"{target}: not a qama-rs document store ({err})") from None
        conn.create_function("qama_casefold", 1, _casefold, deterministic=True)
        return conn

    # ------------------------------------------------------------------------------------ meta
    def get_meta(self) -> dict[str, Any]:
        return {name: json.loads(value) for name, value in self._conn.execute("SELECT name, value FROM meta")}

    def set_meta(self, values: Mapping[str, Any]) -> None:
        with self._transaction() as conn:
            self._put_meta(conn, values)

    @staticmethod
    def _put_meta(conn: sqlite3.Connection, values: Mapping[str, Any]) -> None:
        conn.executemany(
            "INSERT INTO meta(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [(k, json.dumps(v)) for k, v in values.items()],
        )

    # ---------------------------------------------------------------------------------- writes
    def _transaction(self):
        return _Transaction(self._conn)

    def upsert(
        self,
        doc_ids: Sequence[str],
        texts: Sequence[str],
        metadata_json: Sequence[str],
        vectors: np.ndarray,
        meta: Mapping[str, Any] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stores the documents (replacing any with the same ``doc_id``), and ``meta`` entries, in one
        transaction; returns ``(keys removed, keys added)`` as int64 arrays, the added ones in ``doc_ids`` order."""
        blobs = [np.ascontiguousarray(v, dtype="<f4").tobytes() for v in vectors]
        with self._transaction() as conn:
            if meta:
                self._put_meta(conn, meta)
            removed = self._delete_doc_ids(conn, doc_ids)
            added = [
                conn.execute(
                    "INSERT INTO docs(doc_id, text, metadata, vector) VALUES (?, ?, ?, ?)", row
                ).lastrowid
                for row in zip(doc_ids, texts, metadata_json, blobs, strict=True)
            ]
        return removed, np.asarray(added, dtype=np.int64)

    @staticmethod
    def _delete_doc_ids(conn: sqlite3.Connection, doc_ids: Sequence[str]) -> np.ndarray:
        statement = "DELETE FROM docs WHERE doc_id IN ({}) RETURNING key"
        removed = [k for (k,) in _in_chunks(conn, statement, doc_ids)]
        return np.asarray(sorted(removed), dtype=np.int64)

    def delete(self, doc_ids: Sequence[str]) -> np.ndarray:
        """Deletes these documents (unknown ids are ignored); returns the removed keys."""
        with self._transaction() as conn:
            return self._delete_doc_ids(conn, list(doc_ids))

    def delete_keys(self, keys: np.ndarray) -> np.ndarray:
        """Deletes the documents with these keys; returns the keys that were there."""
        statement = "DELETE FROM docs WHERE key IN ({}) RETURNING key"
        with self._transaction() as conn:
            removed = [k for (k,) in _in_chunks(conn, statement, [int(k) for k in keys])]
        return np.asarray(sorted(removed), dtype=np.int64)

    # ----------------------------------------------------------------------------------- reads
    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0])

    def keys(self, after: int = 0) -> np.ndarray:
        """Every key above ``after``, ascending."""
        rows = self._conn.execute("SELECT key FROM docs WHERE key > ? ORDER BY key", (int(after),)).fetchall()
        return np.asarray([k for (k,) in rows], dtype=np.int64)

    def max_key(self) -> int:
        """The largest key ever handed out (0 for a new store): deleted keys count, they are never reused."""
        row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'docs'").fetchone()
        return int(row[0]) if row else 0

    def rows(self, keys: Iterable[int]) -> dict[int, Row]:
        """The stored documents with these keys (absent keys are left out)."""
        return {row.key: row for row in self._rows_where("key", [int(k) for k in keys])}

    def rows_by_doc_id(self, doc_ids: Sequence[str]) -> list[Row]:
        """The stored documents with these ids, in the order asked (absent ids are left out, repeats once)."""
        ids = list(dict.fromkeys(doc_ids))
        found = {row.doc_id: row for row in self._rows_where("doc_id", ids)}
        return [found[d] for d in ids if d in found]

    def _rows_where(self, column: str, values: list) -> Iterator[Row]:
        """The stored documents whose ``column`` is one of ``values``."""
        statement = f"SELECT key, doc_id, text, metadata FROM docs WHERE {column} IN ({{}})"
        for key, doc_id, text, metadata in _in_chunks(self._conn, statement, values):
            yield Row(key, doc_id, text, json.loads(metadata))

    def vectors(self, keys: np.ndarray, dims: int) -> np.ndarray:
        """float32 ``(len(keys), dims)``, rows in ``keys`` order (every key must be stored)."""
        keys = np.asarray(keys, dtype=np.int64)
        out = np.empty((len(keys), dims), dtype=np.float32)
        at = {int(k): i for i, k in enumerate(keys)}
        statement = "SELECT key, vector FROM docs WHERE key IN ({})"
        for key, blob in _in_chunks(self._conn, statement, keys.tolist()):
            out[at.pop(key)] = np.frombuffer(blob, dtype="<f4")
        if at:
            raise QamaError(f"document store: no vector for key {next(iter(at))}")
        return out

    def iter_vectors(
        self, dims: int, after: int = 0, batch: int = 8192
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(keys int64, vectors float32 (n, dims))`` batches of every row with a key above ``after``, ascending."""
        cursor = self._conn.execute("SELECT key, vector FROM docs WHERE key > ? ORDER BY key", (int(after),))
        while True:
            chunk = cursor.fetchmany(batch)
            if not chunk:
                return
            keys = np.fromiter((k for k, _ in chunk), dtype=np.int64, count=len(chunk))
            data = np.frombuffer(b"".join(b for _, b in chunk), dtype="<f4").reshape(len(chunk), dims)
            yield keys, data.astype(np.float32)

    def match(self, filter: Mapping[str, Any], doc_ids: Sequence[str] | None = None) -> np.ndarray:
        """Keys (ascending) of the documents ``filter`` matches (see the module docs), restricted to ``doc_ids``
        when given."""
        where, params = compile_filter(filter)
        if doc_ids is not None:
            where = f"({where}) AND doc_id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(doc_ids)))
        rows = self._conn.execute(f"SELECT key FROM docs WHERE {where} ORDER BY key", params).fetchall()
        return np.asarray([k for (k,) in rows], dtype=np.int64)

    def match_callable(self, predicate: Callable[[Row], bool], batch: int = 4096) -> np.ndarray:
        """Keys (ascending) of the documents for which ``predicate(row)`` is true (one Python call per document)."""
        cursor = self._conn.execute("SELECT key, doc_id, text, metadata FROM docs ORDER BY key")
        keys: list[int] = []
        while chunk := cursor.fetchmany(batch):
            keys += [k for k, d, t, m in chunk if predicate(Row(k, d, t, json.loads(m)))]
        return np.asarray(keys, dtype=np.int64)

    # ------------------------------------------------------------------------------ durability
    def backup_to(self, path: str | os.PathLike[str]) -> None:
        """Writes a copy of the whole store to ``path`` atomically (temporary file, fsync, rename)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            dest = sqlite3.connect(tmp)
            try:
                self._conn.backup(dest)
            finally:
                dest.close()
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)

    def close(self) -> None:
        self._conn.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception (nothing half-written)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _casefold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------- filters

_FIELD_OPS = (
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$contains",
    "$icontains",
    "$empty",
)
_RANGE_SQL = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_NUMBER = "('integer', 'real')"


class _Compiler:
    """Builds one SQL boolean expression over ``docs.metadata``; every leaf is 0 or 1, never NULL, so ``NOT``
    and ``$nin`` behave as written."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def p(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    # -- helpers over one key
    def typ(self, path: str) -> str:
        return f"json_type(metadata, {self.p(path)})"

    def val(self, path: str) -> str:
        return f"json_extract(metadata, {self.p(path)})"

    def eq(self, path: str, value: Any) -> str:
        if value is None:
            return f"({self.typ(path)} IS NULL OR {self.typ(path)} = 'null')"
        if isinstance(value, bool):
            return f"{self.typ(path)} = '{'true' if value else 'false'}'"
        if isinstance(value, int | float):
            return f"({self.typ(path)} IN {_NUMBER} AND {self.val(path)} = {self.p(value)})"
        return f"({self.typ(path)} = 'text' AND {self.val(path)} = {self.p(value)})"

    def one_of(self, path: str, values: list[Any]) -> str:
        as_json = json.dumps(values, allow_nan=False)
        parts = []
        if any(isinstance(v, str) for v in values):
            parts.append(
                f"({self.typ(path)} = 'text' AND {self.val(path)} IN "
                f"(SELECT value FROM json_each({self.p(as_json)}) WHERE type = 'text'))"
            )
        if any(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            parts.append(
                f"({self.typ(path)} IN {_NUMBER} AND {self.val(path)} IN "
                f"(SELECT value FROM json_each({self.p(as_json)}) WHERE type IN {_NUMBER}))"
            )
        parts += [self.eq(path, v) for v in {v for v in values if isinstance(v, bool) or v is None}]
        return "(" + " OR ".join(parts) + ")" if parts else "0"

    def element_eq(self, value: Any) -> str:
        if value is None:
            return "e.type = 'null'"
        if isinstance(value, bool):
            return f"e.type = '{'true' if value else 'false'}'"
        if isinstance(value, int | float):
            return f"(e.type IN {_NUMBER} AND e.value = {self.p(value)})"
        return f"(e.type = 'text' AND e.value = {self.p(value)})"

    # -- the grammar
    def filter(self, node: Any, where: str) -> str:
        if not isinstance(node, Mapping):
            raise QamaTypeError(f"{where} must be a dict such as {{'year': 2020}}, got {type(node).__name__}")
        parts = [self.clause(key, cond, where) for key, cond in node.items()]
        return "(" + " AND ".join(parts) + ")" if parts else "1"

    def clause(self, key: Any, cond: Any, where: str) -> str:
        if not isinstance(key, str):
            raise QamaTypeError(f"{where}: keys must be strings, got {key!r}")
        if key in ("$and", "$or"):
            if not isinstance(cond, list | tuple) or not cond:
                raise QamaError(f"{where}: {key} takes a non-empty list of filters, got {cond!r}")
            inner = [self.filter(c, f"{where}[{key!r}][{i}]") for i, c in enumerate(cond)]
            return "(" + f" {key[1:].upper()} ".join(inner) + ")"
        if key == "$not":
            return f"(NOT {self.filter(cond, f'{where}[$not]')})"
        if key.startswith("$"):
            raise QamaError(f"{where}: unknown operator {key!r} (logical operators: $and, $or, $not)")
        if '"' in key or "\\" in key:
            raise QamaError(
                f"{where}: metadata key {key!r} holds a quote or backslash, which filters cannot name"
            )
        path = f'$."{key}"'
        if isinstance(cond, Mapping):
            if not cond:
                raise QamaError(f"{where}[{key!r}]: an empty condition; write {{'$eq': value}} or a value")
            ops = [self.op(path, op, arg, f"{where}[{key!r}]") for op, arg in cond.items()]
            return "(" + " AND ".join(ops) + ")"
        return self.op(path, "$eq", cond, f"{where}[{key!r}]")

    def op(self, path: str, op: Any, arg: Any, where: str) -> str:
        if op not in _FIELD_OPS:
            raise QamaError(f"{where}: unknown operator {op!r}; one of {', '.join(_FIELD_OPS)}")
        if op in ("$eq", "$ne"):
            sql = self.eq(path, _scalar(arg, where, op))
            return _leaf(sql, negate=op == "$ne")
        if op in _RANGE_SQL:
            arg = _scalar(arg, where, op)
            if arg is None or isinstance(arg, bool):
                raise QamaTypeError(f"{where}: {op} compares numbers or strings, got {arg!r}")
            kind = f"IN {_NUMBER}" if isinstance(arg, int | float) else "= 'text'"
            return _leaf(f"({self.typ(path)} {kind} AND {self.val(path)} {_RANGE_SQL[op]} {self.p(arg)})")
        if op in ("$in", "$nin"):
            if not isinstance(arg, list | tuple | set | frozenset):
                raise QamaTypeError(f"{where}: {op} takes a list of values, got {type(arg).__name__}")
            values = [_scalar(v, where, op) for v in arg]
            return _leaf(self.one_of(path, values), negate=op == "$nin")
        if op in ("$exists", "$empty"):
            if not isinstance(arg, bool):
                raise QamaTypeError(f"{where}: {op} takes True or False, got {arg!r}")
            if op == "$exists":
                return _leaf(f"{self.typ(path)} IS NOT NULL", negate=not arg)
            t = self.typ
            sql = (
                f"({t(path)} IS NULL OR {t(path)} = 'null' OR ({t(path)} = 'text' AND {self.val(path)} = '') "
                f"OR ({t(path)} = 'array' AND json_array_length(metadata, {self.p(path)}) = 0))"
            )
            return _leaf(sql, negate=not arg)
        if op == "$icontains":
            if not isinstance(arg, str):
                raise QamaTypeError(f"{where}: $icontains takes a string, got {arg!r}")
            return _leaf(
                f"({self.typ(path)} = 'text' AND instr(qama_casefold({self.val(path)}), {self.p(arg.casefold())}) > 0)"
            )
        # $contains: Python's `in` — an array element equal to the value, or a substring of a string.
        arg = _scalar(arg, where, op)
        sql = (
            f"({self.typ(path)} = 'array' AND EXISTS (SELECT 1 FROM json_each(metadata, {self.p(path)}) AS e "
            f"WHERE {self.element_eq(arg)}))"
        )
        if isinstance(arg, str):
            sql = f"({sql} OR ({self.typ(path)} = 'text' AND instr({self.val(path)}, {self.p(arg)}) > 0))"
        return _leaf(sql)


def _leaf(sql: str, negate: bool = False) -> str:
    return f"(NOT COALESCE({sql}, 0))" if negate else f"COALESCE({sql}, 0)"


def _scalar(value: Any, where: str, op: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise QamaError(f"{where}: {op} value {value!r} is not finite")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise QamaError(f"{where}: {op} value {value} does not fit in 64 bits")
        return value
    if isinstance(value, np.generic):
        return _scalar(value.item(), where, op)
    if isinstance(value, list | tuple | dict):
        hint = (
            "; to match one of several values use {'$in': [...]}" if isinstance(value, list | tuple) else ""
        )
        raise QamaTypeError(
            f"{where}: {op} compares one value (str, number, bool or None), got {value!r}{hint}"
        )
    raise QamaTypeError(f"{where}: {op} compares str, number, bool or None, got {type(value).__name__}")


def compile_filter(filter: Mapping[str, Any], name: str = "filter") -> tuple[str, list[Any]]:
    """``(SQL boolean expression over the docs table, parameters)`` for ``filter`` (see the module docs). A
    malformed filter raises :class:`~qama_rs.QamaError` (or ``QamaTypeError``) naming ``name`` and the part."""
    compiler = _Compiler()
    sql = compiler.filter(filter, name)
    return sql, compiler.params


def check_store_name(name: Any) -> None:
    """A store's file stem: a plain file name, no folders."""
    if not isinstance(name, str) or not name or name != Path(name).name or name.startswith("."):
        raise QamaError(f"index_name must be a plain file name (no folders), got {name!r}")


def same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def doc_ids_for(doc_ids: Sequence[str | None] | None, n: int) -> list[str]:
    """The ids of ``n`` new documents: the caller's (``None`` entries become new UUIDs), or all new UUIDs."""
    if doc_ids is None:
        return [uuid.uuid4().hex for _ in range(n)]
    if isinstance(doc_ids, str):
        raise QamaTypeError("ids must be a list with one id per text, not one string")
    ids = list(doc_ids)
    if len(ids) != n:
        raise QamaError(f"ids has {len(ids)} entries for {n} texts")
    out = []
    for i, d in enumerate(ids):
        if d is None:
            d = uuid.uuid4().hex
        elif not isinstance(d, str):
            raise QamaTypeError(f"ids[{i}] must be a str (or None for a new UUID), got {type(d).__name__}")
        out.append(d)
    if len(set(out)) != n:
        seen: set[str] = set()
        dup = next(d for d in out if d in seen or seen.add(d))
        raise QamaError(f"ids: {dup!r} appears twice in one call")
    return out
