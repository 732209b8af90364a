"""Thread safety: searches from many threads while another thread adds, and arguments written by
another thread while a call runs without the GIL.

The engine's approach (see ``rust/python/src/args.rs`` and the index classes): adds only append,
under a lock, and a search hands the engine a read-only view of the rows that existed when it took
the lock, which the engine reads in place; the binding copies query-side arrays always and other
arrays when they are writeable, so a writer cannot change what a running call reads.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from qama_rs import AsymmetricIndex, HammingIndex, Quantizer, _core
from qama_rs.engine import LutIndex

# `overwrite_during_call` waits on the binding's GIL counters, which Windows builds do not keep.
needs_gil_counters = pytest.mark.skipif(sys.platform == "win32", reason="no _gil_checks counters on Windows")
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
    assert all(not same(answers[i], answers[i + 1]) for i in range(len(answers) - 1)), "batches must change the answer"
    results = run_concurrently(make(), first, batches, search, add)
    assert len(results) >= THREADS
    for r in results:
        assert any(same(r, a) for a in answers), "a concurrent search matched no serial state"
    # Every searcher's last search ran after the last add.
    assert sum(same(r, answers[-1]) for r in results) >= THREADS


def test_hamming_index_searches_while_adding():
    rng = np.random.default_rng(1)
    docs = rng.normal(size=(BATCH * (BATCHES + 1), 64)).astype(np.float32)
    queries = rng.normal(size=(20, 64)).astype(np.float32)
    quantizer = Quantizer.fit(docs, "2bit")
    chunks = np.split(docs, BATCHES + 1)
    check_against_serial(
        lambda: HammingIndex(quantizer),
        chunks[0],
        chunks[1:],
        lambda index: index.search(queries, 10),
        lambda index, x: index.add(x),
    )


def test_asymmetric_index_searches_while_adding():
    rng = np.random.default_rng(2)
    dims, n = 48, BATCH * (BATCHES + 1)
    codes = rng.integers(0, 4, size=(n, dims), dtype=np.uint8)
    scale = rng.uniform(0.5, 1.5, n).astype(np.float32)
    recon = rng.normal(size=(dims, 4)).astype(np.float32)
    queries = rng.normal(size=(20, dims)).astype(np.float32)
    parts = list(zip(np.split(codes, BATCHES + 1), np.split(scale, BATCHES + 1), strict=True))
    for kernel in ["interleaved", *[k for k in ("avx2",) if k in _core.asym_kernels()]]:
        check_against_serial(
            lambda: AsymmetricIndex(recon),
            parts[0],
            parts[1:],
            lambda index, kernel=kernel: index.search(queries, 10, kernel=kernel),
            lambda index, part: index.add_codes(part[0], row_scale=part[1]),
        )


def test_lut_index_searches_while_adding():
    rng = np.random.default_rng(3)
    n, m = BATCH * (BATCHES + 1), 8
    codes = rng.integers(0, 256, size=(n, m), dtype=np.uint8)
    luts = rng.normal(size=(5, m, 256)).astype(np.float32)
    check_against_serial(
        LutIndex,
        codes[:BATCH],
        np.split(codes[BATCH:], BATCHES),
        lambda index: index.search(luts, 10),
        lambda index, x: index.add_codes(x),
    )


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


@needs_gil_counters
def test_writeable_database_written_during_a_search_gives_the_original_answer():
    """A writeable database is copied before the GIL is released: overwriting it while the search
    runs cannot change the answer (without the copy, this test sees the new rows)."""
    rng = np.random.default_rng(4)
    db = rng.integers(0, 2**63, size=(200_000, 4), dtype=np.uint64)
    queries = rng.integers(0, 2**63, size=(64, 4), dtype=np.uint64)
    original = db.copy()
    want = _core.search(queries, original, 10)
    changed = _core.search(queries, np.zeros_like(db), 10)
    assert not same(want, changed)
    overlaps = 0
    for _ in range(5):
        db[...] = original
        got, overlapped = overwrite_during_call(lambda: _core.search(queries, db, 10), db, 0)
        assert same(got, want)
        overlaps += overlapped
    assert overlaps, "the overwrite never landed while a search ran; make the search longer"


@needs_gil_counters
def test_queries_and_candidates_written_during_a_call_are_copies():
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(50_000, 64)).astype(np.float32)
    vectors.flags.writeable = False
    queries = rng.normal(size=(64, 64)).astype(np.float32)
    cands = np.stack([rng.permutation(50_000)[:5000] for _ in range(64)]).astype(np.int64)
    want = _core.float_rescore(queries, vectors, cands, 10)
    q = queries.copy()
    got, _ = overwrite_during_call(lambda: _core.float_rescore(q, vectors, cands, 10), q, np.nan)
    assert same(got, want)
    c = cands.copy()
    got, _ = overwrite_during_call(lambda: _core.float_rescore(queries, vectors, c, 10), c, -1)
    assert same(got, want)


@needs_gil_counters
def test_read_only_arrays_are_read_in_place():
    """The other side of the contract: a read-only view is not copied (the engine's indexes rely on
    this to search without copying), so whoever owns the base must not write it during a call: here
    an overwrite of the base during the call shows up in the answer."""
    rng = np.random.default_rng(6)
    first = rng.integers(0, 2**63, size=(200_000, 4), dtype=np.uint64)
    second = rng.integers(0, 2**63, size=first.shape, dtype=np.uint64)
    queries = first[:64].copy()
    want = _core.search(queries, first, 10)
    base = first.copy()
    view = base.view()
    view.flags.writeable = False
    seen_new = False
    for _ in range(5):
        base[...] = first
        got, overlapped = overwrite_during_call(lambda: _core.search(queries, view, 10), base, second)
        if overlapped and not same(got, want):
            seen_new = True
            break
    assert seen_new, "an overwrite during the call never showed; is the read-only view being copied?"
