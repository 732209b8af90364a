"""The partitioned (IVF) index end to end: a full probe equals the exact scan, recall grows with nprobe, adds and
removes without retraining, filters inside the scan (ids, names, bitmaps, ids that are not slots), save / load /
mmap (with adds on top of the mapped lists), the default nlist / nprobe rules and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from qama_rs import Allowed, Index, QamaError, _core, index_factory
from qama_rs.data.beir import data_root
from qama_rs.index.ivf import Partition, default_nlist, default_nprobe

DIMS = 32
NLIST = 16


def clustered(rng: np.random.Generator, n: int, centres: int = 24) -> np.ndarray:
    """Unit rows around ``centres`` random directions (the structure a partition exploits)."""
    c = rng.standard_normal((centres, DIMS))
    x = c[rng.integers(0, centres, n)] + 0.6 * rng.standard_normal((n, DIMS))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    return clustered(rng, 3000), clustered(rng, 40)


def exact(docs: np.ndarray, queries: np.ndarray, k: int, keep: np.ndarray | None = None) -> np.ndarray:
    scores = queries @ docs.T
    if keep is not None:
        scores[:, ~keep] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def ivf(spec: str, docs: np.ndarray, ids=None) -> Index:
    index = index_factory(DIMS, spec)
    index.train(docs)
    index.add(docs, ids=ids)
    return index


def test_probing_every_list_is_the_exact_scan(data):
    docs, queries = data
    index = ivf(f"IVF{NLIST},Flat", docs)
    assert index.nlist == NLIST and index.ntotal == len(docs)
    D, found = index.search(queries, 10, nprobe=NLIST)
    np.testing.assert_array_equal(found, exact(docs, queries, 10))
    np.testing.assert_allclose(D, np.take_along_axis(queries @ docs.T, found, axis=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("codec", ["pca_nibble_scaled(budget_bytes=16)", "LloydMax2"])
def test_recall_grows_with_nprobe_and_a_full_probe_keeps_the_codes_quality(data, codec):
    docs, queries = data
    truth = exact(docs, queries, 10)
    index = ivf(f"IVF{NLIST},{codec}", docs)
    got = [recall(index.search(queries, 10, nprobe=p)[1], truth) for p in (1, 4, NLIST)]
    assert got[0] <= got[1] + 0.02 <= got[2] + 0.04, got
    flat = recall(ivf(codec, docs).search(queries, 10)[1], truth)
    assert got[2] >= flat - 0.02, (got, flat)  # residuals to the centroid code no worse than the vectors
    assert got[0] < got[2]  # one list of sixteen misses neighbours


def _int8_copy(nlist, dims):
    """Bytes of the engine's int8 copy of the centroids (16-list blocks, 4-dimension groups, 28 bytes of
    factors a list), held where its AVX-512 VNNI kernel runs; the engine holds the centroids once besides."""
    padded = -(-nlist // 16) * 16
    return padded * (-(-dims // 4) * 4 + 28) if _core.best_isa() == "avx512" else 0


def test_centroids_are_float16_values_and_residual_scores_stay_exact(data):
    docs, queries = data
    index = ivf(f"IVF{NLIST},Flat", docs)
    c = index._partition.centroids
    assert c.dtype == np.float16 and index._partition._coarse.is_half
    assert index._partition.nbytes == NLIST * DIMS * 2 + _int8_copy(NLIST, DIMS)
    assert index.memory_bytes == sum(s.nbytes for s in index._stores) + index._partition.nbytes
    # Residuals to the rounded centroids plus the bias give the exact scores of the vectors.
    D, found = index.search(queries, 10, nprobe=NLIST)
    np.testing.assert_allclose(D, np.take_along_axis(queries @ docs.T, found, axis=1), rtol=1e-5, atol=1e-6)


def test_centroids_beyond_float16_stay_float32_and_save_as_float32(data, tmp_path):
    docs, queries = data
    big = docs * np.float32(1e6)  # centroids past float16's range (65504): kept and scored in float32
    index = ivf(f"IVF{NLIST},Flat", big)
    part = index._partition
    assert part.centroids.dtype == np.float32 and not part._coarse.is_half
    assert part.nbytes == NLIST * DIMS * 4 + _int8_copy(NLIST, DIMS)
    D, found = index.search(queries, 10, nprobe=NLIST)
    np.testing.assert_allclose(D, np.take_along_axis(queries @ big.T, found, axis=1), rtol=1e-5)
    assert recall(found, exact(big, queries, 10)) >= 0.99
    index.save(tmp_path / "big.qama")
    again = Index.load(tmp_path / "big.qama")
    assert again._partition.centroids.dtype == np.float32
    np.testing.assert_array_equal(again.search(queries, 10, nprobe=NLIST)[1], found)
    small = ivf(f"IVF{NLIST},Flat", docs)
    small.save(tmp_path / "small.qama")
    loaded = Index.load(tmp_path / "small.qama", mmap=True)
    assert loaded._partition.centroids.dtype == np.float16
    np.testing.assert_array_equal(loaded._partition.centroids, small._partition.centroids)


def test_a_long_add_shows_a_progress_bar_and_a_short_one_does_not(data, monkeypatch, capsys):
    import qama_rs.index.index as index_module

    docs, queries = data
    index = ivf(f"IVF{NLIST},Flat", docs)
    capsys.readouterr()
    index.add(docs[:50])
    assert "adding" not in capsys.readouterr().err  # below ADD_PROGRESS_ROWS: quiet
    monkeypatch.setattr(index_module, "ADD_PROGRESS_ROWS", 100)
    monkeypatch.setattr(index_module, "ADD_CHUNK", 64)
    index.add(docs[:300])
    err = capsys.readouterr().err
    assert "adding 300 vectors" in err, err
    assert len(index) == 3000 + 50 + 300  # five chunks of at most 64 rows, every row stored once
    np.testing.assert_array_equal(index.ids[-300:], np.arange(3050, 3350))
    D, found = index.search(docs[:5], 3, nprobe=NLIST)
    assert all(set(f) == {i, 3000 + i, 3050 + i} for i, f in enumerate(found)), found


@pytest.mark.parametrize("spec", [f"IVF{NLIST},Flat", "Flat", f"IVF{NLIST},Thermo1,Rescore(Flat,20)"])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_add_that_fails_part_way_leaves_the_index_as_it_was(data, monkeypatch, spec, error):
    import qama_rs.index.index as index_module

    docs, queries = data
    index = ivf(spec, docs[:2000])
    probe = {"nprobe": NLIST} if spec.startswith("IVF") else {}
    before = index.search(queries, 10, **probe)
    monkeypatch.setattr(index_module, "ADD_CHUNK", 64)
    codec = index._codecs()[-1]  # the last stage's codec: earlier stores have taken the chunk already
    encode, calls = codec.encode, []

    def failing(x):
        calls.append(len(x))
        if len(calls) == 3:  # the third chunk (an interrupt, an out-of-memory ...)
            raise error("part way")
        return encode(x)

    monkeypatch.setattr(codec, "encode", failing)
    with pytest.raises(error, match="part way"):
        index.add(docs[2000:2500])
    monkeypatch.setattr(codec, "encode", encode)
    assert len(index) == 2000 and sum(s.rows for s in index._stores) == 2000 * len(index._stores)
    after = index.search(queries, 10, **probe)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(after[0], before[0])
    index.add(docs[2000:2500])  # the same rows again, now whole
    assert len(index) == 2500
    np.testing.assert_array_equal(index.search(docs[2000:2005], 1, **probe)[1][:, 0], np.arange(2000, 2005))


class _NumpyFailingInCompaction:
    """``numpy`` for the storage module, whose ``zeros`` raises ``MemoryError`` on its second call inside a
    packing of the arena (the new labels, after the new codes were made)."""

    def __init__(self) -> None:
        self.inside, self.calls = False, 0

    def __getattr__(self, name):
        return getattr(np, name)

    def zeros(self, *args, **kwargs):
        if self.inside:
            self.calls += 1
            if self.calls == 2:
                raise MemoryError("arena")
        return np.zeros(*args, **kwargs)


@pytest.mark.parametrize("where", ["packing", "growing", "trim"])
def test_an_add_that_fails_in_the_storage_leaves_the_index_as_it_was(data, monkeypatch, where):
    import qama_rs.index.index as index_module
    import qama_rs.index.storage as storage

    docs, queries = data
    index = ivf(f"IVF{NLIST},Flat", docs[:2000])
    before = index.search(queries, 10, nprobe=NLIST)
    # One chunk grows lists as rows come (growing); several are assigned first and packed once (reserve).
    monkeypatch.setattr(index_module, "ADD_CHUNK", 4096 if where == "growing" else 64)
    if where == "packing":  # a packing of the whole arena (as trim does on a large index) fails part way
        fake = _NumpyFailingInCompaction()
        monkeypatch.setattr(storage, "np", fake)
        compact = storage.ListStore._compact_arena

        def packing(self, *rows):
            fake.inside = True
            try:
                compact(self, *rows)
            finally:
                fake.inside = False

        monkeypatch.setattr(storage.ListStore, "_compact_arena", packing)
        monkeypatch.setattr(storage.ListStore, "trim", lambda self: self._compact_arena())
        error = MemoryError
    elif where == "growing":  # the arena grows, and growing its labels runs out of memory
        grow_to, calls = storage._grow_to, []

        def failing(*args):
            calls.append(1)
            if len(calls) == 1:
                raise MemoryError("arena")
            return grow_to(*args)

        monkeypatch.setattr(storage, "_grow_to", failing)
        error = MemoryError
    else:  # Ctrl-C while the add packs the lists at its end
        def interrupted(self):
            raise KeyboardInterrupt("trim")

        monkeypatch.setattr(storage.ListStore, "trim", interrupted)
        error = KeyboardInterrupt
    with pytest.raises(error):
        index.add(docs[2000:2500])
    monkeypatch.undo()
    assert len(index) == 2000 and index._stores[0].rows == 2000
    after = index.search(queries, 10, nprobe=NLIST)
    np.testing.assert_array_equal(after[1], before[1])
    index.add(docs[2000:2500])
    assert len(index) == 2500
    np.testing.assert_array_equal(index.search(docs[2000:2005], 1, nprobe=NLIST)[1][:, 0], np.arange(2000, 2005))
    index.add(docs[2500:3000])  # and the next adds grow the arena again
    np.testing.assert_array_equal(index.search(docs[2995:3000], 1, nprobe=NLIST)[1][:, 0], np.arange(2995, 3000))


@pytest.mark.parametrize("spec", [f"IVF{NLIST},pca_nibble_scaled(budget_bytes=16)", f"IVF{NLIST},LloydMax2"])
def test_one_query_at_a_time_answers_what_the_batch_does(spec):
    """A query searched alone shares its work with the pool's threads that join it (its tables beside its coarse
    ranking, then its lists: ``rust/core/src/share.rs``); a batch is parallel over queries. Both give the same
    scores and ids, filtered too. 100k rows: lists long enough for a helper to join while the caller scans."""
    rng = np.random.default_rng(8)
    docs, queries = clustered(rng, 100_000), clustered(rng, 40)
    index = ivf(spec, docs)
    for kw in ({}, {"allowed": Allowed(np.arange(0, len(docs), 7))}):
        for nprobe in (1, 3, NLIST):
            D, found = index.search(queries, 10, nprobe=nprobe, **kw)
            for i in range(len(queries)):
                d, f = index.search(queries[i : i + 1], 10, nprobe=nprobe, **kw)
                np.testing.assert_array_equal(f[0], found[i], err_msg=f"{kw} nprobe {nprobe} query {i}")
                np.testing.assert_array_equal(d[0], D[i])


def test_adds_and_removes_need_no_retraining(data):
    docs, queries = data
    index = ivf(f"IVF{NLIST},Flat", docs[:2000])
    index.add(docs[2000:])  # appended to the trained lists
    gone = np.arange(0, 3000, 3)
    assert index.remove(gone) == len(gone)
    keep = np.ones(len(docs), dtype=bool)
    keep[gone] = False
    _, found = index.search(queries, 10, nprobe=NLIST)
    assert not np.isin(found, gone).any()
    np.testing.assert_array_equal(found, exact(docs, queries, 10, keep))


@pytest.mark.parametrize("form", ["ids", "bitmap", "names", "large ids"])
def test_a_selective_filter_returns_k_allowed_results_from_the_scan(data, form):
    docs, queries = data
    rng = np.random.default_rng(1)
    chosen = np.sort(rng.choice(len(docs), 30, replace=False))  # 1 %
    keep = np.zeros(len(docs), dtype=bool)
    keep[chosen] = True
    ids, allowed = None, chosen
    if form == "bitmap":
        allowed = keep
    elif form == "names":
        ids = [f"doc{i}" for i in range(len(docs))]
        allowed = [ids[i] for i in chosen]
    elif form == "large ids":  # ids that are not slots, far beyond the row count
        ids = 10**12 + 7 * np.arange(len(docs), dtype=np.int64)
        allowed = ids[chosen]
    index = ivf(f"IVF{NLIST},Flat", docs, ids=ids)
    _, found = index.search(queries, 10, nprobe=1, allowed=allowed)  # one list holds ~2 allowed rows
    assert (found != -1).all()  # k results: the search goes on past nprobe lists, best first
    _, every = index.search(queries, 10, nprobe=NLIST, allowed=allowed)
    truth = exact(docs, queries, 10, keep)
    if form == "names":
        np.testing.assert_array_equal(index.names_of(every), np.array(ids, dtype=object)[truth])
        assert set(np.ravel(index.names_of(found))) <= set(allowed)
        return
    to_rows = (lambda i: (i - 10**12) // 7) if form == "large ids" else (lambda i: i)
    assert np.isin(to_rows(found), chosen).all()
    np.testing.assert_array_equal(to_rows(every), truth)


def plan_widths(monkeypatch, index: Index) -> list[int]:
    """The ``width`` of each plan ``index``'s partition makes from now on (filled as searches run)."""
    widths: list[int] = []
    plan = type(index._partition).plan

    def spy(self, q, nprobe, width):
        widths.append(width)
        return plan(self, q, nprobe, width)

    monkeypatch.setattr(type(index._partition), "plan", spy)
    return widths


