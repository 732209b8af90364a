"""Retrieval metrics, computed the way MTEB computes them.

MTEB (``mteb/_evaluators/retrieval_metrics.py``) hands ``{query: {doc: score}}`` runs to
``pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", ...})`` and averages the per-query values.
trec_eval ranks each query's documents by score, breaking ties by document id (descending), and uses the
graded relevance itself as the gain. MTEB does not drop documents whose id equals the query id unless a
task sets ``ignore_identical_ids`` (none of ours does), so neither do we.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["bootstrap_ci", "bootstrap_mean_ci", "ndcg_at_10", "read_trec_run", "run_from_topk"]


def ndcg_at_10(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]
) -> tuple[float, dict[str, float]]:
    """NDCG@10 via pytrec_eval: ``(mean over judged queries, {query_id: ndcg})``.

    Every query of ``qrels`` counts; one missing from ``run`` (or with no retrieved document) scores 0 —
    pytrec_eval would silently skip it, which MTEB never triggers because it returns a list for each query.
    """
    import pytrec_eval

    if not isinstance(qrels, Mapping) or not qrels:
        raise ValueError("qrels must be a non-empty mapping {query_id: {doc_id: relevance}}")
    if not isinstance(run, Mapping):
        raise TypeError(f"run must be a mapping {{query_id: {{doc_id: score}}}}, got {type(run).__name__}")
    clean_qrels = {str(q): {str(d): int(r) for d, r in docs.items()} for q, docs in qrels.items()}
    clean_run = {
        str(q): {str(d): float(s) for d, s in docs.items()}
        for q, docs in run.items()
        if str(q) in clean_qrels
    }
    evaluator = pytrec_eval.RelevanceEvaluator(clean_qrels, {"ndcg_cut.10"})
    scores = evaluator.evaluate({q: docs for q, docs in clean_run.items() if docs})
    per_query = {q: float(scores[q]["ndcg_cut_10"]) if q in scores else 0.0 for q in clean_qrels}
    return float(np.mean(list(per_query.values()))), per_query


def run_from_topk(
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    ids: np.ndarray,
    scores: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """A pytrec_eval run from top-k row numbers ``ids (q, k)``; higher score = better.

    Without ``scores`` the rank order itself is the score (``k - rank``), so the run keeps exactly the
    order the method returned. Negative row numbers (padding) are skipped.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[0] != len(query_ids):
        raise ValueError(f"ids must have shape ({len(query_ids)}, k), got {ids.shape}")
    if scores is None:
        scores = np.broadcast_to(np.arange(ids.shape[1], 0, -1, dtype=np.float64), ids.shape)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != ids.shape:
        raise ValueError(f"scores shape {scores.shape} differs from ids shape {ids.shape}")
    run: dict[str, dict[str, float]] = {}
    n_docs = len(doc_ids)
    for qid, row_ids, row_scores in zip(query_ids, ids.tolist(), scores.tolist(), strict=True):
        hits: dict[str, float] = {}
        for row, score in zip(row_ids, row_scores, strict=True):
            if row < 0:
                continue
            if row >= n_docs:
                raise ValueError(f"row id {row} out of range for {n_docs} documents")
            hits[doc_ids[row]] = score
        run[str(qid)] = hits
    return run


def read_trec_run(path) -> dict[str, dict[str, float]]:
    """A TREC run file (``qid Q0 docid rank score tag`` per line, as ``qama search --out`` writes) as a
    pytrec_eval run ``{qid: {docid: score}}``. Malformed lines raise ``ValueError`` naming the line."""
    run: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 6:
                raise ValueError(f"{path}:{line_no}: expected 6 fields (qid Q0 docid rank score tag), got {len(parts)}")
            qid, _, doc, _, score, _ = parts
            try:
                run.setdefault(qid, {})[doc] = float(score)
            except ValueError:
                raise ValueError(f"{path}:{line_no}: score {score!r} is not a number") from None
    return run


def _bootstrap_rng(n_resamples: int, seed: int, confidence: float) -> np.random.Generator:
    """The resampling generator, once the resample count and the confidence level are checked."""
    if not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return np.random.default_rng(seed)


def _interval(means: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of the resampled means."""
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(lo), float(hi)


def bootstrap_ci(
    per_query_values, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of per-query values.

    ``per_query_values`` is a sequence or a ``{query_id: value}`` mapping. Queries are resampled with
    replacement ``n_resamples`` times (seeded, so tables are reproducible).
    """
    if isinstance(per_query_values, Mapping):
        per_query_values = list(per_query_values.values())
    values = np.asarray(per_query_values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("per_query_values must be a non-empty 1-D sequence of numbers")
    if not np.all(np.isfinite(values)):
        raise ValueError("per_query_values contains NaN or infinity")
    rng = _bootstrap_rng(n_resamples, seed, confidence)
    means = np.empty(n_resamples, dtype=np.float64)
    # Chunked so 1,000 resamples of a large query set stay small in memory.
    chunk = max(1, 2_000_000 // values.size)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        picks = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[picks].mean(axis=1)
    return _interval(means, confidence)


def bootstrap_mean_ci(
    per_query_groups, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Bootstrap CI of the mean over datasets of each dataset's mean.

    Each group (one dataset's per-query values, a sequence or mapping) is resampled independently within
    itself, so a 40-query dataset and a 300-query dataset each keep their weight of 1/n_datasets.
    """
    groups = [list(g.values()) if isinstance(g, Mapping) else list(g) for g in per_query_groups]
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError("per_query_groups must be a non-empty list of non-empty sequences")
    if len(groups) == 1:
        return bootstrap_ci(groups[0], n_resamples=n_resamples, seed=seed, confidence=confidence)
    rng = _bootstrap_rng(n_resamples, seed, confidence)
    total = np.zeros(n_resamples, dtype=np.float64)
    for group in groups:
        values = np.asarray(group, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError("per_query_groups contains NaN or infinity")
        picks = rng.integers(0, values.size, size=(n_resamples, values.size))
        total += values[picks].mean(axis=1)
    means = total / len(groups)
    return _interval(means, confidence)
