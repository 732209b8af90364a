"""Asymmetric search, side by side in one run: qama-rs 2-bit asymmetric codes vs the 1-bit Hamming
scan of the same corpus (qama-rs) vs faiss ``IndexFlatIP`` (float32) and faiss ``IndexRaBitQ``.

Random 2-bit codes (uniform), ``d = 384``, stored in a ``qama_rs.index_factory(d, "LloydMax2")`` index
(``add_codes``): its reconstruction table is 2-bit Lloyd-Max Gaussian levels times a per-dimension σ
plus a median, learnt from Gaussian training rows with random σ and median (what a training-free
quantizer hands over); Gaussian queries; ``k = 10``. The float32 corpus for faiss is the codes'
reconstruction, so ``IndexFlatIP`` computes the same scores as the asymmetric kernel (up to float32
rounding) and the top-k ids are cross-checked. RaBitQ (1 bit per dimension plus per-vector factors,
4-bit queries) is an approximate index: its recall@k against the exact asymmetric top-k is reported.

The qama-rs rows: ``avx2 blocks`` is ``Index.search`` as users call it (the 32-row block layout, the
quantized AVX2 ``vpshufb`` kernel at the detected instruction-set level); ``float LUT rows`` is the
same codes row-major scanned with the float byte tables (``_core.TableCodec.recon(recon, "rows")``, the
plain exact reference path). Kernels are chosen by instruction-set level now, not by name:
``--isa scalar avx2`` adds single-query rows of both layouts forced to those levels
(``_core.TableCodec.recon(..., isa=level)``; ``scalar`` is the portable twin of each kernel).

The issue's target: one query over 1M x 384-d 2-bit codes within 2x of the 1-bit Hamming scan.

    python benches/bench_asym.py            # 1,000,000 codes, 100-query batch (a few minutes)
    python benches/bench_asym.py --quick    # 100,000 codes, smoke run (seconds)

Prints the command, CPU and load; writes the table into ``benches/RESULTS.md`` (its own block per
mode). The machine may be shared: timings are medians, and the load average is recorded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

import harness
import qama_rs
from qama_rs import _core


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small smoke run: n=100,000, batch=16")
    p.add_argument("--n", type=int, help="documents (default 1,000,000; 100,000 with --quick)")
    p.add_argument("--dims", type=int, default=384)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch", type=int, help="queries per batch (default 100; 16 with --quick)")
    p.add_argument("--singles", type=int, help="single-query timings, median kept (default 20; 5 quick)")
    p.add_argument("--repeats", type=int, help="batch timings, median kept (default 3; 1 quick)")
    p.add_argument("--threads", type=int, help="threads for every engine (default: all cores)")
    p.add_argument("--no-faiss", action="store_true", help="skip faiss (IndexFlatIP needs 4*n*d bytes)")
    p.add_argument(
        "--isa",
        nargs="+",
        default=[],
        help="also time single queries of both layouts at these kernel levels (qama_rs.available_isas())",
    )
    args = harness.parse_common_args(
        p, argv, n=(100_000, 1_000_000), batch=(16, 100), singles=(5, 20), repeats=(1, 3)
    )
    for isa in args.isa:
        if isa not in qama_rs.available_isas():
            p.error(f"--isa {isa}: this CPU runs {', '.join(qama_rs.available_isas())}")
    return args


def single_time(search: Callable[[np.ndarray], object], queries: np.ndarray) -> float:
    """Median over queries of one query's time (each query timed once, after a warm-up)."""
    search(queries[:1])
    return statistics.median(harness.median_time(lambda q=q: search(q[None]), 1) for q in queries)


