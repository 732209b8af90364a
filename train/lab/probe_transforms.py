"""Probe: which training-free transform of the base embedding gives the best symmetric Hamming codes at 384 d?
python train/lab/probe_transforms.py scifact dbpedia-5k"""

from __future__ import annotations

import sys

import numpy as np
from common import SCHEMES, Bench

import qama_rs


def pca_rotation(x: np.ndarray) -> np.ndarray:
    xc = x - x.mean(0)
    _, vecs = np.linalg.eigh(xc.T @ xc)
    return vecs[:, ::-1]  # columns by decreasing variance


def random_rotation(d: int, seed: int = 0) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def lm_quantizer(x: np.ndarray, scheme: str) -> qama_rs.Quantizer:
    """Thresholds at median + sigma * Gaussian Lloyd-Max decision points (equal-width levels in value space)."""
    t = {"1bit": [0.0], "1.5bit": [-0.6120, 0.6120], "2bit": [-0.9816, 0.0, 0.9816]}[scheme]
    med, sd = np.median(x, 0), x.std(0)
    return qama_rs.Quantizer(np.stack([med + sd * v for v in t], 1).astype(np.float32))


def main(names):
    for name in names:
        b = Bench(name)
        d = b.docs
        transforms = {"raw": np.eye(384, dtype=np.float32)}
        transforms["rand-rot"] = random_rotation(384).astype(np.float32)
        p = pca_rotation(d).astype(np.float32)
        transforms["pca"] = p
        transforms["pca+randrot"] = (p @ random_rotation(384, 1)).astype(np.float32)
        print(f"== {name}: float32 {b.cosine(b.queries, d)}")
        for tname, r in transforms.items():
            row = []
            for scheme in SCHEMES:
                nd, rc = b.hamming(b.queries @ r, d @ r, scheme)
                row.append(f"{scheme} {nd:.4f}/{rc:.3f}")
            for scheme in ("1.5bit", "2bit"):
                x = d @ r
                nd, rc = b.hamming(b.queries @ r, x, scheme, quantizer=lm_quantizer(x, scheme))
                row.append(f"LM-{scheme} {nd:.4f}/{rc:.3f}")
            print(f"{tname:12s} " + "  ".join(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["scifact"])
