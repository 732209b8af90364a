"""Binary codes through milvus-lite (BIN_FLAT + HAMMING, via ``qama_rs.integrations.milvus``) vs the
in-process qama-rs Hamming search, in one run: insert rate, queries per second (one query per call, and a
batch), and recall@10 of Milvus against the in-process top-10 (must be 1.0: both are exact, ties
resolved by id).

Codes: ``n`` random 384-bit (48-byte, 1-bit x 384 d) codes; queries are stored codes with 15 % of
their bits flipped, so each has real near neighbours (random queries would make every distance
~192 and the top-10 a tie lottery). ``k = 10``. In-process: the codes go into a ``Sign`` index
(``Index.add_codes``, the insert time); code queries are searched with :func:`qama_rs.search`, the same
Hamming kernel over the same codes (an ``Index`` takes float queries).

    python benches/bench_milvus.py            # 1,000,000 codes (about 3 minutes)
    python benches/bench_milvus.py --quick    # 100,000 codes (seconds)

Prints the command, CPU and load; writes its table into ``benches/RESULTS.md`` (its own block per
mode). milvus-lite runs as a separate server process on the same cores, so a busy machine slows it
more than the in-process engine: the load average is recorded at start and end.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import qama_rs
from qama_rs import Quantizer
from qama_rs.integrations.milvus import MilvusIndex

RESULTS = Path(__file__).with_name("RESULTS.md")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 codes instead of 1,000,000")
    parser.add_argument("--n", type=int, default=None, help="number of codes (overrides --quick)")
    parser.add_argument("--bits", type=int, default=384)
    parser.add_argument("--batch-queries", type=int, default=200)
    parser.add_argument("--single-queries", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=20_000, help="rows per Milvus upsert")
    parser.add_argument("--no-write", action="store_true", help="do not update benches/RESULTS.md")
    return parser.parse_args(argv)


def random_codes(rng: np.random.Generator, n: int, words: int) -> np.ndarray:
    return rng.integers(0, np.iinfo(np.uint64).max, size=(n, words), dtype=np.uint64, endpoint=True)


def flip_bits(rng: np.random.Generator, codes: np.ndarray, bits: int, p: float) -> np.ndarray:
    mask = np.packbits(rng.random((len(codes), codes.shape[1] * 64)) < p, axis=1, bitorder="little")
    mask = mask.view("<u8").astype(np.uint64)
    if bits % 64:  # keep the padding bits of the last word zero
        mask[:, -1] &= np.uint64((1 << (bits % 64)) - 1)
    return codes ^ mask


def median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    n = args.n or (100_000 if args.quick else 1_000_000)
    mode = "quick" if n < 1_000_000 else "full"
    load_start = os.getloadavg()
    rng = np.random.default_rng(0)
    quantizer = Quantizer(np.zeros(args.bits, dtype=np.float32), 2)  # 1-bit codes of `bits` dims
    codes = random_codes(rng, n, quantizer.words)
    if args.bits % 64:
        codes[:, -1] &= np.uint64((1 << (args.bits % 64)) - 1)
    nq = args.batch_queries
    queries = flip_bits(rng, codes[rng.choice(n, nq, replace=False)], args.bits, 0.15)

    t = time.perf_counter()
    local = qama_rs.index_factory(args.bits, "Sign")  # the same 1-bit codes, threshold 0
    local.add_codes(codes)
    local_insert = time.perf_counter() - t

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-milvus-") as tmp:
        t = time.perf_counter()
        store = MilvusIndex(quantizer, str(Path(tmp) / "bench.db"), "bench")
        start_s = time.perf_counter() - t
        t = time.perf_counter()
        store.add_codes(codes, batch_size=args.batch_size, checkpoint=None, progress=sys.stderr.isatty())
        milvus_insert = time.perf_counter() - t
        assert store.ntotal == n

        single = queries[: args.single_queries]
        timings: dict[str, dict[str, list[float]]] = {"qama-rs": {}, "milvus-lite": {}}
        results = {}
        engines = (("qama-rs", lambda q, k: qama_rs.search(q, codes, k)), ("milvus-lite", store.search_codes))
        for name, search_codes in engines:
            search_codes(single[:1], 10)  # warm-up (thread pools, segment load)
            times = []
            for q in single:
                t = time.perf_counter()
                search_codes(q[None, :], 10)
                times.append(time.perf_counter() - t)
            timings[name]["single"] = times
            batch_times = []
            for _ in range(3):
                t = time.perf_counter()
                results[name] = search_codes(queries, 10)
                batch_times.append(time.perf_counter() - t)
            timings[name]["batch"] = batch_times
        store.close()

    d_local, i_local = results["qama-rs"]
    d_milvus, i_milvus = results["milvus-lite"]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i_milvus, i_local, strict=True)])
    same = bool(np.array_equal(i_milvus, i_local) and np.array_equal(d_milvus, d_local))
    load_end = os.getloadavg()

    for name, insert in (("qama-rs", local_insert), ("milvus-lite", milvus_insert)):
        single_ms = median_ms(timings[name]["single"])
        batch_ms = median_ms(timings[name]["batch"])
        rows.append(
            f"| {name} | {n / insert:,.0f} | {insert:.2f} | {single_ms:.2f} | {1e3 / single_ms:,.0f} | "
            f"{batch_ms:.1f} | {nq / (batch_ms / 1e3):,.0f} | "
            f"{1.0 if name == 'qama-rs' else recall:.3f} |"
        )

    given = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", f"benches/{Path(__file__).name}", *given])
    import pymilvus

    lines = [
        f"### Binary codes in milvus-lite vs in-process ({mode} run, {time.strftime('%Y-%m-%d')})",
        "",
        f"`{command}`",
        "",
        f"- CPU: {qama_rs.cpu_description()}",
        f"- qama-rs {qama_rs.__version__} (Hamming kernels `{qama_rs.best_isa()}`), pymilvus "
        f"{pymilvus.__version__}, milvus-lite 2.5.1 (BIN_FLAT, HAMMING, a server process on the same "
        f"cores), Python {platform.python_version()}, NumPy {np.__version__}",
        f"- load average (1/5/15 min) at start: {' / '.join(f'{v:.1f}' for v in load_start)}; at end: "
        f"{' / '.join(f'{v:.1f}' for v in load_end)}",
        f"- n = {n:,} random {args.bits}-bit codes ({quantizer.bytes_per_vector} B), k = 10; queries: "
        f"stored codes with 15 % of bits flipped; milvus-lite upserts in columnar batches of "
        f"{args.batch_size:,}; server start {start_s:.1f} s (not in the insert time)",
        f"- Milvus top-10 identical to the in-process top-10 (ids and distances, every query): {same}",
        *(
            [
                f"- the {os.cpu_count()} cores were shared with other jobs (load above): absolute times "
                "are inflated; compare the two engines within this run"
            ]
            if max(load_start[0], load_end[0]) > (os.cpu_count() or 1)
            else []
        ),
        "",
        "| engine | insert codes/s | insert (s) | one query (ms) | one-query QPS | batch "
        f"{nq} (ms) | batch QPS | recall@10 vs in-process |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_block(mode, text)


def write_block(mode: str, text: str) -> None:
    """Replaces this benchmark's own block for ``mode`` in RESULTS.md, or appends it."""
    begin, end = f"<!-- bench_milvus:{mode}:begin -->", f"<!-- bench_milvus:{mode}:end -->"
    block = f"{begin}\n{text}\n{end}"
    current = RESULTS.read_text() if RESULTS.exists() else ""
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        _, tail = rest.split(end, 1)
        updated = head + block + tail
    else:
        updated = current.rstrip("\n") + "\n\n" + block + "\n"
    qama_rs.engine.atomic_write(RESULTS, lambda f: f.write(updated.encode()))


if __name__ == "__main__":
    main()
