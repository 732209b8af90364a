"""The shared pieces of ``bench_ivf.py``: its constants, the corpus (real rows, or a seeded jittered tiling
of them, in chunks), the exact top-10 and recall@10, the ``Bench`` that times a search and collects its
points, and the nlist / nprobe grids every IVF library is searched over."""

from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "unlabelled"
SETS = ("wiki-50k", "wiki-150k-b")
MODEL = "all-MiniLM-L6-v2.npy"
K = 10
N_QUERIES = 1000
SEED = 0
JITTER = 0.02  # per-dimension std of the tiling noise (as bench_frontier's 1M speed rows)
JITTER_NOTE = "jittered tiling — speed and memory only"
#: Largest corpus held in memory as one float32 array (ScaNN and SVS need one; the rest add in chunks).
MATERIALIZE_BYTES = 4 << 30
#: Rows a training set holds at most (every library trains on the same rows).
TRAIN_ROWS = 200_000
QUIET_S = 0.3  # seconds idle before each point is timed (see Bench.time)


# ------------------------------------------------------------------------------------------------ data
class Corpus:
    """The corpus as seeded chunks: the real rows, then (``n`` beyond them) jittered copies, re-normalized."""

    def __init__(self, real: np.ndarray, n: int) -> None:
        self.real, self.n, self.dims = real, n, real.shape[1]
        self.jittered = n > len(real)

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, float32 rows)`` blocks of at most the real corpus's size, the same on every call."""
        m = len(self.real)
        for c, start in enumerate(range(0, self.n, m)):
            rows = min(m, self.n - start)
            if not self.jittered:
                yield start, self.real[:rows]
                continue
            rng = np.random.default_rng([SEED, c])
            block = self.real[:rows] + JITTER * rng.standard_normal((rows, self.dims), dtype=np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            yield start, block

    def train(self) -> np.ndarray:
        return next(self.chunks())[1][:TRAIN_ROWS]

    def array(self) -> np.ndarray | None:
        """The whole corpus as one array, or None when it is too large to hold."""
        if self.n * self.dims * 4 > MATERIALIZE_BYTES:
            return None
        if not self.jittered:
            return self.real[: self.n]
        return np.concatenate([c for _, c in self.chunks()])


def load_data(quick: bool, n: int | None) -> tuple[Corpus, np.ndarray, str]:
    sets = SETS[:1] if quick else SETS
    x = np.concatenate([np.load(DATA / s / MODEL) for s in sets]).astype(np.float32)
    order = np.random.default_rng(SEED).permutation(len(x))
    queries = np.ascontiguousarray(x[order[:N_QUERIES]])
    real = np.ascontiguousarray(x[np.sort(order[N_QUERIES:])])
    corpus = Corpus(real if n is None or n >= len(real) else real[:n], n or len(real))
    what = f"{' + '.join(sets)} {MODEL[:-4]} ({len(x):,} rows): {N_QUERIES:,} held-out queries, corpus {corpus.n:,}"
    if corpus.jittered:
        what += f" = the {len(real):,} real rows tiled with N(0, {JITTER}^2) jitter per dimension ({JITTER_NOTE})"
    return corpus, queries, what


def exact_topk(corpus: Corpus, queries: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """Exact float32 inner-product top-``K`` ids (``-1`` padding), over the allowed rows (a bitmap) if given."""
    best_s = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), K), -1, dtype=np.int64)
    for start, block in corpus.chunks():
        for q0 in range(0, len(queries), 250):
            s = queries[q0 : q0 + 250] @ block.T
            if allowed is not None:
                s[:, ~allowed[start : start + len(block)]] = -np.inf
            kk = min(K, s.shape[1])
            part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            cand_s = np.concatenate([best_s[q0 : q0 + 250], np.take_along_axis(s, part, 1)], axis=1)
            cand_i = np.concatenate([best_i[q0 : q0 + 250], part + start], axis=1)
            top = np.argsort(-cand_s, axis=1, kind="stable")[:, :K]
            best_s[q0 : q0 + 250] = np.take_along_axis(cand_s, top, 1)
            best_i[q0 : q0 + 250] = np.take_along_axis(cand_i, top, 1)
    best_i[~np.isfinite(best_s)] = -1
    return best_i


def recall10(ids: np.ndarray, truth: np.ndarray) -> float:
    ids = np.asarray(ids, dtype=np.int64)[:, :K]
    hits = [len(np.intersect1d(a[a >= 0], t[t >= 0])) / max(1, int((t >= 0).sum())) for a, t in zip(ids, truth, strict=True)]
    return float(np.mean(hits))


