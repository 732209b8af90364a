"""qama_rs.Index conventions on symmetric Hamming codes (the NumPy reference decides), ids and names,
Matryoshka prefixes, appends and removals in the kernel layout, the file format (round trip, mapped
loads, truncated / corrupted / foreign / future / 0.1 files), atomic saves, and input errors."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import _reference as ref
import qama_rs
from qama_rs import Index, Quantizer, index_factory
from qama_rs.index import fileformat

SPECS = {"1bit": "Thermo1", "2bit": "Thermo2", "hybrid": "Hybrid"}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    docs = rng.normal(size=(3000, 64)).astype(np.float32)
    queries = rng.normal(size=(17, 64)).astype(np.float32)
    return docs, queries


@pytest.fixture(scope="module", params=sorted(SPECS))
def scheme(request):
    return request.param


def filled(spec: str, docs: np.ndarray, ids=None, train=None) -> Index:
    index = index_factory(docs.shape[1], spec)
    if not index.is_trained:
        index.train(docs if train is None else train)
    index.add(docs, ids)
    return index


# ------------------------------------------------------------------------------ add / search
def test_search_matches_reference(scheme, data):
    docs, queries = data
    index = filled(SPECS[scheme], docs)
    quantizer = Quantizer.fit(docs, scheme)
    assert len(index) == index.ntotal == 3000 and index.metric == "hamming"
    assert index.code_bits == quantizer.bits
    d, i = index.search(queries, 10)
    expected_d, expected_i = ref.search(quantizer.encode(queries), quantizer.encode(docs), 10)
    assert d.dtype == np.float32 and i.dtype == np.int64 and d.shape == (17, 10)
    np.testing.assert_array_equal(d, -expected_d.astype(np.float32))
    np.testing.assert_array_equal(i, expected_i)


@pytest.mark.parametrize("spec", ["Thermo2", "LloydMax2", "pca_nibble_scaled(budget_bytes=24)", "Flat16", "Int8"])
def test_incremental_adds_and_removals_equal_a_fresh_index(spec, data):
    """Rows appended in uneven pieces (crossing the 32-row blocks) and removed in place search exactly like
    an index built from the surviving rows in one add."""
    docs, queries = data
    index = index_factory(64, spec)
    if not index.is_trained:
        index.train(docs)
    for start, stop in ((0, 5), (5, 700), (700, 701), (701, 3000)):
        index.add(docs[start:stop])
    one = filled(spec, docs, train=docs)
    for got, want in zip(index.search(queries, 7), one.search(queries, 7), strict=True):
        np.testing.assert_array_equal(got, want)
    gone = np.arange(0, 3000, 3)
    assert index.remove(gone) == len(gone) and index.remove(gone) == 0
    keep = np.setdiff1d(np.arange(3000), gone)
    fresh = filled(spec, docs[keep], ids=keep, train=docs)
    for got, want in zip(index.search(queries, 7), fresh.search(queries, 7), strict=True):
        np.testing.assert_array_equal(got, want)
    index.add(docs[:40])  # new ids continue after the largest ever given
    np.testing.assert_array_equal(index.ids[-40:], np.arange(3000, 3040))


@pytest.mark.parametrize("spec", ["Flat", "pca_nibble_scaled(budget_bytes=8)", "Thermo1"])
def test_one_query_of_a_small_flat_index_answers_what_the_batch_does(spec):
    """A query alone over few rows runs on the calling thread, and the pool's free threads join it on its tiles
    (``rust/core/src/share.rs``); a batch runs in the pool. 16,000 rows: under the calling-thread limit, and
    several tiles."""
    rng = np.random.default_rng(9)
    docs = rng.normal(size=(16_000, 32)).astype(np.float32)
    queries = rng.normal(size=(40, 32)).astype(np.float32)
    index = index_factory(32, spec)
    index.train(docs)
    index.add(docs)
    for kw in ({}, {"allowed": qama_rs.Allowed(np.arange(0, len(docs), 9))}):
        D, found = index.search(queries, 10, **kw)
        for i in range(len(queries)):
            d, f = index.search(queries[i : i + 1], 10, **kw)
            np.testing.assert_array_equal(f[0], found[i], err_msg=f"{spec} {kw} query {i}")
            np.testing.assert_array_equal(d[0], D[i])


def test_k_larger_than_n_pads_with_missing_results(scheme, data):
    docs, queries = data
    d, i = filled(SPECS[scheme], docs[:5], train=docs).search(queries, 50)
    assert d.shape == i.shape == (17, 50)
    assert sorted(i[0, :5]) == [0, 1, 2, 3, 4]
    assert (i[:, 5:] == -1).all() and np.isneginf(d[:, 5:]).all()


def test_duplicate_documents_tie_by_insertion_order(data):
    docs, _ = data
    index = filled("Thermo2", np.repeat(docs[:1], 9, axis=0), train=docs)
    d, i = index.search(docs[:1], 4)
    np.testing.assert_array_equal(d, [[0, 0, 0, 0]])
    np.testing.assert_array_equal(i, [[0, 1, 2, 3]])


# ------------------------------------------------------------------------------------- ids
def test_custom_ids_are_returned(data):
    docs, queries = data
    ids = np.random.default_rng(2).choice(10**12, size=3000, replace=False).astype(np.int64)
    d, i = filled("Thermo2", docs, ids).search(queries, 10)
    plain_d, rows = filled("Thermo2", docs).search(queries, 10)
    np.testing.assert_array_equal(d, plain_d)
    np.testing.assert_array_equal(i, ids[rows])


def test_default_ids_continue_after_the_largest(data):
    docs, _ = data
    index = filled("Sign", docs[:3], ids=[10, 20, 30])
    index.add(docs[3:5])
    np.testing.assert_array_equal(index.ids, [10, 20, 30, 31, 32])


def test_bad_ids_change_nothing(data):
    docs, _ = data
    index = filled("Sign", docs[:3], ids=[1, 2, 3])
    with pytest.raises(ValueError, match="duplicates"):
        index.add(docs[:2], ids=[7, 7])
    with pytest.raises(ValueError, match="already"):
        index.add(docs[:2], ids=[8, 3])
    with pytest.raises(ValueError, match="shape"):
        index.add(docs[:2], ids=[9])
    with pytest.raises(TypeError, match="integers"):
        index.add(docs[:2], ids=[1.5, 2.5])
    with pytest.raises(ValueError, match="non-negative"):
        index.add(docs[:2], ids=[-4, 5])
    with pytest.raises(ValueError, match="string ids"):
        index.add(docs[:2], ids=["a", "b"])
    assert len(index) == 3


def test_names(data):
    docs, queries = data
    names = [f"doc-{i}" for i in range(50)]
    index = filled("Thermo2", docs[:50], ids=np.array(names), train=docs)  # a NumPy array of str works
    _, i = index.search(queries, 5)
    assert index.names_of(i).tolist() == [[names[j] for j in row] for row in i]
    assert index.remove(["doc-3", "nope"]) == 1
    _, i = index.search(docs[3:4], 50)
    assert "doc-3" not in index.names_of(i) and (i[0, -1] == -1) and index.names_of(i)[0, -1] == ""
    index.add(docs[:1], ids=["doc-3"])  # a removed name can come back
    with pytest.raises(ValueError, match="twice"):
        index.add(docs[:1], ids=["doc-4"])
    with pytest.raises(ValueError, match="empty string"):
        index.add(docs[:1], ids=[""])
    with pytest.raises(ValueError, match="string id per row"):
        index.add(docs[:1])


# ---------------------------------------------------------------------------------- prefixes
def test_dims_prefix_matches_reference(scheme, data):
    docs, queries = data
    index = filled(SPECS[scheme], docs)
    quantizer = Quantizer.fit(docs, scheme)
    full_codes = quantizer.encode(docs)
    for m in (1, 13, quantizer.dims // 2, quantizer.dims):
        d, i = index.search(queries, 10, dims=m)
        expected_d, expected_i = ref.search(quantizer.encode(queries), full_codes, 10, quantizer.prefix_bits(m))
        np.testing.assert_array_equal(d, -expected_d.astype(np.float32))
        np.testing.assert_array_equal(i, expected_i)


def test_module_level_search_with_dims_and_nbits(data):
    docs, queries = data
    quantizer = Quantizer.fit(docs, "2bit")
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
    index = index_factory(64, "Thermo2")
    with pytest.raises(ValueError, match="not trained"):
        index.search(queries, 3)
    index.train(docs[:500])
    empty_d, empty_i = index.search(queries, 3)
    assert (empty_i == -1).all() and np.isneginf(empty_d).all()
    index.add(docs[:50])
    with pytest.raises(ValueError, match="k = 0"):
        index.search(queries, 0)
    with pytest.raises(TypeError, match="k must be an int"):
        index.search(queries, 2.5)
    with pytest.raises(ValueError, match="columns"):
        index.search(queries[:, :40], 3)
    with pytest.raises(ValueError, match="dims"):
        index.search(queries, 3, dims=65)
    with pytest.raises(ValueError, match="xq has a non-finite"):
        index.search(np.where(np.arange(64) == 3, np.nan, queries[:2]), 3)
    with pytest.raises(ValueError, match="xq has values of magnitude"):
        index.search(np.full((2, 64), 1e36, dtype=np.float32), 3)
    with pytest.raises(TypeError, match="floating"):
        index.search(queries.astype(np.int32), 3)
    with pytest.raises(TypeError, match="floating"):
        index.add(np.array([["a"] * 64]))
    with pytest.raises(ValueError, match="uint64"):
        index.add_codes(Quantizer.fit(docs[:500], "2bit").encode(docs[:2]).astype(np.int64))
    with pytest.raises(ValueError, match="already holds vectors"):
        index.train(docs)


def test_huge_k_returns_every_vector(data):
    """k up to 2^31 - 1 is accepted (results are padded); past it, a clear error."""
    docs, _ = data
    index = filled("Thermo2", docs[:30], train=docs)
    d, i = index.search(docs[:1], 1000)
    assert d.shape == (1, 1000) and sorted(i[0, :30].tolist()) == list(range(30))
    with pytest.raises(ValueError, match="at most"):
        index.search(docs[:2], 2**31 - 1)
    with pytest.raises(ValueError, match="k = "):
        index.search(docs[:1], 2**31)


# ------------------------------------------------------------------------------ persistence
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(tmp_path, scheme, data, mmap):
    docs, queries = data
    ids = np.arange(3000, dtype=np.int64) * 3 + 11
    index = filled(SPECS[scheme], docs, ids)
    path = tmp_path / "index.qidx"
    index.save(path)
    written = path.read_bytes()
    loaded = Index.load(path, mmap=mmap)
    assert len(loaded) == 3000 and loaded.spec == index.spec
    np.testing.assert_array_equal(loaded.ids, ids)
    for got, expected in zip(loaded.search(queries, 10), index.search(queries, 10), strict=True):
        np.testing.assert_array_equal(got, expected)
    loaded.add(docs[:2])  # a loaded (or mapped) index keeps growing
    np.testing.assert_array_equal(loaded.ids[-2:], [ids[-1] + 1, ids[-1] + 2])
    assert loaded.remove(ids[:10]) == 10
    assert path.read_bytes() == written  # the (mapped) file is never written


def test_empty_index_round_trips(tmp_path, data):
    index = index_factory(64, "Thermo1.5").fit(data[0][:100])
    index.save(tmp_path / "e.qidx")
    loaded = Index.load(tmp_path / "e.qidx")
    assert len(loaded) == 0 and loaded.is_trained


@pytest.fixture
def saved(tmp_path, data):
    path = tmp_path / "index.qidx"
    filled("Thermo2", data[0][:200], train=data[0][:500]).save(path)
    return path


def test_truncated_files_are_rejected(saved):
    data = saved.read_bytes()
    for size in (0, 5, 39, 100, len(data) // 2, len(data) - 1):
        saved.write_bytes(data[:size])
        with pytest.raises(ValueError, match="truncated|empty file"):
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


def test_foreign_old_and_future_files_are_rejected_with_a_way_out(saved):
    data = bytearray(saved.read_bytes())
    saved.write_bytes(b"NOTQAMA!" + bytes(data[8:]))
    with pytest.raises(ValueError, match="magic"):
        Index.load(saved)
    saved.write_bytes(b"QAMAASY\0" + bytes(data[8:]))  # a 0.1 AsymmetricIndex file
    with pytest.raises(ValueError, match="AsymmetricIndex.*index_factory"):
        Index.load(saved)
    future = data.copy()
    struct.pack_into("<I", future, 8, fileformat.FORMAT_VERSION + 1)
    saved.write_bytes(bytes(future))
    with pytest.raises(ValueError, match="version"):
        Index.load(saved)


def test_a_version_1_file_loads(tmp_path, data):
    """A factory-index file of qama-rs 0.1 (codec tables in the header, rows in per-codec sections) loads
    and searches like the index it was written from."""
    docs, queries = data
    index = filled("LloydMax2", docs[:300], train=docs)
    codec = index.codec
    meta, arrays = codec.state()
    packed = qama_rs.pack_codes(codec.encoder.quantize(docs[:300]), codec.bits)
    header = {
        "format": "qama-rs/factory-index",
        "spec": "LloydMax2",
        "dims": 64,
        "ntotal": 300,
        "next_id": 300,
        "transforms": [],
        "codecs": [{**meta, "n": 300, "layout": "blocks"}],
        "metadata": {},
    }
    sections = {"ids": np.arange(300, dtype=np.int64), "codec.blocks": qama_rs._core.to_blocks(packed)}
    sections.update({f"codec.{k}": v for k, v in arrays.items()})
    path = tmp_path / "old.qidx"
    real = fileformat.FORMAT_VERSION
    try:
        fileformat.FORMAT_VERSION = 1
        fileformat.write_index(path, header, sections)
    finally:
        fileformat.FORMAT_VERSION = real
    loaded = Index.load(path)
    for got, want in zip(loaded.search(queries, 5), index.search(queries, 5), strict=True):
        np.testing.assert_array_equal(got, want)


def test_large_tables_are_sections_not_json(tmp_path, data):
    """A PCA codec's basis lives in a binary section: the JSON header stays small (a mapped open reads
    only it)."""
    docs, _ = data
    path = tmp_path / "pca.qidx"
    filled("pca_nibble_scaled(budget_bytes=24)", docs).save(path)
    raw = path.read_bytes()
    header_len = struct.unpack_from("<Q", raw, 16)[0]
    assert header_len < 16_384, header_len
    sections = json.loads(raw[64 : 64 + header_len])["sections"]
    assert sections["codec.object.basis"]["shape"] == [64, 64]
