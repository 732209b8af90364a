"""qama_rs.TwoStageIndex: Hamming candidates from an Index, rescored with compact asymmetric codes or
with float32 vectors (in memory or memory-mapped .npy), against a NumPy two-stage reference."""

from __future__ import annotations

import numpy as np
import pytest

import _reference as ref
from qama_rs import AsymmetricIndex, FloatVectors, Index, Quantizer, TwoStageIndex


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(21)
    docs = rng.normal(size=(1500, 64)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[rng.choice(1500, 12, replace=False)] + 0.05 * rng.normal(size=(12, 64)).astype(np.float32)
    binary = Quantizer(thresholds=np.median(docs, axis=0)[:, None])  # 1 bit per dimension
    two_bit = Quantizer.fit(docs, "2bit")
    codes = two_bit.quantize(docs)
    recon = np.stack([[docs[codes[:, j] == c, j].mean() for c in range(4)] for j in range(64)]).astype(
        np.float32
    )
    return docs, queries.astype(np.float32), binary, two_bit, codes, recon


def reference_two_stage(candidates, scores_of):
    """Top by score among each query's candidates, ties by lower row (candidates sorted first)."""
    cands = np.sort(candidates, axis=1)
    scores = np.stack([scores_of(i, c) for i, c in enumerate(cands)]).astype(np.float32)
    return scores, cands


def first_stage(binary, docs, ids=None):
    index = Index(binary)
    index.add(docs, ids)
    return index


def test_asymmetric_rescoring_matches_reference(case):
    docs, queries, binary, two_bit, codes, recon = case
    index = first_stage(binary, docs)
    rescorer = AsymmetricIndex(recon, quantizer=two_bit)
    rescorer.add(docs)
    two_stage = TwoStageIndex(index, rescorer, k_prime=60)
    s, i = two_stage.search(queries, 10)
    assert s.dtype == np.float32 and i.dtype == np.int64 and s.shape == (12, 10)
    _, cand = ref.search(binary.encode(queries), binary.encode(docs), 60)
    full = ref.asym_scores(queries, recon, ref.asym_pack(codes, 2))
    scores, cands = reference_two_stage(cand, lambda q, c: full[q, c])
    want_s, pos = ref.top_scores(scores, 10)
    np.testing.assert_array_equal(i, np.take_along_axis(cands, pos, axis=1))
    np.testing.assert_array_equal(s, want_s)
    assert (np.diff(s, axis=1) <= 0).all()
    # Every result is a first-stage candidate; with k' = n it is the full asymmetric search.
    assert all(set(row) <= set(c) for row, c in zip(i, cand, strict=True))
    np.testing.assert_array_equal(
        two_stage.search(queries, 10, k_prime=5000)[1], rescorer.search(queries, 10)[1]
    )


def test_rescoring_improves_on_hamming_alone(case):
    docs, queries, binary, two_bit, _, recon = case
    index = first_stage(binary, docs)
    rescorer = AsymmetricIndex(recon, quantizer=two_bit)
    rescorer.add(docs)
    exact = np.argsort(-(queries @ docs.T), axis=1)[:, :10]

    def recall(ids):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact, strict=True)])

    hamming_only = recall(index.search(queries, 10)[1])
    rescored = recall(TwoStageIndex(index, rescorer, k_prime=100).search(queries, 10)[1])
    assert rescored > hamming_only


def test_float_rescoring_from_a_memory_mapped_npy(tmp_path, case):
    docs, queries, binary, *_ = case
    path = tmp_path / "docs.npy"
    np.save(path, docs)
    ids = np.arange(1500, dtype=np.int64) * 2 + 1  # ids differ from rows: the rows are mapped back
    index = first_stage(binary, docs, ids)
    two_stage = TwoStageIndex(index, path, k_prime=80)
    assert isinstance(two_stage.rescorer, FloatVectors)
    assert isinstance(two_stage.rescorer.vectors, np.memmap)
    s, i = two_stage.search(queries, 10)
    _, cand = ref.search(binary.encode(queries), binary.encode(docs), 80)
    dots = queries.astype(np.float64) @ docs.astype(np.float64).T
    scores, cands = reference_two_stage(cand, lambda q, c: dots[q, c])
    _, pos = ref.top_scores(scores, 10)
    np.testing.assert_array_equal(i, ids[np.take_along_axis(cands, pos, axis=1)])
    np.testing.assert_allclose(s, np.take_along_axis(scores, pos, axis=1), atol=1e-5)
    # The same from an in-memory array.
    s2, i2 = TwoStageIndex(index, docs, k_prime=80).search(queries, 10)
    np.testing.assert_array_equal(i2, i)
    np.testing.assert_array_equal(s2, s)


def test_prefix_first_stage_and_separate_rescore_queries(case):
    docs, queries, binary, *_ = case
    index = first_stage(binary, docs)
    two_stage = TwoStageIndex(index, FloatVectors(docs), k_prime=50)
    ids = two_stage.search(queries, 5, dims=32)[1]
    _, cand = ref.search(binary.encode(queries, 32), binary.encode(docs, 32), 50)
    assert all(set(row) <= set(c) for row, c in zip(ids, cand, strict=True))
    # Second-stage queries in another scoring space: here scaled, which keeps the order.
    s, i = two_stage.search(queries, 5, rescore_queries=2 * queries)
    s1, i1 = two_stage.search(queries, 5)
    np.testing.assert_array_equal(i, i1)
    np.testing.assert_allclose(s, 2 * s1, rtol=1e-6)


def test_small_collections_clip_k_and_k_prime(case):
    docs, queries, binary, *_ = case
    index = first_stage(binary, docs[:7])
    s, i = TwoStageIndex(index, docs[:7], k_prime=50).search(queries, 20)
    assert s.shape == (12, 7) and sorted(i[0]) == list(range(7))
    s, i = TwoStageIndex(index, docs[:7], k_prime=3).search(queries, 20)
    assert s.shape == (12, 3)


def test_errors(tmp_path, case):
    docs, queries, binary, *_ = case
    index = first_stage(binary, docs[:100])
    with pytest.raises(ValueError, match="holds 100 vectors but the rescorer 99"):
        TwoStageIndex(index, docs[:99]).search(queries, 5)
    with pytest.raises(TypeError, match="qama_rs.Index"):
        TwoStageIndex("index", docs)
    np.save(tmp_path / "f64.npy", docs.astype(np.float64))
    with pytest.raises(ValueError, match="float32"):
        TwoStageIndex(index, tmp_path / "f64.npy")
    np.save(tmp_path / "fortran.npy", np.asfortranarray(docs[:100]))
    with pytest.raises(ValueError, match="Fortran"):
        TwoStageIndex(index, tmp_path / "fortran.npy")
    with pytest.raises(ValueError, match="k_prime = 0"):
        TwoStageIndex(index, docs[:100], k_prime=0)
    with pytest.raises(ValueError, match="rescore_queries must have 12 rows"):
        TwoStageIndex(index, docs[:100]).search(queries, 5, rescore_queries=queries[:3])
    with pytest.raises(ValueError, match="columns"):
        TwoStageIndex(index, docs[:100, :10]).search(queries, 5)
    bad = docs[:100].copy()
    bad[:] = np.inf
    with pytest.raises(ValueError, match="not finite"):
        TwoStageIndex(index, bad).search(queries, 5)
