"""Sub-linear search side by side (issue #20): qama-rs partitioned (IVF) indexes over its codecs beside faiss
IVF-FastScan (PQ, RaBitQ), faiss HNSW-SQ8, ScaNN, SVS, usearch and Qdrant, at equal memory.

    python benches/bench_ivf.py              # 200k real wiki vectors, the full grid (~20 min on 2 cores)
    python benches/bench_ivf.py --quick      # wiki-50k, a few points of every method (~5 min): prints only
    python benches/bench_ivf.py --n 1000000  # jittered tiling of the real corpus: speed and memory only
    python benches/bench_ivf.py --from-json  # rewrite the RESULTS.md section and the plot from results/ivf.json

Data: the all-MiniLM-L6-v2 embeddings of wiki-50k and wiki-150k-b (../shared/data/unlabelled; float16,
L2-normalized, 384-d; 200,000 rows). 1,000 rows (seeded) are held out as queries, the rest is the corpus;
the truth is the exact float32 inner-product top-10. ``--n N`` beyond the real corpus tiles it with a
small Gaussian jitter (re-normalized, generated in seeded chunks): near-duplicates make its recall
meaningless, so every such number is printed and recorded as "jittered tiling — speed and memory only".

For every point: recall@10 against the exact top-10, queries per second one query at a time (a loop,
k = 10; faiss with 1 OpenMP thread, usearch/ScaNN/SVS with one thread, qama-rs on its rayon pool, whose free
thread joins a query searched alone),
queries per second for all queries in one batch call (2 threads), bytes per vector all-in, and build
seconds (training + adding). Memory all-in: qama-rs ``Index.memory_bytes`` (codes, factors, labels and ids,
centroids, refinement store, spare capacity); faiss ``serialize_index`` (codes in their blocks, 8-byte ids,
centroids, codebooks, graph links, refinement store); usearch ``serialized_length`` (vectors, keys, graph);
SVS the saved files (data + graph); ScaNN and Qdrant from their documented layouts (said beside them).
qama-rs is also searched with filters (``allowed=``: ids, a bitmap, and an ``Allowed`` prepared once) at 1 %
and 50 % selectivity.

Writes results/ivf.json, results/ivf.png and the bench_ivf section of benches/RESULTS.md; any other run
(``--quick``, ``--n``, ``--only``, ``--no-peers``) prints only (``--save-json PATH`` keeps its points).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

import qama_rs
from qama_rs.engine import atomic_write

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ivf_common import (  # noqa: E402
    JITTER_NOTE,
    QUIET_S,
    ROOT,
    SEED,
    Bench,
    Corpus,
    K,
    exact_topk,
    load1,
    load_average,
    load_data,
    nlist_grid,
    nprobe_grid,
    paired_cost,
    point_key,
    qps_of,
    run_record,
    timed_build,
)
from ivf_peers import faiss_configs, run_faiss, run_qdrant, run_scann, run_svs, run_usearch  # noqa: E402
from ivf_report import _json, _params, bar_rows, write_outputs  # noqa: E402


# ---------------------------------------------------------------------------------------------- qama-rs
def qama_specs(nlists: list[int], quick: bool) -> list[str]:
    mid = nlists[len(nlists) // 2]
    if quick:
        return [
            f"IVF{mid},pca_nibble_scaled(budget_bytes=24)",
            f"IVF{mid},pca_nibble_scaled(budget_bytes=48)",
            f"IVF{mid},pca_nibble_scaled(budget_bytes=104)",
            f"IVF{mid},pca_pq(m=24)",
            f"IVF{mid},Thermo1,Rescore(LloydMax4,100)",
            f"IVF{mid},pca_nibble_scaled(budget_bytes=24),Rescore(pca_nibble_scaled(budget_bytes=104),50)",
            "pca_nibble_scaled(budget_bytes=48)",
        ]
    other = [nl for nl in nlists if nl != mid]
    specs = [f"IVF{mid},pca_nibble_scaled(budget_bytes={b})" for b in (24, 48, 80, 104, 192)]
    specs += [f"IVF{nl},pca_nibble_scaled(budget_bytes={b})" for nl in other for b in (48, 104)]
    # 80 B above and 24 B in the fewer lists here: all-in bytes (codes, labels, scales, block padding,
    # centroids) just under faiss's IVF…,PQ192x4fs (112 B) and IVF512,PQ48x4fs (37 B), so those points
    # have one to meet (16 B in 512 lists, tried before, is 28 B all-in but stays below recall 0.5).
    specs += [f"IVF{nlists[0]},pca_nibble_scaled(budget_bytes=24)"]
    specs += ["IVF,pca_nibble_scaled(budget_bytes=48)"]  # the default nlist rule (about sqrt(n) lists)
    specs += [f"IVF{mid},pca_pq(m=24)", f"IVF{mid},Thermo1,Rescore(LloydMax4,100)"]
    specs += [f"pca_nibble_scaled(budget_bytes={b})" for b in (48, 104)]
    return specs


def memory_breakdown(index) -> dict:
    """Where an index's bytes go (diagnostic; reads the index's private parts, so best effort)."""
    try:
        out = {f"store{i}": int(s.nbytes) for i, s in enumerate(index._stores)}
        out["ids"] = int(index._ids.nbytes)
        part = index._partition
        out["centroids"] = 0 if part is None else int(part.nbytes)
        return out
    except AttributeError:
        return {}


def run_qama(
    bench: Bench, corpus: Corpus, spec: str, nprobes: list[int], filtered: dict | None, checks: dict
) -> None:
    index = qama_rs.index_factory(corpus.dims, spec)

    def build():
        index.train(corpus.train())
        for _, block in corpus.chunks():
            index.add(block)

    _, build_s = timed_build(build)
    nbytes = index.memory_bytes / index.ntotal
    extra = {
        "spec": spec,
        "code_bytes": int(index.bytes_per_vector),
        "memory_breakdown": memory_breakdown(index),
        "load1": load1(),
        "threads": {"single": f"rayon pool ({qama_rs._core.num_threads()})", "batch": qama_rs._core.num_threads()},
    }
    for nprobe in nprobes if index.nlist else [None]:
        kw = {} if nprobe is None else {"nprobe": nprobe}

        def search(xq, kw=kw):
            return index.search(xq, K, **kw)[1]

        m = bench.time(search, search)
        bench.add("qama-rs", spec, kw, nbytes, build_s, m, **extra)
        bench.keep("qama-rs", spec, kw, search, search)
    if filtered is not None and spec in filtered["specs"]:
        run_filtered(bench, corpus, index, spec, nbytes, filtered)
    if spec == checks.get("qama_spec"):
        checks["qama"] = qama_thread_check(index, spec, checks["nprobes"], bench.queries)
        print(f"  thread check: {checks['qama']}", flush=True)


def run_filtered(bench: Bench, corpus: Corpus, index, spec: str, nbytes: float, filtered: dict) -> None:
    """``search(xq, 10, allowed=...)`` at each selectivity: recall vs the exact filtered top-10, QPS, and the
    share of queries that got 10 results."""
    for sel, allowed in filtered["subsets"].items():
        truth = filtered["truth"][sel]
        bitmap = np.zeros(corpus.n, dtype=bool)
        bitmap[allowed] = True
        for nprobe in filtered["nprobes"] if index.nlist else [None]:
            # "prepared": an Allowed made once, like faiss's IDSelector (the ids sorted and converted once).
            plain = {} if nprobe is None else {"nprobe": nprobe}
            for form, arg in (("ids", allowed), ("bitmap", bitmap), ("prepared", qama_rs.Allowed(allowed))):
                kw = {**plain, "allowed": arg}
                extra = {}
                if form == "prepared":  # the cost bar's form: timed against the unfiltered search, alternated
                    extra["paired_cost"] = paired_cost(
                        lambda xq, p=plain: index.search(xq, K, **p), lambda xq, kw=kw: index.search(xq, K, **kw), bench.queries
                    )  # fmt: skip
                bench.time_filtered(
                    filtered["rows"], lambda xq, kw=kw: index.search(xq, K, **kw)[1], truth,
                    library="qama-rs", config=spec, selectivity=sel, allowed_form=form, nprobe=nprobe,
                    bytes_per_vector=nbytes, **extra,
                )  # fmt: skip


# Idle before each timing of a pair: the other library's threads spin for a while after its call (faiss's OpenMP
# pool; a qama-rs batch timed right after a faiss batch ran up to 2x slower).
PAIR_QUIET_S = 0.1


def paired_bar(bench: Bench, mode: str, rounds: int = 3, single_n: int = 200) -> list[dict]:
    """Each pair of the bar (a faiss IVF-FastScan point and its qama-rs match) timed again in one sitting, the two
    in turn ``rounds`` times (the order swapped every round; ``single_n`` one-query searches, or one batch of all
    queries): qama-rs QPS / faiss QPS, the median of the rounds. Points timed minutes apart move with the shared VM
    by more than the bar's margin."""
    q = bench.queries

    def qps(entry: tuple) -> float:
        batch, single, threads = entry
        time.sleep(PAIR_QUIET_S)
        return qps_of(batch if mode == "batch" else single, q, mode, single_n, threads)

    pairs = []
    for row in bar_rows(bench.points, mode):
        f, o = row["faiss"], row["qama"]
        if o is None:
            continue
        fs = bench.searchers.get(point_key(f["library"], f["config"], f["params"]))
        qs = bench.searchers.get(point_key(o["library"], o["config"], o["params"]))
        if fs is None or qs is None:
            continue
        for warm in (fs, qs):
            warm[0](q[:8])
        ratios = []
        for r in range(rounds):
            if r % 2:
                b, a = qps(qs), qps(fs)
            else:
                a, b = qps(fs), qps(qs)
            ratios.append(b / a)
        pairs.append({"faiss": [f["config"], f["params"]], "qama": [o["config"], o["params"]],
                      "ratio": float(np.median(ratios)), "ratios": [round(x, 3) for x in ratios]})  # fmt: skip
    met = sum(p["ratio"] >= 1.5 for p in pairs)
    print(f"paired bar ({mode}): {met} of {len(pairs)} pairs >= 1.5x, timed alternately", flush=True)
    return pairs


