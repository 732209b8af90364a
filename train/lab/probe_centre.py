"""Probe: thresholds placed around the median (centred, the default) or around zero (uncentred: the sign of
the raw feature for 1-bit, equal-mass bins of |x| mirrored about zero for 3 and 4 levels), after ITQ or a
random rotation of the PCA frame.

Usage: python train/lab/probe_centre.py scifact dbpedia-5k
"""

import sys

import numpy as np
from common import LAB_CELLS, Bench, PcaFrame, quantizer

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



def main():
    for name in sys.argv[1:]:
        b = Bench(name)
        frame = PcaFrame(b)
        fit = frame.fit
        for scheme in ("1bit", "1.5bit", "2bit", "hybrid"):
            fd, fq, levels = frame.scheme(scheme)
            for rot_name, r in (("itq", quantization_rotation(fd[fit], levels, 20, cells=LAB_CELLS)), ("random", random_rotation(fd.shape[1]))):
                xd, xq = (fd @ r).astype(np.float32), (fq @ r).astype(np.float32)
                for centre, quant in (("median", quantizer(xd, levels)), ("zero", zero_centred(xd, levels))):
                    val, ndcg, rec = frame.scores(xd, xq, scheme, quant)
                    print(f"{name} {scheme:6s} {rot_name:6s} {centre:6s} val {val:.3f} test {ndcg:.4f} / {rec:.3f}", flush=True)


if __name__ == "__main__":
    main()
