"""Probe: the base model's own axes as a code-rotation candidate at full width (the untrained quantile codes
use them), and ITQ started from them instead of from a random rotation.

At 384 d the head's frame is the PCA rotation, so the candidates "none" / "random" / "itq" never include the
raw axes the untrained codes quantize; on dbpedia-5k those beat the chosen rotation on test recall at 1.5 bits.

Usage: python train/lab/probe_base_axes.py scifact dbpedia-5k
"""

import sys

import numpy as np
from common import Bench, PcaFrame, pca_axes, quantizer

from qama_rs.qama.rotation import quantization_rotation


def main():
    for name in sys.argv[1:]:
        b = Bench(name)
        frame = PcaFrame(b)
        # PcaFrame rotates by its axes A (docs @ A); A^T takes the features back to the raw axes.
        axes = pca_axes(b.docs)
        for scheme in ("1bit", "1.5bit", "2bit"):
            fd, fq, levels = frame.scheme(scheme)
            candidates = {"raw": axes.T, "pca": np.eye(fd.shape[1])}
            for seed in (0, 1, 2):
                candidates[f"itq{seed}"] = quantization_rotation(fd[frame.fit], levels, 20, seed)
            candidates["itq-raw"] = quantization_rotation(fd[frame.fit], levels, 20, start=axes.T)
            for label, r in candidates.items():
                xd, xq = (fd @ r).astype(np.float32), (fq @ r).astype(np.float32)
                val, ndcg, rec = frame.scores(xd, xq, scheme, quantizer(xd, levels))
                print(f"{name} {scheme:6s} {label:8s} val {val:.3f} test {ndcg:.4f} / {rec:.3f}", flush=True)


if __name__ == "__main__":
    main()
