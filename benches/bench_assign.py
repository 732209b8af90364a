"""How well and how fast a partition assigns vectors through its shortlist (``qama_rs.index.ivf``): for each
nlist, the share of vectors the shortlist sends to their exactly nearest centroid, and its time against the
exact assignment's, on real vectors.

    python benches/bench_assign.py          # ~3 min on 2 cores; writes results/assign.json and RESULTS.md

Data: the 199,000 real wiki rows of ``bench_ivf.py`` (all-MiniLM-L6-v2, 384 d). Each nlist is trained as an
``IVF{nlist}`` index trains (``Partition.train``: 20 Lloyd iterations, the shortlist inside them where the rule
takes it); then all 199,000 rows are assigned exactly (``_core.kmeans_assign`` without a basis) and as the
index assigns them (``Partition.assign``), each timed as the best of three runs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

import qama_rs
from qama_rs import _core
from qama_rs.engine import atomic_write
from qama_rs.index.ivf import SHORTLIST, SHORTLIST_VARIANCE, Partition

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import write_results  # noqa: E402
from ivf_common import load_average, load_data, run_record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NLISTS = (512, 1024, 2048, 4096)


def best_of(f, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    started, load_start = time.perf_counter(), load_average()
    command = "python benches/bench_assign.py"
    print(f"{command}\nCPU: {qama_rs.cpu_description()}; load average {load_start}", flush=True)
    corpus, queries, description = load_data(False, None)
    x = np.ascontiguousarray(corpus.real, dtype=np.float32)
    x.flags.writeable = False  # read in place by the engine, as an index's chunks are
    rows = []
    for nlist in NLISTS:
        part = Partition(nlist, residual=True)
        t = time.perf_counter()
        part.train(x)
        train_s = time.perf_counter() - t
        centroids = part._centroids32()
        exact = _core.kmeans_assign(x, centroids)[0]
        index_lists = part.assign(x)
        exact_s = best_of(lambda c=centroids: _core.kmeans_assign(x, c))
        index_s = best_of(lambda p=part: p.assign(x))
        rank = 0 if part._basis is None else len(part._basis)
        row = {
            "nlist": nlist,
            "rank": rank,
            "candidates": SHORTLIST if rank else 0,
            "agree": float(np.mean(index_lists == exact)),
            "exact_s": exact_s,
            "index_s": index_s,
            "train_s": train_s,
        }
        rows.append(row)
        print(f"IVF{nlist}: rank {rank or '— (exact)'}  exactly nearest {row['agree']:.5f}  "
              f"exact {exact_s:.2f} s  index {index_s:.2f} s ({index_s / exact_s:.2f}x)  train {train_s:.1f} s",
              flush=True)  # fmt: skip
    results = {**run_record(command, started, load_start, corpus, queries, description), "rows": rows}
    atomic_write(ROOT / "results" / "assign.json", lambda f: f.write(json.dumps(results, indent=1).encode()))
    lines = [
        f"### The partition's shortlisted assignment ({results['date']})",
        "",
        f"`{command}` ({results['runtime_min']:.0f} min; CPU: {results['cpu']}; load average {load_start})",
        "",
        f"Data: the {len(x):,} real wiki rows of `bench_ivf.py` (384 d), assigned to the centroids of an "
        f"`IVF{{nlist}}` trained on them. Shortlist: the centroids' leading principal directions holding "
        f"{SHORTLIST_VARIANCE:.0%} of their variance, then exact scores of the {SHORTLIST} best candidates; "
        "taken where its multiply-adds are at most half the exact assignment's. Times: best of three, 2 threads.",
        "",
        "| nlist | shortlist directions | rows to their exactly nearest centroid | exact s | as the index assigns s | ratio |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['nlist']:,} | {r['rank'] or '— (exact)'} | {r['agree']:.2%} | {r['exact_s']:.2f} | "
            f"{r['index_s']:.2f} | {r['index_s'] / r['exact_s']:.2f}x |"
        )
    write_results("bench_assign", lines)
    print("wrote results/assign.json and benches/RESULTS.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
