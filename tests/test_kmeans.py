"""The engine's k-means assignment (``_core.kmeans_assign`` / ``kmeans_iterate``) against NumPy: the exact
assignment, and the shortlisted one (scores in a few directions, then exact scores of the best candidates)
that a partition with many lists uses — exact when every centroid is a candidate, nearly always the exact
nearest on structured data, and its distances always the chosen centroid's exact ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qama_rs import QamaError, _core
from qama_rs.index.ivf import SHORTLIST, shortlist_basis


def squared(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Exact squared distances ``(n, k)`` in float64."""
    x64, c64 = x.astype(np.float64), c.astype(np.float64)
    return (x64**2).sum(1)[:, None] - 2 * x64 @ c64.T + (c64**2).sum(1)[None, :]


def orthonormal(rng: np.random.Generator, rank: int, dims: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((dims, rank)))
    return np.ascontiguousarray(q.T, dtype=np.float32)


def structured(rng: np.random.Generator, n: int, k: int, dims: int = 64, inner: int = 10):
    """Centroids spread in an ``inner``-dimensional subspace (plus a little everywhere), rows near them."""
    axes = orthonormal(rng, inner, dims)
    c = rng.standard_normal((k, inner)).astype(np.float32) @ axes + 0.05 * rng.standard_normal((k, dims))
    x = c[rng.integers(0, k, n)] + 0.15 * rng.standard_normal((n, dims))
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(c, dtype=np.float32)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    k=st.integers(1, 40),
    dims=st.integers(1, 24),
    extra=st.integers(0, 5),
)
def test_a_shortlist_of_every_centroid_is_the_exact_assignment(seed, n, k, dims, extra):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dims)).astype(np.float32)
    c = rng.standard_normal((k, dims)).astype(np.float32)
    basis = orthonormal(rng, int(rng.integers(1, dims + 1)), dims)
    d = squared(x, c)
    best = d.min(1)
    for got, dist in (_core.kmeans_assign(x, c), _core.kmeans_assign(x, c, basis, k + extra)):
        # The nearest up to float32 rounding (a near tie may go either way); the distance is its own.
        chosen = d[np.arange(n), got]
        np.testing.assert_array_less(chosen, best + 1e-4 * (1 + np.abs(best)))
        np.testing.assert_allclose(dist, np.maximum(chosen, 0), rtol=1e-4, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200), k=st.integers(2, 60), dims=st.integers(2, 16))
def test_a_shortlist_rescores_the_candidates_numpy_picks(seed, n, k, dims):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dims)).astype(np.float32)
    c = rng.standard_normal((k, dims)).astype(np.float32)
    rank, m = int(rng.integers(1, dims + 1)), int(rng.integers(1, k + 1))
    basis = orthonormal(rng, rank, dims)
    got, _ = _core.kmeans_assign(x, c, basis, m)
    # NumPy's model: |c|^2 - 2 <Px, Pc> ranks the candidates, the m best are scored exactly.
    b64 = basis.astype(np.float64)
    approx = (c.astype(np.float64) ** 2).sum(1)[None, :] - 2 * (x @ b64.T) @ (c @ b64.T).T
    d = squared(x, c)
    checked = 0
    for r in range(n):
        order = np.argsort(approx[r], kind="stable")
        if m < k and approx[r, order[m]] - approx[r, order[m - 1]] < 1e-4 * (1 + abs(approx[r, order[m]])):
            continue  # the m-th and the next candidate tie to rounding: either set is right
        ranked = np.sort(d[r, order[:m]])
        if m > 1 and ranked[1] - ranked[0] < 1e-4 * (1 + abs(ranked[0])):
            continue  # two candidates tie exactly to rounding
        assert got[r] == order[:m][np.argmin(d[r, order[:m]])], r
        checked += 1
    assert checked >= n // 2


def test_the_shortlist_finds_the_exact_nearest_for_nearly_every_row_of_structured_data():
    rng = np.random.default_rng(1)
    x, c = structured(rng, 20_000, 512)
    basis = shortlist_basis(c)
    assert basis is not None and len(basis) < 64  # the rule shortlists here
    np.testing.assert_allclose(basis @ basis.T, np.eye(len(basis)), atol=1e-5)
    exact, _ = _core.kmeans_assign(x, c)
    short, dist = _core.kmeans_assign(x, c, basis, SHORTLIST)
    d = squared(x, c)
    assert np.mean(short == exact) >= 0.99
    np.testing.assert_allclose(dist, d[np.arange(len(x)), short], rtol=1e-3, atol=1e-4)
    # A row it misses goes to a centroid nearly as near.
    miss = short != exact
    assert np.all(d[miss, short[miss]] <= 1.2 * d[miss, exact[miss]] + 1e-6)
    # One direction and one candidate: a cruder assignment, still a valid one.
    crude, _ = _core.kmeans_assign(x, c, basis[:1], 1)
    assert 0 < np.mean(crude == exact) < np.mean(short == exact)


def test_the_shortlist_rule_keeps_the_exact_assignment_where_it_would_not_save_time():
    rng = np.random.default_rng(2)
    assert shortlist_basis(rng.standard_normal((64, 384)).astype(np.float32)) is None  # few lists
    # Centroids with no dominant directions: 90 % of their variance needs most of the dimensions.
    assert shortlist_basis(rng.standard_normal((4096, 64)).astype(np.float32)) is None
    basis = shortlist_basis(structured(rng, 10, 4096)[1])
    assert basis is not None and basis.shape[1] == 64 and len(basis) % 8 == 0


def test_an_iteration_through_a_shortlist_moves_centroids_as_the_exact_one_does():
    rng = np.random.default_rng(3)
    x, c = structured(rng, 5_000, 256)
    start = np.ascontiguousarray(x[:256])
    exact = _core.kmeans_iterate(x, start)
    _, vectors = np.linalg.eigh(np.cov(start.T.astype(np.float64)))
    basis = np.ascontiguousarray(vectors[:, ::-1][:, :16].T, dtype=np.float32)  # 16 leading directions
    short = _core.kmeans_iterate(x, start, basis, SHORTLIST)
    assert abs(short[2] - exact[2]) <= 0.01 * exact[2]  # the mean squared distance
    assert int(short[1].sum()) == 5_000


@pytest.mark.parametrize(
    "basis, candidates, words",
    [
        (np.ones((2, 5), np.float32), 4, "basis has 5 columns"),
        (np.zeros((0, 8), np.float32), 4, "basis must have 1 to"),
        (np.ones((9, 8), np.float32), 4, "basis must have 1 to"),
        (np.eye(8, dtype=np.float32)[:2], 0, "candidates must be at least 1"),
        (np.eye(8, dtype=np.float32)[:2], -1, "candidates"),
        (np.full((2, 8), np.nan, np.float32), 4, "basis"),
    ],
)
def test_shortlist_arguments_are_checked_and_named(basis, candidates, words):
    x = np.ones((10, 8), np.float32)
    for call in (_core.kmeans_assign, _core.kmeans_iterate):
        with pytest.raises(QamaError, match=words):
            call(x, x[:3].copy(), basis, candidates)
    with pytest.raises(TypeError, match="basis"):
        _core.kmeans_assign(x, x[:3].copy(), basis.astype(np.float64), 4)
