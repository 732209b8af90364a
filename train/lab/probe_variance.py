"""Probe: variance-matched code rotations for mixed-level schemes (hybrid) and threshold placement.

Symmetric Hamming on thermometer codes weighs a feature with L levels by L - 1 (its Hamming range). With a
full random rotation every feature carries the same variance, so the 2-bit quarter of the hybrid scheme sees
no more signal than the 1-bit quarter; in the PCA frame the first quarter carries far more. A rotation can set
any per-feature variances majorized by the spectrum (Schur-Horn): target variance ∝ (L - 1)^p.

Usage: python train/lab/probe_variance.py scifact dbpedia-5k
"""

import numpy as np
from common import LAB_CELLS, cli, frames, rotate

from qama_rs.qama.rotation import quantization_rotation, random_rotation


def majorized_target(spectrum: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-feature variances as close to ``weights`` (scaled to the total variance) as a rotation can reach.

    A rotation can give the features any variances majorized by the covariance spectrum (Schur-Horn); the
    uniform split always is. The result is ``a * w + (1 - a) * uniform`` with the largest ``a`` in [0, 1]
    (bisection) that stays majorized."""
    spectrum = np.sort(np.asarray(spectrum, dtype=np.float64))[::-1]
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != spectrum.shape or not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError(f"weights must be {spectrum.shape[0]} finite values >= 0")
    total = spectrum.sum()
    wanted = weights / weights.sum() * total if weights.sum() > 0 else np.full_like(spectrum, total / len(spectrum))
    uniform = np.full_like(spectrum, total / len(spectrum))
    ceiling = np.cumsum(spectrum) * (1 + 1e-9) + 1e-15

    def reachable(a: float) -> bool:
        blend = a * wanted + (1 - a) * uniform
        return bool((np.cumsum(np.sort(blend)[::-1]) <= ceiling).all())

    if reachable(1.0):
        return wanted
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if reachable(mid) else (lo, mid)
    return lo * wanted + (1 - lo) * uniform


def variance_matching_rotation(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Orthogonal ``R`` (``(d, d)``, float64) such that the variance of feature ``j`` of ``features @ R``
    is proportional to ``weights[j]``, or as near as a rotation allows (`majorized_target`).

    Why: symmetric Hamming weighs a feature of ``L`` levels by ``L - 1``; a mixed-level scheme (hybrid) should
    put more of the signal where it spends more bits. How: start from the PCA axes (covariance diagonal) and
    apply Givens rotations, each moving variance between the feature most above its target and the one most
    below until one of them meets it (Chan & Li's constructive Schur-Horn; at most ``d`` rotations).
    """
    x = np.asarray(features, dtype=np.float64)  # lab inputs: (n, d) finite document features
    d = x.shape[1]
    cov = np.cov(x - x.mean(0), rowvar=False).reshape(d, d)
    spectrum, axes = np.linalg.eigh(cov)
    spectrum = spectrum.clip(0.0)
    target = majorized_target(spectrum, np.asarray(weights, dtype=np.float64))
    # In the PCA frame the covariance is diagonal. Take the targets from the largest down; give each one a
    # pair of remaining axes whose variances bracket it (the nearest above and below), rotated so that one
    # of them meets it exactly; that axis is then done. The pair never has a covariance term (every earlier
    # rotation left the remaining axes uncorrelated), so cos^2 = (t - low) / (high - low).
    variance = spectrum.copy()
    columns = axes.copy()
    remaining = list(range(d))
    result = np.empty((d, d))
    for k in np.argsort(target, kind="stable")[::-1]:
        t = target[k]
        values = variance[remaining]
        above = [r for r, v in zip(remaining, values, strict=True) if v >= t]
        below = [r for r, v in zip(remaining, values, strict=True) if v <= t]
        high = min(above, key=lambda r: variance[r]) if above else max(remaining, key=lambda r: variance[r])
        low = max((r for r in below if r != high), key=lambda r: variance[r], default=None)
        if low is None or variance[high] - variance[low] <= 1e-15:
            result[:, k] = columns[:, high]
        else:
            share = np.clip((t - variance[low]) / (variance[high] - variance[low]), 0.0, 1.0)
            cos, sin = np.sqrt(share), np.sqrt(1.0 - share)
            met = cos * columns[:, high] + sin * columns[:, low]
            columns[:, low] = -sin * columns[:, high] + cos * columns[:, low]
            variance[low] = variance[high] + variance[low] - t
            result[:, k] = met
        remaining.remove(high)
    return result


def main():
    args = cli(__doc__, schemes=None).parse_args()
    scheme = "hybrid"
    for frame in frames(args.datasets):
        fd, _, levels = frame.scheme(scheme)
        cands = {"none": np.eye(fd.shape[1]), "random": random_rotation(fd.shape[1])}
        cands["itq"] = quantization_rotation(fd, levels, 20, cells=LAB_CELLS)
        for power in (0.5, 1.0, 1.5, 2.0):
            vm = variance_matching_rotation(fd, (levels - 1.0) ** power)
            cands[f"vm{power}"] = vm
            block = np.zeros_like(vm)
            for g in np.unique(levels):
                idx = np.flatnonzero(levels == g)
                block[np.ix_(idx, idx)] = random_rotation(len(idx), int(g))
            cands[f"vm{power}+rand"] = vm @ block
        for key, r in cands.items():
            val, ndcg, rec = frame.evaluate(scheme, r)
            var = rotate(fd, r).var(0)
            shares = [var[levels == g].sum() / var.sum() for g in (4, 3, 2)]
            print(f"{frame.bench.name} {scheme} {key:12s} val {val:.3f} test ndcg {ndcg:.4f} rec {rec:.3f} "
                  f"var shares {np.round(shares, 3)}", flush=True)


if __name__ == "__main__":
    main()
