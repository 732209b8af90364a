"""Thread safety: searches from many threads while another thread adds (every codec family of the
index), many threads sharing codec objects and a ``Store`` on every instruction-set level, queries of a
partition searched alone (shared with the pool's threads) beside batches, and arguments written by another
thread while a call runs without the GIL.

The engine's approach (see ``rust/python/src/args.rs`` and ``store.rs``): the binding copies
query-side arrays (queries, tables, candidates) always, and the other arrays of the array functions
(``hamming_distances``' database) when they are writeable; a ``Store`` reads the index's own arrays
in place, and the index writes them only under its lock, never during a call.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import qama_rs
from qama_rs import _core, index_factory

# `overwrite_during_call` waits on the binding's GIL counters, which Windows builds do not keep.
needs_gil_counters = pytest.mark.skipif(sys.platform == "win32", reason="no _gil_checks counters on Windows")
ISAS = _core.available_isas()
THREADS = 8
BATCH = 500
BATCHES = 6


def run_concurrently(index, first, batches, search, add):
    """``THREADS`` threads search while one thread adds ``batches``; returns every search's result."""
    add(index, first)
    results: list = []
    errors: list = []
    done = threading.Event()

    def searcher():
        try:
            while not done.is_set():
                results.append(search(index))
            results.append(search(index))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def adder():
        try:
            for b in batches:
                add(index, b)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            done.set()

    threads = [threading.Thread(target=searcher) for _ in range(THREADS)]
    for t in threads:
        t.start()
    writer = threading.Thread(target=adder)
    writer.start()
    for t in [writer, *threads]:
        t.join()
    assert not errors, errors
    return results


def serial_answers(make, first, batches, search, add):
    """The answers of a serial run after 0, 1, ... added batches."""
    index = make()
    add(index, first)
    answers = [search(index)]
    for b in batches:
        add(index, b)
        answers.append(search(index))
    return answers


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def check_against_serial(make, first, batches, search, add):
    answers = serial_answers(make, first, batches, search, add)
    assert all(not same(answers[i], answers[i + 1]) for i in range(len(answers) - 1)), (
        "batches must change the answer"
    )
    results = run_concurrently(make(), first, batches, search, add)
    assert len(results) >= THREADS
    for r in results:
        assert any(same(r, a) for a in answers), "a concurrent search matched no serial state"
    # Every searcher's last search ran after the last add.
    assert sum(same(r, answers[-1]) for r in results) >= THREADS


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(1)
    docs = rng.normal(size=(BATCH * (BATCHES + 1), 64)).astype(np.float32)
    queries = rng.normal(size=(20, 64)).astype(np.float32)
    return docs, queries


# Every codec family and storage layout of the index: Hamming codes, per-dimension codes in blocks
# and in rows, byte tables in blocks with row scales and in rows, float16 rows, a two-stage pipeline.
@pytest.mark.parametrize(
    "spec",
    [
        "Thermo2",
        "LloydMax2",
        "Int8",
        "pca_nibble_scaled",
        "pca_alloc",
        "Flat16",
        "Sign,Rescore(LloydMax2,50)",
    ],
)
def test_index_searches_while_adding(spec, corpus):
    docs, queries = corpus
    chunks = np.split(docs, BATCHES + 1)

    def make():
        index = index_factory(64, spec)
        index.train(docs)  # the same training for every copy: serial and concurrent states agree
        return index

    check_against_serial(
        make, chunks[0], chunks[1:], lambda index: index.search(queries, 10), lambda index, x: index.add(x)
    )


