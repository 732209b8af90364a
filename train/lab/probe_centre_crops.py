"""Probe: does a crop-query validation signal (inverse cloze) see what the test queries see about threshold
centring (median vs zero)? Held-out documents as queries prefer median thresholds; the test queries often
prefer zero-centred ones (probe_centre.py).

Usage: python train/lab/probe_centre_crops.py scifact dbpedia-5k
"""

import sys

import numpy as np
from common import Bench
from probe_centre import zero_centred
from probe_pseudo import crop_recall, crops_of
from probe_variance import hybrid_features, levels_of, pca_axes, quantizer

from qama_rs.qama.rotation import quantization_rotation
from qama_rs.qama.validation import float_neighbours, holdout_rows, label_free_recall

for name in sys.argv[1:]:
    b = Bench(name)
    p = pca_axes(b.docs)
    crops = crops_of(b).astype(np.float32)
    zd, zq, zc = b.docs @ p, b.queries @ p, crops @ p
    rows = holdout_rows(len(zd), min(1000, len(zd) // 10))
    fit = np.setdiff1d(np.arange(len(zd)), rows)
    target = float_neighbours(b.docs, rows)
    pick = np.random.default_rng(0).choice(len(crops), min(1000, len(crops)), replace=False)
    crop_target = np.argsort(-(crops[pick] @ b.docs.T), axis=1)[:, :10]
    for scheme in ("1bit", "1.5bit", "2bit", "hybrid"):
        f = hybrid_features if scheme == "hybrid" else (lambda z: z)
        fd, fq, fc = f(zd), f(zq), f(zc[pick])
        levels = levels_of(scheme, fd.shape[1])
        r = quantization_rotation(fd[fit], levels, 20)
        xd, xq, xc = (fd @ r).astype(np.float32), (fq @ r).astype(np.float32), (fc @ r).astype(np.float32)
        for centre, quant in (("median", quantizer(xd, levels)), ("zero", zero_centred(xd, levels))):
            val = label_free_recall(xd, quant, rows, target)
            val_c = crop_recall(xd, xc, quant, crop_target)
            ndcg, rec = b.hamming(xq, xd, scheme, quantizer=quant)
            print(f"{name} {scheme:6s} {centre:6s} val(docs) {val:.3f} val(crops) {val_c:.3f} "
                  f"test {ndcg:.4f} / {rec:.3f}", flush=True)
