"""The search stages of an index, as functions of the stage's codec and stored rows: the first stage (a flat
scan, a filtered scan or a gather of allowed rows; or the probed lists of a partition) and the refinement
stage (exact rescoring of candidates). :class:`qama_rs.index.Index` validates arguments and chains them."""

from __future__ import annotations

import numpy as np

from qama_rs import _core
from qama_rs.index.codecs import Codec
from qama_rs.index.ivf import Partition
from qama_rs.index.storage import ListStore

__all__ = ["GATHER_RATIO", "Selection", "flat", "probed", "refine"]

#: An allowed set of at most ``rows / GATHER_RATIO`` is scored row by row instead of scanned with a filter (but a kept
#: selection of a block codec is scanned by the blocks it admits rows of, once it knows them: see :func:`flat`).
GATHER_RATIO = 16


class Selection:
    """The allowed rows of a first stage — sorted slots of a flat store, sorted ids of a partitioned one (its
    lists are labelled by id) — and the engine's filter over them, built when first needed and then kept
    (an :class:`qama_rs.index.allowed.Allowed` keeps its selection across searches: ``kept``).

    A kept selection's filter also holds its admitted rows — which rows of the store it admits, found once
    (a test per stored row) on its second search, so a selection searched once never pays for them — when the
    codec scans 32-row blocks: its searches then skip the blocks it admits no row of (a 1 % filter: about three
    blocks in four) and test no ids. Otherwise a search tests the id of each row that could enter its top-k."""

    __slots__ = ("_admitted", "_filter", "_searched", "kept", "rows")

    def __init__(self, rows: np.ndarray, kept: bool = False) -> None:
        self.rows = rows
        self.kept = kept
        self._filter: _core.Filter | None = None
        self._admitted: _core.Filter | None = None
        self._searched = False

    @property
    def filter(self) -> _core.Filter:
        if self._filter is None:
            self._filter = _core.Filter.labels(_unsigned(self.rows))  # a bitmap where the rows are dense
        return self._filter

    def filter_for(self, codec: Codec, store: _core.Store) -> _core.Filter:
        """The engine's filter for a search of ``store`` by ``codec`` (see the class docs)."""
        admitted = self.admitted(codec, store)
        return self.filter if admitted is None else admitted

    def admitted(self, codec: Codec, store: _core.Store) -> _core.Filter | None:
        """The engine's filter with the rows of ``store`` it admits, where the search can skip blocks by them: a
        kept selection, a block codec, from the selection's second search of the store on (see the class docs);
        else None."""
        if not self.kept or codec.block_rows == 1:  # only the block scan skips rows it is told of
            return None
        admitted = self._admitted
        if admitted is None or admitted.store_serial != store.serial:
            if not self._searched:  # the first search: the ids (an index that changes between searches
                self._searched = True  # would find the rows again for every search)
                return None
            admitted = self._admitted = self.filter.admitting(store)
        return admitted


def _nothing(nq: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((nq, 0), np.float32), np.zeros((nq, 0), np.int64)


def flat(
    codec: Codec, store: ListStore, q: np.ndarray, k: int, prefix: int | None, allowed: Selection | None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows (positions) of a one-list store; ``allowed``: the rows allowed (None: all)."""
    engine, queries = codec.engine(prefix), codec.queries(q, prefix)
    if allowed is None:
        return engine.search(queries, store.core(), k)
    positions = allowed.rows
    if not len(positions):
        return _nothing(len(q))
    if len(positions) * GATHER_RATIO <= store.rows:
        # Few rows: each scored where it is stored — unless the scan can skip the blocks they are not in. A 32-row
        # block keeps a row's bytes 32 apart, so a row scored alone reads a cache line per two bytes (a 1 % filter
        # of 199k 48-byte rows: 332 µs scored one by one, 153 µs scanned by blocks; unfiltered 301 µs).
        admitted = allowed.admitted(codec, store.core())
        if admitted is None:
            return engine.rescore(queries, store.core(), positions, k)
        return engine.search(queries, store.core(), k, admitted)
    return engine.search(queries, store.core(), k, allowed.filter_for(codec, store.core()))


def probed(
    codec: Codec,
    store: ListStore,
    partition: Partition,
    q: np.ndarray,
    k: int,
    prefix: int | None,
    nprobe: int,
    allowed: Selection | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` ids from each query's ``nprobe`` best lists of a partitioned store (lists labelled by id).
    With ``allowed`` (ids), a query goes on past ``nprobe`` lists, best first, until it has ``k``
    allowed rows: a selective filter never returns fewer results than the allowed rows can give.

    The lists a filtered query may go on to follow the allowed share: ``nprobe`` plus four times the lists
    that hold ``k`` allowed rows on average (a 1 % filter of 200k rows in 1,024 lists, k = 10, nprobe 8: 8 + 4 * 6
    = 32 lists, not all 1,024), ranked past the first ``nprobe`` only for a query those leave short (1.5 % of
    queries there: the wider ranking cost a query 5 µs). A query that still has fewer than ``k`` results is
    searched again over every list."""
    engine, queries = codec.engine(prefix), codec.queries(q, prefix)
    if allowed is None:
        return engine.search_lists(queries, store.core(), k, partition.plan(q, nprobe, nprobe), None)
    count = len(allowed.rows)
    if not count:
        return _nothing(len(q))
    nlist, only = partition.nlist, allowed.filter_for(codec, store.core())
    width = nprobe + 4 * -(-k * nlist // count)
    scores, found = engine.search_lists(queries, store.core(), k, partition.plan(q, nprobe, width), only)
    want = min(k, count, store.rows)
    # Results come best first with the missing ones (-1) last: a short query lacks its want-th.
    last = found[:, want - 1]
    # One reduction (one query: one compare); the indices only where a query is short.
    if width < nlist and (last[0] < 0 if len(last) == 1 else last.min() < 0):
        short = np.flatnonzero(last < 0)
        again = engine.search_lists(queries[short], store.core(), k, partition.plan(q[short], nprobe, nlist), only)
        scores[short], found[short] = again
    return scores, found


def refine(codec: Codec, store: ListStore, q: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rescores candidate rows (``-1`` padding) of each query with the refinement codec: top-``k`` rows."""
    engine, queries = codec.engine(), codec.queries(q)
    if (rows >= 0).all():
        return engine.rescore(queries, store.core(), np.ascontiguousarray(rows), k)
    # Some queries have fewer candidates (a filter): rescore each alone.
    D = np.full((len(q), k), -np.inf, dtype=np.float32)
    I = np.full((len(q), k), -1, dtype=np.int64)  # noqa: E741
    for i, row in enumerate(rows):
        valid = row[row >= 0]
        if len(valid):
            s, r = engine.rescore(queries[i : i + 1], store.core(), np.ascontiguousarray(valid), k)
            D[i, : s.shape[1]], I[i, : r.shape[1]] = s[0], r[0]
    return D, I


def _unsigned(ids: np.ndarray) -> np.ndarray:
    """Non-negative int64 ids as the engine's uint64 labels (a view, not a copy, where it can be)."""
    if ids.dtype == np.int64 and ids.flags.c_contiguous:
        return ids.view(np.uint64)
    return ids.astype(np.uint64)