def test_codecs_of_every_isa_share_a_store_across_threads():
    """Threads searching one ``Store`` with codecs of every level and layout at once (reconstruction
    tables, and the same tables built by a projection): each answer is the serial one (the codec
    objects and the store are read-only during calls)."""
    rng = np.random.default_rng(2)
    dims, n = 48, 20_000
    codes = rng.integers(0, 4, size=(n, dims), dtype=np.uint8)
    packed = _core.pack_codes(codes, 2)
    scale = rng.uniform(0.5, 1.5, n).astype(np.float32)
    recon = rng.normal(size=(dims, 4)).astype(np.float32)
    queries = rng.normal(size=(20, dims)).astype(np.float32)
    table = np.array([[0, n, 0, 0]], dtype=np.uint64)
    stores = {
        layout: _core.Store([data, np.zeros(0, np.uint8)], table, None, [scale, np.zeros(0, np.float32)])
        for layout, data in (("rows", packed), ("blocks", _core.to_blocks(packed)))
    }
    # The same tables built by a projection (identity basis; byte b's slots are its four dimensions,
    # each reading its 2-bit field of the byte): bit for bit the reconstruction tables.
    slot_dims = np.arange(dims, dtype=np.int64).reshape(dims // 4, 4)
    fields = (np.arange(256)[None, :] >> (2 * np.arange(4)[:, None])) & 3
    slot_values = np.stack([recon[4 * b + t][fields[t]] for b in range(dims // 4) for t in range(4)])
    slot_values = slot_values.reshape(dims // 4, 4, 256)
    basis = np.eye(dims, dtype=np.float32)
    calls = [
        (codec, stores[layout])
        for layout in stores
        for isa in ISAS
        for codec in (
            _core.TableCodec.recon(recon, layout, isa),
            _core.TableCodec.projected(basis, slot_dims, slot_values, layout, isa),
        )
    ]
    want = [codec.search(queries, store, 10) for codec, store in calls]
    assert all(same(w, want[0]) for w in want)
    errors: list = []
    got: list = []

    def worker(offset):
        try:
            for j in range(3 * len(calls)):
                codec, store = calls[(offset + j) % len(calls)]
                got.append(codec.search(queries, store, 10))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(got) == THREADS * 3 * len(calls)
    assert all(same(g, want[0]) for g in got)


def test_queries_searched_alone_from_many_threads_beside_batches_get_the_serial_answers():
    """Threads searching a partition one query at a time (each shared with the pool's free threads:
    ``rust/core/src/share.rs``) while another searches batches on the same pool: every answer is the serial one,
    and no call waits on a helper another call keeps busy."""
    rng = np.random.default_rng(6)
    dims, nlist, per = 32, 16, 2000
    centres = rng.normal(size=(nlist, dims)).astype(np.float32)
    docs = (np.repeat(centres, per, axis=0) + 0.3 * rng.normal(size=(nlist * per, dims))).astype(np.float32)
    queries = rng.normal(size=(40, dims)).astype(np.float32)
    lists = np.array([[per * j, per, 0, 0] for j in range(nlist)], np.uint64)
    store = _core.Store([docs, np.zeros(0, np.float32)], lists)
    codec, coarse = _core.FloatCodec(dims), _core.Coarse(centres.copy())

    def search(q, nprobe):
        return codec.search_lists(q, store, 10, coarse.plan(q, nprobe, nprobe, False))

    want = {p: search(queries, p) for p in (2, 8)}
    errors: list = []
    wrong: list = []

    def alone(offset):
        try:
            for j in range(200):
                i, p = (offset + j) % len(queries), (2, 8)[j % 2]
                got = search(queries[i : i + 1], p)
                if not (same_row(got, want[p], i)):
                    wrong.append((offset, i, p))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def batches():
        try:
            for _ in range(20):
                if not same(search(queries, 8), want[8]):
                    wrong.append("batch")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=alone, args=(t,)) for t in range(4)] + [threading.Thread(target=batches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a search hung"
    assert not errors, errors
    assert not wrong, wrong[:5]


def same_row(got, want, i) -> bool:
    """Whether a one-query answer ``got`` is row ``i`` of the batch answer ``want`` (scores and ids)."""
    return all(np.array_equal(g[0], w[i]) for g, w in zip(got, want, strict=True))


def overwrite_during_call(call, array, new_values):
    """Runs ``call()`` in a thread and overwrites ``array`` as soon as the call is running without
    the GIL (the binding counts detached calls in ``_gil_checks``); returns ``(result, overlapped)``
    where ``overlapped`` says the overwrite finished before the call returned."""
    started = _core._gil_checks()[0]
    out: dict = {}

    def worker():
        out["result"] = call()
        out["returned"] = True

    t = threading.Thread(target=worker)
    t.start()
    while _core._gil_checks()[0] == started and t.is_alive():
        pass
    array[...] = new_values
    overlapped = "returned" not in out
    t.join()
    return out["result"], overlapped


@pytest.fixture(scope="module")
def big_codes():
    rng = np.random.default_rng(4)
    db = rng.integers(0, 2**63, size=(200_000, 4), dtype=np.uint64)
    queries = rng.integers(0, 2**63, size=(64, 4), dtype=np.uint64)
    return db, queries


def check_copied(call, db, original):
    """``call()`` reads ``db``: overwriting it (writeable) during the call cannot change the answer."""
    db[...] = original
    want = call()
    db[...] = 0
    assert not same(call(), want)
    overlaps = 0
    for _ in range(5):
        db[...] = original
        got, overlapped = overwrite_during_call(call, db, 0)
        assert same(got, want)
        overlaps += overlapped
    assert overlaps, "the overwrite never landed while a call ran; make the call longer"


@needs_gil_counters
def test_writeable_database_written_during_hamming_distances_gives_the_original_answer(big_codes):
    """A writeable database is copied before the GIL is released: overwriting it while the call
    runs cannot change the answer (without the copy, this test sees the new rows)."""
    db, queries = big_codes
    original, db = db, db.copy()
    check_copied(lambda: (_core.hamming_distances(queries[:8], db),), db, original)


@needs_gil_counters
def test_writeable_database_written_during_qama_rs_search_gives_the_original_answer(big_codes):
    """``qama_rs.search`` searches the caller's database through a ``Store`` (read in place): a
    writeable one is copied first, so a concurrent write cannot change the answer."""
    db, queries = big_codes
    original, db = db, db.copy()
    check_copied(lambda: qama_rs.search(queries, db, 10), db, original)


@needs_gil_counters
def test_queries_tables_and_candidates_written_during_a_call_are_copies():
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(50_000, 64)).astype(np.float32)
    store = _core.Store([vectors, np.zeros(0, np.float32)], np.array([[0, 50_000, 0, 0]], np.uint64))
    queries = rng.normal(size=(64, 64)).astype(np.float32)
    cands = np.stack([rng.permutation(50_000)[:5000] for _ in range(64)]).astype(np.int64)
    codec = _core.FloatCodec(64)
    want = codec.rescore(queries, store, cands, 10)
    q = queries.copy()
    got, _ = overwrite_during_call(lambda: codec.rescore(q, store, cands, 10), q, np.nan)
    assert same(got, want)
    c = cands.copy()
    got, _ = overwrite_during_call(lambda: codec.rescore(queries, store, c, 10), c, -1)
    assert same(got, want)
    codes = rng.integers(0, 256, size=(100_000, 8), dtype=np.uint8)
    luts = rng.normal(size=(32, 8, 256)).astype(np.float32)
    table = _core.TableCodec.given(8, "rows")
    rows = _core.Store([codes, np.zeros(0, np.uint8)], np.array([[0, 100_000, 0, 0]], np.uint64))
    want = table.search(luts, rows, 10)
    t = luts.copy()
    got, _ = overwrite_during_call(lambda: table.search(t, rows, 10), t, np.inf)
    assert same(got, want)


@needs_gil_counters
@pytest.mark.parametrize("writeable", [False, True])
def test_store_arrays_are_read_in_place(writeable):
    """The other side of the contract: a ``Store`` does not copy (the index searches its arrays, a
    memory map included, without copying them), so whoever owns them must not write them during a
    call: here an overwrite of the array during the call shows up in the answer."""
    rng = np.random.default_rng(6)
    first = rng.integers(0, 2**63, size=(200_000, 4), dtype=np.uint64)
    second = rng.integers(0, 2**63, size=first.shape, dtype=np.uint64)
    queries = first[:64].copy()
    codec = _core.HammingCodec(4)
    table = np.array([[0, len(first), 0, 0]], np.uint64)
    want = codec.search(queries, _core.Store([first, np.zeros(0, np.uint64)], table), 10)
    base = first.copy()
    view = base.view()
    view.flags.writeable = writeable
    store = _core.Store([view, np.zeros(0, np.uint64)], table)
    seen_new = False
    for _ in range(5):
        base[...] = first
        got, overlapped = overwrite_during_call(
            lambda store=store: codec.search(queries, store, 10), base, second
        )
        if overlapped and not same(got, want):
            seen_new = True
            break
    assert seen_new, "an overwrite during the call never showed; is the store copying its arrays?"
