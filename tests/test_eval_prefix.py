"""The evaluation's index per (spec, prefix) (`qama_rs.eval.prefix`) against NumPy references on random data,
and the mteb search backend built on it (`qama_rs.integrations.mteb`)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import _oracles
import _reference
import qama_rs
from qama_rs.eval.prefix import prefix_index
from qama_rs.index.transforms import prefix_normalize
from qama_rs.integrations.mteb import MethodSearchIndex


def unit_rows(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    return unit_rows(rng, 300, 64), unit_rows(rng, 12, 64)


def ranked(spec, docs, queries, k, dims=None, head=None):
    """``(scores, ids)`` of the index answering ``spec`` at ``dims``, searched the way the evaluation does."""
    prefix = prefix_index(spec, docs, dims, head=head)
    return prefix.index.search(prefix.queries(queries), k, dims=prefix.engine_dims)


def reference_topk(scores, k):
    """Best first, ties by lower column: a stable argsort of the negated scores."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def test_ties_lower_id_first():
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    s, i = ranked("Flat", docs, np.array([[1.0, 0.0]], dtype=np.float32), 3)
    assert i.tolist() == [[0, 2, 4]] and i.dtype == np.int64 and s.dtype == np.float32
    s, i = ranked("Flat", docs, np.array([[0.0, 1.0]], dtype=np.float32), 5)
    assert i[0].tolist() == [1, 3, 4, 0, 2]


@pytest.mark.parametrize("dims", [None, 64, 32, 8])
def test_flat_equals_numpy_reference(data, dims):
    docs, queries = data
    m = dims or 64
    ref_s, ref_i = reference_topk(prefix_normalize(queries, m) @ prefix_normalize(docs, m).T, 20)
    s, i = ranked("Flat", docs, queries, 20, dims=dims)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(s, ref_s, rtol=1e-6, atol=1e-6)
    expected_spec = "Flat" if dims in (None, 64) else f"Prefix{dims},Flat"
    assert prefix_index("Flat", docs, dims).spec == expected_spec


def test_flat16_and_int8_equal_reference_on_their_stored_documents(data):
    docs, queries = data
    m = 32
    d = prefix_normalize(docs, m)
    q = prefix_normalize(queries, m)
    _, ref_i = reference_topk(q @ d.astype(np.float16).astype(np.float32).T, 15)
    np.testing.assert_array_equal(ranked("Flat16", docs, queries, 15, dims=m)[1], ref_i)

    # The one int8: per-dimension [min, max] in 256 steps, step midpoints (qama_rs.quantizers.Int8).
    low, high = d.min(axis=0), d.max(axis=0)
    step = (high - low) / 256
    recon = low + (np.clip(np.floor((d - low) / step), 0, 255) + 0.5) * step
    assert np.abs(recon - d).max() <= step.max() / 2 + 1e-6
    _, ref_i = reference_topk(q @ recon.astype(np.float32).T, 15)
    np.testing.assert_array_equal(ranked("Int8", docs, queries, 15, dims=m)[1], ref_i)


def test_storage_and_nominal_bits():
    rng = np.random.default_rng(0)
    docs = unit_rows(rng, 200, 384)
    assert prefix_index("Flat", docs).bytes_per_vector == 1536 and prefix_index("Flat", docs).bits == 32
    assert prefix_index("Flat", docs, 128).bytes_per_vector == 512 and prefix_index("Flat", docs, 128).bits == 32
    assert prefix_index("Flat16", docs, 96).bytes_per_vector == 192
    assert prefix_index("Int8", docs, 48).bytes_per_vector == 48
    assert prefix_index("LloydMax2", docs, 48).bits == 2.0  # 96 stored bytes over 384 dims, at every prefix
    assert prefix_index("Thermo1.5", docs).bits == 1.5 and prefix_index("Hybrid", docs).bits == 1.25
    assert prefix_index("Sign,Rescore(LloydMax2,100)", docs).bits == 3.0  # 48 + 96 bytes