# ------------------------------------------------------------------------------------------- measuring
class Bench:
    """Times search callables and collects the points (printing each as it comes)."""

    def __init__(self, queries: np.ndarray, truth: np.ndarray, jittered: bool, single_seconds: float) -> None:
        self.queries, self.truth, self.jittered = queries, truth, jittered
        self.single_seconds = single_seconds
        self.points: list[dict] = []
        self.notes: list[str] = []
        #: (library, config, params) -> (batch, single, threads) of the points kept for the paired bar timing
        self.searchers: dict[tuple[str, str, str], tuple[Callable, Callable, Callable[[int], None]]] = {}

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def time(
        self,
        batch: Callable[[np.ndarray], np.ndarray],
        single: Callable[[np.ndarray], np.ndarray],
        threads: Callable[[int], None] = lambda n: None,
    ) -> dict:
        """recall@10 (from the batch call), batch QPS (best of up to 3 calls) and one-query QPS (a loop over
        the queries, stopped after ``single_seconds`` once 100 are done), after a warm call and
        ``QUIET_S`` idle."""
        q = self.queries
        threads(2)
        batch(q[:8])  # warm: first-touch of lists, thread pools, lazily built tables
        # Idle first: NumPy's OpenBLAS threads spin for ~0.1 s after a call (a build's training, the
        # truth's products) and took a core from the first batch timed after a build (measured: 40 %
        # slower batches for 0.1 s after a matrix product).
        time.sleep(QUIET_S)
        times, ids = [], None
        for _ in range(3):
            t = time.perf_counter()
            ids = batch(q)
            times.append(time.perf_counter() - t)
            if sum(times) > 2.0:
                break
        threads(1)
        single(q[:1])
        done, t = 0, time.perf_counter()
        for i in range(len(q)):
            single(q[i : i + 1])
            done += 1
            if done >= 100 and time.perf_counter() - t > self.single_seconds:
                break
        elapsed = time.perf_counter() - t
        threads(2)
        return {
            "recall10": recall10(ids, self.truth),
            "batch_qps": len(q) / min(times),
            "single_qps": done / elapsed,
            "single_queries": done,
        }

    def keep(
        self, library: str, config: str, params: dict, batch: Callable, single: Callable,
        threads: Callable[[int], None] = lambda n: None,
    ) -> None:
        """Keeps a point's search callables (and so its index) for timing it again beside another point."""
        self.searchers[point_key(library, config, params)] = (batch, single, threads)

    def add(self, library: str, config: str, params: dict, nbytes: float, build_s: float, m: dict, **extra) -> None:
        point = {
            "library": library,
            "config": config,
            "params": params,
            "bytes_per_vector": nbytes,
            "build_s": build_s,
            **m,
            **extra,
        }
        if self.jittered:
            point["note"] = JITTER_NOTE
        self.points.append(point)
        p = " ".join(f"{k}={v}" for k, v in params.items())
        tag = f"  [{JITTER_NOTE}]" if self.jittered else ""
        print(
            f"{library:8s} {config:62s} {p:22s} R@10 {m['recall10']:.3f} {nbytes:7.1f} B/vec  "
            f"single {m['single_qps']:8,.0f} QPS  batch {m['batch_qps']:9,.0f} QPS  build {build_s:6.1f} s{tag}",
            flush=True,
        )

    def time_filtered(
        self,
        rows: list[dict],
        search: Callable[[np.ndarray], np.ndarray],
        truth: np.ndarray,
        threads: Callable[[int], None] = lambda n: None,
        **row: object,
    ) -> None:
        """Times a filtered ``search(xq) -> ids`` against the filtered ``truth``, adds the share of queries
        given ``K`` ids, appends the row (``row``: library, config, selectivity, allowed_form, nprobe,
        bytes_per_vector) to ``rows`` and prints it."""
        got: list[np.ndarray] = []

        def kept(xq: np.ndarray) -> np.ndarray:
            ids = search(xq)
            if len(xq) == len(self.queries):
                got.append(ids)
            return ids

        m = Bench(self.queries, truth, self.jittered, self.single_seconds).time(kept, kept, threads)
        full = float(np.mean((got[-1] >= 0).sum(axis=1) == K))
        point = {**row, "full_k_fraction": full, **m}
        if self.jittered:
            point["note"] = JITTER_NOTE
        rows.append(point)
        print(
            f"  {row['library']} filtered {row['selectivity']:>4s} allowed={row['allowed_form']} "
            f"nprobe={row['nprobe']}  R@10 {m['recall10']:.3f}  10 results {full:.3f}  "
            f"single {m['single_qps']:7,.0f} QPS  batch {m['batch_qps']:8,.0f} QPS",
            flush=True,
        )
        if "paired_cost" in row:
            c = row["paired_cost"]
            print(f"    cost against unfiltered, alternated: one query {c['single']:.2f}x  batch {c['batch']:.2f}x", flush=True)