def test_a_filter_whose_rows_lie_in_the_farthest_lists_is_searched_again_over_every_list(monkeypatch):
    """The lists a filtered query ranks follow the allowed share (here 1 + 4 of 16); a query still short
    of k after them is searched again over every list, so it gets the exact filtered top-k."""
    rng = np.random.default_rng(3)
    angles = np.arange(NLIST) * np.pi / (NLIST - 1)  # cluster j at angle j * 12 degrees from the query
    centres = np.zeros((NLIST, DIMS))
    centres[:, 0], centres[:, 1] = np.cos(angles), np.sin(angles)
    member = np.repeat(np.arange(NLIST), 200)
    docs = centres[member] + 0.03 * rng.standard_normal((len(member), DIMS))
    docs = (docs / np.linalg.norm(docs, axis=1, keepdims=True)).astype(np.float32)
    queries = np.zeros((3, DIMS), dtype=np.float32)
    queries[:, 0] = 1.0
    queries[1:, 2] = [0.1, -0.1]
    index = ivf(f"IVF{NLIST},Flat", docs)
    allowed = np.flatnonzero(member == NLIST - 1)  # the cluster opposite the queries: 200 rows
    widths = plan_widths(monkeypatch, index)
    _, found = index.search(queries, 10, nprobe=1, allowed=allowed)
    assert widths == [1 + 4 * 1, NLIST]  # ceil(10 * 16 / 200) = 1 list holds k allowed rows on average
    keep = np.zeros(len(docs), dtype=bool)
    keep[allowed] = True
    np.testing.assert_array_equal(found, exact(docs, queries, 10, keep))


