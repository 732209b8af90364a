"""qama_rs.Index: add/search against the NumPy reference, ids, Matryoshka prefixes, the file format
(round trip; truncated, corrupted, foreign and future files), atomic saves, and input errors."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import _reference as ref
import qama_rs
import qama_rs.engine.index as index_module
from qama_rs import Index, Quantizer


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    docs = rng.normal(size=(3000, 64)).astype(np.float32)
    queries = rng.normal(size=(17, 64)).astype(np.float32)
    return docs, queries


@pytest.fixture(scope="module", params=["1bit", "2bit", "hybrid"])
def quantizer(request, data):
    return Quantizer.fit(data[0], request.param)


def filled(quantizer, docs, ids=None) -> Index:
    index = Index(quantizer)
    index.add(docs, ids)
    return index


# ------------------------------------------------------------------------------ add / search
def test_search_matches_reference(quantizer, data):
    docs, queries = data
    index = filled(quantizer, docs)
    assert len(index) == index.ntotal == 3000
    d, i = index.search(queries, 10)
    expected_d, expected_i = ref.search(quantizer.encode(queries), quantizer.encode(docs), 10)
    assert d.dtype == np.int32 and i.dtype == np.int64 and d.shape == (17, 10)
    np.testing.assert_array_equal(d, expected_d)
    np.testing.assert_array_equal(i, expected_i)


def test_stored_codes_are_the_quantizer_codes_and_read_only(quantizer, data):
    docs, _ = data
    index = filled(quantizer, docs[:100])
    np.testing.assert_array_equal(index.codes, quantizer.encode(docs[:100]))
    with pytest.raises(ValueError):
        index.codes[0, 0] = 1
    with pytest.raises(ValueError):
        index.ids[0] = 1


def test_incremental_adds_equal_one_add(quantizer, data):
    docs, queries = data
    index = Index(quantizer)
    for start in range(0, 3000, 700):
        index.add(docs[start : start + 700])
    one = filled(quantizer, docs)
    np.testing.assert_array_equal(index.codes, one.codes)
    for got, expected in zip(index.search(queries, 7), one.search(queries, 7), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_k_larger_than_n_returns_n_columns(quantizer, data):
    docs, queries = data
    d, i = filled(quantizer, docs[:5]).search(queries, 50)
    assert d.shape == i.shape == (17, 5)
    assert sorted(i[0]) == [0, 1, 2, 3, 4]


def test_single_query_row(quantizer, data):
    docs, queries = data
    index = filled(quantizer, docs)
    d, i = index.search(queries[:1], 3)
    full_d, full_i = index.search(queries, 3)
    np.testing.assert_array_equal(d, full_d[:1])
    np.testing.assert_array_equal(i, full_i[:1])


def test_duplicate_documents_tie_by_insertion_order(quantizer, data):
    docs, _ = data
    index = filled(quantizer, np.repeat(docs[:1], 9, axis=0))
    d, i = index.search(docs[:1], 4)
    np.testing.assert_array_equal(d, [[0, 0, 0, 0]])
    np.testing.assert_array_equal(i, [[0, 1, 2, 3]])


# ------------------------------------------------------------------------------------- ids
def test_custom_ids_are_returned(quantizer, data):
    docs, queries = data
    ids = np.random.default_rng(2).choice(10**12, size=3000, replace=False).astype(np.int64)
    d, i = filled(quantizer, docs, ids).search(queries, 10)
    plain_d, rows = filled(quantizer, docs).search(queries, 10)
    np.testing.assert_array_equal(d, plain_d)
    np.testing.assert_array_equal(i, ids[rows])


def test_default_ids_continue_after_the_largest(data):
    docs, _ = data
    q = Quantizer.fit(docs[:500])
    index = Index(q)
    index.add(docs[:3], ids=[10, 20, 30])
    index.add(docs[3:5])
    np.testing.assert_array_equal(index.ids, [10, 20, 30, 31, 32])


def test_bad_ids(data):
    docs, _ = data
    index = Index(Quantizer.fit(docs[:500]))
    index.add(docs[:3], ids=[1, 2, 3])
    with pytest.raises(ValueError, match="duplicates"):
        index.add(docs[:2], ids=[7, 7])
    with pytest.raises(ValueError, match="already"):
        index.add(docs[:2], ids=[8, 3])
    with pytest.raises(ValueError, match="shape"):
        index.add(docs[:2], ids=[9])
    with pytest.raises(TypeError, match="integers"):
        index.add(docs[:2], ids=[1.5, 2.5])
    assert len(index) == 3  # failed adds change nothing


# ---------------------------------------------------------------------------------- prefixes
def test_dims_prefix_matches_reference(quantizer, data):
    docs, queries = data
    index = filled(quantizer, docs)
    full_codes = quantizer.encode(docs)
    for m in (1, 13, quantizer.dims // 2, quantizer.dims):
        nbits = quantizer.prefix_bits(m)
        d, i = index.search(queries, 10, dims=m)
        expected_d, expected_i = ref.search(quantizer.encode(queries), full_codes, 10, nbits)
        np.testing.assert_array_equal(d, expected_d)
        np.testing.assert_array_equal(i, expected_i)
        # truncated queries (only the prefix's input columns) search the same way
        d2, i2 = index.search(queries[:, : quantizer.input_dims_for(m)], 10, dims=m)
        np.testing.assert_array_equal(d2, d)
        np.testing.assert_array_equal(i2, i)


def test_module_level_search_with_dims_and_nbits(quantizer, data):
    docs, queries = data
    qc, dbc = quantizer.encode(queries), quantizer.encode(docs)
    m = quantizer.dims // 3
    expected = ref.search(qc, dbc, 5, quantizer.prefix_bits(m))
    for got in (
        qama_rs.search(qc, dbc, 5, dims=m, quantizer=quantizer),
        qama_rs.search(qc, dbc, 5, nbits=quantizer.prefix_bits(m)),
    ):
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    with pytest.raises(ValueError, match="quantizer"):
        qama_rs.search(qc, dbc, 5, dims=m)
    with pytest.raises(ValueError, match="not both"):
        qama_rs.search(qc, dbc, 5, dims=m, quantizer=quantizer, nbits=8)


# ---------------------------------------------------------------------------------- errors
def test_search_errors(data):
    docs, queries = data
    q = Quantizer.fit(docs[:500], "2bit")
    empty = Index(q)
    with pytest.raises(ValueError, match="empty"):
        empty.search(queries, 3)
    index = filled(q, docs[:50])
    with pytest.raises(ValueError, match="k"):
        index.search(queries, 0)
    with pytest.raises(TypeError, match="k"):
        index.search(queries, 2.5)
    with pytest.raises(ValueError, match="columns"):
        index.search(queries[:, :40], 3)
    with pytest.raises(ValueError, match="dims"):
        index.search(queries, 3, dims=65)
    with pytest.raises(ValueError, match="non-finite|NaN|finite"):
        index.search(np.where(np.arange(64) == 3, np.nan, queries[:2]), 3)
    with pytest.raises(TypeError, match="floating"):
        index.search(queries.astype(np.int32), 3)
    with pytest.raises(TypeError, match="floating"):
        index.add(np.array([["a"] * 64]))
    with pytest.raises(TypeError, match="uint64"):
        index.add_codes(q.encode(docs[:2]).astype(np.int64))
    with pytest.raises(ValueError, match="shape"):
        index.add_codes(q.encode(docs[:2])[:, :1])
    with pytest.raises(TypeError, match="Quantizer"):
        Index("2bit")


# ------------------------------------------------------------------------------ persistence
def test_save_load_round_trip(tmp_path, quantizer, data):
    docs, queries = data
    ids = np.arange(3000, dtype=np.int64) * 3 + 11
    index = filled(quantizer, docs, ids)
    path = tmp_path / "index.qama"
    index.save(path)
    loaded = Index.load(path)
    assert loaded.quantizer == quantizer and len(loaded) == 3000
    np.testing.assert_array_equal(loaded.codes, index.codes)
    np.testing.assert_array_equal(loaded.ids, ids)
    for got, expected in zip(loaded.search(queries, 10), index.search(queries, 10), strict=True):
        np.testing.assert_array_equal(got, expected)
    loaded.add(docs[:2])  # a loaded index keeps growing
    np.testing.assert_array_equal(loaded.ids[-2:], [ids[-1] + 1, ids[-1] + 2])


def test_empty_index_round_trips(tmp_path, data):
    index = Index(Quantizer.fit(data[0][:100], "1.5bit"))
    index.save(tmp_path / "e.qama")
    loaded = Index.load(tmp_path / "e.qama")
    assert len(loaded) == 0 and loaded.quantizer == index.quantizer


@pytest.fixture
def saved(tmp_path, data):
    path = tmp_path / "index.qama"
    filled(Quantizer.fit(data[0][:500], "2bit"), data[0][:200]).save(path)
    return path


def test_truncated_files_are_rejected(saved):
    data = saved.read_bytes()
    for size in (0, 5, 39, 100, len(data) // 2, len(data) - 1):
        saved.write_bytes(data[:size])
        with pytest.raises(ValueError, match="truncated"):
            Index.load(saved)


def test_corrupt_files_are_rejected(saved):
    data = bytearray(saved.read_bytes())
    for position in (60, len(data) // 2, len(data) - 40, len(data) - 1):
        corrupt = data.copy()
        corrupt[position] ^= 0x10
        saved.write_bytes(bytes(corrupt))
        with pytest.raises(ValueError, match="corrupt|checksum"):
            Index.load(saved)
    saved.write_bytes(bytes(data) + b"\0")
    with pytest.raises(ValueError, match="trailing"):
        Index.load(saved)


def test_foreign_and_future_files_are_rejected(saved):
    data = bytearray(saved.read_bytes())
    foreign = b"NOTQAMA!" + bytes(data[8:])
    saved.write_bytes(foreign)
    with pytest.raises(ValueError, match="magic"):
        Index.load(saved)
    future = data.copy()
    struct.pack_into("<I", future, 8, index_module.FORMAT_VERSION + 1)
    saved.write_bytes(bytes(future))
    with pytest.raises(ValueError, match="version"):
        Index.load(saved)


def test_failed_save_keeps_the_old_file(saved, data, monkeypatch):
    before = saved.read_bytes()
    real_chunks = index_module._file_chunks

    def header_then_disk_full(*args):
        chunks = real_chunks(*args)
        yield next(chunks)
        raise OSError("disk full")

    monkeypatch.setattr(index_module, "_file_chunks", header_then_disk_full)
    bigger = filled(Quantizer.fit(data[0][:500], "1bit"), data[0])
    with pytest.raises(OSError, match="disk full"):
        bigger.save(saved)
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]
    assert len(Index.load(saved)) == 200


def test_huge_k_returns_every_vector():
    """k up to 2^31 and beyond is fine at the engine level: k > ntotal returns ntotal columns."""
    rng = np.random.default_rng(40)
    docs = rng.normal(size=(30, 16)).astype(np.float32)
    quantizer = Quantizer.fit(docs, "2bit")
    index = Index(quantizer)
    index.add(docs)
    for k in (2**31, 2**31 + 7, 2**63 - 1, 2**80):
        d, i = index.search(docs[:2], k)
        assert d.shape == i.shape == (2, 30)
        assert sorted(i[0].tolist()) == list(range(30))
    asym = qama_rs.AsymmetricIndex(rng.normal(size=(16, 4)).astype(np.float32), quantizer=quantizer)
    asym.add(docs)
    s, i = asym.search(docs[:2], 2**31)
    assert s.shape == (2, 30) and sorted(i[1].tolist()) == list(range(30))


def test_engine_errors_are_qama_errors():
    rng = np.random.default_rng(41)
    quantizer = Quantizer.fit(rng.normal(size=(50, 8)).astype(np.float32), "1bit")
    index = Index(quantizer)
    with pytest.raises(qama_rs.QamaError, match="empty"):
        index.search(np.zeros((1, 8), np.float32), 1)
    index.add(rng.normal(size=(5, 8)).astype(np.float32))
    with pytest.raises(qama_rs.QamaTypeError, match="k must be an int"):
        index.search(np.zeros((1, 8), np.float32), 1.5)
    with pytest.raises(qama_rs.QamaError, match="k = 0"):
        index.search(np.zeros((1, 8), np.float32), 0)
    with pytest.raises(qama_rs.QamaTypeError, match="codes must have dtype uint64"):
        index.add_codes(np.zeros((1, 1), np.int64))
    with pytest.raises(TypeError):  # QamaTypeError is a TypeError too
        index.add_codes(np.zeros((1, 1), np.int64))
