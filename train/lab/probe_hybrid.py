"""Probe: hybrid (624-bit) codes with PCA order across quarters and a random rotation inside each quarter."""

import sys

import numpy as np
from common import Bench
from probe_transforms import pca_rotation, random_rotation

for name in sys.argv[1:]:
    b = Bench(name)
    d = b.docs
    p = pca_rotation(d)
    for split in ([0, 96, 192, 288, 384], [0, 64, 160, 288, 384], [0, 128, 224, 320, 384]):
        r = p.copy()
        for i, (lo, hi) in enumerate(zip(split[:-1], split[1:], strict=True)):
            r[:, lo:hi] = p[:, lo:hi] @ random_rotation(hi - lo, 20 + i)
        x, q = (d @ r).astype(np.float32), (b.queries @ r).astype(np.float32)
        print(name, split, "hybrid pca-quarter-rot", b.hamming(q, x, "hybrid"), flush=True)
    x, q = (d @ random_rotation(384)).astype(np.float32), (b.queries @ random_rotation(384)).astype(np.float32)
    print(name, "hybrid rand-rot", b.hamming(q, x, "hybrid"))
