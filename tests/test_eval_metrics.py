"""NDCG@10 as MTEB computes it (pytrec_eval), bootstrap CIs, and run building."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qama_rs.eval.metrics import bootstrap_ci, bootstrap_mean_ci, ndcg_at_10, run_from_topk


def test_ndcg_hand_computed():
    qrels = {"q1": {"a": 2, "b": 1, "c": 0}, "q2": {"d": 1}}
    run = {"q1": {"x": 0.9, "b": 0.7, "a": 0.5}}  # ranks: x, b, a; q2 retrieved nothing
    mean, per_query = ndcg_at_10(qrels, run)
    dcg = 0 + 1 / math.log2(3) + 2 / math.log2(4)  # trec_eval: gain = graded relevance
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert per_query["q1"] == pytest.approx(dcg / idcg, abs=1e-9)
    assert per_query["q2"] == 0.0  # missing from the run counts as 0, not skipped
    assert mean == pytest.approx(dcg / idcg / 2, abs=1e-9)


def test_ndcg_cut_at_10_and_perfect():
    qrels = {"q": {"rel": 1}}
    run_top = {"q": {"rel": 1.0, **{f"n{i}": 0.5 for i in range(20)}}}
    assert ndcg_at_10(qrels, run_top)[0] == pytest.approx(1.0)
    run_11th = {"q": {"rel": 0.0, **{f"n{i}": 1.0 + i for i in range(10)}}}
    assert ndcg_at_10(qrels, run_11th)[0] == 0.0


def test_ties_follow_trec_eval_doc_id_descending():
    # MTEB's comment: ties are broken "by doc id descending to match pytrec_eval".
    qrels = {"q": {"m": 1}}
    _, per_query = ndcg_at_10(qrels, {"q": {"m": 1.0, "n": 1.0, "z": 1.0}})
    assert per_query["q"] == pytest.approx(1 / math.log2(4))  # order z, n, m


def test_identical_query_and_doc_id_is_kept():
    # MTEB only drops doc == query id when a task sets ignore_identical_ids; ours do not.
    _, per_query = ndcg_at_10({"q": {"q": 1}}, {"q": {"q": 0.1, "x": 0.9}})
    assert per_query["q"] == pytest.approx(1 / math.log2(3))


def test_ndcg_rejects_bad_input():
    with pytest.raises(ValueError, match="qrels"):
        ndcg_at_10({}, {})
    with pytest.raises(TypeError, match="run"):
        ndcg_at_10({"q": {"d": 1}}, [("q", "d")])


def test_run_from_topk_scores_and_rank_order():
    run = run_from_topk(["q1", "q2"], ["a", "b", "c"], np.array([[2, 0], [1, -1]]))
    assert run == {"q1": {"c": 2.0, "a": 1.0}, "q2": {"b": 2.0}}
    run = run_from_topk(["q1"], ["a", "b"], np.array([[1, 0]]), np.array([[-3.0, -5.0]]))
    assert run == {"q1": {"b": -3.0, "a": -5.0}}
    with pytest.raises(ValueError, match="out of range"):
        run_from_topk(["q1"], ["a"], np.array([[3]]))
    with pytest.raises(ValueError, match="shape"):
        run_from_topk(["q1", "q2"], ["a"], np.array([[0]]))


def test_bootstrap_constant_and_reproducible():
    assert bootstrap_ci([0.4] * 50) == (pytest.approx(0.4), pytest.approx(0.4))
    values = np.random.default_rng(1).uniform(size=300)
    lo, hi = bootstrap_ci(values)
    assert lo < values.mean() < hi
    assert (lo, hi) == bootstrap_ci(list(values))  # seeded
    assert bootstrap_ci({f"q{i}": v for i, v in enumerate(values)}) == (lo, hi)
    # ~ mean ± 1.96 * sd / sqrt(n) for a large sample
    half = 1.96 * values.std() / math.sqrt(values.size)
    assert hi - lo == pytest.approx(2 * half, rel=0.15)
    narrow = bootstrap_ci(np.tile(values, 4))
    assert narrow[1] - narrow[0] < hi - lo


def test_bootstrap_errors():
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci([0.1, float("nan")])
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([0.1], n_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([0.1], confidence=1.5)


def test_bootstrap_mean_over_datasets_weights_datasets_equally():
    assert bootstrap_mean_ci([[0.0] * 40, [1.0] * 300]) == (pytest.approx(0.5), pytest.approx(0.5))
    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=40), rng.uniform(size=300)
    lo, hi = bootstrap_mean_ci([a, b])
    assert lo < (a.mean() + b.mean()) / 2 < hi
    assert bootstrap_mean_ci([a]) == bootstrap_ci(a)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_mean_ci([a, []])
