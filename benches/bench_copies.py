"""What the binding's thread-safety copies cost: the same search with a writeable database (the
binding copies it before releasing the GIL) and with a read-only view (read in place, as the
engine's indexes pass their stored codes).

    python benches/bench_copies.py [--n 1000000] [--reps 7]

Prints the CPU, then the best of ``reps`` wall times per case (ms).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qama_rs import _core, cpu_description


def best_ms(call, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def read_only(array):
    view = array.view()
    view.flags.writeable = False
    return view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    n, reps = args.n, args.reps
    rng = np.random.default_rng(0)
    print(f"cpu: {cpu_description()}; threads: {_core.num_threads()}; n = {n}")
    db = rng.integers(0, 2**63, (n, 6), dtype=np.uint64)
    for nq in (1, 64):
        q = db[:nq].copy()
        w = best_ms(lambda q=q: _core.search(q, db, 10), reps)
        r = best_ms(lambda q=q: _core.search(q, read_only(db), 10), reps)
        print(f"hamming search, 6 words, nq={nq:>2}: writeable {w:7.1f} ms  read-only {r:7.1f} ms")
    packed = rng.integers(0, 256, (n, 96), dtype=np.uint8)
    blocks = _core.asym_to_blocks(packed)
    recon = rng.normal(size=(384, 4)).astype(np.float32)
    for nq in (1, 16):
        q = rng.normal(size=(nq, 384)).astype(np.float32)
        w = best_ms(lambda q=q: _core.asym_search_blocked(q, recon, blocks, n, 10, "avx2"), reps)
        r = best_ms(lambda q=q: _core.asym_search_blocked(q, recon, read_only(blocks), n, 10, "avx2"), reps)
        print(f"asym blocked 2-bit 384-d, nq={nq:>2}: writeable {w:7.1f} ms  read-only {r:7.1f} ms")
    print(f"numpy copy of the {blocks.nbytes / 2**20:.0f} MiB blocks: {best_ms(blocks.copy, reps):.1f} ms")


if __name__ == "__main__":
    main()
