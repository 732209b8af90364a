"""Peak memory of training and adding 200k x 384 float32 (293 MiB) with every codec family.

    python benches/bench_memory.py [--rows 200000] [--spec Thermo1 --spec ...]

Each spec runs three times, each in a fresh subprocess (peaks never mix):

* ``index``: ``index_factory(384, spec)``, ``train(x)``, ``add(x)`` — the whole library;
* ``codec``: the codec alone (``Quantizer.fit`` + ``Quantizer.encode`` for the thermometer specs, the
  ``qama_rs.quantizers`` object's ``fit`` + ``encode`` (+ ``row_scale``) for the others);
  ``index - codec`` is the index layer's own overhead (id buffers, stored codes, copies);
* ``fit``: the codec's ``fit`` alone (training).

The input is the real embeddings ``wiki-150k-b`` + ``wiki-50k`` (all-MiniLM-L6-v2, float16 on disk,
read in chunks straight into one float32 array, so loading leaves no peak behind). "extra" is the peak
RSS (``getrusage(RUSAGE_SELF).ru_maxrss``) minus the RSS once the input is loaded and BLAS warmed up;
the bar is the input's own size. Prints the command, the CPU and a table (MiB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "unlabelled")
FILES = ("wiki-150k-b/all-MiniLM-L6-v2.npy", "wiki-50k/all-MiniLM-L6-v2.npy")
SPECS = (
    "Thermo1",
    "Thermo2",
    "Hybrid",
    "LloydMax2",
    "Binary",
    "Int8",
    "pca_alloc_scaled(budget_bytes=48)",
    "pca_nibble_scaled(budget_bytes=48)",
    "pca_pq(m=24)",
)
_CHUNK_ROWS = 8192
MIB = 2**20


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def load_input(rows: int, data: str) -> np.ndarray:
    """The first ``rows`` rows of the concatenated files as one float32 array, read chunk by chunk
    (no memory map: its resident pages would count towards the peak and then vanish)."""
    out = np.empty((rows, 384), dtype=np.float32)
    done = 0
    for name in FILES:
        with open(os.path.join(data, name), "rb") as f:
            read_header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }
            shape, fortran, dtype = read_header[np.lib.format.read_magic(f)](f)
            if fortran or len(shape) != 2 or shape[1] != 384:
                raise SystemExit(f"{name}: expected a C-ordered (n, 384) array, got {shape}")
            for start in range(0, shape[0], _CHUNK_ROWS):
                take = min(_CHUNK_ROWS, shape[0] - start, rows - done)
                if take <= 0:
                    break
                chunk = np.fromfile(f, dtype=dtype, count=take * 384).reshape(take, 384)
                out[done : done + take] = chunk
                done += take
    if done < rows:
        raise SystemExit(f"the input files hold {done} rows, fewer than --rows {rows}")
    return out


def _codec_only(spec: str, x: np.ndarray, encode: bool = True) -> None:
    """Fit (and encode) with the codec object alone (no index around it): the object the index registry
    builds for the spec's codec stage."""
    from qama_rs.engine.quantizer import Quantizer
    from qama_rs.index.registry import build_pipeline

    thermo = {"Thermo1": "1bit", "Thermo1.5": "1.5bit", "Thermo2": "2bit", "Hybrid": "hybrid"}
    if spec in thermo:
        quantizer = Quantizer.fit(x, thermo[spec])
        if encode:
            quantizer.encode(x)
        return
    pipeline = build_pipeline(spec)
    codec = getattr(pipeline.codec, "impl", None)
    if pipeline.transforms or pipeline.refine is not None or pipeline.nlist is not None or codec is None:
        raise SystemExit(f"no codec-only run for spec {spec!r}")
    codec.fit(x)
    if encode:
        codec.encode(x)
        if hasattr(codec, "row_scale"):
            codec.row_scale(x)


def child(spec: str, mode: str, rows: int, data: str) -> None:
    import qama_rs

    x = load_input(rows, data)
    # Warm BLAS up (its per-thread buffers) so they count in the baseline, not in the codec's peak.
    a = np.ones((512, 512), dtype=np.float32)
    (a @ a, a.astype(np.float64) @ a.astype(np.float64), np.linalg.eigh(a[:384, :384].astype(np.float64)))
    del a
    base = _rss_bytes()
    start = time.perf_counter()
    if mode == "index":
        index = qama_rs.index_factory(384, spec)
        index.train(x)
        index.add(x)
    else:
        _codec_only(spec, x, encode=mode == "codec")
    seconds = time.perf_counter() - start
    peak = _peak_bytes()
    print(
        json.dumps(
            {
                "spec": spec,
                "mode": mode,
                "input": x.nbytes,
                "base": base,
                "peak": peak,
                "extra": peak - base,
                "seconds": seconds,
                "package": os.path.dirname(qama_rs.__file__),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--spec", action="append", help="a spec to measure (repeatable; default: all)")
    parser.add_argument(
        "--data", default=os.path.normpath(DATA), help="folder holding wiki-150k-b and wiki-50k"
    )
    parser.add_argument("--child", nargs=2, metavar=("SPEC", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.rows, args.data)
        return
    from qama_rs.engine.cpu import cpu_description

    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"cpu: {cpu_description()}")
    print(f"input: {args.rows} x 384 float32 = {args.rows * 384 * 4 / MIB:.0f} MiB (bar: extra <= input)")
    print()
    print(
        f"| {'spec':<36} | index extra MiB | codec extra MiB | fit extra MiB | index - codec | index s | within bar |"
    )
    print(
        f"|{'-' * 38}|----------------:|----------------:|--------------:|--------------:|--------:|:----------:|"
    )
    package = None
    for spec in args.spec or SPECS:
        result = {}
        for mode in ("index", "codec", "fit"):
            run = subprocess.run(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--rows",
                    str(args.rows),
                    "--data",
                    args.data,
                    "--child",
                    spec,
                    mode,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode:
                sys.stderr.write(run.stderr)
                raise SystemExit(f"{spec} ({mode}) failed with exit code {run.returncode}")
            result[mode] = json.loads(run.stdout.strip().splitlines()[-1])
            package = result[mode]["package"]
        index, codec, fit = (result[mode]["extra"] / MIB for mode in ("index", "codec", "fit"))
        ok = "yes" if result["index"]["extra"] <= result["index"]["input"] else "NO"
        print(
            f"| {spec:<36} | {index:15.0f} | {codec:15.0f} | {fit:13.0f} | {index - codec:13.0f} | "
            f"{result['index']['seconds']:7.1f} | {ok:^10} |",
            flush=True,
        )
    print(f"\npackage: {package}")


if __name__ == "__main__":
    main()