def make_index(args: argparse.Namespace) -> tuple[qama_rs.Index, np.ndarray, np.ndarray, float]:
    """A ``LloydMax2`` index holding random codes: ``(index, codes uint8 (n, d), queries, seconds of
    add_codes)``; the codes are written into the block layout as they are added."""
    rng = np.random.default_rng(args.seed)
    sigma = rng.uniform(0.02, 0.08, size=args.dims).astype(np.float32)
    median = rng.uniform(-0.02, 0.02, size=args.dims).astype(np.float32)
    index = qama_rs.index_factory(args.dims, "LloydMax2")
    index.train(rng.standard_normal((4096, args.dims), dtype=np.float32) * sigma + median)
    codes = rng.integers(0, 4, size=(args.n, args.dims), dtype=np.uint8)
    start = time.perf_counter()
    index.add_codes(codes)
    added = time.perf_counter() - start
    queries = rng.normal(size=(args.batch, args.dims)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return index, codes, queries, added


def table_search(
    codes: np.ndarray, recon: np.ndarray, layout: str, isa: str | None
) -> Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    """A search of 2-bit ``codes`` in ``layout`` at kernel level ``isa`` through the binding (what the
    index runs, minus its Python layer): ``fn(queries, k) -> (scores, rows)``."""
    packed = _core.pack_codes(codes, 2)
    rows = _core.to_blocks(packed) if layout == "blocks" else packed.reshape(-1)
    rows.flags.writeable = False  # the store reads it in place
    store = _core.Store(
        [rows, np.zeros(0, dtype=np.uint8)], np.array([[0, len(codes), 0, 0]], dtype=np.uint64)
    )
    codec = _core.TableCodec.recon(recon, layout, isa)
    return lambda q, k: codec.search(q, store, k)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    harness.use_threads(args.threads)
    command = harness.command_line("bench_asym.py", argv)
    faiss = None if args.no_faiss else harness.import_faiss("no faiss rows")
    machine = [
        f"- CPU: {qama_rs.cpu_description()}",
        f"- engine: qama-rs {qama_rs.__version__}, isa {qama_rs.best_isa()} (available: "
        f"{', '.join(qama_rs.available_isas())}), {_core.num_threads()} rayon threads; "
        f"detected: {_core.cpu_features()}",
        harness.load_line(),
    ]
    if faiss is not None:
        if args.threads:
            faiss.omp_set_num_threads(args.threads)
        machine.append(f"- faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads")
    print(f"$ {command}")
    print("\n".join(machine))

    index, codes, queries, added = make_index(args)
    recon = index.codec.recon  # (d, 4) float32: what the index scores with
    singles = queries[: args.singles]
    rows: list[dict] = []

    def record(engine: str, mode: str, seconds: float, bytes_per_doc: float, note: str = "") -> None:
        nq = args.batch if mode.startswith("batch") else 1
        rows.append(
            {
                "engine": engine,
                "mode": mode,
                "ms": 1e3 * seconds,
                "qps": nq / seconds,
                "gbps": args.n * bytes_per_doc * nq / seconds / 1e9,
                "note": note,
            }
        )
        print(f"  {engine:<34} {mode:<10} {1e3 * seconds:10.2f} ms  {note}", flush=True)

    # ---- qama-rs asymmetric (2-bit codes, float queries): the index, then the row layout
    row_bytes = index.bytes_per_vector
    index.search(queries[:1], args.k)  # builds the engine codec and the store view once
    record(
        "qama-rs asym 2-bit (avx2 blocks)",
        f"batch {args.batch}",
        harness.median_time(lambda: index.search(queries, args.k), args.repeats),
        row_bytes,
        f"Index.search, isa {index.codec.engine().isa}; add_codes into blocks {added * 1e3:.0f} ms",
    )
    record(
        "qama-rs asym 2-bit (avx2 blocks)",
        "single",
        single_time(lambda q: index.search(q, args.k), singles),
        row_bytes,
    )
    float_rows = table_search(codes, recon, "rows", None)
    record(
        "qama-rs asym 2-bit (float LUT rows)",
        "single",
        single_time(lambda q: float_rows(q, args.k), singles[: max(1, len(singles) // 4)]),
        row_bytes,
        "the plain per-byte float table scan (baseline)",
    )
    scores, ids = index.search(queries, args.k)
    want_s, want_i = float_rows(queries[:2], args.k)
    if not (np.array_equal(want_i, ids[:2]) and np.array_equal(want_s, scores[:2])):
        sys.exit("the block and row kernels disagree; the benchmark is void")
    for isa in args.isa:
        for layout, name in (("blocks", "blocks"), ("rows", "float LUT rows")):
            search = table_search(codes, recon, layout, isa)
            got_s, got_i = search(queries[:2], args.k)
            if not (np.array_equal(got_i, ids[:2]) and np.array_equal(got_s, scores[:2])):
                sys.exit(f"the {layout} kernel at isa {isa} disagrees with the index; the benchmark is void")
            record(
                f"qama-rs asym 2-bit ({name}, isa={isa})",
                "single",
                single_time(lambda q, s=search: s(q, args.k), singles[: max(1, len(singles) // 4)]),
                row_bytes,
                "_core.TableCodec.recon, forced level",
            )
    index = None  # free the codes before the Hamming and faiss corpora

    # ---- qama-rs 1-bit Hamming over the same number of documents (384 bits = 48 bytes)
    rng = np.random.default_rng(args.seed + 1)
    words = -(-args.dims // 64)
    hamming_db = rng.integers(0, 2**64, size=(args.n, words), dtype=np.uint64)
    # Read-only: the engine reads it in place (a writeable array is copied per call, see bench_copies.py).
    hamming_db.flags.writeable = False
    hamming_q = rng.integers(0, 2**64, size=(args.batch, words), dtype=np.uint64)
    hamming_bytes = args.dims / 8
    record(
        "qama-rs Hamming 1-bit",
        f"batch {args.batch}",
        harness.median_time(
            lambda: qama_rs.search(hamming_q, hamming_db, args.k, nbits=args.dims), args.repeats
        ),
        hamming_bytes,
    )
    record(
        "qama-rs Hamming 1-bit",
        "single",
        single_time(
            lambda q: qama_rs.search(q, hamming_db, args.k, nbits=args.dims), hamming_q[: args.singles]
        ),
        hamming_bytes,
    )
    hamming_db = None  # free the memory before faiss builds its indexes

    # ---- faiss on the float32 reconstruction
    if faiss is not None:
        vectors = recon[np.arange(args.dims), codes]  # (n, d) float32: what the codes stand for
        del codes
        flat = faiss.IndexFlatIP(args.dims)
        flat.add(vectors)
        record(
            "faiss IndexFlatIP (float32)",
            f"batch {args.batch}",
            harness.median_time(lambda: flat.search(queries, args.k), args.repeats),
            4 * args.dims,
        )
        record(
            "faiss IndexFlatIP (float32)",
            "single",
            single_time(lambda q: flat.search(q, args.k), singles),
            4 * args.dims,
        )
        flat_s, flat_i = flat.search(queries, args.k)
        agree = float(np.mean(flat_i == ids))
        close = np.allclose(flat_s, scores, atol=1e-4)
        print(
            f"  IndexFlatIP vs asym: ids agree on {agree:.1%} (near-ties may swap), scores within 1e-4: {close}"
        )
        if not close:
            sys.exit("faiss IndexFlatIP and qama-rs asymmetric scores differ; the benchmark is void")
        flat = None
        if hasattr(faiss, "IndexRaBitQ"):
            rabitq = faiss.IndexRaBitQ(args.dims, faiss.METRIC_INNER_PRODUCT)
            start = time.perf_counter()
            rabitq.train(vectors[: min(args.n, 100_000)])
            rabitq.add(vectors)
            built = time.perf_counter() - start
            rabitq.qb = 4  # 4-bit queries, as faiss recommends
            _, rq_i = rabitq.search(queries, args.k)
            recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(rq_i, ids, strict=True)])
            note = f"qb=4, recall@{args.k} vs exact {recall:.2f}, train+add {built:.1f} s"
            record(
                "faiss IndexRaBitQ (1-bit + factors)",
                f"batch {args.batch}",
                harness.median_time(lambda: rabitq.search(queries, args.k), args.repeats),
                rabitq.code_size,
                note,
            )
            record(
                "faiss IndexRaBitQ (1-bit + factors)",
                "single",
                single_time(lambda q: rabitq.search(q, args.k), singles),
                rabitq.code_size,
            )
            rabitq = None
        else:
            print("  this faiss has no IndexRaBitQ: no RaBitQ rows")

    harness.publish(table(rows, args), args, "bench_asym", "Asymmetric 2-bit search", command, machine)


def table(rows: list[dict], args: argparse.Namespace) -> list[str]:
    hamming = {r["mode"]: r["ms"] for r in rows if r["engine"] == "qama-rs Hamming 1-bit"}

    def cells(r: dict) -> list[str]:
        base = hamming.get(r["mode"])
        ratio = f"{r['ms'] / base:.2f}x" if base else "—"
        numbers = [f"{r['ms']:.1f}", f"{r['qps']:,.0f}", f"{r['gbps']:.1f}"]
        return [r["engine"], r["mode"], *numbers, ratio, r["note"]]

    return harness.markdown_table(
        f"n = {args.n:,} documents, d = {args.dims}, k = {args.k}; time per batch or per single query "
        "(median); GB/s = bytes of the stored representation scanned per second; "
        "vs Hamming = this time / the 1-bit Hamming scan's time in the same mode (target for one "
        "query: at most 2x).",
        "| engine | mode | time (ms) | queries/s | GB/s scanned | vs Hamming | note |",
        "|---|---|---:|---:|---:|---:|---|",
        map(cells, rows),
    )


if __name__ == "__main__":
    main()
