"""index_factory specs: every spec builds, searches and round-trips through a file (read or mapped, the
mapped codes served from the file), method names map to specs that build, and search agrees with the
NumPy reference of the engine and with the NumPy oracles (per-dimension, thermometer, two-stage, Flat,
Prefix and rotation specs; a mapped base merged with an in-memory tail)."""

from __future__ import annotations

import mmap

import numpy as np
import pytest

import _oracles
import _reference
from _factory_helpers import DIMS, asym_reference, built, hamming_reference, mapped_base, sample_data
from qama_rs import Index, QamaError, Quantizer
from qama_rs.cli.methods import METHOD_SPECS, method_spec
from qama_rs.index import index_factory
from qama_rs.quantizers import LloydMaxGauss, MedianBinary, RandomizedHadamard, SignBinary

SPECS = [
    "Flat",
    "Flat16",
    "Sign",
    "Thermo1",
    "Thermo1.5",
    "Thermo2",
    "Hybrid",
    "Binary",
    "BinaryMedian",
    "LloydMax2",
    "LloydMax4",
    "LloydMaxEmp2",
    "Int8",
    "Quaternary",
    "CalFree2",
    "Adaptive",
    "Gray2",
    "lloyd_max_gauss",
    "Hadamard,LloydMax2",
    "Orthogonal(3),Binary",
    "Prefix32,LloydMax2",
    "Prefix24,Thermo2",
    "Sign,Rescore(LloydMax2,40)",
    "Thermo1,RFlat(30)",
    "LloydMax2,Rescore(Int8,25)",
    "Hadamard,Sign,RFlat(20)",
]


@pytest.fixture(scope="module")
def data():
    return sample_data()


def among_candidates(candidates, scores, k):
    """The best ``k`` of each query's candidate rows by ``scores[q, row]``, ties by lower row."""
    cands = np.sort(candidates, axis=1)
    top, pos = _reference.top_scores(np.take_along_axis(scores, cands, axis=1).astype(np.float32), k)
    return top, np.take_along_axis(cands, pos, axis=1)


# ------------------------------------------------------------------------------------------ every spec


@pytest.mark.parametrize("spec", SPECS)
def test_every_spec_builds_searches_and_round_trips(spec, data, tmp_path):
    docs, queries = data
    index = built(spec, docs)
    assert len(index) == index.ntotal == 600 and spec in repr(index)
    D, labels = index.search(queries, 7)
    assert D.dtype == np.float32 and labels.dtype == np.int64 and D.shape == labels.shape == (9, 7)
    assert (labels >= 0).all() and (labels < 600).all()
    assert (np.diff(D, axis=1) <= 0).all()  # best first, higher is better
    # Each query is a random unit vector; its best document must score at least as well as a random one.
    assert index.bytes_per_vector > 0
    path = tmp_path / "index.qidx"
    index.save(path)
    for use_mmap in (False, True):
        loaded = Index.load(path, mmap=use_mmap)
        assert loaded.spec == spec and len(loaded) == 600
        assert loaded.bytes_per_vector == index.bytes_per_vector
        D2, labels2 = loaded.search(queries, 7)
        np.testing.assert_array_equal(labels2, labels)
        np.testing.assert_array_equal(D2, D)
        loaded.verify()


def test_mapped_load_serves_codes_from_the_file(data, tmp_path):
    docs, _ = data
    ids = np.arange(600, dtype=np.int64) * 2 + 5  # not the slots: the file keeps an ids section
    for spec in ("Thermo1", "LloydMax2", "Flat", "Sign,RFlat(10)"):
        path = tmp_path / "m.qidx"
        built(spec, docs, ids=ids).save(path)
        loaded = Index.load(path, mmap=True)
        stores = loaded._stores
        assert len(stores) == (2 if spec.endswith("RFlat(10)") else 1)
        # Saved in the layout the scan reads (the 32-row blocks for LloydMax2): every store's base segment is
        # a read-only view of the mapping, and a search reads it in place, building no rows.
        bases = [store._base for store in stores]
        if spec == "LloydMax2":
            assert stores[0].block_rows == 32
        loaded.search(docs[:2], 3)
        for store, base in zip(stores, bases, strict=True):
            assert store._base is base and isinstance(mapped_base(base), mmap.mmap), spec
            assert not base.flags.writeable
            assert store.rows == 600 and len(store._tail) == 0
        assert isinstance(mapped_base(loaded.ids), mmap.mmap)
        # Adding to a mapped index puts the new rows in memory (ids move there too); the mapped rows stay
        # where they are and the file is never written.
        before = path.read_bytes()
        loaded.add(docs[:3])
        assert len(loaded) == 603 and path.read_bytes() == before
        for store, base in zip(stores, bases, strict=True):
            assert store._base is base and store.rows == 603
        assert not isinstance(mapped_base(loaded.ids), mmap.mmap)
        # The copies (in memory) tie with their originals (mapped) and follow them: insertion order.
        np.testing.assert_array_equal(loaded.search(docs[:3], 2)[1], [[5, 1204], [7, 1205], [9, 1206]])
        full = Index.load(path)
        assert not isinstance(mapped_base(full.ids), mmap.mmap)
        assert not isinstance(mapped_base(full._stores[0]._base), mmap.mmap)


