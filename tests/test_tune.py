"""Recall auto-tuning (``Index.tune``): exact truth, the cheapest setting that reaches the target, what the index
records, and the refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import qama_rs
from qama_rs import Index, index_factory
from qama_rs.index import tune as tuning

D = 64


def clustered(n: int, d: int = D, centers: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``centers`` random directions (the structure a partition finds)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    x = c[rng.integers(0, centers, n)] + 0.2 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_exact_neighbours_are_the_brute_force_top_k_without_the_query_itself():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    x[7] = x[3]  # a tie: the lower position first
    rows = np.array([3, 7, 100, 299])
    old, tuning.TRUTH_CHUNK = tuning.TRUTH_CHUNK, 64  # several chunks
    try:
        got = tuning.exact_neighbours(x, x[rows], 5, own=rows)
        plain = tuning.exact_neighbours(x, x[rows], 5)
    finally:
        tuning.TRUTH_CHUNK = old
    scores = (x[rows] @ x.T).astype(np.float64)
    for i, r in enumerate(rows):
        s = scores[i].copy()
        want_plain = np.lexsort((np.arange(len(x)), -s))[:5]
        s[r] = -np.inf
        want = np.lexsort((np.arange(len(x)), -s))[:5]
        np.testing.assert_array_equal(got[i], want)
        np.testing.assert_array_equal(plain[i], want_plain)
    assert got[0][0] == 7 and got[1][0] == 3  # each other's nearest, never themselves


def _recall(index: Index, q: np.ndarray, truth: np.ndarray, **kw) -> float:
    found = index.search(q, 10, **kw)[1]
    return float(np.mean([len(np.intersect1d(f, t)) / 10 for f, t in zip(found, truth, strict=True)]))


def test_recall_at_gives_the_mean_and_its_one_sided_95_percent_lower_bound():
    truth = np.array([[0, 1], [2, 3], [4, 5], [6, 7]])
    found = np.array([[0, 1, -1], [2, 9, -1], [9, 4, 5], [8, 9, -1]])  # recalls 1, 0.5, 0.5 (first k), 0
    probe = tuning.Probe("p", np.zeros((4, D), np.float32), truth, None)
    mean, lower = tuning.recall_at(found, probe, 2)
    each = np.array([1.0, 0.5, 0.5, 0.0])
    assert mean == pytest.approx(0.5)
    assert lower == pytest.approx(0.5 - 1.645 * each.std(ddof=1) / 2)
    # Equal recalls: no spread, the bound is the mean, exactly (0.8 stays 0.8, not one rounding below).
    same = tuning.Probe("p", np.zeros((100, D), np.float32), np.tile(np.arange(10), (100, 1)), None)
    eight = np.tile(np.r_[np.arange(8), 90, 91, -1], (100, 1))
    assert tuning.recall_at(eight, same, 10) == (0.8, 0.8)
    # A query's own id is dropped before its first k are counted.
    own = tuning.Probe("p", np.zeros((4, D), np.float32), truth, np.array([9, 9, 9, 9]))
    assert tuning.recall_at(found, own, 2)[0] == pytest.approx((1 + 0.5 + 1 + 0) / 4)


def test_tune_picks_the_cheapest_nprobe_that_reaches_the_target_and_the_index_keeps_it(tmp_path):
    x = clustered(4000)
    index = index_factory(D, "IVF64,LloydMax4")
    index.train(x)
    index.add(x)
    result = index.tune(x, 0.7, n_probes=300)
    assert result.reached and result.lower >= 0.7 and result.k_factor is None and result.nprobe > 1
    assert result.recall > result.lower  # the bound is below the mean
    assert index.nprobe == result.nprobe and index.metadata["tuned"]["nprobe"] == result.nprobe
    # Cheapest: every cheaper setting tried fell short (its lower bound), in grid order.
    probes = [p for p, _, _, _ in result.tried]
    assert probes == sorted(probes) and probes[-1] == result.nprobe
    assert all(lower < 0.7 for _, _, _, lower in result.tried[:-1])
    # Fresh queries from the same distribution reach the target too (the probes err on the safe side here).
    q = clustered(300, seed=5)
    truth = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :10]
    assert _recall(index, q, truth) >= 0.7
    assert _recall(index, q, truth) == _recall(index, q, truth, nprobe=result.nprobe)
    # Saved with the index.
    index.save(tmp_path / "t.qidx")
    loaded = Index.load(tmp_path / "t.qidx")
    assert loaded.nprobe == result.nprobe and loaded.metadata["tuned"]["recall"] == result.recall


def test_tune_sets_k_factor_for_a_refinement_stage():
    x = clustered(3000, seed=2)
    index = index_factory(D, "LloydMax2,RFlat(10)")
    index.train(x)
    index.add(x)
    result = index.tune(x, 0.7, n_probes=200)
    assert result.reached and result.nprobe is None and result.k_factor is not None and result.k_factor > 1
    assert index.k_factor == result.k_factor
    q = clustered(200, seed=6)
    truth = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :10]
    # The default depth is now the tuned one, and it beats the spec's own depth (k' = 10).
    assert _recall(index, q, truth) == _recall(index, q, truth, k_factor=result.k_factor)
    assert _recall(index, q, truth) > _recall(index, q, truth, k_factor=1)


def test_the_synthetic_probes_are_the_harder_documents_and_blends_of_three_farther_from_the_corpus():
    """Half of a sample of documents (those least similar to their nearest other document, each skipping
    itself) and sums of three distinct random documents, each with its exact top-k as truth; a blend sits
    farther from the corpus than a document does (its nearest document is less similar)."""
    x = clustered(3000, seed=5)
    ids = np.arange(len(x), dtype=np.uint64) + 100
    documents, blends = tuning.probes(x, ids, 10, 200, 0, None)
    assert (documents.name, blends.name) == ("documents", "blends")
    assert len(documents.queries) == 200 and len(blends.queries) > 150
    for probe in (documents, blends):
        own = None if probe.own is None else (probe.own - 100).astype(np.int64)
        np.testing.assert_array_equal(probe.truth, ids[tuning.exact_neighbours(x, probe.queries, 10, own=own)])
    # Each blend is the sum of three distinct documents: its norm is that of such a sum, never of one row.
    norms = np.linalg.norm(blends.queries, axis=1)
    assert norms.min() > 1.01 and norms.max() <= 3.0 + 1e-5
    cosine = lambda q: np.median((q / np.linalg.norm(q, axis=1, keepdims=True) @ x.T).max(axis=1))  # noqa: E731
    everyone = np.delete(x, (documents.own - 100).astype(np.int64), axis=0)
    assert cosine(blends.queries) < np.median((documents.queries @ everyone.T).max(axis=1))
    # Fewer than three documents: one blend of all of them.
    tiny_docs, tiny_blends = tuning.probes(x[:2], ids[:2], 1, 5, 0, None)
    np.testing.assert_allclose(tiny_blends.queries, x[:2].sum(axis=0, keepdims=True), rtol=1e-6)


def test_given_queries_replace_the_synthetic_probes():
    x = clustered(2000, seed=3)
    index = index_factory(D, "IVF32,LloydMax2")
    index.train(x)
    index.add(x)
    q = clustered(100, seed=7)
    result = index.tune(x, 0.45, queries=q)
    assert result.queries == 100
    truth = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :10]
    assert _recall(index, q, truth) == pytest.approx(result.recall)


def test_an_unreachable_target_warns_and_keeps_the_best_setting():
    x = clustered(2000, seed=4)
    index = index_factory(D, "IVF16,Sign")  # 64 bits: recall@10 stays far below 0.999
    index.train(x)
    index.add(x)
    with pytest.warns(qama_rs.QamaWarning, match="no setting reached"):
        result = index.tune(x, 0.999, n_probes=200)
    assert not result.reached and result.lower == max(lower for _, _, _, lower in result.tried)
    assert index.nprobe == result.nprobe


def test_tune_refuses_bad_arguments():
    x = clustered(500, seed=8)
    index = index_factory(D, "IVF8,LloydMax2")
    with pytest.raises(qama_rs.QamaError, match="not trained"):
        index.tune(x, 0.9)
    index.train(x)
    index.add(x)
    for target in (0, 1.5, -0.1):
        with pytest.raises(qama_rs.QamaError, match="target_recall"):
            index.tune(x, target)
    with pytest.raises(qama_rs.QamaError, match="x has 100 rows, the index holds 500"):
        index.tune(x[:100], 0.9)
    with pytest.raises(qama_rs.QamaError, match="ids"):
        index.tune(x[:100], 0.9, ids=np.arange(100) + 10_000)
    with pytest.raises(qama_rs.QamaError, match="ids"):
        index.tune(x[:100], 0.9, ids=np.arange(50))
    with pytest.raises(qama_rs.QamaTypeError, match="n_probes"):
        index.tune(x, 0.9, n_probes=1.5)
    with pytest.raises(qama_rs.QamaError, match="queries has 16 columns"):
        index.tune(x, 0.9, queries=np.zeros((3, 16), np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert index.tune(x[:100], 0.1, ids=np.arange(100), n_probes=50).reached  # a stored subset is fine
