"""Probe: ITQ whose target cells are the quantizer's own (equal-mass bins, conditional-mean levels of a
Gaussian) instead of Gaussian Lloyd-Max cells — the symmetric codes use equal-mass quantile thresholds.

Usage: python train/lab/probe_itq_cells.py scifact dbpedia-5k
"""

import sys

import numpy as np
from common import Bench
from probe_variance import hybrid_features, levels_of, pca_axes, quantizer
from scipy.stats import norm

from qama_rs.qama.rotation import gaussian_levels, quantization_rotation, random_rotation
from qama_rs.qama.validation import float_neighbours, holdout_rows, label_free_recall


def equal_mass_codebook(count):
    edges = norm.ppf(np.arange(count + 1) / count)
    # Conditional mean of a standard normal in (a, b): (pdf(a) - pdf(b)) / (cdf(b) - cdf(a)).
    return (norm.pdf(edges[:-1]) - norm.pdf(edges[1:])) * count, edges[1:-1]


def itq(x, levels, iterations=20, seed=0, cells="equal"):
    v = (x - x.mean(0)).astype(np.float32)
    groups = []
    for count in np.unique(levels):
        if cells == "equal":
            book, bounds = equal_mass_codebook(int(count))
        else:
            book = gaussian_levels(int(count))
            bounds = (book[1:] + book[:-1]) / 2
        groups.append((np.flatnonzero(levels == count), book.astype(np.float32), bounds.astype(np.float32)))
    r = random_rotation(x.shape[1], seed).astype(np.float32)
    for _ in range(iterations):
        z = v @ r
        spread = z.std(0).clip(1e-12)
        target = np.empty_like(z)
        for cols, book, bounds in groups:
            target[:, cols] = book[np.searchsorted(bounds, z[:, cols] / spread[cols])] * spread[cols]
        u, _, wt = np.linalg.svd(v.T @ target)
        r = (u @ wt).astype(np.float32)
    return r.astype(np.float64)


def main():
    for name in sys.argv[1:]:
        b = Bench(name)
        p = pca_axes(b.docs)
        zd, zq = b.docs @ p, b.queries @ p
        rows = holdout_rows(len(zd), min(1000, len(zd) // 10))
        fit = np.setdiff1d(np.arange(len(zd)), rows)
        target = float_neighbours(b.docs, rows)
        for scheme in ("1.5bit", "2bit", "hybrid"):
            f = hybrid_features if scheme == "hybrid" else (lambda z: z)
            fd, fq = f(zd), f(zq)
            levels = levels_of(scheme, fd.shape[1])
            for seed in (0, 1, 2):
                for cells in ("lloyd", "equal"):
                    r = quantization_rotation(fd[fit], levels, 20, seed) if cells == "lloyd" else itq(fd[fit], levels, 20, seed)
                    xd, xq = (fd @ r).astype(np.float32), (fq @ r).astype(np.float32)
                    quant = quantizer(xd, levels)
                    val = label_free_recall(xd, quant, rows, target)
                    ndcg, rec = b.hamming(xq, xd, scheme, quantizer=quant)
                    print(f"{name} {scheme:6s} seed {seed} {cells:5s} val {val:.3f} test {ndcg:.4f} / {rec:.3f}", flush=True)


if __name__ == "__main__":
    main()