def test_a_query_short_after_its_probed_lists_goes_on_through_its_plan_without_a_second_search(data, monkeypatch):
    """A filtered plan ranks its probed lists first and the lists past them only for a query they leave short
    of k (their exact coarse scores cost more than most such scans): those queries go on, best first, within
    the same search — no query here needs the search again over every list."""
    docs, queries = data
    index = ivf(f"IVF{NLIST},Flat", docs)
    allowed = np.sort(np.random.default_rng(4).choice(len(docs), 150, replace=False))  # 5 %: 9 lists ranked
    codec, store = index._pipe.codec, index._stores[0]
    only = _core.Filter.labels(allowed.astype(np.uint64))
    _, first = codec.engine().search_lists(queries, store.core(), 10, index._partition.plan(queries, 1, 1), only)
    assert (first[:, 9] < 0).sum() >= 5  # many queries are short after their first list
    widths = plan_widths(monkeypatch, index)
    _, found = index.search(queries, 10, nprobe=1, allowed=allowed)
    assert widths == [1 + 4 * 2]  # ceil(10 * 16 / 150) = 2 lists hold k allowed rows on average
    assert (found >= 0).all() and np.isin(found, allowed).all()
    for i in range(len(queries)):  # one query at a time (its lists shared with the pool's threads) alike
        _, alone = index.search(queries[i : i + 1], 10, nprobe=1, allowed=allowed)
        np.testing.assert_array_equal(alone[0], found[i])
    assert widths == [1 + 4 * 2] * (1 + len(queries))


