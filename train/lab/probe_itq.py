"""Probe: a rotation learned by alternating minimisation of the quantization error (ITQ, generalised to
Lloyd-Max levels) vs a random rotation, symmetric Hamming codes at 384 d."""

import sys

import numpy as np
from common import SCHEMES, Bench
from probe_transforms import lm_quantizer, random_rotation

LM = {"1bit": np.array([-0.7979, 0.7979]), "1.5bit": np.array([-1.2240, 0.0, 1.2240]),
      "2bit": np.array([-1.5104, -0.4528, 0.4528, 1.5104])}


def itq(v, levels, iters=30, seed=0):
    r = random_rotation(v.shape[1], seed)
    for _ in range(iters):
        z = v @ r
        sd = z.std(0)
        idx = np.abs((z / sd)[:, :, None] - levels[None, None]).argmin(-1)
        b = levels[idx] * sd
        u, _, wt = np.linalg.svd(v.T @ b)
        r = u @ wt
    return r


for name in sys.argv[1:]:
    bench = Bench(name)
    mu = bench.docs.mean(0)
    v = bench.docs - mu
    for fit in ("1bit", "2bit"):
        r = itq(v, LM[fit])
        x, q = ((bench.docs - mu) @ r).astype(np.float32), ((bench.queries - mu) @ r).astype(np.float32)
        row = [f"{s} {b[0]:.4f}/{b[1]:.3f}" for s in SCHEMES for b in [bench.hamming(q, x, s)]]
        row.append("LM2 {:.4f}/{:.3f}".format(*bench.hamming(q, x, "2bit", quantizer=lm_quantizer(x, "2bit"))))
        print(name, f"itq-{fit}", "  ".join(row), flush=True)
    r = random_rotation(384)
    x, q = ((bench.docs - mu) @ r).astype(np.float32), ((bench.queries - mu) @ r).astype(np.float32)
    row = [f"{s} {b[0]:.4f}/{b[1]:.3f}" for s in SCHEMES for b in [bench.hamming(q, x, s)]]
    print(name, "rot-centred", "  ".join(row), flush=True)
