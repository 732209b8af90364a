"""Probe: does the label-free validation signal see the seed-to-seed spread of the quantization rotation?
ITQ from six random starts per scheme; validation recall (held-out documents) beside test NDCG@10 / recall@10.

Usage: python train/lab/probe_seeds.py scifact dbpedia-5k
"""

import sys

import numpy as np
from common import LAB_CELLS, Bench, PcaFrame, quantizer

from qama_rs.qama.rotation import quantization_rotation


def main():
    for name in sys.argv[1:]:
        b = Bench(name)
        frame = PcaFrame(b)
        fit = frame.fit
        for scheme in ("1bit", "1.5bit", "2bit", "hybrid"):
            fd, fq, levels = frame.scheme(scheme)
            out = []
            for seed in range(6):
                r = quantization_rotation(fd[fit], levels, 20, seed=seed, cells=LAB_CELLS)
                xd, xq = (fd @ r).astype(np.float32), (fq @ r).astype(np.float32)
                quant = quantizer(xd, levels)
                val, ndcg, rec = frame.scores(xd, xq, scheme, quant)
                out.append((val, ndcg, rec))
            a = np.array(out)
            best = a[a[:, 0].argmax()]
            print(f"{name} {scheme:6s} val {np.round(a[:, 0], 3)} ndcg {np.round(a[:, 1], 4)} rec {np.round(a[:, 2], 3)} "
                  f"| corr(val,rec) {np.corrcoef(a[:, 0], a[:, 2])[0, 1]:.2f} best-val -> {best[1]:.4f}/{best[2]:.3f} "
                  f"mean {a[:, 1].mean():.4f}/{a[:, 2].mean():.3f}", flush=True)


if __name__ == "__main__":
    main()
