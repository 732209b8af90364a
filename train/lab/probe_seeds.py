"""Probe: does the label-free validation signal see the seed-to-seed spread of the quantization rotation?
ITQ from six random starts per scheme; validation recall (held-out documents) beside test NDCG@10 / recall@10.

Usage: python train/lab/probe_seeds.py scifact dbpedia-5k
"""

import sys

import numpy as np
from common import Bench
from probe_variance import hybrid_features, levels_of, pca_axes, quantizer

from qama_rs.qama.rotation import quantization_rotation
from qama_rs.qama.validation import float_neighbours, holdout_rows, label_free_recall


def main():
    for name in sys.argv[1:]:
        b = Bench(name)
        p = pca_axes(b.docs)
        zd, zq = b.docs @ p, b.queries @ p
        rows = holdout_rows(len(zd), min(1000, len(zd) // 10))
        fit = np.setdiff1d(np.arange(len(zd)), rows)
        target = float_neighbours(b.docs, rows)
        for scheme in ("1bit", "1.5bit", "2bit", "hybrid"):
            fd = hybrid_features(zd) if scheme == "hybrid" else zd
            fq = hybrid_features(zq) if scheme == "hybrid" else zq
            levels = levels_of(scheme, fd.shape[1])
            out = []
            for seed in range(6):
                r = quantization_rotation(fd[fit], levels, 20, seed=seed)
                xd, xq = (fd @ r).astype(np.float32), (fq @ r).astype(np.float32)
                quant = quantizer(xd, levels)
                val = label_free_recall(xd, quant, rows, target)
                ndcg, rec = b.hamming(xq, xd, scheme, quantizer=quant)
                out.append((val, ndcg, rec))
            a = np.array(out)
            best = a[a[:, 0].argmax()]
            print(f"{name} {scheme:6s} val {np.round(a[:, 0], 3)} ndcg {np.round(a[:, 1], 4)} rec {np.round(a[:, 2], 3)} "
                  f"| corr(val,rec) {np.corrcoef(a[:, 0], a[:, 2])[0, 1]:.2f} best-val -> {best[1]:.4f}/{best[2]:.3f} "
                  f"mean {a[:, 1].mean():.4f}/{a[:, 2].mean():.3f}", flush=True)


if __name__ == "__main__":
    main()
