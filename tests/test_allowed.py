"""A prepared filter (:class:`qama_rs.Allowed`): the same results as ``allowed=ids`` on flat, partitioned and
two-stage indexes, derived once and reused, derived again after the rows change (never stale), shared between
indexes, and clear errors for bad ids."""

from __future__ import annotations

import numpy as np
import pytest

from qama_rs import Allowed, QamaError, QamaTypeError, index_factory
from qama_rs.index import Index

DIMS = 24


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIMS))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return unit_rows(rng, 2000), unit_rows(rng, 25)


def built(spec: str, docs: np.ndarray, ids=None) -> Index:
    index = index_factory(DIMS, spec)
    index.train(docs)
    index.add(docs, ids=ids)
    return index


def exact_ids(docs, queries, ids, keep, k=10) -> np.ndarray:
    scores = queries @ docs.T
    scores[:, ~keep] = -np.inf
    return ids[np.argsort(-scores, axis=1, kind="stable")[:, :k]]


SPECS = ["Flat", "LloydMax4", "IVF8,Flat", "IVF8,pca_nibble_scaled(budget_bytes=12)", "Thermo1,RFlat(50)"]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("share", [0.01, 0.5])  # the flat index gathers 1 % and scans 50 % with a filter
@pytest.mark.parametrize("large_ids", [False, True])
def test_a_prepared_filter_answers_as_the_ids_do(data, spec, share, large_ids):
    docs, queries = data
    ids = 10**12 + 7 * np.arange(len(docs), dtype=np.int64) if large_ids else np.arange(len(docs))
    index = built(spec, docs, ids=ids if large_ids else None)
    rng = np.random.default_rng(2)
    chosen = rng.choice(len(docs), int(share * len(docs)), replace=False)  # unsorted
    kw = {"nprobe": 8} if index.nlist else {}
    want = index.search(queries, 10, allowed=ids[chosen], **kw)
    bitmap = None
    if not large_ids:
        bitmap = np.zeros(len(docs), dtype=bool)
        bitmap[chosen] = True
    for prepared in [Allowed(ids[chosen]), Allowed(list(ids[chosen]))] + ([Allowed(bitmap)] if bitmap is not None else []):
        for _ in range(2):  # derived on the first search, reused on the second
            got = index.search(queries, 10, allowed=prepared, **kw)
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_array_equal(got[0], want[0])
    if spec.endswith("Flat") and "RFlat" not in spec:  # exact codes: the exact filtered top-10
        keep = np.zeros(len(docs), dtype=bool)
        keep[chosen] = True
        np.testing.assert_array_equal(want[1], exact_ids(docs, queries, ids, keep))


@pytest.mark.parametrize("spec", ["Flat", "IVF8,Flat"])
def test_a_prepared_filter_is_derived_once_and_again_after_each_change(data, spec, monkeypatch):
    """What the index derives from an Allowed is kept while the rows stay the same; an add or a remove
    moves slots (ids that are not slots) and changes which allowed ids are stored, so it is derived again
    and the results stay the exact filtered top-k of the rows stored now."""
    docs, queries = data
    ids = 10**12 + 7 * np.arange(len(docs), dtype=np.int64)
    index = built(spec, docs[:1500], ids=ids[:1500])
    chosen = np.arange(0, len(docs), 9)  # some stored now, some added later
    allowed = Allowed(ids[chosen])
    derived = []
    original = Index._allowed_slots
    monkeypatch.setattr(Index, "_allowed_slots", lambda self, a: derived.append(1) or original(self, a))
    kw = {"nprobe": 8} if index.nlist else {}

    def check(stored: np.ndarray) -> None:
        keep = np.zeros(len(docs), dtype=bool)
        keep[np.intersect1d(chosen, stored)] = True
        _, found = index.search(queries, 10, allowed=allowed, **kw)
        np.testing.assert_array_equal(found, exact_ids(docs, queries, ids, keep))

    stored = np.arange(1500)
    check(stored)
    check(stored)
    assert len(derived) == 1
    assert index.remove(ids[0:600:2]) == 300  # slots move down; some allowed ids go
    stored = np.setdiff1d(stored, np.arange(0, 600, 2))
    check(stored)
    assert len(derived) == 2
    index.add(docs[1500:], ids=ids[1500:])  # allowed ids that were not stored before
    stored = np.concatenate([stored, np.arange(1500, len(docs))])
    check(stored)
    check(stored)
    assert len(derived) == 3


def test_a_prepared_filter_finds_the_rows_it_admits_in_the_store_of_now(data, tmp_path):
    """A prepared filter on a block-layout index holds which stored rows it admits, found by its second search
    (its searches then skip the blocks it admits no row of); after an add or a remove — and in a memory-mapped copy that
    took adds, whose lists have rows in both segments — the index has a new store and the search finds them
    again: the results stay those of the same ids given as an array (which never hold rows)."""
    docs, queries = data
    ids = 10**12 + 7 * np.arange(len(docs), dtype=np.int64)
    index = built("IVF8,pca_nibble_scaled(budget_bytes=12)", docs[:1500], ids=ids[:1500])
    allowed = Allowed(ids[np.random.default_rng(4).choice(len(docs), 40, replace=False)])  # some added later

    def check(index: Index) -> None:
        store = index._stores[0].core()
        for nprobe in (1, 8, 3):  # the first search tests ids; the second finds the admitted rows
            want = index.search(queries, 10, allowed=allowed.ids, nprobe=nprobe)
            got = index.search(queries, 10, allowed=allowed, nprobe=nprobe)
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_array_equal(got[0], want[0])
            selection = allowed.derived(index._serial, index._version)
            assert selection.kept and (selection._admitted is None) == (nprobe == 1)
        assert selection._admitted.store_serial == store.serial

    check(index)
    first = index._stores[0].core().serial
    assert index.remove(ids[0:1500:3]) == 500
    check(index)
    index.add(docs[1500:1800], ids=ids[1500:1800])
    check(index)
    assert index._stores[0].core().serial != first
    index.save(tmp_path / "ix.qama")
    mapped = Index.load(tmp_path / "ix.qama", mmap=True)
    mapped.add(docs[1800:], ids=ids[1800:])
    assert any(n_base and n_tail for n_base, n_tail in mapped._stores[0]._table[:, 1::2])  # both segments
    check(mapped)


