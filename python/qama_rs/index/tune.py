"""Recall auto-tuning without labels: probe queries whose exact float32 neighbours are the truth.

Real queries are not documents: on some corpora they sit between the documents' clusters (harder to
search than a document is), on others right inside them (easier). With no sample of real queries, the
probes are two sets built from the documents, and a setting counts by the *lower* of their recalls: the
harder half of a sample of documents (those whose nearest other document is least similar; each
document's own row excluded from its truth and its results), and blends of three random documents
(queries between topics). A blend sits about as far from the corpus as real queries do: the median
cosine of its nearest document is 0.69 / 0.63 on scifact / dbpedia-5k, the real queries' 0.62 / 0.67
(midpoints of two documents, used before, sat at 0.75 / 0.71 and over-estimated scifact's real recall by
0.02-0.05 once lists were ranked by cell). Measured on those sets (``benches/bench_tune.py``), this tracks
the real queries' recall where they are harder and errs on the safe side where they are easier. A sample
of real queries (``queries=``, unlabelled) is used as given instead.

:func:`tune` walks the search parameters from cheapest to dearest — ``nprobe`` in powers of two for a
partitioned index, and ``k_factor`` for a refinement stage — and keeps the first setting whose recall@k
reaches the target with 95 % confidence: the one-sided lower bound of the probes' mean recall (mean less
1.645 standard errors over the probe queries) must reach it, not the mean alone, so a setting that only
just reaches it on this sample of probes is passed over for the next. (The normal quantile is for the
default thousand probes; a handful of given ``queries`` makes the bound approximate, and a single one
makes it the mean.) The index records the choice (:meth:`qama_rs.index.Index.tune`).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Probe", "TuneResult", "exact_neighbours", "grid", "probes", "tune"]

#: Rows of the corpus scored against all sampled queries at a time (bounds the score block's memory).
TRUTH_CHUNK = 16_384
#: Refinement depths tried, as multiples of ``k``.
K_FACTORS = (1, 2, 4, 8, 16)
#: Documents summed into a blend probe (see the module docs).
BLEND = 3
#: Standard errors below the probes' mean recall that must still reach the target (one-sided 95 %).
CONFIDENCE_Z = 1.645


@dataclass
class TuneResult:
    """What :func:`tune` chose and measured: ``nprobe`` / ``k_factor`` (None where the index has no such
    parameter), the mean ``recall`` at that setting and its 95 % ``lower`` bound (of the probe set whose bound
    is lowest), whether that bound ``reached`` the ``target``, and every setting tried as
    ``(nprobe, k_factor, recall, lower)``."""

    target: float
    k: int
    queries: int
    nprobe: int | None
    k_factor: float | None
    recall: float
    reached: bool
    lower: float = -1.0
    tried: list[tuple[int | None, float | None, float, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def exact_neighbours(x: np.ndarray, q: np.ndarray, k: int, own: np.ndarray | None = None) -> np.ndarray:
    """``int64 (len(q), k)``: for each query, the positions of its ``k`` largest inner products with the rows
    of ``x``, best first (ties by position); with ``own``, query ``i`` skips row ``own[i]`` (itself)."""
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    for start in range(0, len(x), TRUTH_CHUNK):
        block = x[start : start + TRUTH_CHUNK]
        scores = q @ block.T
        if own is not None:
            mine = (own >= start) & (own < start + len(block))
            scores[np.flatnonzero(mine), own[mine] - start] = -np.inf
        take = min(k, scores.shape[1])
        part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        s = np.concatenate([best_s, np.take_along_axis(scores, part, 1)], axis=1)
        i = np.concatenate([best_i, part + start], axis=1)
        order = np.lexsort((i, -s), axis=1)[:, :k]  # score descending, then position ascending
        best_s, best_i = np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1)
    return best_i


@dataclass
class Probe:
    """Probe queries, their exact top-k (as stored ids), and the id each query must not count (itself)."""

    name: str
    queries: np.ndarray
    truth: np.ndarray
    own: np.ndarray | None


def probes(x: np.ndarray, ids: np.ndarray, k: int, n: int, seed: int, queries: np.ndarray | None) -> list[Probe]:
    """The probe sets of the module docs (``queries``: a sample of real queries, used instead)."""
    if queries is not None:
        return [Probe("queries", queries, ids[exact_neighbours(x, queries, k)], None)]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x), size=min(2 * n, len(x)), replace=False))
    near = exact_neighbours(x, x[rows], k, own=rows)
    top = np.einsum("ij,ij->i", x[rows], x[near[:, 0]])
    hard = np.sort(np.argsort(top, kind="stable")[: max(1, len(rows) // 2)])
    picks = rng.integers(0, len(x), size=(max(1, len(rows) // 2), BLEND))
    picks = picks[(np.diff(np.sort(picks, axis=1), axis=1) != 0).all(axis=1)]  # three distinct documents
    if not len(picks):  # fewer than three documents: one repeated blend of all of them
        picks = np.arange(len(x))[None, :]
    blends = x[picks].sum(axis=1)  # inner products and lists rank the same as for the normalized blend
    return [
        Probe("documents", x[rows[hard]], ids[near[hard]], ids[rows[hard]]),
        Probe("blends", blends, ids[exact_neighbours(x, blends, k)], None),
    ]


def recall_at(found: np.ndarray, probe: Probe, k: int) -> tuple[float, float]:
    """Mean recall@k of results ``found`` (``k + 1`` per query) against the probe's truth, and its one-sided
    95 % lower bound (:data:`CONFIDENCE_Z` standard errors below)."""
    if probe.own is not None:  # the query document itself is stored too: drop it, keep the next k
        found = np.where(found == probe.own[:, None], -1, found)
    hits = np.array([len(np.intersect1d(f[f >= 0][:k], t)) for f, t in zip(found, probe.truth, strict=True)])
    # From the integer hits: equal recalls give a spread of exactly 0 (recalls divided first could
    # put a mean at the target one rounding below it).
    mean = float(hits.mean()) / k
    error = float(hits.std(ddof=1)) / k / np.sqrt(len(hits)) if len(hits) > 1 else 0.0
    return mean, mean - CONFIDENCE_Z * error


def grid(nlist: int | None, refine: bool) -> list[tuple[int | None, float | None]]:
    """Settings from cheapest to dearest: each ``nprobe`` (powers of two up to ``nlist``, then ``nlist``), and
    within it each ``k_factor`` of :data:`K_FACTORS`."""
    probes: list[int | None] = [None]
    if nlist is not None:
        probes = sorted({min(1 << p, nlist) for p in range(nlist.bit_length() + 1)})
    factors: list[float | None] = list(map(float, K_FACTORS)) if refine else [None]
    return [(p, f) for p in probes for f in factors]


def tune(
    search: Any, sets: list[Probe], target: float, k: int, nlist: int | None, refine: bool
) -> TuneResult:
    """Walks :func:`grid` with ``search(queries, k, nprobe, k_factor) -> I`` until the lowest 95 % lower bound
    of recall@``k`` over the probe ``sets`` reaches ``target``."""
    result = TuneResult(target, k, sum(len(p.queries) for p in sets), None, None, -1.0, False)
    from tqdm import tqdm

    for nprobe, k_factor in tqdm(grid(nlist, refine), desc="tuning", file=sys.stderr, leave=False):
        # The set whose bound is lowest decides (its mean is the recall reported).
        recall, lower = min(
            (recall_at(search(p.queries, k + 1, nprobe, k_factor), p, k) for p in sets), key=lambda m: m[1]
        )
        result.tried.append((nprobe, k_factor, recall, lower))
        if lower > result.lower:  # short of the target: the best setting seen
            result.nprobe, result.k_factor, result.recall, result.lower = nprobe, k_factor, recall, lower
        if lower >= target:
            result.reached = True
            break
    return result
