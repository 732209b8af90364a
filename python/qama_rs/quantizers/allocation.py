"""Bit allocation for PCA + bit allocation codes (:mod:`qama_rs.quantizers.allocated`): how many
Lloyd-Max levels each principal component gets under a byte budget, and how the digits pack into
bytes (mixed radix, or nibbles for the quantized block kernel).

Pure functions of the component variances; the codec classes that fit and use them live in
``allocated.py``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from qama_rs.errors import QamaError
from qama_rs.quantizers.lloyd_max import gaussian_lloyd_max, lloyd_1d

#: Level counts a component may get (1 = dropped). Powers of two plus 3 and 6, which pack
#: 5 or 3 to a byte (1.6 and 2.67 bits).
LEVEL_OPTIONS = (2, 3, 4, 6, 8, 16, 32, 64)
#: Level counts of nibble packing (see :func:`byte_layout`): up to 16 levels a component sits
#: inside one nibble, so a byte's table is the sum of two 16-entry tables that the engine's
#: quantized block kernel (the table codec's blocked scan, 32 rows per ``vpshufb``) scans; 32 and 64 levels
#: take a byte's low bits as additive codes (:func:`additive_levels`), separable by construction.
#: 3 and 6 levels would cost 2 and 3 bits there, no less than 4 and 8, so they are left out.
NIBBLE_LEVEL_OPTIONS = (2, 4, 8, 16, 32, 64)
PACKINGS = ("byte", "nibble")


def gaussian_distortion(levels: int) -> float:
    """Mean squared error of the ``levels``-level Lloyd-Max code of a unit Gaussian (1 for 1 level).

    For centroid levels the error is ``1 - Σ_k P_k c_k²`` (the code keeps the variance of the means).
    """
    if levels == 1:
        return 1.0
    bounds, values = gaussian_lloyd_max(levels)
    edges = np.concatenate(([-np.inf], bounds, [np.inf]))
    cdf = np.array([0.5 * math.erfc(-e / math.sqrt(2.0)) for e in edges])
    return float(1.0 - np.sum(np.diff(cdf) * values**2))


def _hull(options, distortion=None) -> list[tuple[float, float, int]]:
    """Lower convex hull of ``(bits, distortion, levels)`` from the dropped component (0 bits, 1)."""
    distortion = gaussian_distortion if distortion is None else distortion
    points = [(0.0, 1.0, 1)] + sorted((math.log2(L), distortion(L), L) for L in set(options))
    hull = [points[0]]
    for p in points[1:]:
        if p[1] >= hull[-1][1]:
            continue
        while len(hull) >= 2:
            (b0, d0, _), (b1, d1, _) = hull[-2], hull[-1]
            if (d0 - d1) / (b1 - b0) <= (d0 - p[1]) / (p[0] - b0):
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def allocate_levels(weights, budget_bits: float, options=LEVEL_OPTIONS, distortion=None) -> np.ndarray:
    """Level count per component minimising ``Σ w_i D(L_i)`` with ``Σ log2 L_i <= budget_bits``
    (``D``: ``distortion(levels)``, by default the Gaussian Lloyd-Max one).

    Greedy by marginal gain per bit along each component's convex hull of (bits, distortion); the
    slopes decrease along a hull, so one global sort of all steps is the greedy order.
    """
    w = np.maximum(np.asarray(weights, dtype=np.float64), 0.0)
    hull = _hull(options, distortion)
    costs = np.array([hull[i + 1][0] - hull[i][0] for i in range(len(hull) - 1)])
    slopes = np.array([(hull[i][1] - hull[i + 1][1]) / costs[i] for i in range(len(hull) - 1)])
    gains = (w[:, None] * slopes[None, :]).ravel()
    order = np.argsort(-gains, kind="stable")
    taken = order[np.cumsum(np.tile(costs, len(w))[order]) <= budget_bits + 1e-9]
    steps = np.bincount(taken // len(slopes), minlength=len(w))
    return np.array([hull[s][2] for s in steps], dtype=np.int64)


def _first_fit(levels, capacity: int) -> list[list[int]]:
    """Components (indices with ``levels > 1``) grouped first-fit decreasing into bins whose level
    counts multiply to at most ``capacity``. Returns one list of component indices per bin."""
    items = sorted(((int(L), j) for j, L in enumerate(levels) if L > 1), key=lambda t: (-t[0], t[1]))
    bins: list[list] = []  # [product, members]
    for L, j in items:
        if L > capacity:
            raise QamaError(f"a component with {L} levels does not fit a {capacity}-value slot")
        for b in bins:
            if b[0] * L <= capacity:
                b[0] *= L
                b[1].append(j)
                break
        else:
            bins.append([L, [j]])
    return [b[1] for b in bins]


def pack_components(levels) -> list[list[int]]:
    """Components (indices with ``levels > 1``) grouped into bytes whose level counts multiply to at
    most 256 (first-fit decreasing). Returns one list of component indices per byte."""
    return _first_fit(levels, 256)


def byte_layout(
    levels, packing: str = "byte"
) -> tuple[list[list[int]], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Members, digit strides, field shifts and field masks of every code byte.

    Member ``t`` of a byte has digit ``((v >> shift_t) & mask_t) // stride_t % L_t`` in byte value
    ``v``, and encoding writes ``v = Σ_t digit_t · stride_t · 2^shift_t``.

    ``"byte"``: mixed radix over the whole byte (:func:`pack_components`; shift 0, mask 255).
    ``"nibble"``: components of at most 16 levels grouped into nibbles (level counts multiplying to
    at most 16; strides ``1, L_0, L_0 L_1, ...`` inside each), nibbles paired into bytes (shift 0 and
    mask 15 for the low nibble's members, shift 4 for the high nibble's), so every byte's table is
    a sum of two 16-entry tables. A wider component (a power of two up to 256 levels, bit-aligned)
    opens a byte of its own at bit 0 and leaves the top bits to smaller components, which then lie
    inside the high nibble; the codec makes such a component an additive code (value
    ``coarse[d % 16] + offset[d // 16]``), so its byte's table stays separable too.
    """

    def radix(members: list[int]) -> np.ndarray:
        return np.cumprod([1] + [int(levels[j]) for j in members[:-1]]).astype(np.int64)

    def full(n: int, value: int) -> np.ndarray:
        return np.full(n, value, dtype=np.int64)

    if packing == "byte":
        members = pack_components(levels)
        return (
            members,
            [radix(m) for m in members],
            [full(len(m), 0) for m in members],
            [full(len(m), 255) for m in members],
        )
    levels = np.asarray(levels)
    wide = [j for j in np.argsort(-levels, kind="stable") if levels[j] > 16]
    if any(levels[j] & (levels[j] - 1) or levels[j] > 256 for j in wide):
        raise QamaError(
            "nibble packing: components of more than 16 levels need a power-of-two level count <= 256"
        )
    small = np.where(levels > 16, 1, levels)
    # The top bits of each wide component's byte take the largest small components that fit.
    spare = [[256 // int(levels[j]), []] for j in wide]
    for j in sorted((j for j in range(len(levels)) if small[j] > 1), key=lambda j: (-int(small[j]), j)):
        for slot in spare:
            if slot[0] % int(small[j]) == 0 and slot[0] >= small[j]:
                slot[0] //= int(small[j])
                slot[1].append(j)
                small[j] = 1
                break
    members, strides, shifts, masks = [], [], [], []
    for j, (_, rest) in zip(wide, spare, strict=True):
        members.append([int(j), *rest])
        strides.append(radix([int(j), *rest]))
        shifts.append(full(1 + len(rest), 0))
        masks.append(full(1 + len(rest), 255))
    nibbles = _first_fit(small, 16)
    for lo, hi in zip(nibbles[0::2], nibbles[1::2] + [[]] * (len(nibbles) % 2), strict=True):
        members.append(lo + hi)
        strides.append(np.concatenate([radix(lo), radix(hi) if hi else np.zeros(0, np.int64)]))
        shifts.append(np.array([0] * len(lo) + [4] * len(hi), dtype=np.int64))
        masks.append(np.array([15] * len(lo) + [255] * len(hi), dtype=np.int64))
    return members, strides, shifts, masks


def levels_for_budget(weights, budget_bytes: int, options=LEVEL_OPTIONS, packing: str = "byte") -> np.ndarray:
    """The allocation with the most bits whose packing fits ``budget_bytes`` bytes (bisection on bits;
    nibble packing allocates with :func:`nibble_distortion`)."""
    distortion = nibble_distortion if packing == "nibble" else None
    lo, hi = 0.0, 8.0 * budget_bytes + 8.0
    best = allocate_levels(weights, 0.0, options, distortion)
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        levels = allocate_levels(weights, mid, options, distortion)
        if len(byte_layout(levels, packing)[0]) <= budget_bytes:
            best, lo = levels, mid
        else:
            hi = mid
    return best


def additive_levels(
    sorted_col: np.ndarray, fine: int, iterations: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``16 * fine``-level scalar code whose value for digit ``d`` is ``coarse[d % 16] +
    offset[d // 16]``: the byte table of a wide component is then exactly a sum of a low-nibble
    and a high-nibble table (what keeps the block kernel's bounds tight).

    Fitted by alternating nearest-value assignment and least squares on the two additive tables,
    from 16 Lloyd-Max levels and ``fine`` quantiles of their residuals (measured on a unit Gaussian:
    mean squared error 1.2x a free 32-level code's, 1.8x a free 64-level code's, far below a free
    16-level code's). Returns ``(bounds, values, order)``: ``values`` indexed by digit, ``order[p]``
    the digit of the ``p``-th smallest value and ``bounds`` the midpoints between sorted values
    (``order[searchsorted(bounds, z)]`` is the nearest value's digit).
    """
    col = np.asarray(sorted_col, dtype=np.float64)
    std = max(float(col.std()), 1e-30)
    _, g = gaussian_lloyd_max(16)
    coarse = lloyd_1d(col, col.mean() + std * g, 30, 1e-9 * std)[1]
    residual = col - coarse[np.abs(col[:, None] - coarse[None, :]).argmin(axis=1)]
    offset = np.quantile(residual, (np.arange(fine) + 0.5) / fine)
    n = 16 + fine
    for _ in range(iterations):
        values = (offset[:, None] + coarse[None, :]).ravel()  # digit d = 16 * high + low
        order = np.argsort(values, kind="stable")
        digit = order[np.searchsorted(0.5 * (values[order][1:] + values[order][:-1]), col)]
        lo, hi = digit % 16, 16 + digit // 16
        # Least squares on x ≈ coarse[lo] + offset[hi] (normal equations; lstsq takes the
        # minimum-norm solution of the one-dimensional shift between the two tables).
        gram = np.zeros((n, n))
        for a, b in ((lo, lo), (hi, hi), (lo, hi), (hi, lo)):
            np.add.at(gram, (a, b), 1.0)
        rhs = np.bincount(lo, col, n) + np.bincount(hi, col, n)
        solution = np.linalg.lstsq(gram, rhs, rcond=None)[0]
        coarse, offset = solution[:16], solution[16:]
    values = (offset[:, None] + coarse[None, :]).ravel()
    order = np.argsort(values, kind="stable")
    return 0.5 * (values[order][1:] + values[order][:-1]), values, order


@functools.cache
def nibble_distortion(levels: int) -> float:
    """Distortion of a nibble-packing code on a unit Gaussian: the Lloyd-Max one up to 16 levels,
    the additive code's (:func:`additive_levels`, measured on a seeded sample) above."""
    if levels <= 16:
        return gaussian_distortion(levels)
    col = np.sort(np.random.default_rng(0).standard_normal(20_000))
    bounds, values, order = additive_levels(col, levels // 16)
    return float(np.mean((col - values[order[np.searchsorted(bounds, col)]]) ** 2))
