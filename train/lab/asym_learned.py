"""Asymmetric scoring of learned codes: the float query through the head, scored against the documents'
learned codes with per-level reconstruction values (conditional means) in the Rust asymmetric kernel.

python train/lab/asym_learned.py runs/doconly scifact
"""

import sys

import numpy as np
from common import Bench

import qama_rs
from qama_rs.qama.model import QamaModel


def learned_asymmetric(model, bench, dims, scheme, recalibrate=False):
    if recalibrate:
        model.recalibrate(bench.docs)
    fd = model.features(bench.docs, dims, scheme)
    fq = model.features(bench.queries, dims, scheme)
    quantizer = model.quantizer(dims, scheme)
    codes = quantizer.quantize(fd)
    levels = int(codes.max()) + 1
    recon = np.zeros((fd.shape[1], levels), np.float32)
    for c in range(levels):
        mask = codes == c
        recon[:, c] = (fd * mask).sum(0) / np.maximum(mask.sum(0), 1)
    index = qama_rs.AsymmetricIndex(recon)
    index.add_codes(codes)
    _, ids = index.search(fq, 100)
    return bench.score(ids), index.bytes_per_vector


if __name__ == "__main__":
    model = QamaModel.pretrained() if sys.argv[1] == "pretrained" else QamaModel.load(sys.argv[1])
    for name in sys.argv[2:]:
        bench = Bench(name)
        for scheme in ("1bit", "1.5bit", "2bit"):
            (ndcg, recall), nbytes = learned_asymmetric(model, bench, 384, scheme, sys.argv[1] == "pretrained")
            print(f"{name} asym learned {scheme}: NDCG@10 {ndcg:.4f} recall@10 {recall:.3f} {nbytes} B", flush=True)