def test_method_names_map_to_specs_that_build(data):
    docs, queries = data
    for name, spec in METHOD_SPECS.items():
        assert method_spec(name) == spec
        built(spec, docs).search(queries, 3)
    assert method_spec("quantile", 1.5) == "Thermo1.5" and method_spec("quantile", "hybrid") == "Hybrid"
    assert method_spec("lloyd_max_gauss@hadamard") == "Hadamard,LloydMax2"
    assert method_spec("lloyd_max_gauss", 4) == "LloydMax4"
    assert method_spec("qama", 2, head="runs/h") == "QAMA(runs/h),Thermo2"
    assert method_spec("qama", 32, head="runs/h") == "QAMA(runs/h),Flat"
    assert method_spec("Hadamard,LloydMax2") is None  # a spec is not a method name
    with pytest.raises(QamaError, match="quantile bits"):
        method_spec("quantile", 3)
    with pytest.raises(QamaError, match="needs a trained head"):
        method_spec("qama", 2)


# ------------------------------------------------------------------------ parity with engine and oracles


def test_per_dimension_codec_equals_the_asymmetric_reference_and_oracle(data):
    docs, queries = data
    for spec, quantizer in (("LloydMax2", LloydMaxGauss()), ("BinaryMedian", MedianBinary()), ("LloydMax4", LloydMaxGauss(4))):
        quantizer.fit(docs)
        index = built(spec, docs)
        (ref_s, ref_i), packed = asym_reference(quantizer, queries, docs, 20)
        # The index stores the quantizer's codes, packed.
        np.testing.assert_array_equal(index._stores[0].list_rows(0)[0], packed)
        # The NumPy reference of the engine's summation order, bit for bit.
        D, labels = index.search(queries, 20)
        np.testing.assert_array_equal(labels, ref_i)
        np.testing.assert_array_equal(D, ref_s)
        # And the quantizer's own float scores (prepared query . reconstructed documents), to rounding.
        scores = _oracles.quantizer_scores(quantizer, queries, quantizer.encode(docs))
        np.testing.assert_allclose(D, np.take_along_axis(scores, labels, axis=1), rtol=1e-5, atol=1e-6)


def test_thermometer_codec_equals_the_hamming_reference(data):
    docs, queries = data
    for spec, scheme in (("Thermo1", "1bit"), ("Thermo1.5", "1.5bit"), ("Thermo2", "2bit"), ("Hybrid", "hybrid")):
        quantizer = Quantizer.fit(docs, scheme)
        index = built(spec, docs)
        assert index.metric == "hamming" and index.code_bits == quantizer.bits
        for dims in (None, 24) if scheme != "hybrid" else (None,):
            ref_d, ref_i = hamming_reference(quantizer, queries, docs, 30, dims)
            D, labels = index.search(queries, 30, dims=dims)
            np.testing.assert_array_equal(labels, ref_i)
            np.testing.assert_array_equal(D, ref_d)
    sign = built("Sign", docs)
    codes = Quantizer(np.zeros(DIMS, dtype=np.float32), 2)
    ref_d, ref_i = _reference.search(codes.encode(queries), codes.encode(docs), 15)
    D, labels = sign.search(queries, 15)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_array_equal(D, -ref_d.astype(np.float32))