def test_errors_name_the_argument(data):
    docs, queries = data
    with pytest.raises(ValueError, match="dims must be an integer in 1..64"):
        prefix_index("Flat", docs, 65)
    with pytest.raises(ValueError, match="dims must be an integer"):
        prefix_index("Flat", docs, True)
    prefix = prefix_index("Flat", docs)
    with pytest.raises(ValueError, match="queries has 32 dimensions, the documents have 64"):
        prefix.queries(queries[:, :32])
    with pytest.raises(ValueError, match="NaN"):
        prefix.queries(np.full_like(queries, np.nan))
    with pytest.raises(TypeError, match="docs"):
        prefix_index("Flat", docs.tolist())
    with pytest.raises(TypeError, match="spec must be"):
        prefix_index(None, docs)
    with pytest.raises(qama_rs.QamaError, match="unknown codec 'Nope'"):
        prefix_index("Nope,Flat", docs)
    with pytest.raises(ValueError, match="head= goes with a QAMA"):
        prefix_index("Flat", docs, head=object())


def _reference_threshold_search(docs, queries, thresholds_per_dim, k, nbits=None):
    levels = np.array([len(t) + 1 for t in thresholds_per_dim])
    flat = np.concatenate(thresholds_per_dim).astype(np.float32)
    db = _reference.encode(docs, flat, levels)
    qc = _reference.encode(queries, flat, levels)
    return _reference.search(qc, db, k, nbits)


