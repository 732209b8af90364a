"""Probe: ITQ whose target cells are the quantizer's own (equal-mass bins, conditional-mean levels of a
Gaussian; `quantization_rotation(cells="quantile")`, the shipped default since round 4) instead of Gaussian
Lloyd-Max cells — the symmetric codes use equal-mass quantile thresholds.

Usage: python train/lab/probe_itq_cells.py scifact dbpedia-5k
"""

import sys

import numpy as np
from common import Bench, PcaFrame, quantizer

from qama_rs.qama.rotation import quantization_rotation


def main():
    for name in sys.argv[1:]:
        b = Bench(name)
        frame = PcaFrame(b)
        fit = frame.fit
        for scheme in ("1.5bit", "2bit", "hybrid"):
            fd, fq, levels = frame.scheme(scheme)
            for seed in (0, 1, 2):
                for cells in ("lloyd", "equal"):
                    r = quantization_rotation(fd[fit], levels, 20, seed, cells={"lloyd": "lloyd_max", "equal": "quantile"}[cells])
                    xd, xq = (fd @ r).astype(np.float32), (fq @ r).astype(np.float32)
                    quant = quantizer(xd, levels)
                    val, ndcg, rec = frame.scores(xd, xq, scheme, quant)
                    print(f"{name} {scheme:6s} seed {seed} {cells:5s} val {val:.3f} test {ndcg:.4f} / {rec:.3f}", flush=True)


if __name__ == "__main__":
    main()
