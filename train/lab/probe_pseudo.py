"""Probe: pseudo-queries cropped from documents (inverse cloze; embedded once and cached under runs/) — (a) as
the label-free validation queries beside the held-out documents, (b) added to the documents the code rotation
is fitted on. Candidates on the base model's raw axes at 384 d: the raw axes, a random rotation, ITQ on the
documents, ITQ on the documents + crops; symmetric Hamming through the engine, then test NDCG@10 / recall@10.

Usage: python train/lab/probe_pseudo.py scifact dbpedia-5k
"""

import numpy as np
from common import LAB_CELLS, cli, crop_recall, crops_of, frames, rotate

import qama_rs
from qama_rs.qama.rotation import quantization_rotation


def main():
    parser = cli(__doc__, schemes=("1bit", "1.5bit", "2bit"))
    args = parser.parse_args()
    if "hybrid" in args.schemes:
        parser.error("--schemes takes 1bit, 1.5bit, 2bit here (the crops are not pair-reduced)")
    for frame in frames(args.datasets, pca=False):
        b = frame.bench
        crops = crops_of(b).astype(np.float32)
        crop_target = np.argsort(-(crops @ b.docs.T), axis=1)[:, :10]
        for scheme in args.schemes:
            fd, fq, levels = frame.scheme(scheme)
            fit = fd[frame.fit]
            cands = {"raw axes": np.eye(fd.shape[1]), "random": quantization_rotation(fit, levels, 0, cells=LAB_CELLS),
                     "itq(docs)": quantization_rotation(fit, levels, 20, cells=LAB_CELLS),
                     "itq(docs+crops)": quantization_rotation(np.vstack([fit, crops]), levels, 20, cells=LAB_CELLS)}
            for cname, r in cands.items():
                d, q, c = rotate(fd, r), rotate(fq, r), rotate(crops, r)
                quant = qama_rs.Quantizer.fit(d, scheme)
                v_doc, nd, rc = frame.scores(d, q, scheme, quant)
                v_crop = crop_recall(d, c, quant, crop_target)
                print(f"{b.name} {scheme:6s} {cname:16s} val(docs) {v_doc:.3f} val(crops) {v_crop:.3f}  "
                      f"test NDCG {nd:.4f} recall {rc:.3f}", flush=True)


if __name__ == "__main__":
    main()
