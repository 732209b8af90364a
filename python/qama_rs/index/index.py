"""The index: one object for every codec, built from a spec string.

``index = index_factory(384, "Hadamard,LloydMax2")``; ``index.train(docs)``; ``index.add(docs)``;
``D, I = index.search(queries, k)``. Conventions (faiss's, with one score direction for all codecs):

* queries are float vectors, always; the codec scores them asymmetrically where it can (per-dimension
  and byte-table codecs, float rescoring) and through their own codes where it is symmetric (``Thermo*``,
  ``Sign``, ``Hybrid``);
* ``D`` is float32 and **higher is better** for every codec (inner products or their estimates, or
  ``-Hamming distance``); ``I`` is int64; both ``(nq, k)``, best first, ties by insertion order; when fewer
  than ``k`` vectors are stored (or allowed) the rest of the row is ``I = -1``, ``D = -inf``;
* ``ids`` are int64 (default: consecutive from 0); :meth:`Index.add` also takes string ids (document
  names), kept beside consecutive int64 ids and returned by :meth:`Index.names_of`;
* ``allowed`` restricts a search to given ids (a filter applied inside the scan: ``k`` results whenever
  ``k`` allowed vectors are stored); :class:`~qama_rs.Allowed` prepares one for many searches.

Rows are stored in the layout the codec's kernel scans (:mod:`qama_rs.index.storage`), appended in place
and compacted on removal; files (:meth:`Index.save`, :meth:`Index.load`) hold that same layout, so
``Index.load(path, mmap=True)`` maps it and searches it in place.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import warnings
from typing import Any

import numpy as np

from qama_rs.engine.args import check_int, float_rows, plain_rows, row_limit
from qama_rs.errors import QamaError, QamaTypeError, QamaWarning
from qama_rs.index import fileformat, persist, stages
from qama_rs.index import tune as tuning
from qama_rs.index.allowed import Allowed
from qama_rs.index.codecs import Codec, PerDimCodec, ThermoCodec
from qama_rs.index.ids import IdMap
from qama_rs.index.ivf import Partition, default_nprobe
from qama_rs.index.registry import Pipeline, build_pipeline
from qama_rs.index.storage import ListStore
from qama_rs.index.transforms import PrefixTransform, QamaTransform
from qama_rs.index.tune import TuneResult

__all__ = ["MAX_K", "MAX_RESULTS", "Index", "index_factory"]

#: Largest ``k`` accepted (the engine's top-k takes 32-bit sizes).
MAX_K = 2**31 - 1
#: Largest ``nq * k`` a search may return (the padded result is allocated in full).
MAX_RESULTS = 1 << 28
#: Rows encoded at a time by :meth:`Index.add` (bounds the memory of transforms and encodings).
ADD_CHUNK = 1 << 16
#: An add of at least this many rows shows a progress bar on stderr (about ten seconds of encoding or more).
ADD_PROGRESS_ROWS = 1 << 20
#: A distinct number for each index object (with its version, the key of what an Allowed keeps for it).
_SERIALS = itertools.count()


def index_factory(dims: int, spec: str, *, head: Any = None) -> Index:
    """An empty :class:`Index` for ``dims``-dimensional float vectors, built from ``spec`` (see
    :mod:`qama_rs.index`). ``head``: an already loaded QAMA model for a ``QAMA(...)`` stage."""
    return Index(dims, spec, head=head)


class Index:
    """Stores vectors under one codec and searches them with float queries (see the module docs)."""

    def __init__(self, dims: int, spec: str, *, head: Any = None) -> None:
        self._dims = check_int(dims, "dims", 1, 1 << 24)
        self._query_limit = row_limit(self._dims)  # what plain queries stay within (see plain_rows)
        if not isinstance(spec, str):
            raise QamaTypeError(f"spec must be a string, got {type(spec).__name__}")
        self._spec = spec.strip()
        self._pipe: Pipeline = build_pipeline(self._spec, head)
        self._partition: Partition | None = None
        if self._pipe.nlist is not None:
            residual = self._pipe.residual if self._pipe.residual is not None else self._pipe.codec.residual
            self._partition = Partition(self._pipe.nlist, residual)
        #: Lists a partitioned index scans per query (``search(..., nprobe=)`` overrides it; None: a default of
        #: :func:`qama_rs.index.ivf.default_nprobe`; :meth:`tune` sets it).
        self.nprobe: int | None = None
        #: Default refinement depth as a multiple of ``k`` (``search(..., k_factor=)`` overrides it; None: the
        #: spec's ``k'``; :meth:`tune` sets it).
        self.k_factor: float | None = None
        width = self._dims
        for t in self._pipe.transforms:
            width = t.out_dims(width)
        self._code_width = width
        self._ids = IdMap()
        self._stores: list[ListStore] = []
        self._mapped = False
        self._header: dict[str, Any] | None = None
        self._sections: dict[str, np.ndarray] | None = None
        #: JSON-ready notes saved with the index (the CLI records the embedding model and the source here).
        self.metadata: dict[str, Any] = {}
        # One lock for every call that reads or changes the stored rows: a search never sees a half-done
        # add or remove (codes, ids and names change together). The kernels parallelize inside a call.
        self._lock = threading.RLock()
        # (this object, how many times its rows changed): what a prepared Allowed derived is valid under it.
        self._serial, self._version = next(_SERIALS), 0
        if not self.needs_training:
            self._train_stages(None)

    # ---------------------------------------------------------------------------- description
    @property
    def spec(self) -> str:
        """The spec string exactly as given (round-trips through save/load)."""
        return self._spec

    @property
    def dims(self) -> int:
        """Columns of the vectors :meth:`add` and :meth:`search` take."""
        return self._dims

    d = dims  # faiss spelling

    @property
    def ntotal(self) -> int:
        return len(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def codec(self) -> Codec:
        return self._pipe.codec

    @property
    def metric(self) -> str:
        """What the final scores are: ``"ip"`` (inner products or their estimates, higher is better) or
        ``"hamming"`` (``-distance`` between codes of :attr:`code_bits` bits)."""
        return (self._pipe.refine or self._pipe.codec).metric

    @property
    def code_bits(self) -> int | None:
        """Bits of a Hamming code (what ``-D`` counts up to), None for other codecs."""
        codec = self._pipe.refine or self._pipe.codec
        return codec.code_bits if isinstance(codec, ThermoCodec) and codec.trained else None

    @property
    def is_trained(self) -> bool:
        pipe = self._pipe  # checked on every search: plain tests, no generators (about 1 us less)
        return (
            pipe.codec.trained
            and (pipe.refine is None or pipe.refine.trained)
            and (self._partition is None or self._partition.trained)
            and (not pipe.transforms or all(t.trained for t in pipe.transforms))
        )

    @property
    def nlist(self) -> int | None:
        """Lists of a partitioned (``IVF``) index, None for a flat one."""
        return None if self._partition is None else self._partition.nlist

    @property
    def needs_training(self) -> bool:
        heads = [t for t in self._pipe.transforms if isinstance(t, QamaTransform)]
        if self._partition is not None:
            return True  # the coarse quantizer is fitted on the documents
        if any(t.recalibrates and t.scheme is not None for t in heads):
            return True  # the pretrained head's thresholds are refitted on the documents (train)
        return not all(c.training_free for c in self._codecs()) and not (
            heads and all(isinstance(c, ThermoCodec) for c in self._codecs())
        )

    @property
    def bytes_per_vector(self) -> int:
        """Stored bytes per vector: the codec's codes (padding and per-vector factors included), plus the
        rescoring stage's. Ids are not counted."""
        self._require_trained()
        return sum(c.bytes_per_vector for c in self._codecs())

    @property
    def memory_bytes(self) -> int:
        """Bytes the index holds in all (what "bytes per vector all-in" divides): stored rows and their
        factors, labels and ids, centroids, the refinement store, spare capacity included."""
        total = sum(s.nbytes for s in self._stores) + self._ids.nbytes
        if self._partition is not None:
            total += self._partition.nbytes
        return total

    @property
    def ids(self) -> np.ndarray:
        """Read-only ``int64 (ntotal,)`` ids in insertion order."""
        return self._ids.ids

    @property
    def names(self) -> list[str] | None:
        """String ids (document names) in insertion order, when the index was given any."""
        return self._ids.names

    def __repr__(self) -> str:
        state = "" if self.is_trained else ", untrained"
        mapped = ", mmap" if self._mapped else ""
        return f"Index(dims={self._dims}, spec={self._spec!r}, ntotal={self.ntotal}{state}{mapped})"

    def _codecs(self) -> list[Codec]:
        return [self._pipe.codec] + ([self._pipe.refine] if self._pipe.refine is not None else [])

    # ------------------------------------------------------------------------------- training
    def train(self, x: Any) -> None:
        """Fits the transforms and codecs on float rows ``x`` (documents only; nothing is stored)."""
        with self._lock:
            if self.ntotal:
                raise QamaError("the index already holds vectors; train an empty index")
            self._train_stages(float_rows(x, "x", self._dims, allow_empty=False))

    def fit(self, x: Any) -> Index:
        """:meth:`train` on ``x``, returning the index (for chaining)."""
        self.train(x)
        return self

    def _train_stages(self, x: np.ndarray | None) -> None:
        width = self._dims
        for t in self._pipe.transforms:
            t.train(width)
            width = t.out_dims(width)
            if x is not None:
                t.calibrate(x)
                x = t.apply(x)
        learned = self._learned_transform()
        if x is None:
            x = np.zeros((0, width), dtype=np.float32)
        coded = x
        if self._partition is not None:
            self._partition.train(x)
            if self._partition.residual:
                coded = self._partition.residuals(x, self._partition.assign(x))
        for codec in self._codecs():
            if isinstance(codec, ThermoCodec) and learned is not None:
                codec.quantizer = learned.learned_quantizer(x)
            codec.train(coded if codec is self._pipe.codec else x)
        self._stores = [self._new_store(c, i == 0) for i, c in enumerate(self._codecs())]
        self._version += 1

    def _new_store(self, codec: Codec, first: bool) -> ListStore:
        """The rows of a codec: the first stage of a partitioned index in lists labelled by id, everything
        else one list in insertion order (positions = slots)."""
        lists = self._partition.nlist if first and self._partition is not None else 1
        return ListStore(codec.dtype, codec.row_units, codec.block_rows, lists, labelled=lists > 1 or (
            first and self._partition is not None), scaled=codec.scaled)

    def _learned_transform(self) -> QamaTransform | None:
        t = self._pipe.transforms[-1] if self._pipe.transforms else None
        return t if isinstance(t, QamaTransform) and t.scheme is not None else None

    def _require_trained(self) -> None:
        if not self.is_trained:
            raise QamaError(f"index {self._spec!r} is not trained; call train(x) on documents first")

    def _transform(self, x: np.ndarray) -> np.ndarray:
        for t in self._pipe.transforms:
            x = t.apply(x)
        return x

    # ------------------------------------------------------------------------------- contents
    def add(self, x: Any, ids: Any = None) -> None:
        """Encodes and stores float rows ``x`` ``(n, dims)``. ``ids``: unique non-negative int64 ids not yet
        in the index (default: consecutive after the largest so far), or a sequence of ``n`` distinct,
        non-empty strings (document names; the int64 ids are then consecutive). An add of
        :data:`ADD_PROGRESS_ROWS` rows or more shows a progress bar on stderr."""
        with self._lock:
            self._require_trained()
            x = float_rows(x, "x", self._dims)
            new_ids, names = self._ids.check_new(ids, len(x))
            if not len(x):
                return
            self._own()
            marks = [store.mark() for store in self._stores]
            try:
                self._add_chunks(x, new_ids)
                for store in self._stores:
                    store.trim()  # packing is all or nothing too (built aside, then swapped in)
            except BaseException:  # an error or an interrupt part way: the index is as it was
                for store, mark in zip(self._stores, marks, strict=True):
                    store.rollback(mark)
                raise
            self._ids.append(new_ids, names)  # last: the rows are stored

    def _add_chunks(self, x: np.ndarray, new_ids: np.ndarray) -> None:
        """Encodes and appends ``x`` a chunk at a time (the ids are recorded by :meth:`add` afterwards). A
        partitioned index without transforms assigns every row first, so its lists grow once
        (:meth:`ListStore.reserve`) instead of at every chunk."""
        from tqdm import tqdm

        with tqdm(total=len(x), desc=f"adding {len(x):,} vectors", unit=" vectors", file=sys.stderr,
                  leave=False, disable=len(x) < ADD_PROGRESS_ROWS) as bar:  # fmt: skip
            lists = None
            if self._partition is not None and not self._pipe.transforms and len(x) > ADD_CHUNK:
                bar.set_description(f"assigning {len(x):,} vectors to lists")
                lists = np.concatenate(
                    [self._assigned(x[s : s + ADD_CHUNK], bar) for s in range(0, len(x), ADD_CHUNK)]
                )
                self._stores[0].reserve(np.bincount(lists, minlength=self._partition.nlist))
                bar.reset()
                bar.set_description(f"adding {len(x):,} vectors")
            for start in range(0, len(x), ADD_CHUNK):
                xt = self._transform(x[start : start + ADD_CHUNK])
                chunk_ids = new_ids[start : start + ADD_CHUNK]
                for i, (codec, store) in enumerate(zip(self._codecs(), self._stores, strict=True)):
                    if i == 0 and self._partition is not None:
                        chunk_lists = self._partition.assign(xt) if lists is None else lists[start : start + len(xt)]
                        coded = self._partition.residuals(xt, chunk_lists) if self._partition.residual else xt
                        rows, scale = codec.encode(coded)
                        store.append(rows, chunk_lists, chunk_ids.astype(np.uint64), scale)
                    else:
                        rows, scale = codec.encode(xt)
                        store.append(rows, scale=scale)
                bar.update(len(xt))

    def _assigned(self, x: np.ndarray, bar: Any) -> np.ndarray:
        lists = self._partition.assign(x)
        bar.update(len(x))
        return lists

    def add_codes(self, codes: Any, ids: Any = None) -> None:
        """Stores already encoded codes of a single-codec index (``Thermo*``: ``uint64 (n, words)``;
        per-dimension codecs: ``uint8`` codes, one per dimension or packed)."""
        with self._lock:
            self._require_trained()
            codec = self._pipe.codec
            if (
                self._pipe.refine is not None
                or self._partition is not None
                or not isinstance(codec, ThermoCodec | PerDimCodec)
                or codec.scaled
            ):
                raise QamaError(f"add_codes needs a single Thermo or per-dimension codec, not {self._spec!r}")
            if not isinstance(codes, np.ndarray):
                raise QamaTypeError(f"codes must be a NumPy array, got {type(codes).__name__}")
            if isinstance(codec, ThermoCodec):
                words = codec.quantizer.words
                if codes.dtype != np.uint64 or codes.ndim != 2 or codes.shape[1] != words:
                    raise QamaError(f"codes must be a uint64 array of shape (n, {words}) for {self._spec!r}")
                rows = np.ascontiguousarray(codes)
            else:
                rows = codec.pack(codes)
            new_ids, names = self._ids.check_new(ids, len(rows))
            self._own()
            self._stores[0].append(rows)
            self._ids.append(new_ids, names)

    def remove(self, ids: Any) -> int:
        """Removes the vectors with these int64 ids (or string names); unknown ids are ignored, as in faiss's
        ``remove_ids``. Returns how many were removed. Compacts the stored rows in place; all or nothing (an
        error or Ctrl-C part way puts back what was compacted)."""
        with self._lock:
            slots = self._slots(ids, "ids")
            slots = slots[slots >= 0]
            if not len(slots):
                return 0
            keep = np.ones(self.ntotal, dtype=bool)
            keep[slots] = False
            self._own()
            done = []
            try:
                for store in self._stores:
                    if store.labelled:  # lists labelled by id
                        gone = np.sort(self._ids.ids[slots]).astype(np.uint64)
                        masks = [~np.isin(store.labels_of_list(lst), gone) for lst in range(store.lists)]
                        done.append((store, store.keep(masks)))
                    else:
                        done.append((store, store.keep(keep)))
                self._ids.keep(keep)  # last, and all at once
            except BaseException:
                for store, record in reversed(done):
                    store.undo(record)
                raise
            return int((~keep).sum())

    def _slots(self, ids: Any, name: str) -> np.ndarray:
        """Slots (``-1`` where unknown) of int ids or string names."""
        if isinstance(ids, str):
            ids = [ids]
        if isinstance(ids, np.ndarray) and ids.dtype.kind in "US":
            ids = ids.tolist()
        if not isinstance(ids, np.ndarray):
            values = list(ids)
            if values and all(isinstance(v, str) for v in values):
                return self._ids.slots_of_names(values) if self._ids.named else np.full(len(values), -1)
            ids = np.asarray(values, dtype=np.int64) if values else np.zeros(0, dtype=np.int64)
        if ids.size and (ids.dtype.kind not in "iu" or ids.dtype == np.bool_):
            raise QamaTypeError(f"{name} must be integers or strings, got dtype {ids.dtype}")
        return self._ids.slots_of(ids.astype(np.int64).ravel())[0]

    def names_of(self, I: Any) -> np.ndarray:  # noqa: E741 - faiss's name for the id matrix
        """Document names (object array of str, ``""`` for ``-1``) of the ids in ``I`` (any shape)."""
        if not self._ids.named:
            raise QamaError("this index has no string ids; add vectors with ids=[...strings]")
        slots, _ = self._ids.slots_of(np.asarray(I, dtype=np.int64))
        return self._ids.name_of_slots(slots)

    def _own(self) -> None:
        """Before every change of the rows: a memory-mapped index's ids move to memory (rows stay mapped),
        and what prepared filters derived from the old rows is no longer used."""
        self._ids.own()
        self._version += 1

    # --------------------------------------------------------------------------------- search
    def search(
        self,
        xq: Any,
        k: int,
        dims: int | None = None,
        *,
        allowed: Any = None,
        k_factor: float | None = None,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(D float32, I int64)``, both ``(nq, k)``: the ``k`` best stored vectors for each float query (see
        the module docs). ``dims=m`` scores the Matryoshka prefix of the first ``m`` coded dimensions of the
        same codes (thermometer, per-dimension and Flat codecs, not after a rotation or a head; with a
        refinement stage the prefix applies to the first stage). ``allowed``: the ids (int64 array, or names)
        a result may have, or a boolean bitmap indexed by id, or an :class:`~qama_rs.Allowed` of int ids or a
        bitmap made once for many searches (the ids checked, sorted and turned into the engine's filter once,
        not on every call), or one row of ids per query (``(nq, c)``, ``-1`` padding: each query's own candidates, e.g. to
        rescore another engine's results). ``k_factor``: a refinement stage rescores
        ``k * k_factor`` first-stage candidates (default: the spec's ``k'``; never fewer than ``k``).
        ``nprobe``: lists a partitioned index scans per query (default :attr:`nprobe`)."""
        with self._lock:
            probe = self._plain_search(xq, k, dims, allowed, k_factor, nprobe)
            if probe is not None:  # every check below would pass and change nothing (a few µs less)
                nq, prefix, depth = len(xq), None, None
            else:
                k = check_int(k, "k", 1, MAX_K)
                self._require_trained()
                xq = float_rows(xq, "xq", self._dims)
                nq = len(xq)
                if nq * k > MAX_RESULTS:
                    raise QamaError(
                        f"k = {k} for {nq} queries asks for {nq * k} results; at most {MAX_RESULTS} per call "
                        "(search in batches)"
                    )
                prefix = self._check_dims(dims)
                depth = self._refine_depth(k, k_factor)
                probe = self._check_nprobe(nprobe)
                if nq == 0 or self.ntotal == 0:
                    return _no_results(nq, k)
                if isinstance(allowed, np.ndarray) and allowed.ndim == 2 and allowed.dtype != np.bool_:
                    return self._search_each(xq, k, allowed, *_no_results(nq, k), prefix, depth, probe)
            q = self._transform(xq)
            selection = self._selection(allowed)
            if depth is None and self._partition is not None:
                # Partition lists are labelled by id: the results are ids already.
                scores, found = self._probed(q, k, prefix, probe, selection)
            else:
                scores, rows = self._first(q, depth or k, prefix, probe, selection)
                if depth is not None:
                    scores, rows = self._refine(q, rows, k)
                found = self._ids.ids_of(rows)
            if found.shape[1] == k:
                return scores, found
            D, I = _no_results(nq, k)  # noqa: E741 - fewer stored (or allowed) rows than k
            D[:, : found.shape[1]], I[:, : found.shape[1]] = scores, found
            return D, I

    def _plain_search(self, xq: Any, k: Any, dims: Any, allowed: Any, k_factor: Any, nprobe: Any) -> int | None:
        """The lists to probe for a plain search that every check of :meth:`search` passes unchanged — no
        ``dims``, filter other than a prepared :class:`Allowed` (checked when it was made) or refinement, int ``k``
        and ``nprobe`` in range, queries as :func:`plain_rows` takes them, a trained index with rows — else None
        (the full checks then run, and raise where they must)."""
        if dims is not None or k_factor is not None or self._pipe.refine is not None:
            return None
        if allowed is not None and type(allowed) is not Allowed:
            return None
        if type(k) is not int or not 1 <= k <= MAX_K or not self.ntotal or not self.is_trained:
            return None
        if nprobe is None:
            probe = self._check_nprobe(None)
        elif type(nprobe) is int and self._partition is not None and 1 <= nprobe <= 1 << 24:
            probe = nprobe
        else:
            return None
        if not plain_rows(xq, self._dims, self._query_limit) or len(xq) * k > MAX_RESULTS:
            return None
        return probe

    def _search_each(
        self, xq: np.ndarray, k: int, allowed: np.ndarray, D: np.ndarray, I: np.ndarray,  # noqa: E741
        prefix: int | None, depth: int | None, probe: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-query allowed ids ``(nq, c)`` (``-1`` padding): each query searched among its own ids, in one
        engine call when every row names ``c`` distinct stored ids of a flat index."""
        if len(allowed) != len(xq):
            raise QamaError(f"allowed has {len(allowed)} rows; give one per query ({len(xq)}) or a 1-D array")
        if allowed.dtype.kind not in "iu":
            raise QamaTypeError(f"allowed must hold integer ids, got dtype {allowed.dtype}")
        slots = self._ids.slots_of(allowed.astype(np.int64))[0]
        q = self._transform(xq)
        distinct = (np.diff(np.sort(slots, axis=1), axis=1) != 0).all()
        if self._partition is None and (slots >= 0).all() and distinct and slots.shape[1]:
            codec, store = self._pipe.codec, self._stores[0]
            scores, rows = codec.engine(prefix).rescore(
                codec.queries(q, prefix), store.core(), np.ascontiguousarray(slots), depth or k
            )
            if depth is not None:
                scores, rows = self._refine(q, rows, k)
        else:
            for i in range(len(q)):
                row = self._selection_of(np.unique(slots[i][slots[i] >= 0]))
                s, r = self._first(q[i : i + 1], depth or k, prefix, probe, row)
                if depth is not None:
                    s, r = self._refine(q[i : i + 1], r, k)
                D[i, : s.shape[1]], I[i, : r.shape[1]] = s[0], self._ids.ids_of(r)[0]
            return D, I
        got = rows.shape[1]
        D[:, :got], I[:, :got] = scores, self._ids.ids_of(rows)
        return D, I

    def _check_nprobe(self, nprobe: Any) -> int:
        if nprobe is None:
            if self._partition is None:
                return 1
            return int(self.nprobe) if self.nprobe is not None else default_nprobe(self._partition.nlist)
        if self._partition is None:
            raise QamaError(f"nprobe: {self._spec!r} is not partitioned (no IVF stage)")
        return check_int(nprobe, "nprobe", 1, 1 << 24)

    def _first(
        self, q: np.ndarray, k: int, prefix: int | None, probe: int, allowed: stages.Selection | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first stage: ``(scores, slots)`` of each query's top ``k`` (``allowed``: see :meth:`_selection`)."""
        if self._partition is None:
            return stages.flat(self._pipe.codec, self._stores[0], q, k, prefix, allowed)
        scores, found = self._probed(q, k, prefix, probe, allowed)
        # Lists are labelled by id: the slots of the results are looked up (refinement reads slots).
        return scores, self._ids.slots_of(found)[0]

    def _probed(
        self, q: np.ndarray, k: int, prefix: int | None, probe: int, allowed: stages.Selection | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first stage of a partitioned index: ``(scores, ids)`` of each query's top ``k``."""
        return stages.probed(self._pipe.codec, self._stores[0], self._partition, q, k, prefix, probe, allowed)

    def _selection(self, allowed: Any) -> stages.Selection | None:
        """The stored rows an ``allowed`` argument admits, as the first stage reads them; a prepared
        :class:`Allowed` keeps them (and the engine's filter over them) until the rows change."""
        if allowed is None:
            return None
        if not isinstance(allowed, Allowed):
            return self._selection_of(self._allowed_slots(allowed))
        selection = allowed.derived(self._serial, self._version)
        if selection is None:
            selection = self._selection_of(self._allowed_slots(allowed.ids), kept=True)
            allowed.keep(self._serial, self._version, selection)
        return selection

    def _selection_of(self, positions: np.ndarray, kept: bool = False) -> stages.Selection:
        """Sorted allowed slots as the first stage reads them: slots of a flat store, ids of a partitioned one
        (its lists are labelled by id; the ids of sorted slots are sorted too while ids are slots); ``kept``:
        a prepared filter keeps it for many searches."""
        if self._partition is None or self._ids.identity:
            return stages.Selection(positions, kept)
        return stages.Selection(np.sort(self._ids.ids_of(positions)), kept)

    def _refine(self, q: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return stages.refine(self._pipe.refine, self._stores[1], q, rows, k)

    def _refine_depth(self, k: int, k_factor: Any) -> int | None:
        if self._pipe.refine is None:
            if k_factor is not None:
                raise QamaError(f"k_factor: {self._spec!r} has no refinement stage (Rescore(...) or RFlat(k'))")
            return None
        if k_factor is None and self.k_factor is not None:
            k_factor = self.k_factor
        if k_factor is None:
            return max(self._pipe.k_prime or k, k)
        if isinstance(k_factor, bool) or not isinstance(k_factor, int | float | np.number) or not k_factor >= 1:
            raise QamaError(f"k_factor = {k_factor!r}; must be a number >= 1")
        return min(max(int(np.ceil(k * float(k_factor))), k), MAX_K)

    def _allowed_slots(self, allowed: Any) -> np.ndarray:
        """Sorted distinct slots of an ``allowed`` argument (ids, names or a bitmap indexed by id)."""
        n = len(self._ids)
        if isinstance(allowed, np.ndarray) and allowed.dtype == np.bool_:
            if allowed.ndim != 1:
                raise QamaError(f"allowed: a bitmap must be 1-D (indexed by id), got shape {allowed.shape}")
            if self._ids.identity:  # ids are slots: the bitmap is already over slots
                return np.flatnonzero(allowed[:n])
            allowed = np.flatnonzero(allowed)
        elif self._ids.identity and isinstance(allowed, np.ndarray) and allowed.ndim == 1 and allowed.dtype.kind in "iu":
            # Ids are slots: an ascending id array is the answer as it is (O(len), no pass over the index).
            ids = allowed.astype(np.int64, copy=False)
            if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):
                return ids[np.searchsorted(ids, 0) : np.searchsorted(ids, n)]  # the stored ones
        slots = self._slots(allowed, "allowed")
        # A mask over the slots, not np.unique: O(n) without a sort (a 50 % filter of 200k ids: 15 ms -> <1 ms).
        mask = np.zeros(n, dtype=bool)
        mask[slots[slots >= 0]] = True
        return np.flatnonzero(mask)

    def _check_dims(self, dims: Any) -> int | None:
        if dims is None:
            return None
        m = check_int(dims, "dims", 1, self._code_width)
        if m == self._code_width:
            return None
        prefix = self._pipe.codec.prefix_dims()
        if any(not isinstance(t, PrefixTransform) for t in self._pipe.transforms) or prefix is None:
            raise QamaError(
                f"dims: {self._spec!r} has no Matryoshka prefix search (a rotation or head mixes dimensions, "
                "or the codec scores whole vectors); build a Prefix{m} index instead"
            )
        if m > prefix:
            raise QamaError(f"dims = {m}; this codec has {prefix} coded values")
        return m

    # --------------------------------------------------------------------------------- tuning
    def tune(
        self,
        x: Any,
        target_recall: float = 0.95,
        *,
        ids: Any = None,
        queries: Any = None,
        k: int = 10,
        n_probes: int = 1000,
        seed: int = 0,
    ) -> TuneResult:
        """Picks the cheapest ``nprobe`` (a partitioned index) and ``k_factor`` (a refinement stage) whose
        recall@``k`` reaches ``target_recall`` with 95 % confidence, with no labels: probe queries are
        searched and their exact float32 top-``k`` among ``x`` is the truth (:mod:`qama_rs.index.tune`: the
        rule, and the probes: documents and blends of three documents, ``n_probes`` of each, or
        ``queries``, a float sample of real queries). ``x``: the
        float vectors of the stored documents, row ``i`` stored under ``ids[i]`` (default: :attr:`ids`, i.e.
        ``x`` in insertion order). Records the choice (:attr:`nprobe`, :attr:`k_factor`, and
        ``metadata["tuned"]``, saved with the index) and returns what it measured; warns
        (:class:`~qama_rs.errors.QamaWarning`) when no setting reaches the target (the best one is kept)."""
        target = float(target_recall)
        if not 0.0 < target <= 1.0:
            raise QamaError(f"target_recall = {target_recall!r}; must be in (0, 1]")
        k = check_int(k, "k", 1, 1 << 16)
        n_probes = check_int(n_probes, "n_probes", 1)
        seed = check_int(seed, "seed", 0)
        with self._lock:
            self._require_trained()
            x = float_rows(x, "x", self._dims, allow_empty=False)
            if ids is None:
                if len(x) != self.ntotal:
                    raise QamaError(f"x has {len(x)} rows, the index holds {self.ntotal}; pass ids= for a subset")
                stored = np.asarray(self.ids)
            else:
                stored = np.asarray(ids)
                if stored.dtype.kind not in "iu" or stored.shape != (len(x),):
                    raise QamaError(f"ids must be {len(x)} integer ids, one per row of x")
                stored = stored.astype(np.int64)
                if (self._ids.slots_of(stored)[0] < 0).any():
                    raise QamaError("ids names ids the index does not hold")
            if len(x) <= k:
                raise QamaError(f"x has {len(x)} rows; tuning recall@{k} needs more than {k}")

            def search(q: np.ndarray, kk: int, nprobe: int | None, k_factor: float | None) -> np.ndarray:
                return self.search(q, kk, nprobe=nprobe, k_factor=k_factor)[1]

            probe_queries = None if queries is None else float_rows(queries, "queries", self._dims, allow_empty=False)
            sets = tuning.probes(x, stored, k, n_probes, seed, probe_queries)
            nlist = None if self._partition is None else self._partition.nlist
            result = tuning.tune(search, sets, target, k, nlist, self._pipe.refine is not None)
            if result.nprobe is not None:
                self.nprobe = result.nprobe
            if result.k_factor is not None:
                self.k_factor = result.k_factor
            self.metadata["tuned"] = result.as_dict()
        if not result.reached:
            warnings.warn(
                f"tune: no setting reached recall@{k} {target}; kept the best (nprobe={result.nprobe}, "
                f"k_factor={result.k_factor}: {result.recall:.3f}, 95 % lower bound {result.lower:.3f})",
                QamaWarning,
                stacklevel=2,
            )
        return result

    # ---------------------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the index atomically (:mod:`qama_rs.index.fileformat`): a failed save leaves an existing
        file untouched. The spec is stored verbatim; a ``QAMA(path)`` head is stored by its path."""
        persist.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = False, *, head: Any = None) -> Index:
        """Reads a file written by :meth:`save` (or by qama-rs 0.1's factory index). ``mmap=True`` maps it
        instead: stored rows, ids and tables are served from the page cache as they are touched (section
        checksums are then checked only by :meth:`verify`); the index can still take adds (in memory).
        A foreign, truncated, corrupt or newer file raises :class:`QamaError`."""
        return persist.load(cls, path, mmap, head=head)

    def verify(self) -> None:
        """Checks a loaded index's sections against their stored checksums (reads every byte)."""
        if self._header is None or self._sections is None:
            raise QamaError("verify() checks an index loaded from a file; this one was built in memory")
        fileformat.verify_sections(self._header, self._sections, self._spec)


def _no_results(nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(D, I)`` of ``nq`` queries with no result yet: scores -inf, ids -1."""
    return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)
