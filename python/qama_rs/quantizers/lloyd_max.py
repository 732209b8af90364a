"""Lloyd-Max scalar quantizers: Gaussian tables, empirical 1-D Lloyd iterations, calibration-free.

Lloyd-Max = the MSE-optimal scalar quantizer: every level is the mean of its bucket and every
boundary the midpoint of its two neighbouring levels. For a standard Gaussian and 4 levels the
fixed point is boundaries ``0, ±0.9816`` and levels ``±0.4528, ±1.5104``.
"""

from __future__ import annotations

import math
from functools import cache
from statistics import NormalDist

import numpy as np

from qama_rs.quantizers.base import (
    TrainingFreeQuantizer,
    check_embeddings,
    column_spans,
    column_stats,
    require_rows,
    warn_constant,
)

_SQRT2 = math.sqrt(2.0)


_SQRT_HALF = math.sqrt(0.5)
# The standard library's erf/erfc (correctly rounded to about an ulp) keep scipy out of the core
# install; elementwise over at most 257 bucket edges, so the Python-level loop costs microseconds.
_erf = np.frompyfunc(math.erf, 1, 1)
_erfc = np.frompyfunc(math.erfc, 1, 1)
_STANDARD_NORMAL = NormalDist()


def _phi(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _Phi(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, split like Cephes' ``ndtr`` (scipy's): ``erf`` near 0, ``erfc`` in the
    tails, so tail masses keep their relative precision."""
    x = np.asarray(z, dtype=np.float64) * _SQRT_HALF
    near_zero = np.abs(x) < _SQRT_HALF
    y = np.where(
        near_zero,
        0.5 + 0.5 * _erf(x).astype(np.float64),
        0.5 * _erfc(np.abs(x)).astype(np.float64),
    )
    return np.where(~near_zero & (x > 0), 1.0 - y, y)


@cache
def _gaussian_table(n_levels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    levels = np.array([float(v) for v in _initial_gaussian_levels(n_levels)])
    for _ in range(100_000):
        bounds = 0.5 * (levels[:-1] + levels[1:])
        edges = np.concatenate(([-np.inf], bounds, [np.inf]))
        cdf = _Phi(edges)
        density = _phi(edges)
        mass = cdf[1:] - cdf[:-1]
        # E[Z | a < Z < b] = (phi(a) - phi(b)) / (Phi(b) - Phi(a)) for a standard normal Z.
        new = (density[:-1] - density[1:]) / mass
        if np.max(np.abs(new - levels)) < 1e-13:
            levels = new
            break
        levels = new
    levels = 0.5 * (levels - levels[::-1])  # the table is odd-symmetric: make it exactly so
    bounds = 0.5 * (levels[:-1] + levels[1:])
    return tuple(bounds.tolist()), tuple(levels.tolist())


def _initial_gaussian_levels(n_levels: int) -> np.ndarray:
    """Gaussian quantiles at the bucket centres ``(i + 1/2) / n``: the Lloyd iterations' start."""
    return np.array([_STANDARD_NORMAL.inv_cdf((i + 0.5) / n_levels) for i in range(n_levels)])


def gaussian_lloyd_max(n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd-Max boundaries (``n_levels - 1``) and levels (``n_levels``) for a standard Gaussian."""
    if not isinstance(n_levels, int) or n_levels < 2 or n_levels > 256:
        raise ValueError(f"n_levels must be an integer in 2..256, got {n_levels!r}")
    bounds, levels = _gaussian_table(n_levels)
    return np.array(bounds), np.array(levels)


def _check_bits(bits) -> int:
    if not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer in 1..8, got {bits!r}")
    return bits


def bucket_means(sorted_col: np.ndarray, prefix: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Mean of each bucket ``(b[k-1], b[k]]`` of one sorted column; NaN for an empty bucket.

    ``prefix`` is ``concatenate(([0], cumsum(sorted_col)))`` in float64. A value equal to a boundary
    belongs to the lower bucket, as in encoding.
    """
    cuts = np.concatenate(([0], np.searchsorted(sorted_col, bounds, side="right"), [sorted_col.shape[0]]))
    counts = np.diff(cuts)
    sums = prefix[cuts[1:]] - prefix[cuts[:-1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def lloyd_1d(
    sorted_col: np.ndarray, levels: np.ndarray, iterations: int, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd iterations on one sorted column from initial ``levels``; returns (boundaries, levels).

    An empty bucket keeps its previous level, so the level count never changes.
    """
    prefix = np.concatenate(([0.0], np.cumsum(sorted_col, dtype=np.float64)))
    levels = np.asarray(levels, dtype=np.float64).copy()
    for _ in range(iterations):
        bounds = 0.5 * (levels[:-1] + levels[1:])
        means = bucket_means(sorted_col, prefix, bounds)
        new = np.where(np.isnan(means), levels, means)
        new = np.maximum.accumulate(new)  # keep levels ordered if an empty bucket stalls
        shift = np.max(np.abs(new - levels))
        levels = new
        if shift <= tol:
            break
    return 0.5 * (levels[:-1] + levels[1:]), levels


class LloydMaxGauss(TrainingFreeQuantizer):
    """``lloyd_max_gauss``: per-dimension median/std standardization, fixed Gaussian Lloyd-Max table.

    Thresholds ``m_j + s_j * b`` and levels ``m_j + s_j * l`` with (b, l) the Gaussian table; the
    asymmetric score ``q · x̂ = q · m + (q ⊙ s) · l[code]`` ranks documents exactly as ``(q ⊙ s) · l``.
    """

    name = "lloyd_max_gauss"
    _state_params = ("bits",)
    _state_arrays = {"center": np.float64, "scale": np.float64}

    def __init__(self, bits: int = 2) -> None:
        super().__init__()
        self.bits = _check_bits(bits)
        self.center: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, doc_emb) -> LloydMaxGauss:
        """Needs at least 2 documents; warns (``QamaWarning``) about columns of zero spread."""
        x = check_embeddings(doc_emb, "doc_emb")
        require_rows(x, 2, "doc_emb", self.name)
        stats = column_stats(x)
        warn_constant(stats["constant"], self.name)
        self.center, self.scale = stats["median"], stats["std"]
        bounds, levels = gaussian_lloyd_max(2**self.bits)
        self.dim = x.shape[1]
        self._set_tables(
            [m + s * bounds for m, s in zip(self.center, self.scale, strict=True)],
            [m + s * levels for m, s in zip(self.center, self.scale, strict=True)],
        )
        return self


class LloydMax4Bit(LloydMaxGauss):
    """``lloyd_max_4bit``: :class:`LloydMaxGauss` with the 16-level Gaussian table."""

    name = "lloyd_max_4bit"
    _state_params = ()

    def __init__(self) -> None:
        super().__init__(bits=4)


class LloydMaxEmpirical(TrainingFreeQuantizer):
    """``lloyd_max_empirical``: 1-D Lloyd iterations per dimension on the corpus values.

    Starts from the Gaussian table scaled by the dimension's median/std and iterates to the
    empirical fixed point (levels = bucket means, boundaries = midpoints).
    """

    name = "lloyd_max_empirical"
    _state_params = ("bits", "iterations", "tol")

    def __init__(self, bits: int = 2, iterations: int = 100, tol: float = 1e-7) -> None:
        super().__init__()
        self.bits = _check_bits(bits)
        if not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
        self.iterations = iterations
        self.tol = float(tol)

    def fit(self, doc_emb) -> LloydMaxEmpirical:
        """Needs at least 2 documents; warns (``QamaWarning``) about columns of zero spread."""
        x = check_embeddings(doc_emb, "doc_emb")
        require_rows(x, 2, "doc_emb", self.name)
        _, g_levels = gaussian_lloyd_max(2**self.bits)
        stats = column_stats(x)
        warn_constant(stats["constant"], self.name)
        center, scale = stats["median"], stats["std"]
        thresholds, levels = [], []
        for cols in column_spans(*x.shape):  # sorted float64 columns, a block at a time
            sorted_x = np.sort(x[:, cols], axis=0).astype(np.float64)
            for t, j in enumerate(range(cols.start, cols.stop)):
                b, lv = lloyd_1d(
                    np.ascontiguousarray(sorted_x[:, t]),
                    center[j] + scale[j] * g_levels,
                    self.iterations,
                    self.tol * max(scale[j], 1e-30),
                )
                thresholds.append(b)
                levels.append(lv)
        self.dim = x.shape[1]
        self._set_tables(thresholds, levels)
        return self


class CalibrationFree2Bit(TrainingFreeQuantizer):
    """``calibration_free_2bit``: the 4-level Gaussian table scaled by ``1/sqrt(d)``, no statistics.

    A unit-norm vector in ``d`` dimensions has coordinates of standard deviation about ``1/sqrt(d)``,
    so the table fits every dimension without looking at the corpus (``fit`` reads only ``d``, so one
    row is enough and constant data is no concern).
    """

    name = "calibration_free_2bit"

    def fit(self, doc_emb) -> CalibrationFree2Bit:
        x = check_embeddings(doc_emb, "doc_emb")
        d = x.shape[1]
        bounds, levels = gaussian_lloyd_max(4)
        s = 1.0 / math.sqrt(d)
        self.dim = d
        self._set_tables([bounds * s] * d, [levels * s] * d)
        return self
