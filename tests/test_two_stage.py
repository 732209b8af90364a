"""Two-stage search (``CODEC,Rescore(CODEC,k')`` and ``CODEC,RFlat(k')``): Hamming candidates rescored with
compact asymmetric codes or float32 vectors, against a NumPy two-stage reference; ``k`` beyond the
rescoring depth, ``k_factor``, filters and memory-mapped float vectors."""

from __future__ import annotations

import numpy as np
import pytest

import _reference as ref
from qama_rs import Index, Quantizer, index_factory


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(21)
    docs = rng.normal(size=(1500, 64)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[rng.choice(1500, 12, replace=False)] + 0.05 * rng.normal(size=(12, 64)).astype(np.float32)
    return docs, queries.astype(np.float32)


def built(spec: str, docs: np.ndarray, ids=None) -> Index:
    index = index_factory(docs.shape[1], spec)
    if not index.is_trained:
        index.train(docs)
    index.add(docs, ids)
    return index


def reference(candidates: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of each query's candidates by ``scores[q, row]``, ties by lower row."""
    cands = np.sort(candidates, axis=1)
    s = np.take_along_axis(scores, cands, axis=1).astype(np.float32)
    top_s, pos = ref.top_scores(s, k)
    return top_s, np.take_along_axis(cands, pos, axis=1)


def test_asymmetric_rescoring_matches_reference(case):
    docs, queries = case
    two_stage = built("Sign,Rescore(LloydMax2,60)", docs)
    s, i = two_stage.search(queries, 10)
    assert s.dtype == np.float32 and i.dtype == np.int64 and s.shape == (12, 10)
    sign = Quantizer(np.zeros(64, dtype=np.float32), 2)
    _, cand = ref.search(sign.encode(queries), sign.encode(docs), 60)
    lloyd = built("LloydMax2", docs)
    codec = lloyd.codec  # the NumPy reference scores the same tables
    packed = ref.asym_pack(codec.encoder.quantize(docs), codec.bits)
    full = ref.asym_scores(codec.queries(queries), codec.recon, packed)
    want_s, want_i = reference(cand, full, 10)
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_array_equal(s, want_s)
    # k' = n: the full asymmetric search.
    np.testing.assert_array_equal(two_stage.search(queries, 10, k_factor=150)[1], lloyd.search(queries, 10)[1])


def test_float_rescoring_and_ids(case):
    docs, queries = case
    ids = np.arange(1500, dtype=np.int64) * 2 + 1  # ids differ from rows
    two_stage = built("Thermo1,RFlat(80)", docs, ids)
    s, i = two_stage.search(queries, 10)
    sign = Quantizer.fit(docs, "1bit")
    _, cand = ref.search(sign.encode(queries), sign.encode(docs), 80)
    dots = queries.astype(np.float64) @ docs.astype(np.float64).T
    want_s, want_rows = reference(cand, dots, 10)
    np.testing.assert_array_equal(i, ids[want_rows])
    np.testing.assert_allclose(s, want_s, atol=1e-5)
    assert two_stage.metric == "ip" and two_stage.bytes_per_vector == 8 + 256


def test_rescoring_improves_on_hamming_alone(case):
    docs, queries = case
    exact = np.argsort(-(queries @ docs.T), axis=1)[:, :10]

    def recall(ids):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact, strict=True)])

    assert recall(built("Sign,Rescore(LloydMax2,100)", docs).search(queries, 10)[1]) > recall(
        built("Sign", docs).search(queries, 10)[1]
    )


def test_k_beyond_the_rescoring_depth_returns_k_results(case):
    """``Thermo1,RFlat(50)`` asked for 100 results returns 100 (the depth rises to k), not 50 and 50 x -1."""
    docs, queries = case
    index = built("Thermo1,RFlat(50)", docs)
    s, i = index.search(queries, 100)
    assert (i >= 0).all() and (np.diff(s, axis=1) <= 0).all()
    assert all(len(set(row)) == 100 for row in i)


def test_k_factor_and_filters(case):
    docs, queries = case
    index = built("Sign,Rescore(Flat,20)", docs)
    deep = index.search(queries, 5, k_factor=300)  # 1500 candidates: the exact float top-5
    np.testing.assert_array_equal(deep[1], np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :5])
    allowed = np.arange(3, 1500, 10)
    for k in (5, 200):  # fewer allowed rows than candidates asked for, and more
        s, i = index.search(queries, k, allowed=allowed)
        got = i[i >= 0]
        assert np.isin(got, allowed).all() and (i >= 0).sum(axis=1).min() == min(k, len(allowed))
    with pytest.raises(ValueError, match="k_factor"):
        index.search(queries, 5, k_factor=0.5)
    with pytest.raises(ValueError, match="no refinement"):
        built("Sign", docs).search(queries, 5, k_factor=2)


def test_float_vectors_of_a_mapped_index_are_read_in_place(tmp_path, case):
    docs, queries = case
    index = built("Thermo1,RFlat(100)", docs)
    index.save(tmp_path / "two.qidx")
    mapped = Index.load(tmp_path / "two.qidx", mmap=True)
    for got, want in zip(mapped.search(queries, 10), index.search(queries, 10), strict=True):
        np.testing.assert_array_equal(got, want)
    base = mapped._stores[1]._base
    assert not base.flags.writeable and not base.flags.owndata  # a view of the mapping, not a copy


def test_small_collections(case):
    docs, queries = case
    s, i = built("Thermo1,RFlat(50)", docs[:7]).search(queries, 20)
    assert s.shape == (12, 20) and sorted(i[0, :7]) == list(range(7)) and (i[:, 7:] == -1).all()
    s, i = built("Thermo1,RFlat(3)", docs[:7]).search(queries, 20)
    assert (i[:, :7] >= 0).all()
