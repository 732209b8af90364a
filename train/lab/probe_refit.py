"""Probe: the pretrained head with its code rotation refitted (ITQ) on the indexed documents, beside the
head as shipped (Wikipedia rotation, thresholds recalibrated) and the untrained quantile codes.

Usage: python train/lab/probe_refit.py scifact dbpedia-5k
"""

import sys

import numpy as np
import torch
from common import LAB_CELLS, Bench, quantizer

from qama_rs.qama.model import QamaModel
from qama_rs.qama.rotation import quantization_rotation
from qama_rs.qama.thresholds import scheme_levels


def main():
    for name in sys.argv[1:]:
        b = Bench(name)
        for dims in (384, 96):
            for scheme in ("1bit", "1.5bit", "2bit", "hybrid"):
                model = QamaModel.pretrained().recalibrate(b.docs)
                levels = np.asarray(scheme_levels(dims, scheme))
                shipped = b.hamming(model.features(b.queries, dims, scheme), model.features(b.docs, dims, scheme),
                                    scheme, quantizer=model.quantizer(dims, scheme))
                width = model.head.code_rotation(dims, scheme).shape[0]
                model.head.set_code_rotation(dims, scheme, torch.eye(width))
                plain_d, plain_q = model.features(b.docs, dims, scheme), model.features(b.queries, dims, scheme)
                r = quantization_rotation(plain_d, levels, 20, cells=LAB_CELLS)
                xd, xq = (plain_d @ r).astype(np.float32), (plain_q @ r).astype(np.float32)
                refit = b.hamming(xq, xd, scheme, quantizer=quantizer(xd, levels))
                print(f"{name} {dims} {scheme:6s} shipped {shipped[0]:.4f}/{shipped[1]:.3f} "
                      f"refit {refit[0]:.4f}/{refit[1]:.3f}", flush=True)


if __name__ == "__main__":
    main()
