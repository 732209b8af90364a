"""Probe: thresholds placed around the median (centred, the default) or around zero (uncentred: the sign of
the raw feature for 1-bit, equal-mass bins of |x| mirrored about zero for 3 and 4 levels), after ITQ or a
random rotation of the PCA frame. Validation recall with held-out documents as queries beside test NDCG@10 /
recall@10; --crops adds a second validation signal: crops of 1,000 documents (inverse cloze, embedded once and
cached under runs/) as queries, each crop's float32 top-10 among the documents as the target.

Usage: python train/lab/probe_centre.py [--crops] scifact dbpedia-5k
"""

import numpy as np
from common import LAB_CELLS, cli, crop_recall, crops_of, frames, hybrid_features, quantizer, rotate

import qama_rs
from qama_rs.qama.rotation import quantization_rotation, random_rotation


def zero_centred(features, levels):
    t = np.full((features.shape[1], levels.max() - 1), np.inf, np.float32)
    for j, count in enumerate(levels):
        a = np.abs(features[:, j])
        if count == 2:
            t[j, :1] = 0.0
        elif count == 3:
            c = np.quantile(a, 1 / 3)
            t[j, :2] = (-c, c)
        else:
            c = np.quantile(a, 1 / 2)
            t[j, :3] = (-c, 0.0, c)
    return qama_rs.Quantizer(t, levels)


def crop_queries(frame):
    """(crops of 1,000 documents in the PCA frame, their float32 top-10 among the documents)."""
    crops = crops_of(frame.bench).astype(np.float32)
    pick = np.random.default_rng(0).choice(len(crops), min(1000, len(crops)), replace=False)
    target = np.argsort(-(crops[pick] @ frame.bench.docs.T), axis=1)[:, :10]
    return (crops @ frame.axes)[pick], target


def main():
    parser = cli(__doc__)
    parser.add_argument("--crops", action="store_true", help="add crops of documents as validation queries")
    args = parser.parse_args()
    for frame in frames(args.datasets):
        crops, crop_target = crop_queries(frame) if args.crops else (None, None)
        for scheme in args.schemes:
            fd, fq, levels = frame.scheme(scheme)
            itq = quantization_rotation(fd[frame.fit], levels, 20, cells=LAB_CELLS)
            for rot_name, r in (("itq", itq), ("random", random_rotation(fd.shape[1]))):
                xd, xq = rotate(fd, r), rotate(fq, r)
                for centre, quant in (("median", quantizer(xd, levels)), ("zero", zero_centred(xd, levels))):
                    val, ndcg, rec = frame.scores(xd, xq, scheme, quant)
                    line = f"{frame.bench.name} {scheme:6s} {rot_name:6s} {centre:6s} val {val:.3f}"
                    if crops is not None:
                        xc = rotate(hybrid_features(crops) if scheme == "hybrid" else crops, r)
                        line += f" val(crops) {crop_recall(xd, xc, quant, crop_target):.3f}"
                    print(f"{line} test {ndcg:.4f} / {rec:.3f}", flush=True)


if __name__ == "__main__":
    main()
