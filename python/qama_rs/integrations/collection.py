"""A collection of documents: text, metadata and embedding in a SQLite :class:`~qama_rs.integrations.docstore.
DocStore`, the embeddings encoded in a :class:`qama_rs.Index`, searched with metadata filters applied inside the
search. The LangChain and LlamaIndex vector stores are thin adapters over it.

**Which codec.** ``spec`` is any factory spec (``"Thermo1"``, ``"LloydMax2"``,
``"pca_nibble_scaled(budget_bytes=48)"``, ...). Without one, the budget chooser
(:func:`qama_rs.quantizers.budget.choose_codec`) picks the codec with the best pseudo-query recall@10 within
``budget_bytes`` (default 48) on the stored documents themselves (a seeded sample of at most 4,096), once, at the
first fit; the choice is kept in the store. The chooser fits about seven candidate codecs: seconds to a minute.

**When a codec is fitted.** Codecs that learn from data are fitted on the stored embeddings, never on a
handful: while the collection holds fewer than ``min_train`` documents (default 1,000; at least 50 when the
chooser picks the codec) it searches them exactly (float32 inner product, the ``Flat`` spec). Once it holds
``min_train``, the next search, :meth:`Collection.save` or :meth:`Collection.refit` fits the codec on all of them
and re-encodes every document; it refits the same way each time the collection has doubled since the last fit,
until a fit has seen ``max_train`` documents (default 100,000; larger collections fit on a seeded sample of
``max_train``). So loading documents and then searching gives the codec ``qama eval`` fits on the same documents,
however the documents were batched. An add itself fits only when the collection has grown eight-fold since the
last fit (which bounds the float32 rows held before the first fit, and how stale a codec can get). Codecs that
learn nothing (``Flat``, ``Sign``, ...) encode from the first document. The stored float32 embeddings (in SQLite,
on disk once saved) are what refits, maximal-marginal-relevance search and a rebuild read.

**Scores** (``Hit.score``, ``Hit.relevance``): see :mod:`qama_rs.integrations.scores`.

**Filters** are the allowed-ids set of the index search itself (``Index.search(..., allowed=keys)``): a search
returns ``k`` documents whenever ``k`` documents match, never a post-filtered short list. A dict filter is compiled
to SQL over the metadata (:func:`~qama_rs.integrations.docstore.compile_filter`); a Python callable is called once
per stored document.

**Files.** :meth:`Collection.save` writes ``<name>.sqlite`` (the documents, copied atomically the first time) and
``<name>.qidx`` (the index, written atomically; its metadata records the store's id and the last SQLite key it
holds) into a folder, which becomes the collection's home: every later add or delete is committed to that SQLite
file as it happens. :meth:`Collection.load` reads the snapshot and replays the rows added or deleted after it, so
a process killed at any point loses only the batch it was writing (whole: a batch is one transaction) and never
stores a document twice. A missing, foreign or corrupt snapshot is rebuilt from the SQLite file. One process
writes a home folder at a time.
"""

from __future__ import annotations

import os
import threading
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qama_rs.index import Index, QamaError, QamaTypeError, index_factory, parse_spec
from qama_rs.integrations.docstore import (
    FORMAT,
    FORMAT_VERSION,
    DocStore,
    Row,
    check_store_name,
    doc_ids_for,
    dumps_metadata,
    same_file,
)
from qama_rs.integrations.scores import Hit, relevance_fn, score_kind

__all__ = ["DEFAULT_BUDGET_BYTES", "MAX_TRAIN", "MIN_TRAIN", "Collection", "Hit"]

DEFAULT_BUDGET_BYTES = 48
MIN_TRAIN = 1000
MAX_TRAIN = 100_000
#: Fewest documents the budget chooser runs on (it holds out a fifth of them as pseudo-queries).
CHOOSER_MIN = 50
#: Documents the chooser fits its candidates on (a seeded sample of the training set beyond this).
CHOOSER_DOCS = 4096
#: An add fits when the collection has grown this much since the last fit (a search: 2x).
EAGER_GROWTH = 8
_SEED = 0


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise QamaTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise QamaError(f"{name} = {value}; must be at least {low}")
    return int(value)


def _check_spec(spec: Any) -> str | None:
    if spec is None:
        return None
    if not isinstance(spec, str):
        raise QamaTypeError(
            f"spec must be a factory spec string such as 'LloydMax2', got {type(spec).__name__}"
        )
    parse_spec(spec)  # syntax errors now, not at the first add
    return spec.strip()


