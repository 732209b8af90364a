"""Probe: the quantization rotation (ITQ, qama_rs.qama.rotation) of the PCA frame, fitted on the documents
left after the validation hold-out, for each seed x target cells x iteration count; label-free validation
recall (held-out documents as queries) beside test NDCG@10 / recall@10. With several seeds, a summary line per
(scheme, cells, iterations): the seeds' spread, the correlation of validation with test recall, the test score
of the seed validation picks, the means. --raw-axes adds the base model's own axes (what the untrained codes
quantize) and ITQ started from them (not for hybrid, whose inputs are pair-reduced).

Usage: python train/lab/probe_rotation.py [--seeds 0,1,2] [--cells lloyd_max,quantile] [--iterations 20,60]
       [--raw-axes] [--schemes 1bit,2bit] scifact dbpedia-5k
"""

import numpy as np
from common import cli, frames, listed

from qama_rs.qama.rotation import ROTATION_CELLS, quantization_rotation


def report(frame, scheme, label, scores):
    val, ndcg, rec = scores
    print(f"{frame.bench.name} {scheme:6s} {label:34s} val {val:.3f} test {ndcg:.4f} / {rec:.3f}", flush=True)


def summary(frame, scheme, label, runs):
    a = np.array(runs)
    best = a[a[:, 0].argmax()]
    print(f"{frame.bench.name} {scheme:6s} {label} over seeds: val {np.round(a[:, 0], 3)} "
          f"ndcg {np.round(a[:, 1], 4)} rec {np.round(a[:, 2], 3)} | corr(val,rec) "
          f"{np.corrcoef(a[:, 0], a[:, 2])[0, 1]:.2f} best-val -> {best[1]:.4f}/{best[2]:.3f} "
          f"mean {a[:, 1].mean():.4f}/{a[:, 2].mean():.3f}", flush=True)


def main():
    parser = cli(__doc__)
    parser.add_argument("--seeds", type=listed(int), default=(0,), help="comma-separated ITQ seeds (0)")
    parser.add_argument("--cells", type=listed(choices=ROTATION_CELLS), default=("quantile",),
                        help="comma-separated target cells (quantile, the shipped default)")
    parser.add_argument("--iterations", type=listed(int), default=(20,), help="comma-separated ITQ iterations (20)")
    parser.add_argument("--raw-axes", action="store_true", help="add the raw axes and ITQ started from them")
    args = parser.parse_args()
    if args.raw_axes and "hybrid" in args.schemes:
        parser.error("--raw-axes needs --schemes without hybrid (its inputs are pair-reduced)")
    for frame in frames(args.datasets):
        for scheme in args.schemes:
            fd, _, levels = frame.scheme(scheme)
            raw = frame.axes.T  # the frame rotates by its axes A (docs @ A); A^T takes it back to the raw axes
            if args.raw_axes:
                report(frame, scheme, "raw axes", frame.evaluate(scheme, raw))
            for cells in args.cells:
                for iterations in args.iterations:
                    label = f"{cells} cells, {iterations} iterations"
                    runs = []
                    for seed in args.seeds:
                        r = quantization_rotation(fd[frame.fit], levels, iterations, seed, cells=cells)
                        runs.append(frame.evaluate(scheme, r))
                        report(frame, scheme, f"itq seed {seed}, {label}", runs[-1])
                    if args.raw_axes:
                        r = quantization_rotation(fd[frame.fit], levels, iterations, cells=cells, start=raw)
                        report(frame, scheme, f"itq from raw axes, {label}", frame.evaluate(scheme, r))
                    if len(runs) > 1:
                        summary(frame, scheme, label, runs)


if __name__ == "__main__":
    main()