@pytest.mark.parametrize(("spec", "n_levels"), [("Thermo1", 2), ("Thermo1.5", 3), ("Thermo2", 4)])
@pytest.mark.parametrize("dims", [None, 40])
def test_thermometer_prefix_searches_the_same_codes(data, spec, n_levels, dims):
    docs, queries = data
    per_dim = np.quantile(docs.astype(np.float64), np.arange(1, n_levels) / n_levels, axis=0).T
    nbits = None if dims is None else dims * (n_levels - 1)
    ref_d, ref_i = _reference_threshold_search(docs, queries, list(per_dim), 25, nbits)
    cache: dict = {}
    prefix = prefix_index(spec, docs, dims, cache=cache)
    scores, ids = prefix.index.search(prefix.queries(queries), 25, dims=prefix.engine_dims)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_array_equal(-scores, ref_d)
    assert prefix.spec == spec and prefix.dims == (dims or 64)
    assert prefix.bytes_per_vector == -(-(dims or 64) * (n_levels - 1) // 64) * 8  # whole words read
    assert prefix_index(spec, docs, None, cache=cache).index is prefix.index  # one index serves every prefix
    assert len(cache) == 1


def test_sign_equals_numpy_reference(data):
    docs, queries = data
    ref_d, ref_i = _reference_threshold_search(docs, queries, [np.zeros(1)] * 64, 30, nbits=48)
    scores, ids = ranked("Sign", docs, queries, 30, dims=48)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_array_equal(-scores, ref_d)


def test_hybrid_fits_each_prefix_on_its_columns():
    rng = np.random.default_rng(5)
    docs, queries = unit_rows(rng, 200, 384), unit_rows(rng, 6, 384)
    cache: dict = {}
    assert prefix_index("Hybrid", docs, cache=cache).bytes_per_vector == 80  # 624 bits in 10 stored words
    prefix = prefix_index("Hybrid", docs, 192, cache=cache)
    assert prefix.bytes_per_vector == 40 and prefix.index.dims == 192 and len(cache) == 2
    quantizer = qama_rs.Quantizer.fit(docs[:, :192], "hybrid")
    ref_d, ref_i = qama_rs.search(quantizer.encode(queries[:, :192]), quantizer.encode(docs[:, :192]), 20)
    scores, ids = prefix.index.search(prefix.queries(queries), 20, dims=prefix.engine_dims)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_array_equal(-scores, ref_d)
    with pytest.raises(ValueError, match="multiple of 8"):
        prefix_index("Hybrid", docs, 100)


def test_training_free_quantizers_fit_a_prefix_index(data):
    methods = importlib.import_module("qama_rs.quantizers")
    docs, queries = data
    d, q = prefix_normalize(docs, 32), prefix_normalize(queries, 32)
    quantizer = methods.LloydMaxGauss().fit(d)
    ref_s, ref_i = reference_topk(_oracles.quantizer_scores(quantizer, q, quantizer.encode(d)), 12)
    prefix = prefix_index("LloydMax2", docs, 32)
    scores, ids = prefix.index.search(prefix.queries(queries), 12)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_allclose(scores, ref_s, rtol=1e-5, atol=1e-6)
    assert prefix.spec == "Prefix32,LloydMax2" and prefix.engine_dims is None
    assert prefix.bytes_per_vector == quantizer.bytes_per_vector


class FakeQamaHead:
    """The QamaModel surface a QAMA(...) stage uses: a fixed rotation, per-level slices and thresholds."""

    levels = (64, 32)

    def __init__(self, calibration):
        self.rotation = np.linalg.qr(np.random.default_rng(9).standard_normal((64, 64)))[0].astype(np.float32)
        self.calibration = calibration

    def transform(self, emb, dims=None):
        return prefix_normalize(emb @ self.rotation, dims or 64)

    def features(self, emb, dims, scheme):
        return prefix_normalize(emb @ self.rotation, dims)

    def quantizer(self, dims, scheme):
        return qama_rs.Quantizer.fit(self.features(self.calibration, dims, scheme), scheme)


def test_qama_spec_uses_the_heads_levels_and_thresholds(data):
    docs, queries = data
    head = FakeQamaHead(calibration=docs[:50])
    for dims in (None, 32):
        level = dims or 64
        quantizer = head.quantizer(level, "2bit")
        q_codes, d_codes = (quantizer.encode(head.features(x, level, "2bit")) for x in (queries, docs))
        ref_d, ref_i = qama_rs.search(q_codes, d_codes, 15)  # the engine's exact Hamming top-k
        prefix = prefix_index("QAMA(head),Thermo2", docs, dims, head=head)
        scores, ids = prefix.index.search(prefix.queries(queries), 15, dims=prefix.engine_dims)
        np.testing.assert_array_equal(ids, ref_i)
        np.testing.assert_array_equal(-scores, ref_d)
        assert prefix.bytes_per_vector == quantizer.words * 8 and prefix.bits == 2.0
        assert prefix.spec == ("QAMA(head),Thermo2" if dims is None else "QAMA(head,32),Thermo2")
    # Float output at a level: the head's level-32 slice, exact inner product.
    ref_s, ref_i = reference_topk(head.transform(queries, 32) @ head.transform(docs, 32).T, 10)
    scores, ids = ranked("QAMA(head),Flat", docs, queries, 10, dims=32, head=head)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_allclose(scores, ref_s, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="Matryoshka levels"):
        prefix_index("QAMA(head),Thermo2", docs, 48, head=head)


def test_two_stage_equals_the_numpy_oracle_and_refuses_a_prefix(data):
    docs, queries = data
    oracle = _oracles.TwoStageSearch(k_prime=100).fit(docs)
    ref_i = oracle.search(queries, 10)[1]
    np.testing.assert_array_equal(ranked("Sign,Rescore(LloydMax2,100)", docs, queries, 10)[1], ref_i)
    assert prefix_index("Sign,Rescore(LloydMax2,100)", docs, 64).spec == "Sign,Rescore(LloydMax2,100)"
    with pytest.raises(ValueError, match="full dimensions only"):
        prefix_index("Sign,Rescore(LloydMax2,100)", docs, 32)


def test_mteb_backend_serves_the_prefix_ranking(data):
    docs, queries = data
    backend = MethodSearchIndex("Flat", dims=32)
    backend.add_documents(docs[:100], [f"d{i}" for i in range(100)])
    backend.add_documents(docs[100:], [f"d{i}" for i in range(100, 300)])
    scores, ids = backend.search(queries, 10, similarity_fn=None)
    expected_s, expected_i = ranked("Flat", docs, queries, 10, dims=32)
    assert ids == expected_i.tolist()
    np.testing.assert_allclose(scores, expected_s, rtol=1e-6)
    hybrid = MethodSearchIndex("Hybrid", dims=32)
    hybrid.add_documents(docs, [f"d{i}" for i in range(300)])
    assert hybrid.search(queries, 5)[1] == ranked("Hybrid", docs, queries, 5, dims=32)[1].tolist()
    assert backend.answered_spec == "Prefix32,Flat" and hybrid.answered_spec == "Hybrid"
    with pytest.raises(NotImplementedError, match="reranking"):
        backend.search(queries, 10, top_ranked={"q": ["d1"]})
    backend.clear()
    with pytest.raises(ValueError, match="no documents"):
        backend.search(queries, 10)
    with pytest.raises(ValueError, match="document ids"):
        backend.add_documents(docs[:3], ["a"])
    with pytest.raises(TypeError, match="spec"):
        MethodSearchIndex(object())
