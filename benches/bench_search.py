"""Exact Hamming top-k, side by side in one run: qama-rs vs faiss ``IndexBinaryFlat`` vs NumPy.

Random codes (uniform bits) of 384 and 1,152 bits, ``k = 10``: a batch of queries and single
queries (median of several). Prints the command, CPU model and flags, threads, GB/s of codes
scanned and the ratio to faiss, checks that the engines return the same distances, and writes the
table into ``benches/RESULTS.md`` (its own block per mode, replaced on each run).

    python benches/bench_search.py            # 1,000,000 codes, 1,000-query batch (minutes)
    python benches/bench_search.py --quick    # 100,000 codes, smoke run (seconds)

``--isa avx2`` (or ``scalar``) forces a lower kernel level of :func:`qama_rs.available_isas` for the
qama-rs rows (the engine column then names it); the default is the detected level,
:func:`qama_rs.best_isa`. Machines differ (AVX-512 VPOPCNTDQ vs AVX2 only, cores): compare numbers
only within one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys

import numpy as np

import harness
import qama_rs
from qama_rs import _core
from qama_rs.engine.cpu import cpu_flags, cpu_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small smoke run: n=100,000, batch=100")
    p.add_argument("--n", type=int, help="database codes (default 1,000,000; 100,000 with --quick)")
    p.add_argument("--bits", type=int, nargs="+", default=[384, 1152], help="code widths (multiples of 64)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch", type=int, help="queries per batch (default 1,000; 100 with --quick)")
    p.add_argument("--repeats", type=int, help="batch timings per engine, median kept (default 3; 1 quick)")
    p.add_argument("--singles", type=int, help="single-query timings, median kept (default 20; 5 quick)")
    p.add_argument("--numpy-queries", type=int, default=5, help="queries timed for NumPy (it is slow)")
    p.add_argument("--threads", type=int, help="threads for both engines (default: all cores)")
    p.add_argument("--isa", help="qama-rs kernel level (qama_rs.available_isas(); default: the detected one)")
    args = harness.parse_common_args(
        p, argv, n=(100_000, 1_000_000), batch=(100, 1_000), repeats=(1, 3), singles=(5, 20)
    )
    if args.isa is not None and args.isa not in qama_rs.available_isas():
        p.error(f"--isa {args.isa}: this CPU runs {', '.join(qama_rs.available_isas())}")
    for bits in args.bits:
        if bits <= 0 or bits % 64:
            p.error(f"--bits {bits}: must be a positive multiple of 64")
    return args


def numpy_topk(queries: np.ndarray, database: np.ndarray, k: int) -> np.ndarray:
    """The QAMA paper's kind of baseline: ``np.bitwise_count`` over XORs, then an exact top-k with
    the engine's tie rule (every row at the k-th distance is a candidate; lower id wins)."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for row, query in enumerate(queries):
        distances = np.bitwise_count(database ^ query).sum(axis=1, dtype=np.int32)
        kth = np.partition(distances, k - 1)[k - 1]
        candidates = np.flatnonzero(distances <= kth)
        out[row] = candidates[np.argsort(distances[candidates], kind="stable")[:k]]
    return out


