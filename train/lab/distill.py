"""Documents-only distillation experiments: neighbour-aware batches, listwise KL of the head's quantized
(and float) similarities to the base model's cosines, a reconstruction anchor. Scored through the engine.

python train/lab/distill.py --dataset scifact --epochs 3
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from common import SCHEMES, Bench

from qama_rs.qama.losses import standardize_rows
from qama_rs.qama.rotation import random_rotation
from qama_rs.qama.thresholds import hamming_similarity, thermometer_bits

LEVELS = {"1bit": 2, "1.5bit": 3, "2bit": 4}
# Command-line options and their defaults (--w-* weigh the loss terms; --init rot: a random rotation as the skip,
# anything else the identity; --train-skip 0 freezes the skip).
OPTIONS = {
    "dataset": "scifact", "epochs": 4, "expansion": 4, "lr": 1e-3, "anchors": 64, "nbrs": 7, "pool": 20,
    "schemes": "1bit,1.5bit,2bit", "w-float": 1.0, "w-quant": 1.0, "w-recon": 1.0, "tau-t": 0.1, "tau-s": 0.1,
    "temp": 0.25, "init": "rot", "train-skip": 1, "seed": 0,
}


def listwise_kl(teacher, student, tau_t, tau_s):
    """KL(softmax(teacher/τ_t) || softmax(student/τ_s)) per row, diagonal excluded, rows standardized."""
    n = teacher.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    t = standardize_rows(teacher, True).masked_fill(eye, -1e4) / tau_t
    s = standardize_rows(student, True).masked_fill(eye, -1e4) / tau_s
    p = torch.softmax(t, -1)
    return (p * (torch.log_softmax(t, -1) - torch.log_softmax(s, -1))).sum(-1).mean()


class Head(torch.nn.Module):
    def __init__(self, d, expansion, skip):
        super().__init__()
        self.skip = torch.nn.Linear(d, d, bias=False)
        self.skip.weight.data.copy_(torch.from_numpy(skip.T.astype(np.float32)))
        self.up = torch.nn.Linear(d, expansion * d)
        self.down = torch.nn.Linear(expansion * d, d)
        torch.nn.init.zeros_(self.down.weight)
        torch.nn.init.zeros_(self.down.bias)

    def forward(self, x):
        return F.normalize(self.skip(x) + self.down(F.gelu(self.up(x))), dim=1)


def quantile_thresholds(z, levels):
    qs = torch.arange(1, levels, dtype=z.dtype) / levels
    return torch.quantile(z, qs, dim=0).T.contiguous()  # (d, L-1)


def evaluate(bench, head, schemes):
    with torch.no_grad():
        hd = head(torch.from_numpy(bench.docs)).numpy()
        hq = head(torch.from_numpy(bench.queries)).numpy()
    out = {"float": bench.cosine(hq, hd)}
    for s in schemes:
        out[s] = bench.hamming(hq, hd, s)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for option, default in OPTIONS.items():
        ap.add_argument(f"--{option}", type=type(default), default=default, help=f"(default {default})")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    bench = Bench(args.dataset)
    x = torch.from_numpy(bench.docs)
    n, d = x.shape
    schemes = args.schemes.split(",")
    skip = random_rotation(d, args.seed) if args.init == "rot" else np.eye(d)
    head = Head(d, args.expansion, skip)
    head.skip.weight.requires_grad_(bool(args.train_skip))
    anchor_target = F.normalize(x @ torch.from_numpy(skip.astype(np.float32)), dim=1)
    sims = x @ x.T
    sims.fill_diagonal_(-2)
    pool = sims.topk(args.pool, dim=1).indices
    del sims
    opt = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    print(json.dumps(vars(args)))
    print("epoch 0", json.dumps(evaluate(bench, head, SCHEMES)), flush=True)
    g = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        with torch.no_grad():
            hz = head(x)
            thr = {s: quantile_thresholds(hz, LEVELS[s]) for s in schemes}
        order = torch.randperm(n, generator=g)
        total = 0.0
        for i in range(0, n, args.anchors):
            a = order[i : i + args.anchors]
            pick = torch.randint(0, args.pool, (len(a), args.nbrs), generator=g)
            rows = torch.unique(torch.cat([a, pool[a[:, None], pick].reshape(-1)]))
            xb = x[rows]
            teacher = xb @ xb.T
            h = head(xb)
            loss = args.w_recon * ((h - anchor_target[rows]) ** 2).sum(1).mean()
            if args.w_float:
                loss = loss + args.w_float * listwise_kl(teacher, h @ h.T, args.tau_t, args.tau_s)
            for s in schemes:
                bits = thermometer_bits(h, thr[s], "ste", args.temp)
                sim = hamming_similarity(bits, bits, bits.shape[1])
                loss = loss + args.w_quant * listwise_kl(teacher, sim, args.tau_t, args.tau_s) / len(schemes)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss)
        res = evaluate(bench, head, SCHEMES)
        print(f"epoch {epoch} loss {total:.2f} {time.time() - t0:.0f}s", json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
