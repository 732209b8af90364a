"""Probe: ITQ iterations (20, the default, vs 60 and 150) with the quantizer's own cells.

Usage: python train/lab/probe_iterations.py scifact dbpedia-5k
"""

import sys

import numpy as np
from common import Bench, PcaFrame, quantizer

from qama_rs.qama.rotation import quantization_rotation


def main():
    for name in sys.argv[1:]:
        b = Bench(name)
        frame = PcaFrame(b)
        for scheme in ("1bit", "1.5bit", "2bit", "hybrid"):
            fd, fq, levels = frame.scheme(scheme)
            for iterations in (20, 60, 150):
                r = quantization_rotation(fd[frame.fit], levels, iterations, 0, cells="quantile")
                xd, xq = (fd @ r).astype(np.float32), (fq @ r).astype(np.float32)
                quant = quantizer(xd, levels)
                val, ndcg, rec = frame.scores(xd, xq, scheme, quant)
                print(f"{name} {scheme:6s} iterations {iterations:3d} val {val:.3f} test {ndcg:.4f} / {rec:.3f}", flush=True)


if __name__ == "__main__":
    main()