def bench_width(args: argparse.Namespace, bits: int, faiss) -> list[dict]:
    rng = np.random.default_rng(args.seed + bits)
    words = bits // 64
    database = rng.integers(0, 2**64, size=(args.n, words), dtype=np.uint64)
    # Read-only: the engine reads it in place (a writeable array is copied per call, see bench_copies.py).
    database.flags.writeable = False
    queries = rng.integers(0, 2**64, size=(args.batch, words), dtype=np.uint64)
    scanned = args.n * words * 8  # bytes of codes read per query
    rows: list[dict] = []

    def record(engine: str, mode: str, queries_timed: int, seconds: float) -> None:
        rows.append(
            {
                "bits": bits,
                "engine": engine,
                "mode": mode,
                "ms": 1e3 * seconds,
                "qps": queries_timed / seconds,
                "gbps": scanned * queries_timed / seconds / 1e9,
            }
        )

    def ours(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return qama_rs.search(q, database, args.k, isa=args.isa)

    engine = "qama-rs" if args.isa is None else f"qama-rs isa={args.isa}"
    ours(queries[:2])  # warm up the thread pool
    record(
        engine, f"batch {args.batch}", args.batch, harness.median_time(lambda: ours(queries), args.repeats)
    )
    singles = queries[: args.singles]
    single = statistics.median(harness.median_time(lambda q=q: ours(q[None]), 1) for q in singles)
    record(engine, "single", 1, single)
    our_d, our_i = ours(queries)

    if faiss is not None:
        index = faiss.IndexBinaryFlat(bits)
        index.add(database.view(np.uint8))  # same bytes: little-endian words = faiss's byte order
        q8 = queries.view(np.uint8)
        index.search(q8[:2], args.k)
        record(
            "faiss",
            f"batch {args.batch}",
            args.batch,
            harness.median_time(lambda: index.search(q8, args.k), args.repeats),
        )
        single = statistics.median(
            harness.median_time(lambda q=q: index.search(q[None], args.k), 1) for q in q8[: args.singles]
        )
        record("faiss", "single", 1, single)
        faiss_d, faiss_i = index.search(q8, args.k)
        if not np.array_equal(faiss_d, our_d):
            sys.exit(f"{bits} bits: faiss and qama-rs distances differ; the benchmark is void")
        print(
            f"  {bits} bits: distances identical to faiss; ids agree on {np.mean(faiss_i == our_i):.1%} (ties)"
        )
        del index

    few = queries[: args.numpy_queries]
    record(
        "numpy bitwise_count",
        "single",
        1,
        harness.median_time(lambda: numpy_topk(few, database, args.k), 1) / len(few),
    )
    np_i = numpy_topk(few[:1], database, args.k)
    if not np.array_equal(np_i, our_i[:1]):
        sys.exit(f"{bits} bits: NumPy reference and qama-rs ids differ; the benchmark is void")
    return rows


def machine_lines() -> list[str]:
    threads = _core.num_threads()
    return [
        f"- CPU: {cpu_model()} ({os.cpu_count()} logical cores); flags: {' '.join(cpu_flags()) or 'none'}",
        f"- engine: qama-rs {qama_rs.__version__}, isa `{qama_rs.best_isa()}` "
        f"(available: {', '.join(qama_rs.available_isas())}), {threads} rayon threads; "
        f"detected: {_core.cpu_features()}",
        f"- Python {platform.python_version()}, NumPy {np.__version__}",
        # OpenMP (faiss) degrades badly when its threads are descheduled: a busy machine voids
        # the comparison, so the load is part of the record.
        harness.load_line(),
    ]


def table(rows: list[dict], k: int, n: int) -> list[str]:
    faiss_ms = {(r["bits"], r["mode"]): r["ms"] for r in rows if r["engine"] == "faiss"}

    def cells(r: dict) -> list[str]:
        ref = faiss_ms.get((r["bits"], r["mode"]))
        ratio = f"{ref / r['ms']:.2f}x" if ref else "—"
        numbers = [f"{r['ms']:.1f}", f"{r['qps']:,.0f}", f"{r['gbps']:.1f}"]
        return [str(r["bits"]), r["engine"], r["mode"], *numbers, ratio]

    return harness.markdown_table(
        f"n = {n:,} random codes, k = {k}; time per batch or per single query (median); "
        "GB/s = code bytes scanned per second; ratio = faiss time / this time (> 1: faster than faiss).",
        "| bits | engine | mode | time (ms) | queries/s | GB/s scanned | vs faiss |",
        "|---:|---|---|---:|---:|---:|---:|",
        map(cells, rows),
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    harness.use_threads(args.threads)
    command = harness.command_line("bench_search.py", argv)
    faiss = harness.import_faiss("no faiss column")
    print(f"$ {command}")
    machine = machine_lines()
    print("\n".join(machine))
    if faiss is not None:
        if args.threads:
            faiss.omp_set_num_threads(args.threads)
        print(f"- faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads")
        machine.append(
            f"- faiss {faiss.__version__} `IndexBinaryFlat`, {faiss.omp_get_max_threads()} OpenMP threads"
        )
    rows: list[dict] = []
    for bits in args.bits:
        rows += bench_width(args, bits, faiss)
    harness.publish(
        table(rows, args.k, args.n), args, "bench_search", "Hamming top-k search", command, machine
    )


if __name__ == "__main__":
    main()