class Collection:
    """Documents and their index (see the module docs). ``spec``: a factory spec, or ``None`` for the budget
    chooser's pick within ``budget_bytes``. ``min_train`` / ``max_train``: when codecs are fitted, and on how
    many documents at most."""

    def __init__(
        self,
        spec: str | None = None,
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        min_train: int = MIN_TRAIN,
        max_train: int = MAX_TRAIN,
    ) -> None:
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "store": uuid.uuid4().hex,
            "spec": _check_spec(spec),
            "budget_bytes": _check_int(budget_bytes, "budget_bytes", 1),
            "min_train": _check_int(min_train, "min_train", 2),
            "max_train": _check_int(max_train, "max_train", 2),
            "chosen_spec": None,
            "dims": None,
        }
        if meta["max_train"] < meta["min_train"]:
            raise QamaError(f"max_train = {max_train} is below min_train = {min_train}")
        db = DocStore(None)
        db.set_meta(meta)
        self._setup(db, meta)

    def _setup(self, db: DocStore, meta: dict[str, Any]) -> None:
        self._db = db
        self._meta = meta
        self._dims: int | None = meta["dims"]
        self._index: Index | None = None
        #: "exact": Flat until the codec is fitted; "fitted": the codec, fitted on _trained_on documents;
        #: "fixed": a codec that learns nothing.
        self._phase = "exact"
        self._active = "Flat"
        self._trained_on = 0
        self._stale = False
        self._n = db.count()
        self._home: tuple[Path, str] | None = None
        self._lock = threading.RLock()

    # ---------------------------------------------------------------------------- description
    @property
    def spec(self) -> str | None:
        """The spec asked for (``None``: the budget chooser's)."""
        return self._meta["spec"]

    @property
    def active_spec(self) -> str:
        """The spec the index searches with now (``"Flat"`` until the codec is fitted)."""
        return self._active

    @property
    def trained_on(self) -> int:
        """How many documents the codec was fitted on (0 before the first fit, or for a codec that learns nothing)."""
        return self._trained_on

    @property
    def dims(self) -> int | None:
        return self._dims

    @property
    def index(self) -> Index | None:
        """The live index (``None`` until the first document); ids are the documents' SQLite keys."""
        return self._index

    @property
    def home(self) -> Path | None:
        """The folder every add and delete is committed to (after :meth:`save`), or ``None`` (in memory)."""
        return None if self._home is None else self._home[0]

    def __len__(self) -> int:
        return self._n

    # -------------------------------------------------------------------------------- writing
    def add(
        self,
        vectors: Any,
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        doc_ids: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Stores documents (one transaction: all or none), replacing any stored under the same id. ``doc_ids``
        entries that are ``None`` get a new UUID. Returns the ids in order."""
        texts = list(texts)
        n = len(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise QamaTypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        if metadatas is None:
            metadatas = [None] * n
        metadatas = list(metadatas)
        if len(metadatas) != n:
            raise QamaError(f"metadatas has {len(metadatas)} entries for {n} texts")
        ids = doc_ids_for(doc_ids, n)
        x = self._vectors(vectors, n, "embeddings")
        metadata_json = [dumps_metadata(m, f"metadatas[{i}]") for i, m in enumerate(metadatas)]
        if n == 0:
            return []
        with self._lock:
            first = self._dims is None
            if first:  # the first index is built before anything is written: a bad spec stores nothing
                start = self._initial_index(int(x.shape[1]))
            elif x.shape[1] != self._dims:
                raise QamaError(f"embeddings have {x.shape[1]} dimensions; this store holds {self._dims}")
            removed, added = self._db.upsert(
                ids, texts, metadata_json, x, meta={"dims": int(x.shape[1])} if first else None
            )
            if first:
                self._dims = self._meta["dims"] = int(x.shape[1])
                self._index, self._phase, self._active = start
            self._n += len(added) - len(removed)
            self._update_index(removed, x, added)
            if self._due(eager=True):
                self._fit()
        return ids

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Deletes the documents with these ids (unknown ids are ignored); returns how many were deleted."""
        if isinstance(doc_ids, str):
            raise QamaTypeError("ids must be a list of document ids, not one string")
        ids = list(doc_ids)
        bad = next((d for d in ids if not isinstance(d, str)), None)
        if bad is not None:
            raise QamaTypeError(f"ids must be strings, got {bad!r}")
        with self._lock:
            removed = self._db.delete(ids)
            self._n -= len(removed)
            self._update_index(removed)
            return len(removed)

    def delete_where(
        self, filter: Mapping[str, Any] | None = None, doc_ids: Sequence[str] | None = None
    ) -> int:
        """Deletes the documents ``filter`` matches (within ``doc_ids`` when given); returns how many."""
        with self._lock:
            keys = self._db.match(filter or {}, doc_ids)
            removed = self._db.delete_keys(keys)
            self._n -= len(removed)
            self._update_index(removed)
            return len(removed)

    def clear(self) -> None:
        """Deletes every document; the codec fitted on them goes too (the next documents are fitted afresh)."""
        with self._lock:
            self._db.delete_keys(self._db.keys())
            self._n = 0
            if self._dims is not None:
                self._start()
            self._stale = False

    def _update_index(
        self, removed: np.ndarray, x: np.ndarray | None = None, added: np.ndarray | None = None
    ) -> None:
        # SQLite has committed: from here a failure leaves the index behind the documents, and the next call
        # rebuilds it from them (_ensure_current).
        if self._index is None:
            return
        try:
            if len(removed):
                self._index.remove(removed)
            if x is not None and added is not None and len(added):
                self._index.add(x, ids=added)
        except BaseException:
            self._stale = True
            raise

    def _vectors(self, vectors: Any, n: int, name: str) -> np.ndarray:
        try:
            x = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise QamaTypeError(f"{name} must be {n} equal-length lists of floats: {err}") from None
        if n == 0 and x.size == 0:
            return np.zeros((0, self._dims or 1), dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != n or x.shape[1] == 0:
            raise QamaError(f"{name}: expected {n} vectors of equal length, got an array of shape {x.shape}")
        if not np.isfinite(x).all():
            row = int(np.argwhere(~np.isfinite(x))[0][0])
            raise QamaError(f"{name}[{row}] has a non-finite value (NaN or inf)")
        return np.ascontiguousarray(x)

    # -------------------------------------------------------------------------------- fitting
    def _initial_index(self, dims: int) -> tuple[Index, str, str]:
        """``(index, phase, active spec)`` before any fit: the codec itself if it learns nothing, else Flat."""
        spec = self._meta["spec"]
        if spec is not None:
            index = index_factory(dims, spec)
            if not index.needs_training:
                return index, "fixed", spec
        return index_factory(dims, "Flat"), "exact", "Flat"

    def _start(self) -> None:
        self._index, self._phase, self._active = self._initial_index(self._dims)
        self._trained_on = 0

    def _min_train(self) -> int:
        low = self._meta["min_train"]
        return max(low, CHOOSER_MIN) if self._target() is None else low

    def _target(self) -> str | None:
        return self._meta["spec"] or self._meta["chosen_spec"]

    def _due(self, eager: bool) -> bool:
        """Whether a fit is due: at a search (``eager=False``) from ``min_train`` documents, or once the store
        has doubled since the last fit; at an add (``eager=True``) only after eight-fold growth."""
        if self._index is None or self._phase == "fixed":
            return False
        if self._phase == "exact":
            return self._n >= self._min_train() * (EAGER_GROWTH if eager else 1)
        if self._trained_on >= self._meta["max_train"]:
            return False
        return self._n >= self._trained_on * (EAGER_GROWTH if eager else 2)

    def _ensure_current(self) -> None:
        """Rebuilds an index left behind by a failed write; fits when due (see the module docs)."""
        if self._stale:
            self._rebuild()
        if self._due(eager=False):
            self._fit()

    def refit(self) -> None:
        """Fits the codec on the documents stored now (a sample of ``max_train`` beyond it) and re-encodes them,
        whatever their number (at least 2; a codec that learns nothing is left as it is)."""
        with self._lock:
            if self._index is None or self._phase == "fixed":
                return
            if self._n < 2 or (self._target() is None and self._n < CHOOSER_MIN):
                raise QamaError(
                    f"refit needs at least {2 if self._target() else CHOOSER_MIN} documents, the store holds {self._n}"
                )
            self._fit()

    def _fit(self) -> None:
        keys = self._db.keys()
        max_train = self._meta["max_train"]
        sample_keys = keys
        if len(keys) > max_train:
            sample_keys = np.sort(np.random.default_rng(_SEED).choice(keys, max_train, replace=False))
        sample = self._db.vectors(sample_keys, self._dims)
        spec = self._target() or self._choose(sample)
        index = index_factory(self._dims, spec)
        index.train(sample)
        if len(sample_keys) == len(keys):
            index.add(sample, ids=keys)
        else:
            del sample
            for part_keys, part in self._db.iter_vectors(self._dims):
                index.add(part, ids=part_keys)
        self._index, self._phase, self._active = index, "fitted", spec
        self._trained_on = len(sample_keys)
        self._stale = False
        if self._home is not None:  # a fit is the expensive part of a load: keep it
            self._write_snapshot()

    def _choose(self, sample: np.ndarray) -> str:
        from qama_rs.quantizers.budget import choose_codec

        docs = sample
        if len(docs) > CHOOSER_DOCS:
            docs = docs[np.sort(np.random.default_rng(_SEED).choice(len(docs), CHOOSER_DOCS, replace=False))]
        spec, _ = choose_codec(
            docs, self._meta["budget_bytes"], n_queries=min(200, len(docs) // 5), seed=_SEED
        )
        self._db.set_meta({"chosen_spec": spec})
        self._meta["chosen_spec"] = spec
        return spec

    def _rebuild(self) -> None:
        """The index from the documents alone: Flat (or the learning-free codec), then a fit when due."""
        self._start()
        for keys, x in self._db.iter_vectors(self._dims):
            self._index.add(x, ids=keys)
        self._stale = False
        if self._due(eager=False):
            self._fit()

    # --------------------------------------------------------------------------------- search
    def search(
        self,
        queries: Any,
        k: int,
        *,
        filter: Mapping[str, Any] | None = None,
        predicate: Callable[[Row], bool] | None = None,
        doc_ids: Sequence[str] | None = None,
    ) -> list[list[Hit]]:
        """The ``k`` best documents for each query vector (``(d,)`` or ``(nq, d)``), best first, among those
        ``filter`` (a dict, see :mod:`~qama_rs.integrations.docstore`), ``predicate`` (called with each
        :class:`Row`) and ``doc_ids`` allow; ``k`` of them whenever ``k`` match."""
        k = _check_int(k, "k", 1)
        if filter is not None and not isinstance(filter, Mapping):
            raise QamaTypeError(
                f"filter must be a dict (or, in LangChain, a callable), got {type(filter).__name__}"
            )
        if predicate is not None and not callable(predicate):
            raise QamaTypeError(f"filter callable must be callable, got {type(predicate).__name__}")
        q = np.asarray(queries, dtype=np.float32) if not isinstance(queries, np.ndarray) else queries
        single = q.ndim == 1
        q = self._vectors(q[None, :] if single else q, len(q) if not single else 1, "query embedding")
        with self._lock:
            if self._index is None or self._n == 0:
                return [[] for _ in range(len(q))]
            if q.shape[1] != self._dims:
                raise QamaError(f"query embedding has {q.shape[1]} dimensions; this store holds {self._dims}")
            self._ensure_current()
            allowed = None
            if filter is not None or doc_ids is not None:
                allowed = self._db.match(filter or {}, doc_ids)
            if predicate is not None:
                picked = self._db.match_callable(predicate)
                allowed = picked if allowed is None else np.intersect1d(allowed, picked)
            if allowed is None:
                D, I = self._index.search(q, min(k, self._n))  # noqa: E741 - faiss's names
            elif len(allowed) == 0:
                return [[] for _ in range(len(q))]
            else:
                D, I = self._index.search(q, min(k, len(allowed)), allowed=allowed)  # noqa: E741
            rows = self._db.rows(np.unique(I[I >= 0]))
            relevance = relevance_fn(self._index)
        return [
            [
                Hit(rows[i], float(s), relevance(float(s)))
                for s, i in zip(d_row.tolist(), i_row.tolist(), strict=True)
                if i >= 0
            ]
            for d_row, i_row in zip(D, I, strict=True)
        ]

    def vectors_of(self, keys: Sequence[int]) -> np.ndarray:
        """The stored float32 embeddings of these keys (for maximal marginal relevance)."""
        with self._lock:
            return self._db.vectors(np.asarray(keys, dtype=np.int64), self._dims or 0)

    def get(self, doc_ids: Sequence[str]) -> list[Row]:
        """The stored documents with these ids, in the order asked (unknown ids are left out)."""
        if isinstance(doc_ids, str):
            raise QamaTypeError("ids must be a list of document ids, not one string")
        with self._lock:
            return self._db.rows_by_doc_id([d for d in doc_ids if isinstance(d, str)])

    def match(
        self, filter: Mapping[str, Any] | None = None, doc_ids: Sequence[str] | None = None
    ) -> list[Row]:
        """Every stored document ``filter`` matches (within ``doc_ids`` when given), in insertion order."""
        with self._lock:
            keys = self._db.match(filter or {}, doc_ids)
            rows = self._db.rows(keys)
            return [rows[k] for k in keys.tolist()]

    def score_kind(self) -> tuple[str, int | None]:
        """``("inner_product", None)`` or ``("hamming", bits)``: what the current scores are (see the module docs)."""
        with self._lock:
            return score_kind(self._index)

    def relevance_fn(self) -> Callable[[float], float]:
        """Maps a score of the index as it is now into [0, 1] (see the module docs)."""
        with self._lock:
            if self._index is not None:
                self._ensure_current()
            return relevance_fn(self._index)

    # ---------------------------------------------------------------------------- persistence
    def save(self, folder: str | os.PathLike[str], name: str = "index") -> None:
        """Writes ``<name>.sqlite`` and ``<name>.qidx`` into ``folder`` (atomically each) and makes it the home
        of every later add and delete (see the module docs)."""
        folder = Path(folder)
        check_store_name(name)
        with self._lock:
            if self._index is not None:
                self._ensure_current()
            folder.mkdir(parents=True, exist_ok=True)
            db_path = folder / f"{name}.sqlite"
            if self._db.path is None or not same_file(self._db.path, db_path):
                self._db.backup_to(db_path)
                old, self._db = self._db, DocStore(db_path)
                old.close()
            self._home = (folder, name)
            self._write_snapshot()

    def _write_snapshot(self) -> None:
        folder, name = self._home
        path = folder / f"{name}.qidx"
        if self._index is None:
            path.unlink(missing_ok=True)  # no documents yet: the SQLite file is the whole store
            return
        self._index.metadata = {
            "qama_store": self._meta["store"],
            "last_key": self._db.max_key(),
            "phase": self._phase,
            "active_spec": self._active,
            "trained_on": self._trained_on,
        }
        self._index.save(path)

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike[str],
        name: str = "index",
        *,
        min_train: int | None = None,
        max_train: int | None = None,
    ) -> Collection:
        """Opens the store :meth:`save` wrote into ``folder`` (it stays the home of later writes): the index
        snapshot plus the documents added or deleted after it. ``min_train`` / ``max_train`` override the saved
        ones."""
        folder = Path(folder)
        check_store_name(name)
        db_path = folder / f"{name}.sqlite"
        if not db_path.is_file():
            raise QamaError(f"{db_path}: no such document store (save_local / persist writes it)")
        db = DocStore(db_path)
        meta = db.get_meta()
        if meta.get("format") != FORMAT or not isinstance(meta.get("store"), str):
            db.close()
            raise QamaError(f"{db_path}: not a qama-rs document store")
        if meta.get("version", 0) > FORMAT_VERSION:
            db.close()
            raise QamaError(f"{db_path}: written by a newer qama-rs (store format {meta['version']})")
        overrides = {}
        if min_train is not None:
            overrides["min_train"] = _check_int(min_train, "min_train", 2)
        if max_train is not None:
            overrides["max_train"] = _check_int(max_train, "max_train", 2)
        low, high = (
            overrides.get("min_train", meta["min_train"]),
            overrides.get("max_train", meta["max_train"]),
        )
        if high < low:
            db.close()
            raise QamaError(f"max_train = {high} is below min_train = {low}")
        if overrides:
            db.set_meta(overrides)
            meta.update(overrides)
        self = cls.__new__(cls)
        self._setup(db, meta)
        self._home = (folder, name)
        with self._lock:
            if self._dims is not None:
                if not self._restore(folder / f"{name}.qidx"):
                    self._rebuild()
        return self

    def _restore(self, path: Path) -> bool:
        """Loads the snapshot and replays the documents changed after it; False when it must be rebuilt."""
        if not path.is_file():
            return False
        try:
            index = Index.load(path)
            info = index.metadata
            if info.get("qama_store") != self._meta["store"]:
                raise QamaError("it belongs to another document store")
            last = int(info["last_key"])
            phase, active, trained_on = info["phase"], info["active_spec"], int(info["trained_on"])
            if index.dims != self._dims or phase not in ("exact", "fitted", "fixed"):
                raise QamaError("its width or state does not match the documents")
        except (QamaError, KeyError, TypeError, ValueError) as err:
            warnings.warn(
                f"{path}: index snapshot not used ({err}); rebuilding it from the documents", stacklevel=3
            )
            return False
        stored = self._db.keys()
        before = stored[stored <= last]
        gone = np.setdiff1d(index.ids, before)
        if len(gone):
            index.remove(gone)
        if index.ntotal != len(before):
            warnings.warn(f"{path}: index snapshot disagrees with the documents; rebuilding it", stacklevel=3)
            return False
        for keys, x in self._db.iter_vectors(self._dims, after=last):
            index.add(x, ids=keys)
        self._index, self._phase, self._active, self._trained_on = index, phase, active, trained_on
        return True

    def close(self) -> None:
        """Closes the SQLite file (every write is already committed)."""
        with self._lock:
            self._db.close()
