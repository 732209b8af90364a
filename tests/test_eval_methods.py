"""Search methods of the evaluation harness (factory indexes) against NumPy references on random data."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import _oracles
import _reference
import qama_rs
from qama_rs.eval.backend import MethodSearchIndex
from qama_rs.eval.methods import (
    HeadMethod,
    IndexMethod,
    Method,
    available_methods,
    get_method,
    prefix_normalize,
    register_method,
)


def Fp32Method(dims=None):  # noqa: N802 - reads like the class it replaces
    return get_method("fp32", dims=dims)


def unit_rows(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    return unit_rows(rng, 300, 64), unit_rows(rng, 12, 64)


def reference_topk(scores, k):
    """Best first, ties by lower column: a stable argsort of the negated scores."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def test_ties_lower_id_first_and_k_capped():
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    method = get_method("fp32").fit(docs)
    s, i = method.search(np.array([[1.0, 0.0]], dtype=np.float32), 3)
    assert i.tolist() == [[0, 2, 4]] and i.dtype == np.int64 and s.dtype == np.float32
    s, i = method.search(np.array([[0.0, 1.0]], dtype=np.float32), 10)
    assert i.shape == (1, 5) and i[0].tolist() == [1, 3, 4, 0, 2]


@pytest.mark.parametrize("dims", [None, 64, 32, 8])
def test_fp32_equals_numpy_reference(data, dims):
    docs, queries = data
    m = dims or 64
    ref_s, ref_i = reference_topk(prefix_normalize(queries, m) @ prefix_normalize(docs, m).T, 20)
    s, i = Fp32Method().fit(docs).search(queries, 20, dims=dims)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(s, ref_s, rtol=1e-6, atol=1e-6)


def test_fp16_and_int8_equal_reference_on_their_stored_documents(data):
    docs, queries = data
    m = 32
    d = prefix_normalize(docs, m)
    q = prefix_normalize(queries, m)
    _, ref_i = reference_topk(q @ d.astype(np.float16).astype(np.float32).T, 15)
    np.testing.assert_array_equal(get_method("fp16").fit(docs).search(queries, 15, dims=m)[1], ref_i)

    # The one int8: per-dimension [min, max] in 256 steps, step midpoints (qama_rs.quantizers.Int8).
    low, high = d.min(axis=0), d.max(axis=0)
    step = (high - low) / 256
    recon = low + (np.clip(np.floor((d - low) / step), 0, 255) + 0.5) * step
    assert np.abs(recon - d).max() <= step.max() / 2 + 1e-6
    _, ref_i = reference_topk(q @ recon.astype(np.float32).T, 15)
    np.testing.assert_array_equal(get_method("int8").fit(docs).search(queries, 15, dims=m)[1], ref_i)
    assert get_method("int8").spec == "Int8"


def test_storage_accounting():
    docs = unit_rows(np.random.default_rng(0), 10, 384)
    assert Fp32Method().fit(docs).bytes_per_vector() == 1536
    assert Fp32Method().fit(docs).bytes_per_vector(128) == 512
    assert get_method("fp16").fit(docs).bytes_per_vector(96) == 192
    assert get_method("int8").fit(docs).bytes_per_vector(48) == 48


def test_float_method_errors(data):
    docs, queries = data
    with pytest.raises(RuntimeError, match="fit"):
        Fp32Method().search(queries, 5)
    method = Fp32Method().fit(docs)
    with pytest.raises(ValueError, match="dims"):
        method.search(queries, 5, dims=65)
    with pytest.raises(ValueError, match="k must"):
        method.search(queries, 0)
    with pytest.raises(ValueError, match="query_emb has 32 dimensions"):
        method.search(queries[:, :32], 5)
    with pytest.raises(ValueError, match="NaN"):
        method.search(np.full_like(queries, np.nan), 5)
    with pytest.raises(TypeError, match="doc_emb"):
        Fp32Method().fit(docs.tolist())


