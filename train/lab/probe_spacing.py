"""Probe: where to put the thresholds of 3- and 4-level thermometer codes (symmetric Hamming), after the
quantization rotation: quantiles 1/2 +- delta; delta = 1/6 (3 levels) or 1/4 (4 levels) are equal-mass bins,
0.23 / 0.337 the Gaussian Lloyd-Max thresholds.

Usage: python train/lab/probe_spacing.py scifact dbpedia-5k
"""

import numpy as np
from common import LAB_CELLS, cli, frames, rotate

import qama_rs
from qama_rs.qama.rotation import quantization_rotation

DELTAS = {3: (0.1, 1 / 6, 0.23, 0.3, 0.36), 4: (0.15, 0.25, 0.337, 0.4, 0.44)}


def spaced_quantizer(features, levels, delta3, delta4):
    t = np.full((features.shape[1], 3), np.inf, np.float32)
    for j, count in enumerate(levels):
        qs = {2: [0.5], 3: [0.5 - delta3, 0.5 + delta3], 4: [0.5 - delta4, 0.5, 0.5 + delta4]}[count]
        t[j, : count - 1] = np.quantile(features[:, j], qs)
    return qama_rs.Quantizer(t[:, : levels.max() - 1], levels)


def main():
    args = cli(__doc__, schemes=("1.5bit", "2bit", "hybrid")).parse_args()
    for frame in frames(args.datasets):
        for scheme in args.schemes:
            fd, fq, levels = frame.scheme(scheme)
            r = quantization_rotation(fd, levels, 20, cells=LAB_CELLS)
            xd, xq = rotate(fd, r), rotate(fq, r)
            grid = [(d3, 0.25) for d3 in DELTAS[3]] if scheme == "1.5bit" else [(1 / 6, d4) for d4 in DELTAS[4]]
            if scheme == "hybrid":
                grid += [(d3, 0.337) for d3 in DELTAS[3]]
            for d3, d4 in grid:
                val, ndcg, rec = frame.scores(xd, xq, scheme, spaced_quantizer(xd, levels, d3, d4))
                print(f"{frame.bench.name} {scheme:6s} d3 {d3:.3f} d4 {d4:.3f} val {val:.3f} test {ndcg:.4f} / {rec:.3f}",
                      flush=True)


if __name__ == "__main__":
    main()
