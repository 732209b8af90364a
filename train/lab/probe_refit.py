"""Probe: the pretrained head's code rotation on the indexed documents. Per (level, scheme), symmetric Hamming
test NDCG@10 / recall@10 of the head with its Wikipedia code rotation (thresholds recalibrated on the documents),
with the rotation re-chosen on the documents by the label-free signal (`QamaModel.recalibrate`, what an index over
QAMA(pretrained) does), and with a plain ITQ rotation refitted on the documents.

Usage: python train/lab/probe_refit.py scifact dbpedia-5k
"""

import numpy as np
import torch
from common import LAB_CELLS, Bench, cli, quantizer, rotate

from qama_rs.qama.model import QamaModel
from qama_rs.qama.rotation import quantization_rotation
from qama_rs.qama.thresholds import scheme_levels


def main():
    args = cli(__doc__).parse_args()
    for name in args.datasets:
        b = Bench(name)
        for dims in (384, 96):
            for scheme in args.schemes:
                row = []
                for rotations in (False, True):
                    model = QamaModel.pretrained().recalibrate(b.docs, rotations=rotations, pairs=[(dims, scheme)])
                    row.append(b.hamming(model.features(b.queries, dims, scheme), model.features(b.docs, dims, scheme),
                                         scheme, quantizer=model.quantizer(dims, scheme)))
                width = model.head.code_rotation(dims, scheme).shape[0]
                model.head.set_code_rotation(dims, scheme, torch.eye(width))
                plain_d, plain_q = model.features(b.docs, dims, scheme), model.features(b.queries, dims, scheme)
                levels = np.asarray(scheme_levels(dims, scheme))
                r = quantization_rotation(plain_d, levels, 20, cells=LAB_CELLS)
                xd, xq = rotate(plain_d, r), rotate(plain_q, r)
                row.append(b.hamming(xq, xd, scheme, quantizer=quantizer(xd, levels)))
                print(f"{name} {dims} {scheme:6s} " + "  ".join(
                    f"{label} {ndcg:.4f}/{rec:.3f}" for label, (ndcg, rec) in zip(
                        ("wikipedia", "re-chosen", "itq-refit"), row, strict=True)), flush=True)


if __name__ == "__main__":
    main()