def point_key(library: str, config: str, params: dict) -> tuple[str, str, str]:
    return library, config, json.dumps(params, sort_keys=True)


def qps_of(search: Callable[[np.ndarray], object], queries: np.ndarray, mode: str, single_n: int,
           threads: Callable[[int], None] = lambda n: None) -> float:
    """Queries per second of ``search``: ``single_n`` one-query calls on one thread (``threads(1)``), or one
    batch call over all ``queries`` (``mode == "batch"``)."""
    if mode == "batch":
        t = time.perf_counter()
        search(queries)
        return len(queries) / (time.perf_counter() - t)
    threads(1)
    n = min(single_n, len(queries))
    t = time.perf_counter()
    for i in range(n):
        search(queries[i : i + 1])
    out = n / (time.perf_counter() - t)
    threads(2)
    return out


def paired_cost(
    plain: Callable[[np.ndarray], object], filtered: Callable[[np.ndarray], object], queries: np.ndarray,
    rounds: int = 7, single_n: int = 300,
) -> dict:
    """A filter's cost as filtered / unfiltered time of the same index, the two searches alternated ``rounds``
    times (the order swapped every round) so that the load swings of a shared VM fall on both alike: the median
    of the rounds' ratios one query at a time (the first ``single_n`` queries) and in one batch call (all)."""
    for search in (plain, filtered):  # warm both (a prepared filter finds its rows on its second search)
        search(queries[:8])
        search(queries[:8])
    out: dict = {"rounds": rounds, "single_queries": min(single_n, len(queries))}
    for mode in ("single", "batch"):
        ratios = []
        for r in range(rounds):
            if r % 2:
                f, u = qps_of(filtered, queries, mode, single_n), qps_of(plain, queries, mode, single_n)
            else:
                u, f = qps_of(plain, queries, mode, single_n), qps_of(filtered, queries, mode, single_n)
            ratios.append(u / f)  # filtered time / unfiltered time
        out[mode] = float(np.median(ratios))
        out[f"{mode}_ratios"] = [round(v, 3) for v in ratios]
    return out


def timed_build(build: Callable[[], object]) -> tuple[object, float]:
    gc.collect()
    t = time.perf_counter()
    out = build()
    return out, time.perf_counter() - t


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def load_average() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def versions() -> dict:
    import qama_rs

    out = {"qama-rs": qama_rs.__version__, "numpy": np.__version__, "python": platform.python_version()}
    for dist in ("faiss-cpu", "scann", "scalable-vs", "usearch", "qdrant-edge-py"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    return out


def run_record(command: str, started: float, load_start: str, corpus: Corpus, queries: np.ndarray, description: str) -> dict:
    """What every results file of these benches starts with: when, what ran, on which CPU and load, which
    library versions, and the data (a jittered corpus says so)."""
    import qama_rs

    data = {"description": description, "n": corpus.n, "n_queries": len(queries), "dims": corpus.dims,
            "jittered": corpus.jittered, "jitter_std": JITTER if corpus.jittered else 0.0, "seed": SEED}  # fmt: skip
    if corpus.jittered:
        data["note"] = JITTER_NOTE
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": command,
        "runtime_min": (time.perf_counter() - started) / 60,
        "cpu": qama_rs.cpu_description(),
        "load_start": load_start,
        "load_end": load_average(),
        "versions": versions(),
        "data": data,
    }


# ------------------------------------------------------------------------------------------------ grids
def nlist_grid(n: int, quick: bool) -> list[int]:
    """The power of two nearest sqrt(n), and twice it (k-means wants >= 39 rows a list)."""
    mid = 2 ** round(math.log2(math.sqrt(n)))
    grid = [mid] if quick else [mid, mid * 2]
    return [g for g in grid if 39 * g <= n]


def nprobe_grid(quick: bool, fine: bool = False) -> list[int]:
    """The nprobe grid (powers of two); ``fine``: with 1.5x each power between them (3, 6, 12, ...), qama-rs's
    grid in ``bench_ivf`` — its curve sampled densely enough that a peer's point meets the qama-rs point nearest
    to it (as ``Index.tune`` would pick it), not the next power of two."""
    grid = [1, 4, 16, 64] if quick else [1, 2, 4, 8, 16, 32, 64, 128]
    if not fine or quick:
        return grid
    return sorted(set(grid) | {3 * g // 2 for g in grid if 2 <= g < grid[-1]})