def test_registry():
    for name in ("fp32", "fp16", "int8", "sign", "quantile"):
        assert name in available_methods()
    assert isinstance(get_method("fp32"), Method)
    assert get_method("int8", 8).name == "int8"
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        get_method("nope")
    with pytest.raises(ValueError, match="stores 32 bits"):
        get_method("fp32", 8)
    with pytest.raises(ValueError, match="quantile bits"):
        get_method("quantile", 3)
    with pytest.raises(ValueError, match="already registered"):
        register_method("fp32", lambda bits, dims, head: IndexMethod("fp32", "Flat", dims))

    calls = []

    def factory(bits, dims, head):
        calls.append((bits, dims, head))
        return IndexMethod("fp16", "Flat16", dims)

    register_method("test-custom", factory, overwrite=True)
    assert get_method("test-custom", 16, 32, None).name == "fp16"
    assert calls == [(16, 32, None)]


def test_head_method_transforms_docs_and_queries(data):
    docs, queries = data
    rotation = np.linalg.qr(np.random.default_rng(3).standard_normal((64, 64)))[0].astype(np.float32)

    class Head:
        def transform(self, x):
            return x @ rotation

    wrapped = get_method("fp32", head=Head()).fit(docs)
    assert isinstance(wrapped, HeadMethod)
    expected = Fp32Method().fit(docs @ rotation).search(queries @ rotation, 10, dims=16)
    got = wrapped.search(queries, 10, dims=16)
    np.testing.assert_array_equal(got[1], expected[1])


def _reference_threshold_search(docs, queries, thresholds_per_dim, k, nbits=None):
    levels = np.array([len(t) + 1 for t in thresholds_per_dim])
    flat = np.concatenate(thresholds_per_dim).astype(np.float32)
    db = _reference.encode(docs, flat, levels)
    qc = _reference.encode(queries, flat, levels)
    return _reference.search(qc, db, k, nbits)


