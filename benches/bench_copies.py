"""What the thread-safety copies cost: the same search with a writeable database and with a read-only view.

``qama_rs.search`` (Hamming) copies a writeable database before the engine reads it without the GIL (so
another thread writing it cannot change a running call) and reads a read-only one in place, as the
index passes its stored codes. A ``_core.Store`` never copies: it keeps a reference and reads the
arrays in place whatever their flag (the index never writes them during a call), so the asymmetric
block rows (``_core.TableCodec.recon(..., "blocks")`` over a ``Store``) should time the same either way.

    python benches/bench_copies.py [--n 1000000] [--reps 7] [--isa avx2]

``--isa`` forces the kernels' instruction-set level (``qama_rs.available_isas()``; default: the detected
one; earlier versions of this bench named the asymmetric kernel ``"avx2"``). Prints the CPU, then the
best of ``reps`` wall times per case (ms).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import qama_rs
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


def store(rows: np.ndarray, n: int) -> _core.Store:
    """One list of ``n`` rows in one segment (the second, the index's in-memory tail, empty)."""
    empty = np.zeros(0, dtype=rows.dtype)
    return _core.Store([rows, empty], np.array([[0, n, 0, 0]], dtype=np.uint64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--isa", help="kernel level (qama_rs.available_isas(); default: the detected one)")
    args = parser.parse_args()
    if args.isa is not None and args.isa not in qama_rs.available_isas():
        parser.error(f"--isa {args.isa}: this CPU runs {', '.join(qama_rs.available_isas())}")
    n, reps, isa = args.n, args.reps, args.isa
    rng = np.random.default_rng(0)
    print(f"cpu: {cpu_description()}; isa: {isa or _core.best_isa()}; n = {n}")
    db = rng.integers(0, 2**63, (n, 6), dtype=np.uint64)
    for nq in (1, 64):
        q = db[:nq].copy()
        w = best_ms(lambda q=q: qama_rs.search(q, db, 10, isa=isa), reps)
        r = best_ms(lambda q=q: qama_rs.search(q, read_only(db), 10, isa=isa), reps)
        print(f"hamming search, 6 words, nq={nq:>2}: writeable {w:7.1f} ms  read-only {r:7.1f} ms")
    packed = rng.integers(0, 256, (n, 96), dtype=np.uint8)
    blocks = _core.to_blocks(packed)
    recon = rng.normal(size=(384, 4)).astype(np.float32)
    codec = _core.TableCodec.recon(recon, "blocks", isa)
    for nq in (1, 16):
        q = rng.normal(size=(nq, 384)).astype(np.float32)
        # The store is built per call, as a call that is handed a new array would.
        w = best_ms(lambda q=q: codec.search(q, store(blocks, n), 10), reps)
        r = best_ms(lambda q=q: codec.search(q, store(read_only(blocks), n), 10), reps)
        print(f"asym blocked 2-bit 384-d, nq={nq:>2}: writeable {w:7.1f} ms  read-only {r:7.1f} ms")
    print(f"numpy copy of the {blocks.nbytes / 2**20:.0f} MiB blocks: {best_ms(blocks.copy, reps):.1f} ms")


if __name__ == "__main__":
    main()
