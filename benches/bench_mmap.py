"""Load time and resident memory of a large factory index: memory-mapped vs full read.

    python benches/bench_mmap.py [--n 10000000] [--spec Thermo1] [--dims 384] [--path /tmp/qama_mmap.qidx]

Builds an index of ``--n`` random codes (``Thermo1`` at 384 dimensions: 48 bytes a vector, the issue's
10M x 48-byte case; ``--spec Binary`` gives 48-byte asymmetric codes; codes are random, the search cost
does not depend on them), saves it, then in a fresh
process per mode loads it with ``Index.load(path, mmap=True)`` and ``Index.load(path)`` and reports the
wall time of the load, the process's resident memory after it (anonymous and file-backed pages apart,
from /proc/self/status), and the same after one query has scanned every code. The page cache is left
as it is (the file was just written, so it is warm): the mapped load's cost is reading the header, not
the disk. Prints a Markdown table for benches/RESULTS.md with the command and the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

_CHILD = r"""
import json, sys, time
import numpy as np

def status():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) * 1024
    return fields

from qama_rs import Index
path, use_mmap, dims = sys.argv[1], sys.argv[2] == "mmap", int(sys.argv[3])
before = status()
t0 = time.perf_counter()
index = Index.load(path, mmap=use_mmap)
load_s = time.perf_counter() - t0
after_load = status()
q = np.random.default_rng(0).standard_normal((1, dims)).astype(np.float32)
t0 = time.perf_counter()
D, I = index.search(q, 10)
search_s = time.perf_counter() - t0
after_search = status()
print(json.dumps({"ntotal": index.ntotal, "load_s": load_s, "search_s": search_s, "before": before,
                  "after_load": after_load, "after_search": after_search}))
"""


def build(path: str, n: int, spec: str, dims: int, seed: int) -> None:
    from qama_rs import index_factory
    from qama_rs.index.codecs import PerDimCodec, ThermoCodec

    rng = np.random.default_rng(seed)
    index = index_factory(dims, spec)
    if not index.is_trained:
        index.train(rng.standard_normal((2048, dims)).astype(np.float32))
    codec = index.codec
    if isinstance(codec, ThermoCodec):
        words = codec.quantizer.words
        codes = rng.integers(0, np.iinfo(np.uint64).max, size=(n, words), dtype=np.uint64, endpoint=True)
    elif isinstance(codec, PerDimCodec) and codec.levels == 1 << codec.bits:
        codes = rng.integers(0, 256, size=(n, codec.row_units), dtype=np.uint8)  # packed: every byte is valid
    else:
        raise SystemExit(f"--spec {spec}: the bench generates thermometer or full-range per-dimension codes")
    index.add_codes(codes)
    del codes
    index.save(path)


def measure(path: str, mode: str, dims: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, path, mode, str(dims)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--spec", default="Thermo1")
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--path", default="/tmp/qama_mmap.qidx")
    parser.add_argument("--repeat", type=int, default=3, help="loads per mode (the best is reported)")
    parser.add_argument("--keep", action="store_true", help="keep the index file")
    args = parser.parse_args(argv)
    from qama_rs import cpu_description

    command = "python benches/bench_mmap.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    t0 = time.perf_counter()
    build(args.path, args.n, args.spec, args.dims, 0)
    size = os.path.getsize(args.path)
    print(f"built {args.path}: {args.n} x {args.spec} ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    rows = []
    try:
        for mode in ("mmap", "full"):
            runs = [measure(args.path, mode, args.dims) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["load_s"])
            rows.append((mode, best))
    finally:
        if not args.keep:
            os.unlink(args.path)
    mib = 1 << 20
    print(f"`{command}`  \nCPU: {cpu_description()}; file {size / mib:.0f} MiB ({args.n:,} vectors, spec `{args.spec}`, "
          f"{args.dims} dims); best of {args.repeat} loads per mode, page cache warm; RSS from /proc/self/status "
          "(anonymous + file-backed), the interpreter with numpy and qama_rs imported already counted in 'before'.\n")
    print("| load | load time | RSS before | RSS after load (anon + file) | first search (1 query, k=10) | RSS after search (anon + file) |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode, r in rows:
        b, a, s = r["before"], r["after_load"], r["after_search"]
        print(
            f"| {'`Index.load(path, mmap=True)`' if mode == 'mmap' else '`Index.load(path)` (full read + checksums)'} "
            f"| {r['load_s'] * 1e3:.1f} ms | {b['VmRSS'] / mib:.0f} MiB "
            f"| {a['VmRSS'] / mib:.0f} MiB ({a['RssAnon'] / mib:.0f} + {a['RssFile'] / mib:.0f}) "
            f"| {r['search_s'] * 1e3:.0f} ms | {s['VmRSS'] / mib:.0f} MiB ({s['RssAnon'] / mib:.0f} + {s['RssFile'] / mib:.0f}) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
