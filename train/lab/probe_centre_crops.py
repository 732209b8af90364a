"""Probe: does a crop-query validation signal (inverse cloze) see what the test queries see about threshold
centring (median vs zero)? Held-out documents as queries prefer median thresholds; the test queries often
prefer zero-centred ones (probe_centre.py).

Usage: python train/lab/probe_centre_crops.py scifact dbpedia-5k
"""

import sys

import numpy as np
from common import LAB_CELLS, Bench, PcaFrame, hybrid_features, pca_axes, quantizer
from probe_centre import zero_centred
from probe_pseudo import crop_recall, crops_of

from qama_rs.qama.rotation import quantization_rotation
from qama_rs.qama.validation import label_free_recall

for name in sys.argv[1:]:
    b = Bench(name)
    frame = PcaFrame(b)
    rows, fit, target = frame.rows, frame.fit, frame.target
    crops = crops_of(b).astype(np.float32)
    zc = crops @ pca_axes(b.docs)
    pick = np.random.default_rng(0).choice(len(crops), min(1000, len(crops)), replace=False)
    crop_target = np.argsort(-(crops[pick] @ b.docs.T), axis=1)[:, :10]
    for scheme in ("1bit", "1.5bit", "2bit", "hybrid"):
        fd, fq, levels = frame.scheme(scheme)
        fc = hybrid_features(zc[pick]) if scheme == "hybrid" else zc[pick]
        r = quantization_rotation(fd[fit], levels, 20, cells=LAB_CELLS)
        xd, xq, xc = (fd @ r).astype(np.float32), (fq @ r).astype(np.float32), (fc @ r).astype(np.float32)
        for centre, quant in (("median", quantizer(xd, levels)), ("zero", zero_centred(xd, levels))):
            val = label_free_recall(xd, quant, rows, target)
            val_c = crop_recall(xd, xc, quant, crop_target)
            ndcg, rec = b.hamming(xq, xd, scheme, quantizer=quant)
            print(f"{name} {scheme:6s} {centre:6s} val(docs) {val:.3f} val(crops) {val_c:.3f} "
                  f"test {ndcg:.4f} / {rec:.3f}", flush=True)
