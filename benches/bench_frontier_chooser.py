"""How well the budget chooser's pseudo-query recall tracks real-query recall.

    python benches/bench_frontier_chooser.py            # scifact + dbpedia-5k, budgets 12 24 48 80 104
    python benches/bench_frontier_chooser.py --sets scifact --budgets 12   # a quick check: prints only

For each set and budget, every candidate of ``qama_rs.quantizers.budget.candidates`` is fitted once
on the corpus minus 200 held-out documents; its recall@10 (the engine's byte-table search
``TableCodec.given``, as the chooser measures it; against the exact
float32 top-10 over the same documents) is measured with the held-out documents as queries (what the
chooser sees) and with the set's real test queries (what a user gets). Reports both per candidate,
whether the chooser's pick is the real-query best, and the real-recall regret of the pick.
Writes results/frontier_chooser.md and .json (a run of other sets or budgets prints only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from qama_rs.data.beir import load_beir, resolve_dataset
from qama_rs.data.embed import dataset_embeddings
from qama_rs.engine.quantizer import atomic_write
from qama_rs.quantizers.budget import _lut_topk, candidates, codec_spec, pseudo_query_split

ROOT = Path(__file__).resolve().parents[1]


def recall(ids, truth):
    return float(np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(ids, truth, strict=True)]))


SETS = ["scifact", "dbpedia-5k"]
BUDGETS = [12, 24, 48, 80, 104]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=SETS, help="BEIR sets (default: scifact dbpedia-5k)")
    parser.add_argument("--budgets", nargs="+", type=int, default=BUDGETS, help="bytes (default: 12 24 48 80 104)")
    args = parser.parse_args(argv)
    sets, budgets = args.sets, args.budgets
    rows, summary = [], []
    for name in sets:
        emb = dataset_embeddings(load_beir(resolve_dataset(name)), progress=False)
        docs, real_q = np.asarray(emb.docs, np.float32), np.asarray(emb.queries, np.float32)
        doc_rows, held = pseudo_query_split(len(docs), 200, 0)
        base, pseudo_q = docs[doc_rows], docs[held]
        truth_p = np.argpartition(-(pseudo_q @ base.T), 9, axis=1)[:, :10]
        truth_r = np.argpartition(-(real_q @ base.T), 9, axis=1)[:, :10]
        for budget in budgets:
            cands = []
            for codec in candidates(budget, docs.shape[1]):
                t = time.perf_counter()
                codec.fit(base)
                r_p = recall(_lut_topk(codec, base, pseudo_q, 10), truth_p)
                r_r = recall(_lut_topk(codec, base, real_q, 10), truth_r)
                row = {"set": name, "budget": budget, "spec": codec_spec(codec), "bytes": codec.bytes_per_vector,
                       "pseudo_recall10": r_p, "real_recall10": r_r, "seconds": time.perf_counter() - t}
                cands.append(row)
                print(f"{name} {budget:4d} {row['spec']:38s} pseudo {r_p:.3f} real {r_r:.3f}", flush=True)
            pick = max(cands, key=lambda r: (r["pseudo_recall10"], -r["bytes"]))
            best = max(cands, key=lambda r: r["real_recall10"])
            ps = np.array([r["pseudo_recall10"] for r in cands])
            rs = np.array([r["real_recall10"] for r in cands])
            rank_corr = float(np.corrcoef(np.argsort(np.argsort(ps)), np.argsort(np.argsort(rs)))[0, 1]) if len(cands) > 2 else float("nan")
            summary.append({"set": name, "budget": budget, "chosen": pick["spec"], "real_best": best["spec"],
                            "chosen_real": pick["real_recall10"], "best_real": best["real_recall10"],
                            "regret": best["real_recall10"] - pick["real_recall10"], "spearman": rank_corr,
                            "n_candidates": len(cands)})
            rows += cands
    lines = [
        "# Budget chooser: pseudo-query recall vs real-query recall",
        "",
        f"`python benches/bench_frontier_chooser.py {' '.join(argv)}` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "Each candidate fitted once on the corpus minus 200 held-out documents; recall@10 vs the exact float32 top-10",
        "over the same documents, with the held-out documents as queries (pseudo) and with the real test queries (real).",
        "",
        "| set | budget | chosen (pseudo) | real-query best | real R@10 of chosen | best real R@10 | regret | Spearman (pseudo vs real) |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {s['set']} | {s['budget']} | `{s['chosen']}` | `{s['real_best']}` | {s['chosen_real']:.3f} | {s['best_real']:.3f} | {s['regret']:.3f} | {s['spearman']:.2f} |" for s in summary]
    lines += ["", "| set | budget | candidate | bytes | pseudo R@10 | real R@10 |", "|---|---:|---|---:|---:|---:|"]
    lines += [f"| {r['set']} | {r['budget']} | `{r['spec']}` | {r['bytes']} | {r['pseudo_recall10']:.3f} | {r['real_recall10']:.3f} |" for r in rows]
    if sets == SETS and budgets == BUDGETS:  # the files always hold the whole sweep
        atomic_write(ROOT / "results/frontier_chooser.md", lambda f: f.write(("\n".join(lines) + "\n").encode()))
        atomic_write(ROOT / "results/frontier_chooser.json", lambda f: f.write(json.dumps({"summary": summary, "rows": rows}, indent=1).encode()))
    print("\n".join(lines[:8 + len(summary)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