def test_two_stage_specs_equal_the_two_stage_reference(data):
    docs, queries = data
    sign = Quantizer(np.zeros(DIMS, dtype=np.float32), 2)
    lloyd = LloydMaxGauss().fit(docs)
    recon = np.asarray(lloyd.reconstruction_values, dtype=np.float32)
    packed = _reference.asym_pack(lloyd.encode(docs), 2)
    full = _reference.asym_scores(lloyd.prepare_query(queries), recon, packed)
    _, candidates = _reference.search(sign.encode(queries), sign.encode(docs), 40)
    ref_s, ref_i = among_candidates(candidates, full, 10)
    D, labels = built("Sign,Rescore(LloydMax2,40)", docs).search(queries, 10)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_array_equal(D, ref_s)
    # RFlat: the Hamming top-30 rescored by exact inner products.
    _, candidates = _reference.search(sign.encode(queries), sign.encode(docs), 30)
    dots = queries.astype(np.float64) @ docs.astype(np.float64).T
    ref_s, ref_i = among_candidates(candidates, dots, 10)
    D, labels = built("Sign,RFlat(30)", docs).search(queries, 10)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_allclose(D, ref_s, rtol=1e-6, atol=1e-6)
    # Its scores are the float32 scores of the Flat index's scan, bit for bit (one inner-product kernel).
    flat_s, flat_i = built("Flat", docs).search(queries, len(docs))
    flat = np.empty_like(flat_s)
    np.put_along_axis(flat, flat_i, flat_s, axis=1)
    np.testing.assert_array_equal(D, np.take_along_axis(flat, labels, axis=1))
    # The NumPy two-stage oracle agrees on the ids (its scores are float32 dot products too).
    oracle = _oracles.TwoStageSearch(first_stage=SignBinary(), rescorer="float32", k_prime=30).fit(docs)
    np.testing.assert_array_equal(oracle.search(queries, 10)[1], labels)


def test_flat_equals_exact_inner_product(data):
    docs, queries = data
    D, labels = built("Flat", docs).search(queries, 25)
    ref_s, ref_i = _oracles.topk_largest(queries @ docs.T, 25)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_allclose(D, ref_s, rtol=1e-6, atol=1e-6)
    # Prefix: the first 16 dimensions, renormalized, for documents and queries alike.
    def norm(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    ref_s, ref_i = _oracles.topk_largest(norm(queries[:, :16]) @ norm(docs[:, :16]).T, 25)
    D, labels = built("Prefix16,Flat", docs).search(queries, 25)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_allclose(D, ref_s, rtol=1e-5, atol=1e-6)


def test_a_scan_over_a_mapped_base_and_an_in_memory_tail_merges_exactly(data, tmp_path):
    """Rows split between the file's (mapped) segment and the in-memory tail of later adds, in uneven pieces
    that cross the 32-row blocks, give exactly the top-k of one index holding them all."""
    docs, queries = data
    for spec in ("Flat", "LloydMax2"):
        one = built(spec, docs).search(queries, 50)
        first = index_factory(DIMS, spec)
        if not first.is_trained:
            first.train(docs)  # the same training data as the one-piece index: the same codes
        first.add(docs[:37])
        first.save(tmp_path / "part.qidx")
        split = Index.load(tmp_path / "part.qidx", mmap=True)
        for start, stop in ((37, 38), (38, 301), (301, 600)):
            split.add(docs[start:stop])
        store = split._stores[0]
        assert int(store._table[0, 1]) == 37 and int(store._table[0, 3]) == 563  # base rows, tail rows
        for got, want in zip(split.search(queries, 50), one, strict=True):
            np.testing.assert_array_equal(got, want)


def test_rotation_spec_equals_the_quantizer_of_rotated_vectors(data):
    docs, queries = data
    rotation = RandomizedHadamard(seed=0).fit(DIMS)
    quantizer = LloydMaxGauss().fit(rotation.apply(docs))
    (ref_s, ref_i), _ = asym_reference(quantizer, rotation.apply(queries), rotation.apply(docs), 12)
    D, labels = built("Hadamard,LloydMax2", docs).search(queries, 12)
    np.testing.assert_array_equal(labels, ref_i)
    np.testing.assert_array_equal(D, ref_s)
    assert built("Hadamard,LloydMax2", docs).bytes_per_vector == 128 * 2 // 8  # 72 -> 128 padded dims
