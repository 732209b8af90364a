"""Probe: asymmetric (float query) scoring of learned 1/2-bit codes: quantile vs Lloyd-Max (data) thresholds,
PCA frame + quantization rotation vs raw axes; the training-free LloydMax2 / Binary through the factory beside.

Usage: python train/lab/probe_asym_lloyd.py scifact dbpedia-5k
"""

import numpy as np
from common import LAB_CELLS, Bench, cli, pca_axes

import qama_rs
from qama_rs.qama.rotation import quantization_rotation


def lloyd(x, count, iterations):
    """``(codes, recon, bounds)``: per-dimension Lloyd iterations from the quantiles; ``bounds`` (d, L-1) are the
    thresholds the codes were cut at (the quantiles when ``iterations`` is 0)."""
    t = np.quantile(x, np.arange(1, count) / count, axis=0).T  # (d, L-1)
    for _ in range(iterations + 1):
        codes = (x[:, :, None] > t[None]).sum(-1)
        recon = np.stack([np.where(codes == c, x, 0).sum(0) / np.maximum((codes == c).sum(0), 1)
                          for c in range(count)], 1)
        t = (recon[:, 1:] + recon[:, :-1]) / 2
    bounds = t if iterations else np.quantile(x, np.arange(1, count) / count, axis=0).T
    codes = (x[:, :, None] > bounds[None]).sum(-1)
    recon = np.stack([np.where(codes == c, x, 0).sum(0) / np.maximum((codes == c).sum(0), 1)
                      for c in range(count)], 1)
    return codes.astype(np.uint8), recon.astype(np.float32), bounds


class ProbeLloyd:
    """The probe's Lloyd fit as an index codec (protocol A): its bounds and reconstruction values, the float
    query as is. Spec ``ProbeLloyd(levels,iterations)``."""

    def __init__(self, count, iterations):
        self.count, self.iterations = int(count), int(iterations)

    def fit(self, x):
        _, self.recon, self.bounds = lloyd(x, self.count, self.iterations)
        return self

    @property
    def reconstruction_values(self):  # a property: the index checks the protocol on the class
        return self.recon

    def encode(self, x):
        return (x[:, :, None] > self.bounds[None]).sum(-1).astype(np.uint8)

    def prepare_query(self, q):
        return q


def main():
    args = cli(__doc__, schemes=None).parse_args()
    qama_rs.register_codec("ProbeLloyd", ProbeLloyd, overwrite=True)
    for name in args.datasets:
        b = Bench(name)
        for spec in ("LloydMax2", "Binary"):
            index = qama_rs.index_factory(384, spec)
            index.train(b.docs)
            index.add(b.docs)
            _, ids = index.search(b.queries, 100)
            print(name, spec, np.round(b.score(ids), 4), flush=True)
        p = pca_axes(b.docs)
        for bits in (1, 2):
            count = 2**bits
            for frame in ("raw", "pca+itq", "pca+random"):
                if frame == "raw":
                    r = np.eye(384)
                else:
                    r = p @ quantization_rotation(b.docs @ p, np.full(384, count), 20 if frame == "pca+itq" else 0, cells=LAB_CELLS)
                xd, xq = (b.docs @ r).astype(np.float32), (b.queries @ r).astype(np.float32)
                for iterations in (0, 10):
                    index = qama_rs.index_factory(384, f"ProbeLloyd({count},{iterations})")
                    index.train(xd)
                    index.add(xd)
                    _, ids = index.search(xq, 100)
                    ndcg, rec = b.score(ids)
                    print(f"{name} {bits}-bit {frame:10s} lloyd-iters {iterations:2d}: {ndcg:.4f} / {rec:.3f}", flush=True)


if __name__ == "__main__":
    main()