def test_half_the_corpus_allowed_matches_the_exact_filtered_scan(data):
    docs, queries = data
    index = ivf(f"IVF{NLIST},Flat", docs)
    keep = np.zeros(len(docs), dtype=bool)
    keep[::2] = True
    for allowed in (np.flatnonzero(keep), keep):
        _, found = index.search(queries, 10, nprobe=NLIST, allowed=allowed)
        np.testing.assert_array_equal(found, exact(docs, queries, 10, keep))


def test_save_load_and_mmap_answer_the_same_and_a_mapped_index_takes_adds(data, tmp_path):
    docs, queries = data
    index = ivf(f"IVF{NLIST},pca_nibble_scaled(budget_bytes=16)", docs[:2500])
    index.nprobe = 4
    want = index.search(queries, 10)
    index.save(tmp_path / "ivf.qidx")
    for mmap in (False, True):
        loaded = Index.load(tmp_path / "ivf.qidx", mmap=mmap)
        assert loaded.nlist == NLIST and loaded.nprobe == 4
        for got, expected in zip(loaded.search(queries, 10), want, strict=True):
            np.testing.assert_array_equal(got, expected)
    mapped = Index.load(tmp_path / "ivf.qidx", mmap=True)
    mapped.add(docs[2500:])
    index.add(docs[2500:])
    assert mapped.ntotal == len(docs)
    for got, expected in zip(mapped.search(queries, 10, nprobe=NLIST), index.search(queries, 10, nprobe=NLIST),
                             strict=True):  # fmt: skip
        np.testing.assert_array_equal(got, expected)