def qama_thread_check(index, spec: str, nprobes: list[int], queries: np.ndarray) -> dict:
    """One-query QPS of one index with a 1-thread rayon pool (a child process loading the saved index),
    to set beside the 2-thread pool the main rows use."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.qama"
        index.save(path)
        np.save(Path(tmp) / "q.npy", queries)
        code = (
            "import json, sys, time, numpy as np, qama_rs\n"
            "idx = qama_rs.Index.load(sys.argv[1]); q = np.load(sys.argv[2]); out = {}\n"
            "for p in json.loads(sys.argv[3]):\n"
            "    idx.search(q[:1], 10, nprobe=p); t = time.perf_counter()\n"
            "    for i in range(len(q)): idx.search(q[i:i+1], 10, nprobe=p)\n"
            "    out[p] = len(q) / (time.perf_counter() - t)\n"
            "print(json.dumps(out))\n"
        )
        env = dict(os.environ, RAYON_NUM_THREADS="1")
        res = subprocess.run(
            [sys.executable, "-c", code, str(path), str(Path(tmp) / "q.npy"), json.dumps(nprobes)],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
    if res.returncode:
        return {"spec": spec, "error": res.stderr[-500:]}
    return {"spec": spec, "single_qps_1_thread": {int(k): v for k, v in json.loads(res.stdout).items()}}


#: Peers run in a child process: SVS's oneMKL loader can end the process ("Intel oneMKL FATAL ERROR:
#: Cannot load libsvs_mkl.so", seen once on AMD EPYC after the other peers ran), which would lose every point.
ISOLATED = {"SVS"}


def run_isolated(bench: Bench, lib: str, args: argparse.Namespace) -> None:
    """Runs ``lib`` alone in a child (``--only lib``, the same data arguments) and takes its points and notes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "points.json"
        child = ["--only", lib, "--save-json", str(out), "--single-seconds", str(args.single_seconds)]
        child += ["--quick"] if args.quick else []
        child += ["--n", str(args.n)] if args.n else []
        res = subprocess.run([sys.executable, __file__, *child], capture_output=True, text=True, check=False)
        lines = [line for line in res.stdout.splitlines() if line.startswith((lib, "  note"))]
        print("\n".join(lines), flush=True)
        if res.returncode or not out.exists():
            last = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1]
            bench.note(f"{lib} ended its process (exit {res.returncode}: {last[:200]}); its points are missing")
            return
        data = json.loads(out.read_text())
    bench.points.extend(p for p in data["points"] if p["library"] == lib)
    bench.notes.extend(n for n in data["notes"] if n not in bench.notes)


