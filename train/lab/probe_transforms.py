"""Probe: which transform of the base embedding gives the best symmetric Hamming codes (the suspects table in
train/README.md)? Each transform's codes with equal-mass quantile thresholds per scheme, then with thresholds at
median + sigma * Gaussian Lloyd-Max decision points (LM-1.5bit, LM-2bit); the float32 score first.

Transforms: raw (the base model's axes), rand-rot (a random rotation), pca (the corpus PCA frame), pca+randrot
(a random rotation after it), pca+bandrot (a random rotation inside each Matryoshka band 48/96/128/192/384 of
the PCA frame), itq-1bit / itq-2bit (a rotation of the centred embeddings learned by alternating Procrustes to
the 1- or 2-bit Gaussian Lloyd-Max levels: this probe's own float64 ITQ, 30 iterations, as recorded;
qama_rs.qama.rotation is the shipped one). --dims takes prefixes of each transform's output.

Usage: python train/lab/probe_transforms.py [--transforms raw,pca+bandrot] [--dims 384,96] scifact dbpedia-5k
"""

from __future__ import annotations

import numpy as np
from common import Bench, cli, listed

import qama_rs
from qama_rs.qama.rotation import gaussian_levels, random_rotation

TRANSFORMS = ("raw", "rand-rot", "pca", "pca+randrot", "pca+bandrot", "itq-1bit", "itq-2bit")
BANDS = (0, 48, 96, 128, 192, 384)


def pca_rotation(x: np.ndarray) -> np.ndarray:
    # Not common.pca_axes: the recorded pca+randrot / pca+bandrot numbers depend on these eigenvectors' signs.
    xc = x - x.mean(0)
    _, vecs = np.linalg.eigh(xc.T @ xc)
    return vecs[:, ::-1]  # columns by decreasing variance


def lm_quantizer(x: np.ndarray, scheme: str) -> qama_rs.Quantizer:
    """Thresholds at median + sigma * Gaussian Lloyd-Max decision points (equal-width levels in value space)."""
    t = {"1bit": [0.0], "1.5bit": [-0.6120, 0.6120], "2bit": [-0.9816, 0.0, 0.9816]}[scheme]
    med, sd = np.median(x, 0), x.std(0)
    return qama_rs.Quantizer(np.stack([med + sd * v for v in t], 1).astype(np.float32))


def itq(v, levels, iters=30, seed=0):
    """ITQ of centred ``v`` to the levels ``levels`` (in units of each feature's standard deviation)."""
    r = random_rotation(v.shape[1], seed)
    for _ in range(iters):
        z = v @ r
        sd = z.std(0)
        idx = np.abs((z / sd)[:, :, None] - levels[None, None]).argmin(-1)
        b = levels[idx] * sd
        u, _, wt = np.linalg.svd(v.T @ b)
        r = u @ wt
    return r


def transform(name: str, docs: np.ndarray) -> tuple[np.ndarray, bool]:
    """(rotation, whether it applies to the centred embeddings) of a transform."""
    d = docs.shape[1]
    if name == "raw":
        return np.eye(d, dtype=np.float32), False
    if name == "rand-rot":
        return random_rotation(d).astype(np.float32), False
    if name.startswith("itq-"):
        return itq(docs - docs.mean(0), gaussian_levels({"itq-1bit": 2, "itq-2bit": 4}[name])), True
    p = pca_rotation(docs).astype(np.float32)
    if name == "pca+randrot":
        return (p @ random_rotation(d, 1)).astype(np.float32), False
    if name == "pca+bandrot":
        for i, (lo, hi) in enumerate(zip(BANDS[:-1], BANDS[1:], strict=True)):
            p[:, lo:hi] = p[:, lo:hi] @ random_rotation(hi - lo, 10 + i)
    return p, False


def main():
    parser = cli(__doc__)
    parser.add_argument("--transforms", type=listed(choices=TRANSFORMS), default=TRANSFORMS,
                        help="comma-separated transforms (default: all)")
    parser.add_argument("--dims", type=listed(int), default=(384,), help="comma-separated prefix widths (384)")
    args = parser.parse_args()
    for name in args.datasets:
        b = Bench(name)
        d = b.docs
        print(f"== {name}: float32 {b.cosine(b.queries, d)}")
        for tname in args.transforms:
            r, centred = transform(tname, d)
            xd, xq = (d - d.mean(0), b.queries - d.mean(0)) if centred else (d, b.queries)
            xd, xq = (xd @ r).astype(np.float32), (xq @ r).astype(np.float32)
            for dims in args.dims:
                x, q = np.ascontiguousarray(xd[:, :dims]), np.ascontiguousarray(xq[:, :dims])
                row = [f"{s} {nd:.4f}/{rc:.3f}" for s in args.schemes for nd, rc in [b.hamming(q, x, s)]]
                for s in ("1.5bit", "2bit"):
                    nd, rc = b.hamming(q, x, s, quantizer=lm_quantizer(x, s))
                    row.append(f"LM-{s} {nd:.4f}/{rc:.3f}")
                print(f"{tname:12s} {dims:3d}  " + "  ".join(row), flush=True)


if __name__ == "__main__":
    main()