def test_a_prepared_filter_of_few_rows_scans_the_blocks_it_admits_in_a_flat_index(data):
    """Few allowed rows of a flat block-layout index are scored one by one on the first search, and scanned by the
    blocks that hold them once the filter knows its admitted rows (its second search): the same results."""
    docs, queries = data
    index = built("pca_nibble_scaled(budget_bytes=12)", docs)
    picked = np.random.default_rng(6).choice(len(docs), len(docs) // 40, replace=False)  # under GATHER_RATIO
    allowed = Allowed(picked)
    want = index.search(queries, 10, allowed=picked)  # ids given as an array: scored one by one
    assert np.isin(want[1], picked).all()
    for search in range(3):
        got = index.search(queries, 10, allowed=allowed)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
        selection = allowed.derived(index._serial, index._version)
        assert (selection._admitted is None) == (search == 0)


def test_one_prepared_filter_serves_several_indexes(data):
    """Indexes whose rows changed as often (the same version) still derive their own rows: here the same
    ids name other rows (given in reverse), and fewer of them are stored."""
    docs, queries = data
    n = len(docs)
    cases = [("Flat", docs, None), ("Flat", docs[:500], np.arange(500)[::-1]), ("IVF8,Flat", docs, np.arange(n)[::-1])]
    indexes = [built(spec, rows, ids=None if ids is None else ids.copy()) for spec, rows, ids in cases]
    allowed = Allowed(np.arange(0, n, 3))
    for _ in range(2):  # alternately
        for index, (_, rows, ids) in zip(indexes, cases, strict=True):
            ids = np.arange(len(rows)) if ids is None else ids
            keep = ids % 3 == 0
            kw = {"nprobe": 8} if index.nlist else {}
            found = index.search(queries, 10, allowed=allowed, **kw)[1]
            np.testing.assert_array_equal(found, exact_ids(rows, queries, ids, keep))


def test_a_prepared_filter_holds_sorted_distinct_ids_and_drops_negative_ones():
    a = Allowed(np.array([9, 3, 3, -1, 0], dtype=np.int32))
    np.testing.assert_array_equal(a.ids, [0, 3, 9])
    assert a.ids.dtype == np.int64 and len(a) == 3 and repr(a) == "Allowed(3 ids)"
    with pytest.raises(ValueError):
        a.ids[0] = 5  # read-only: the ids cannot change under a cached selection
    np.testing.assert_array_equal(Allowed(np.array([False, True, True])).ids, [1, 2])
    np.testing.assert_array_equal(Allowed([False, True, True]).ids, [1, 2])  # a bitmap as a list too
    assert len(Allowed([])) == 0


def test_a_pickled_prepared_filter_leaves_what_indexes_derived_behind(data, monkeypatch):
    """Index serial numbers are per process: a copy sent to a worker must derive its rows again there."""
    import pickle

    docs, queries = data
    index = built("Flat", docs)
    allowed = Allowed(np.arange(0, len(docs), 5))
    want = index.search(queries, 10, allowed=allowed)[1]
    assert allowed.derived(index._serial, index._version) is not None
    copy = pickle.loads(pickle.dumps(allowed))
    np.testing.assert_array_equal(copy.ids, allowed.ids)
    assert copy.derived(index._serial, index._version) is None
    np.testing.assert_array_equal(index.search(queries, 10, allowed=copy)[1], want)


def test_one_prepared_filter_keeps_the_rows_of_several_indexes(data, monkeypatch):
    docs, queries = data
    indexes = [built("Flat", docs), built("IVF8,Flat", docs)]
    allowed = Allowed(np.arange(0, len(docs), 3))
    derived = []
    original = Index._allowed_slots
    monkeypatch.setattr(Index, "_allowed_slots", lambda self, a: derived.append(1) or original(self, a))
    for _ in range(3):  # alternately: each index derives its rows once
        for index in indexes:
            index.search(queries, 10, allowed=allowed, **({"nprobe": 8} if index.nlist else {}))
    assert len(derived) == 2


def test_an_empty_prepared_filter_finds_nothing(data):
    docs, queries = data
    for spec in ("Flat", "IVF8,Flat"):
        D, found = built(spec, docs).search(queries[:3], 5, allowed=Allowed([]))
        assert (found == -1).all() and np.isneginf(D).all()


@pytest.mark.parametrize(
    "bad, error, words",
    [
        (["a", "b"], QamaTypeError, "string ids"),
        (5, QamaTypeError, r"Allowed\(ids\).*got int"),
        (np.array([1.5, 2.0]), QamaTypeError, "float64"),
        (np.zeros((2, 2), dtype=np.int64), QamaError, "1-D"),
        (np.zeros((2, 2), dtype=bool), QamaError, "must be 1-D"),
    ],
)
def test_bad_prepared_filters_are_named(bad, error, words):
    with pytest.raises(error, match=words):
        Allowed(bad)