def available(module: str, bench: Bench) -> bool:
    try:
        __import__(module)
        return True
    except Exception as err:  # an optional peer: any import failure means "skip it"
        bench.note(f"{module} not importable ({type(err).__name__}: {err}); its rows are skipped")
        return False


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="wiki-50k, a few points of every method; prints only")
    parser.add_argument("--n", type=int, default=None, help="corpus rows (beyond the real ones: jittered tiling)")
    parser.add_argument("--only", default=None, help="comma-separated libraries (qama-rs,faiss,ScaNN,SVS,usearch,Qdrant)")
    parser.add_argument("--no-peers", action="store_true", help="qama-rs only")
    parser.add_argument("--single-seconds", type=float, default=1.0, help="time cap of a one-query loop (>= 100 queries)")
    parser.add_argument("--save-json", default=None, help="write this run's results here (any run)")
    parser.add_argument("--from-json", action="store_true", help="rewrite the RESULTS.md section and plot from results/ivf.json")
    args = parser.parse_args(argv)
    if args.from_json:
        write_outputs(json.loads((ROOT / "results" / "ivf.json").read_text()))
        return 0
    if args.n is not None and args.n < 1000:
        parser.error(f"--n {args.n}: give at least 1000 rows")
    default_run = not (args.quick or args.n or args.only or args.no_peers)
    started = time.perf_counter()
    command = "python benches/bench_ivf.py" + ("" if not argv else " " + " ".join(argv))
    print(command, file=sys.stderr)
    load_start = load_average()
    print(f"CPU: {qama_rs.cpu_description()}; load average {load_start}", flush=True)

    corpus, queries, description = load_data(args.quick, args.n)
    print(description, flush=True)
    t = time.perf_counter()
    truth = exact_topk(corpus, queries)
    print(f"exact top-{K}: {time.perf_counter() - t:.1f} s", flush=True)
    bench = Bench(queries, truth, corpus.jittered, args.single_seconds)
    if corpus.jittered:
        bench.note(f"corpus: {JITTER_NOTE}")
    wanted = None if args.only is None else {s.strip().lower() for s in args.only.split(",")}

    def want(lib: str) -> bool:
        return (wanted is None or lib.lower() in wanted) and (lib == "qama-rs" or not args.no_peers)

    nlists = nlist_grid(corpus.n, args.quick)
    nprobes = nprobe_grid(args.quick)
    qama_nprobes = nprobe_grid(args.quick, fine=True)
    mid = nlists[len(nlists) // 2]
    rng = np.random.default_rng(SEED + 1)
    subsets = {
        label: np.sort(rng.choice(corpus.n, max(K, round(frac * corpus.n)), replace=False))
        for label, frac in (("1%", 0.01), ("50%", 0.5))
    }
    filtered = {
        "specs": {f"IVF{mid},pca_nibble_scaled(budget_bytes=48)", f"IVF{mid},pca_nibble_scaled(budget_bytes=104)",
                  "pca_nibble_scaled(budget_bytes=48)"},
        "nprobes": [16] if args.quick else [8, 32],
        "subsets": subsets,
        "rows": [],
    }  # fmt: skip
    filtered["truth"] = {}
    for label, allowed in subsets.items():
        mask = np.zeros(corpus.n, dtype=bool)
        mask[allowed] = True
        filtered["truth"][label] = exact_topk(corpus, queries, mask)
    checks: dict = {
        "qama_spec": f"IVF{mid},pca_nibble_scaled(budget_bytes=48)",
        "faiss_spec": f"IVF{mid},PQ96x4fs",
        "nprobes": [4] if args.quick else [1, 8, 32],
    }

    def guarded(what: str, run: Callable[[], None]) -> None:
        """A failing configuration is recorded as a note; the run goes on with the next one."""
        try:
            run()
        except Exception as err:  # a crash of one library must not lose the other points
            traceback.print_exc()
            bench.note(f"{what} failed: {type(err).__name__}: {err}")
        gc.collect()

    if want("qama-rs"):
        for spec in qama_specs(nlists, args.quick):
            guarded(f"qama-rs {spec}", lambda spec=spec: run_qama(bench, corpus, spec, qama_nprobes, filtered, checks))
    if want("faiss") and available("faiss", bench):
        for kind, spec in faiss_configs(nlists, args.quick):
            guarded(
                f"faiss {spec}",
                lambda kind=kind, spec=spec: run_faiss(bench, corpus, kind, spec, nprobes, args.quick, filtered, checks),
            )
    for lib, module, run in (
        ("ScaNN", "scann", run_scann),
        ("SVS", "svs", run_svs),
        ("usearch", "usearch", run_usearch),
        ("Qdrant", "qdrant_edge", run_qdrant),
    ):
        if not (want(lib) and available(module, bench)):
            continue
        if lib in ISOLATED and wanted != {lib.lower()}:
            guarded(lib, lambda lib=lib: run_isolated(bench, lib, args))
        else:
            guarded(lib, lambda run=run: run(bench, corpus, args.quick))

    paired = {mode: paired_bar(bench, mode) for mode in ("single", "batch")}
    results = {
        **run_record(command, started, load_start, corpus, queries, description),
        "notes": bench.notes,
        "grids": {"nlist": nlists, "nprobe": nprobes, "nprobe_qama": qama_nprobes},
        "quiet_s": QUIET_S,
        "paired_bar": paired,
        "points": bench.points,
        "filtered": filtered["rows"],
        "thread_checks": {k: v for k, v in checks.items() if k in ("qama", "faiss")},
    }
    for mode in ("single", "batch"):
        rows = bar_rows(bench.points, mode)
        print(f"\nThe bar ({mode}): faiss IVF-FastScan point -> best qama-rs point at <= bytes and >= recall", flush=True)
        for r in rows:
            f, o = r["faiss"], r["qama"]
            right = "none" if o is None else (
                f"{o['config']} {_params(o)} {o['bytes_per_vector']:.1f} B R@10 {o['recall10']:.3f} "
                f"{o[f'{mode}_qps']:,.0f} QPS  ratio {r['ratio']:.2f}x"
            )  # fmt: skip
            print(f"  {f['config']} {_params(f)} {f['bytes_per_vector']:.1f} B R@10 {f['recall10']:.3f} "
                  f"{f[f'{mode}_qps']:,.0f} QPS -> {right}")  # fmt: skip
    if args.save_json:
        atomic_write(args.save_json, lambda f: f.write(json.dumps(results, indent=1, default=_json).encode()))
    if default_run:
        write_outputs(results)
        print("wrote results/ivf.json, results/ivf.png and the bench_ivf section of benches/RESULTS.md", flush=True)
    else:
        print("(not the default run: the tracked results are left as they are)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