@pytest.mark.parametrize(("bits", "n_levels"), [(1, 2), (1.5, 3), (2, 4)])
@pytest.mark.parametrize("dims", [None, 40])
def test_quantile_method_equals_numpy_reference(data, bits, n_levels, dims):
    docs, queries = data
    per_dim = np.quantile(docs.astype(np.float64), np.arange(1, n_levels) / n_levels, axis=0).T
    nbits = None if dims is None else dims * (n_levels - 1)
    ref_d, ref_i = _reference_threshold_search(docs, queries, list(per_dim), 25, nbits)
    method = get_method("quantile", bits).fit(docs)
    scores, ids = method.search(queries, 25, dims=dims)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_array_equal(-scores, ref_d)
    assert method.bytes_per_vector(dims) == -(-(dims or 64) * (n_levels - 1) // 64) * 8  # whole words read


def test_sign_method_equals_numpy_reference(data):
    docs, queries = data
    ref_d, ref_i = _reference_threshold_search(docs, queries, [np.zeros(1)] * 64, 30, nbits=48)
    scores, ids = get_method("sign").fit(docs).search(queries, 30, dims=48)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_array_equal(-scores, ref_d)


def test_hybrid_fits_each_prefix_and_counts_624_bits():
    rng = np.random.default_rng(5)
    docs, queries = unit_rows(rng, 200, 384), unit_rows(rng, 6, 384)
    method = get_method("quantile", "hybrid").fit(docs)
    assert method.index.codec.quantizer.bits == 624 and method.bytes_per_vector() == 80  # 10 stored words
    assert method._index(192).codec.quantizer.bits == 312 and method.bytes_per_vector(192) == 40
    quantizer = qama_rs.Quantizer.fit(docs[:, :192], "hybrid")
    ref_d, ref_i = qama_rs.search(quantizer.encode(queries[:, :192]), quantizer.encode(docs[:, :192]), 20)
    scores, ids = method.search(queries, 20, dims=192)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_array_equal(-scores, ref_d)
    with pytest.raises(ValueError, match="multiple of 8"):
        method.search(queries, 5, dims=100)


def test_backend_serves_method_ranking(data):
    docs, queries = data
    backend = MethodSearchIndex(Fp32Method(), dims=32)
    backend.add_documents(docs[:100], [f"d{i}" for i in range(100)])
    backend.add_documents(docs[100:], [f"d{i}" for i in range(100, 300)])
    scores, ids = backend.search(queries, 10, similarity_fn=None)
    expected_s, expected_i = Fp32Method().fit(docs).search(queries, 10, dims=32)
    assert ids == expected_i.tolist()
    np.testing.assert_allclose(scores, expected_s, rtol=1e-6)
    with pytest.raises(NotImplementedError, match="reranking"):
        backend.search(queries, 10, top_ranked={"q": ["d1"]})
    backend.clear()
    with pytest.raises(ValueError, match="no documents"):
        backend.search(queries, 10)
    with pytest.raises(ValueError, match="document ids"):
        backend.add_documents(docs[:3], ["a"])
    with pytest.raises(TypeError, match="Method"):
        MethodSearchIndex(object())


def test_training_free_quantizers_are_reachable_and_asymmetric(data):
    methods = importlib.import_module("qama_rs.quantizers")
    docs, queries = data
    name = "lloyd_max_gauss"
    assert name in available_methods()
    adapter = get_method(name).fit(docs)
    d, q = prefix_normalize(docs, 32), prefix_normalize(queries, 32)
    quantizer = methods.make_method(name).fit(d)
    ref_s, ref_i = reference_topk(_oracles.quantizer_scores(quantizer, q, quantizer.encode(d)), 12)
    scores, ids = adapter.search(queries, 12, dims=32)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_allclose(scores, ref_s, rtol=1e-5, atol=1e-6)
    assert adapter.spec_for(32) == "Prefix32,LloydMax2"
    assert adapter.bytes_per_vector(32) == quantizer.bytes_per_vector


class FakeQamaHead:
    """The QamaModel surface QamaMethod uses: a fixed rotation, per-level slices, per-level thresholds."""

    levels = (64, 32)

    def __init__(self, calibration):
        self.rotation = np.linalg.qr(np.random.default_rng(9).standard_normal((64, 64)))[0].astype(np.float32)
        self.calibration = calibration

    def transform(self, emb):
        return prefix_normalize(emb @ self.rotation, 64)

    def features(self, emb, dims, scheme):
        return prefix_normalize(emb @ self.rotation, dims)

    def quantizer(self, dims, scheme):
        return qama_rs.Quantizer.fit(self.features(self.calibration, dims, scheme), scheme)


def test_qama_method_uses_the_heads_levels_and_thresholds(data):
    docs, queries = data
    head = FakeQamaHead(calibration=docs[:50])
    method = get_method("qama", 2, head=head).fit(docs)
    for dims in (None, 32):
        level = dims or 64
        quantizer = head.quantizer(level, "2bit")
        index = qama_rs.Index(quantizer)
        index.add(head.features(docs, level, "2bit"))
        ref_d, ref_i = index.search(head.features(queries, level, "2bit"), 15)
        scores, ids = method.search(queries, 15, dims=dims)
        np.testing.assert_array_equal(ids, ref_i)
        np.testing.assert_array_equal(-scores, ref_d)
        assert method.bytes_per_vector(dims) == quantizer.words * 8
    with pytest.raises(ValueError, match="Matryoshka levels"):
        method.search(queries, 5, dims=48)
    assert isinstance(get_method("qama", 32, head=head), HeadMethod)
    with pytest.raises(ValueError, match="needs head"):
        get_method("qama", 2)
    with pytest.raises(TypeError, match="QamaModel"):
        get_method("qama", 2, head=lambda x: x)


def test_a_spec_is_a_method_and_results_name_their_spec(data):
    from qama_rs.eval.runner import _spec_of

    docs, queries = data
    method = get_method("Hadamard,LloydMax2").fit(docs)
    index = qama_rs.index_factory(64, "Hadamard,LloydMax2")
    index.train(docs)
    index.add(docs)
    np.testing.assert_array_equal(method.search(queries, 9)[1], index.search(queries, 9)[1])
    assert _spec_of(get_method("lloyd_max_gauss").fit(docs), 16) == "Prefix16,LloydMax2"
    assert _spec_of(get_method("quantile", 2).fit(docs), 16) == "Thermo2"
    assert get_method("two_stage").spec == "Sign,Rescore(LloydMax2,100)"
    with pytest.raises(ValueError, match="unknown method 'Nope,Flat'"):
        get_method("Nope,Flat")


def test_two_stage_method_equals_the_numpy_oracle(data):
    docs, queries = data
    oracle = _oracles.TwoStageSearch(k_prime=100).fit(docs)
    ref_i = oracle.search(queries, 10)[1]
    np.testing.assert_array_equal(get_method("two_stage").fit(docs).search(queries, 10)[1], ref_i)
