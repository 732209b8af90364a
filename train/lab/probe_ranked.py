"""Probe: a code rotation trained on a ranking loss (documents only), started from the quantization rotation.

The head's float output stays the PCA frame (a rotation keeps every cosine); only the rotation in front of the
quantizer is trained: R = R_itq · expm(A − Aᵀ). Loss: listwise KL between each anchor document's float32
similarity distribution over its float neighbours + random documents and the distribution of its
straight-through thermometer Hamming similarities (exact bits forward, sigmoid gradient backward).

Usage: python train/lab/probe_ranked.py [--steps 100,300] [--schemes 1bit] scifact dbpedia-5k
"""

import time

import numpy as np
import torch
from common import LAB_CELLS, cli, frames, listed

from qama_rs.qama.rotation import quantization_rotation


def quantile_thresholds(x, levels):
    t = torch.full((x.shape[1], levels.max() - 1), float("inf"))
    for count in np.unique(levels):
        cols = torch.from_numpy(np.flatnonzero(levels == count))
        qs = torch.arange(1, count, dtype=torch.float32) / count
        t[cols, : count - 1] = torch.quantile(x[:, cols], qs, dim=0).T
    return t


def ste_bits(x, t, spread):
    z = (x[:, :, None] - t[None]) / (0.25 * spread[None, :, None])
    soft = torch.sigmoid(z)
    hard = (z > 0).float()
    real = torch.isfinite(t)[None]
    bits = hard + soft - soft.detach()
    return torch.where(real, bits, torch.zeros_like(bits)).flatten(1), int(real.sum())


def train_rotation(feat, base, levels, start, fit_rows, steps=200, k=32, negatives=128, batch=128,
                   lr=2e-3, tau=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = torch.from_numpy(feat[fit_rows]).float()
    b = torch.from_numpy(base[fit_rows]).float()
    sims = b @ b.T
    sims.fill_diagonal_(-2)
    neigh = sims.topk(k, dim=1).indices
    w = f.shape[1]
    r0 = torch.from_numpy(start).float()
    a = torch.zeros(w, w, requires_grad=True)
    log_scale = torch.tensor(np.log(1 / tau), dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([a, log_scale], lr=lr)
    for step in range(steps):
        r = r0 @ torch.linalg.matrix_exp(a - a.T)
        if step % 50 == 0:
            with torch.no_grad():
                x_all = f @ r
                t = quantile_thresholds(x_all, levels)
                spread = x_all.std(0)
        anchors = torch.randint(0, len(f), (batch,), generator=g)
        rand = torch.randint(0, len(f), (negatives,), generator=g)
        cand = torch.cat([neigh[anchors], rand[None].expand(batch, -1)], 1)  # (B, k + M)
        xa = f[anchors] @ r
        xc = f[cand.flatten()] @ r
        ba, nbits = ste_bits(xa, t, spread)
        bc, _ = ste_bits(xc, t, spread)
        bc = bc.view(batch, cand.shape[1], -1)
        ham = (ba[:, None] + bc - 2 * ba[:, None] * bc).sum(-1)
        student = 1 - 2 * ham / nbits
        teacher = (b[anchors][:, None] * b[cand]).sum(-1)
        p = torch.softmax(teacher / tau, 1)
        logq = torch.log_softmax(student * log_scale.exp(), 1)
        loss = (p * (torch.log(p + 1e-12) - logq)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (r0 @ torch.linalg.matrix_exp(a - a.T)).double().numpy()


def main():
    parser = cli(__doc__)
    parser.add_argument("--steps", type=listed(int), default=(100, 300),
                        help="comma-separated training steps, one trained rotation each (100,300)")
    args = parser.parse_args()
    for frame in frames(args.datasets):
        for scheme in args.schemes:
            fd, _, levels = frame.scheme(scheme)
            itq = quantization_rotation(fd[frame.fit], levels, 20, cells=LAB_CELLS)
            print(frame.bench.name, scheme, "itq    ", show(frame.evaluate(scheme, itq)), flush=True)
            for steps in args.steps:
                t0 = time.time()
                ranked = train_rotation(fd, frame.bench.docs, levels, itq, frame.fit, steps=steps)
                seconds = time.time() - t0
                print(frame.bench.name, scheme, f"ranked {steps} steps ({seconds:.0f} s)",
                      show(frame.evaluate(scheme, ranked)), flush=True)


def show(scores):
    val, ndcg, rec = scores
    return f"val {val:.3f} test {ndcg:.4f} / {rec:.3f}"


if __name__ == "__main__":
    main()
