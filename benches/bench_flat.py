"""Flat scans, side by side in one run: qama-rs ``Flat`` (float32), ``Flat16`` (float16 rows) and ``Int8``
(one byte per value) against faiss ``IndexFlatIP``, faiss ``IndexScalarQuantizer`` 8-bit (``SQ8``) and NumPy
(``q @ x.T`` + ``argpartition``) on the same real vectors; recall@10 against the exact float32 top-10.

Data: the wiki-50k + wiki-150k-b all-MiniLM-L6-v2 embeddings in ``../shared`` (1,000 held out as queries, as
``bench_ivf.py`` splits them), searched as corpora of the first 2,000, 20,000 and 199,000 rows (a RAG store's
sizes; ``--quick``: 2,000 and 20,000 of wiki-50k). ``k = 10``. One query at a time: a loop of one-query calls
over the first ``--singles`` queries; batch: all 1,000 in one call. Each engine's pair of timings is taken in
``--rounds`` rounds with the engines in turn (the order swapped each round, 0.3 s idle before each timing:
BLAS and OpenMP threads spin after a product) and the median kept, so the load swings of a shared VM fall on
all of them alike. Every engine uses the machine's threads (qama-rs its rayon pool, faiss OpenMP, NumPy its
BLAS). The ids of ``Flat`` are cross-checked against faiss (near-ties may swap). ``Int8`` is compared with
``SQ8`` (both 384 bytes a row: per-dimension ranges in 256 steps), the rest with ``IndexFlatIP``.

    python benches/bench_flat.py            # three corpus sizes (a few minutes)
    python benches/bench_flat.py --quick    # two sizes of wiki-50k (seconds)

Prints the command, CPU and load; writes the table into ``benches/RESULTS.md`` (its own block per mode).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import qama_rs  # noqa: E402
from ivf_common import QUIET_S, K, load_data, recall10  # noqa: E402
from qama_rs import _core  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="wiki-50k only, corpora of 2,000 and 20,000 rows")
    p.add_argument("--singles", type=int, help="one-query calls timed per round (default 200; 50 quick)")
    p.add_argument(
        "--rounds", type=int, help="rounds of every engine in turn, median kept (default 3; 1 quick)"
    )
    return harness.parse_common_args(p, argv, singles=(50, 200), rounds=(1, 3))


def numpy_search(x: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    def search(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = q @ x.T
        part = np.argpartition(-s, K - 1, axis=1)[:, :K]
        top = np.take_along_axis(s, part, 1)
        order = np.argsort(-top, axis=1)
        return np.take_along_axis(top, order, 1), np.take_along_axis(part, order, 1)

    return search


def seconds_per_query(
    search: Callable[[np.ndarray], object], queries: np.ndarray, mode: str, singles: int
) -> float:
    # Idle first: OpenBLAS and OpenMP threads spin for ~0.1 s after a product and would take a core
    # from the engine timed next.
    time.sleep(QUIET_S)
    if mode == "batch":
        start = time.perf_counter()
        search(queries)
        return (time.perf_counter() - start) / len(queries)
    start = time.perf_counter()
    for i in range(singles):
        search(queries[i : i + 1])
    return (time.perf_counter() - start) / singles


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = harness.command_line("bench_flat.py", argv)
    faiss = harness.import_faiss("no faiss rows (ratios need them)")
    corpus, queries, what = load_data(args.quick, None)
    x_all = corpus.array()
    machine = [
        f"- CPU: {qama_rs.cpu_description()}",
        f"- engine: qama-rs {qama_rs.__version__}, isa {qama_rs.best_isa()}, {_core.num_threads()} rayon threads",
        f"- NumPy {np.__version__}"
        + (f", faiss {faiss.__version__} ({faiss.omp_get_max_threads()} OpenMP threads)" if faiss else ""),
        harness.load_line(),
        f"- data: {what}; k = {K}; one query at a time over the first {args.singles} queries, batch = all "
        f"{len(queries):,}; median of {args.rounds} rounds, the engines in turn",
    ]
    print(f"$ {command}")
    print("\n".join(machine))
    sizes = [2_000, 20_000] if args.quick else [2_000, 20_000, len(x_all)]
    rows = []
    for n in sizes:
        x = np.ascontiguousarray(x_all[:n])
        # name -> (search, bytes per row, the faiss engine it is compared with)
        engines: dict[str, tuple[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], int, str]] = {}
        flat_peer, sq8_peer = "faiss `IndexFlatIP`", "faiss `SQ8`"
        for spec, peer in (("Flat", flat_peer), ("Flat16", flat_peer), ("Int8", sq8_peer)):
            index = qama_rs.index_factory(x.shape[1], spec)
            index.train(x)
            index.add(x)
            engines[f"qama-rs `{spec}`"] = (
                lambda q, index=index: index.search(q, K),
                int(index.bytes_per_vector),
                peer,
            )
        if faiss is not None:
            flat = faiss.IndexFlatIP(x.shape[1])
            flat.add(x)
            engines[flat_peer] = (lambda q, flat=flat: flat.search(q, K), 4 * x.shape[1], flat_peer)
            sq8 = faiss.IndexScalarQuantizer(
                x.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
            sq8.train(x)
            sq8.add(x)
            engines[sq8_peer] = (lambda q, sq8=sq8: sq8.search(q, K), sq8.code_size, sq8_peer)
        engines["NumPy `q @ x.T`"] = (numpy_search(x), 4 * x.shape[1], flat_peer)
        truth = numpy_search(x)(queries)[1]
        recall = {name: recall10(search(queries)[1], truth) for name, (search, _, _) in engines.items()}
        if faiss is not None:
            ours, theirs = engines["qama-rs `Flat`"][0](queries)[1], engines[flat_peer][0](queries)[1]
            agree = float(np.mean(ours == theirs))
            print(f"  n = {n:,}: qama-rs Flat and faiss IndexFlatIP ids agree on {agree:.2%}")
            if agree < 0.99:
                sys.exit("qama-rs Flat and faiss IndexFlatIP disagree; the benchmark is void")
        for mode in ("single", "batch"):
            times: dict[str, list[float]] = {name: [] for name in engines}
            for search, _, _ in engines.values():
                search(queries[:2])  # warm
            for r in range(args.rounds):
                names = list(engines) if r % 2 == 0 else list(reversed(engines))
                for name in names:
                    times[name].append(seconds_per_query(engines[name][0], queries, mode, args.singles))
            for name, ts in times.items():
                t, (_, row_bytes, peer) = statistics.median(ts), engines[name]
                ratio = f"{statistics.median(times[peer]) / t:.2f}x" if peer in times else ""
                rows.append(
                    [
                        f"{n:,}",
                        name,
                        str(row_bytes),
                        f"{recall[name]:.3f}",
                        "one query" if mode == "single" else f"batch {len(queries):,}",
                        f"{t * 1e6:,.1f}",
                        f"{1 / t:,.0f}",
                        f"{ratio} ({peer})" if ratio and peer != name else "",
                    ]
                )
                print(f"  n = {n:>7,} {mode:<6} {name:<24} {t * 1e6:10.1f} us/query  {ratio}", flush=True)
    lines = harness.markdown_table(
        "µs per query (batch: the call's time / its queries); recall@10 against the exact float32 top-10 (NumPy); "
        "vs faiss = the time of the faiss index named / this time (> 1: faster).",
        "| rows | engine | B/row | R@10 | mode | µs per query | queries/s | vs faiss |",
        "|---:|---|---:|---:|---|---:|---:|---|",
        rows,
    )
    harness.publish(
        lines,
        args,
        "bench_flat",
        "Flat scans: Flat / Flat16 / Int8 beside faiss IndexFlatIP / SQ8 and NumPy",
        command,
        machine,
    )


if __name__ == "__main__":
    main()