def _without_radius(index: Index) -> None:
    """Makes ``index`` rank lists as indexes saved before the radius do: by ``<q, c>``."""
    index._partition.radius = None
    index._partition._hold(index._partition._centroids32())


def test_lists_rank_by_the_cell_a_query_falls_in_and_files_keep_their_ranking(data, tmp_path, monkeypatch):
    """A query's first list is the cell its scaled query falls in (``|q R / |q| - c|``, ``R`` the training rows'
    RMS norm), so one probed list of a ``Flat`` index gives the exact top-k of that cell; saved and loaded
    indexes keep the radius, and a file without one (written before it) ranks by ``<q, c>`` as it did."""
    docs, queries = data
    index = ivf(f"IVF{NLIST},Flat", docs)
    radius = index._partition.radius
    assert radius == pytest.approx(np.sqrt((docs.astype(np.float64) ** 2).sum(1).mean()), rel=1e-12)
    centroids = index._partition._centroids32().astype(np.float64)
    own = index._partition.assign(docs)
    scaled = queries * (radius / np.linalg.norm(queries, axis=1, keepdims=True))
    cell = np.argmin(((scaled[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    by_product = np.argmax(queries @ centroids.T, axis=1)
    assert (cell != by_product).any()  # the two rankings differ here: the checks below tell them apart

    def first_list_top(lists):
        return np.stack([exact(docs, q[None], 10, keep=own == j)[0] for q, j in zip(queries, lists, strict=True)])

    np.testing.assert_array_equal(index.search(queries, 10, nprobe=1)[1], first_list_top(cell))
    index.save(tmp_path / "cells.qidx")
    loaded = Index.load(tmp_path / "cells.qidx")
    assert loaded._partition.radius == radius
    np.testing.assert_array_equal(loaded.search(queries, 10, nprobe=1)[1], first_list_top(cell))
    old_state = Partition.state

    def state_before_the_radius(self):
        meta, arrays = old_state(self)
        del meta["radius"]
        return meta, arrays

    monkeypatch.setattr(Partition, "state", state_before_the_radius)
    index.save(tmp_path / "old.qidx")
    old = Index.load(tmp_path / "old.qidx")
    assert old._partition.radius is None
    np.testing.assert_array_equal(old.search(queries, 10, nprobe=1)[1], first_list_top(by_product))
    meta, arrays = old_state(index._partition)
    for bad in (-1.0, 0, float("inf"), "1"):
        with pytest.raises(QamaError, match="corrupt qama-rs index \\(IVF radius"):
            Partition(NLIST, True).restore({**meta, "radius": bad}, arrays, "x.qidx")


def test_on_real_wiki_vectors_the_cell_ranking_finds_more_neighbours_per_probed_list(tmp_path):
    """49,700 real MiniLM wiki passages in 256 lists, 300 held-out passages as queries, ``Flat`` codes (so
    recall is the partition's): the cell ranking puts more of a query's true top-10 in its first lists
    than ranking by ``<q, c>`` (measured: 0.62 / 0.76 / 0.86 against 0.58 / 0.71 / 0.83 at nprobe 1 / 2 / 4)."""
    path = data_root() / "unlabelled" / "wiki-50k" / "all-MiniLM-L6-v2.npy"
    if not path.exists():
        pytest.fail(f"shared embeddings not found at {path} (CI needs ../shared beside the repo)")
    x = np.load(path).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    queries, docs = x[order[:300]], x[np.sort(order[300:])]
    truth = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    cells = index_factory(x.shape[1], "IVF256,Flat")
    cells.train(docs)
    cells.add(docs)
    cells.save(tmp_path / "wiki.qidx")
    plain = Index.load(tmp_path / "wiki.qidx")
    _without_radius(plain)
    for nprobe, gain in ((1, 0.02), (2, 0.02), (4, 0.01)):
        got, before = (recall(ix.search(queries, 10, nprobe=nprobe)[1], truth) for ix in (cells, plain))
        assert got >= before + gain, (nprobe, got, before)


def test_default_nlist_and_nprobe_rules(data):
    docs, _ = data
    index = ivf("IVF,Flat", docs)
    assert index.nlist == default_nlist(len(docs)) == max(1, min(round(np.sqrt(len(docs))), len(docs) // 39))
    assert default_nprobe(1024) == 32 and default_nprobe(64) == 8 and default_nprobe(4) == 4


def test_nprobe_errors_name_the_argument(data):
    docs, queries = data
    with pytest.raises(QamaError, match="nprobe"):
        ivf("Flat", docs).search(queries, 5, nprobe=4)  # not partitioned
    index = ivf(f"IVF{NLIST},Flat", docs)
    for bad in (0, -1, 2.5):
        with pytest.raises((QamaError, TypeError), match="nprobe"):
            index.search(queries, 5, nprobe=bad)


def test_a_chunked_add_reserves_the_lists_once_and_stores_what_one_chunk_does(data, monkeypatch):
    import qama_rs.index.index as index_module
    from qama_rs.index.storage import ListStore

    docs, queries = data
    one = ivf(f"IVF{NLIST},pca_nibble_scaled(budget_bytes=12)", docs[:500])
    chunked = index_factory(DIMS, f"IVF{NLIST},pca_nibble_scaled(budget_bytes=12)")
    chunked.train(docs[:500])
    chunked.add(docs[:500])
    one.add(docs[500:])  # one chunk: lists grow as rows come
    calls = {"pack": 0, "grow": 0}
    pack, grow = ListStore._compact_arena, ListStore._ensure_arena

    def counting_pack(self, *rows):
        calls["pack"] += 1
        return pack(self, *rows)

    def counting_grow(self, rows):
        calls["grow"] += 1
        return grow(self, rows)

    monkeypatch.setattr(ListStore, "_compact_arena", counting_pack)
    monkeypatch.setattr(ListStore, "_ensure_arena", counting_grow)
    monkeypatch.setattr(index_module, "ADD_CHUNK", 64)
    chunked.add(docs[500:])  # 40 chunks: every row assigned first, the arena packed once with room
    monkeypatch.undo()
    assert calls == {"pack": 1, "grow": 0}
    a, b = one._stores[0], chunked._stores[0]
    np.testing.assert_array_equal(a.counts(), b.counts())
    for lst in range(NLIST):
        (rows_a, labels_a, scale_a), (rows_b, labels_b, scale_b) = a.list_rows(lst), b.list_rows(lst)
        np.testing.assert_array_equal(rows_a, rows_b)
        np.testing.assert_array_equal(labels_a, labels_b)
        # A row's length factor may round differently in a product over 64 rows than over 2,500.
        np.testing.assert_allclose(scale_a, scale_b, rtol=1e-6)
    assert b.nbytes <= a.nbytes
    for nprobe in (1, NLIST):
        np.testing.assert_array_equal(one.search(queries, 10, nprobe=nprobe)[1], chunked.search(queries, 10, nprobe=nprobe)[1])


def test_many_lists_are_assigned_through_a_shortlist_that_picks_the_nearest_centroid():
    from qama_rs import _core

    rng = np.random.default_rng(8)
    dims, inner = 64, 8
    axes = np.linalg.qr(rng.standard_normal((dims, inner)))[0].T
    centres = rng.standard_normal((600, inner)) @ axes
    x = (centres[rng.integers(0, 600, 30_000)] + 0.05 * rng.standard_normal((30_000, dims))).astype(np.float32)
    index = index_factory(dims, "IVF512,Flat")
    index.train(x)
    part = index._partition
    assert part._basis is not None  # 512 lists whose centroids span few directions: shortlisted
    index.add(x)
    lists = np.repeat(np.arange(512), index._stores[0].counts())
    order = np.concatenate([index._stores[0].labels_of_list(lst) for lst in range(512)]).astype(np.int64)
    exact = _core.kmeans_assign(x, part._centroids32())[0]
    assert np.mean(lists == exact[order]) >= 0.99
    # A full probe is still the exact scan, whatever list a row went to.
    q = x[:20]
    np.testing.assert_array_equal(index.search(q, 5, nprobe=512)[1][:, 0], np.argmax(q @ x.T, axis=1))


@pytest.mark.parametrize(
    "spec",
    [f"IVF{NLIST},Flat", "pca_nibble_scaled(budget_bytes=12)", f"IVF{NLIST},Thermo1,Rescore(Flat,20)", "mapped"],
)
@pytest.mark.parametrize("where", ["compacting", "ids"])
@pytest.mark.parametrize("error", [MemoryError, KeyboardInterrupt])
def test_a_remove_that_fails_part_way_leaves_the_index_as_it_was(data, monkeypatch, tmp_path, spec, where, error):
    from qama_rs.index.ids import IdMap
    from qama_rs.index.storage import ListStore

    docs, queries = data
    if spec == "mapped":  # a mapped base is never written: removed lists' survivors move to the tail
        built = ivf(f"IVF{NLIST},pca_nibble_scaled(budget_bytes=12)", docs[:2000])
        built.add(docs[2000:2300])  # some rows in the tail as well
        built.save(tmp_path / "ivf.qidx")
        index = Index.load(tmp_path / "ivf.qidx", mmap=True)
        index.add(docs[2300:2400])
    else:
        index = ivf(spec, docs[:2400])
    probe = {"nprobe": NLIST} if spec != "pca_nibble_scaled(budget_bytes=12)" else {}
    before = index.search(queries, 10, **probe)
    gone = np.arange(0, 2400, 7)  # rows in every list, in the base and the tail
    if where == "compacting":  # the third list compacted (or moved) fails, after its rows were written
        keep_in, append = ListStore._keep_in, ListStore.append_list
        calls, nth = [], 1 if spec.startswith("pca") else 3  # a flat index has one list

        def failing(original):
            def call(self, *args):
                calls.append(1)
                result = original(self, *args)
                if len(calls) == nth:
                    raise error("part way")
                return result

            return call

        monkeypatch.setattr(ListStore, "_keep_in", failing(keep_in))
        monkeypatch.setattr(ListStore, "append_list", failing(append))
    else:  # every store compacted, the ids last

        def failing_ids(self, mask):
            raise error("part way")

        monkeypatch.setattr(IdMap, "keep", failing_ids)
    with pytest.raises(error, match="part way"):
        index.remove(gone)
    monkeypatch.undo()
    assert len(index) == 2400 and all(s.rows == 2400 for s in index._stores)
    after = index.search(queries, 10, **probe)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(after[0], before[0])
    # The same remove again, now whole: as a fresh index of the survivors' rows answers.
    assert index.remove(gone) == len(gone)
    survivors = np.setdiff1d(np.arange(2400), gone)
    D, found = index.search(docs[survivors[:5]], 1, **probe)
    np.testing.assert_array_equal(found[:, 0], survivors[:5])
    assert not np.isin(index.search(queries, 50, **probe)[1], gone).any()


def test_a_remove_saves_only_the_rows_it_moves():
    from qama_rs.index.storage import ListStore

    rng = np.random.default_rng(9)
    for block_rows in (1, 32):
        store = ListStore(np.uint8, 16, block_rows, labelled=True, scaled=True)
        rows = rng.integers(0, 255, (10_000, 16), dtype=np.uint8)
        store.append(rows, labels=np.arange(10_000, dtype=np.uint64), scale=np.ones(10_000, np.float32))
        keep = np.ones(10_000, dtype=bool)
        keep[[9_990, 9_995]] = False
        record = store.keep(keep)
        saved = sum(e[2].nbytes for e in record.extents)
        assert saved <= 2 * 32 * 16, saved  # the block of the first dropped row on, not the whole list
        store.undo(record)
        np.testing.assert_array_equal(store.list_rows(0)[0], rows)
        np.testing.assert_array_equal(store.list_rows(0)[1], np.arange(10_000))


@pytest.mark.parametrize("spec", [f"IVF{NLIST},pca_nibble_scaled(budget_bytes=12)", "pca_nibble_scaled(budget_bytes=12)"])
def test_plain_queries_skip_no_check_the_full_path_makes(data, spec, monkeypatch):
    """A plain search (C-contiguous float32 queries, int k and nprobe, no filter) skips the argument checks that
    would change nothing: it answers as the full path does, and inputs it does not take go the full way."""
    docs, queries = data
    index = ivf(spec, docs)
    probe = {"nprobe": 3} if index.nlist else {}
    plain = index.search(queries, 7, **probe)
    assert index._plain_search(queries, 7, None, None, None, probe.get("nprobe")) is not None
    # The same queries in forms the fast check refuses: the full path, the same answers.
    readonly = queries.copy()
    readonly.flags.writeable = False
    for form in (queries.astype(np.float64), np.asfortranarray(queries), readonly, queries.tolist()):
        assert form is queries or index._plain_search(form, 7, None, None, None, probe.get("nprobe")) is None
        D, I = index.search(form, 7, **probe)  # noqa: E741
        np.testing.assert_array_equal(I, plain[1])
        np.testing.assert_array_equal(D, plain[0])
    # A prepared filter (checked when it was made) takes the plain path too, with the same answers as the
    # same ids given as an array (the full path) and as the prepared filter with queries the fast check refuses.
    allowed = Allowed(np.arange(0, len(docs), 7))
    assert index._plain_search(queries, 7, None, allowed, None, probe.get("nprobe")) is not None
    assert index._plain_search(queries, 7, None, allowed.ids, None, probe.get("nprobe")) is None
    want = index.search(queries, 7, allowed=allowed.ids, **probe)
    for got in (index.search(queries, 7, allowed=allowed, **probe), index.search(readonly, 7, allowed=allowed, **probe)):
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
    # Inputs the full checks refuse are refused on the plain path's inputs too (it never skips an error).
    bad = queries.copy()
    bad[3, 5] = np.nan
    with pytest.raises(QamaError, match="xq has a non-finite value"):
        index.search(bad, 7, **probe)
    bad[3, 5] = 1e30
    with pytest.raises(QamaError, match="overflow float32"):
        index.search(bad, 7, **probe)
    for k in (0, True, 2.0):
        with pytest.raises((QamaError, TypeError), match="k"):
            index.search(queries, k, **probe)
    if index.nlist:
        with pytest.raises(QamaError, match="nprobe"):
            index.search(queries, 7, nprobe=0)
    untrained = index_factory(DIMS, spec)
    with pytest.raises(QamaError, match="not trained"):
        untrained.search(queries, 7)
    # With fewer rows than k the results are padded on both paths.
    small = ivf(spec, docs[:40]) if not index.nlist else None
    if small is not None:
        D, I = small.search(queries, 50)  # noqa: E741
        assert (I[:, 40:] == -1).all() and np.isneginf(D[:, 40:]).all()
