"""Probe: PCA with a random rotation inside each Matryoshka band, at full width and at prefixes."""

import numpy as np
from common import SCHEMES, Bench
from probe_transforms import lm_quantizer, pca_rotation, random_rotation

b = Bench("scifact")
d = b.docs
p = pca_rotation(d)
bands = [0, 48, 96, 128, 192, 384]
r = p.copy()
for i, (lo, hi) in enumerate(zip(bands[:-1], bands[1:], strict=True)):
    r[:, lo:hi] = p[:, lo:hi] @ random_rotation(hi - lo, 10 + i)
for name, t in {"rand-rot": random_rotation(384), "pca-bandrot": r, "raw": np.eye(384)}.items():
    for dims in (384, 96):
        x, q = (d @ t)[:, :dims].astype(np.float32), (b.queries @ t)[:, :dims].astype(np.float32)
        row = [f"{s} {b.hamming(q, x, s)[1]:.3f}" for s in SCHEMES]
        row.append(f"LM2 {b.hamming(q, x, '2bit', quantizer=lm_quantizer(x, '2bit'))[1]:.3f}")
        print(f"{name:12s} {dims:3d}  recall " + "  ".join(row), flush=True)
