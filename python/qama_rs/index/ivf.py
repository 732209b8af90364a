"""The partition of an ``IVF`` index: a k-means coarse quantizer whose lists the codec's rows are kept in.

Training samples at most ``SAMPLE_PER_LIST`` rows per list (faiss's ``max_points_per_centroid``), seeds
the centroids with distinct sampled rows and runs Lloyd iterations in Rust (``_core.kmeans_iterate``,
parallel and deterministic for a seed), with a progress bar on stderr when training takes a while, and
rounds the centroids to float16 values (the engine holds them so: half the bytes a query reads). A
vector goes to its nearest centroid (squared Euclidean). With many lists (:func:`shortlist_basis`) the
assignment, in training and in adds, scores each vector first in the centroids' leading principal
directions and exactly only against its ``SHORTLIST`` best there (faiss too advises an approximate
coarse quantizer for many lists): on the 199,000 real wiki vectors of ``benches/bench_assign.py`` it
sends 99.98 % of them to their exactly nearest centroid at 512 to 4,096 lists, in 0.82x (512) to
0.51x (4,096) the exact assignment's time. A query scans the ``nprobe`` lists whose cells are nearest to it,
best first (and more while a filter leaves fewer than ``k`` results: see :func:`qama_rs.index.stages.probed`):
by ``|q R / |q| - c|^2``, the query scaled to the training rows' root-mean-square norm ``R`` (the
partition's *radius*; no ranking changes with a query's scale). On the 199k real wiki vectors in 1,024
lists this puts 0.55 of a query's true top-10 in its first list where ranking by ``<q, c>`` (what indexes
saved without a radius still do) puts 0.49, and 48-byte codes reach recall@10 0.68 at ``nprobe=4`` instead
of 0.65 (``benches/bench_ivf.py``). The engine ranks a query's lists beside its scan, in the same call
(where the CPU has AVX-512 VNNI, from an int8 copy of the centroids that leaves the lists that can be among
the best, scored exactly: the same lists).
Codes hold either the vectors or their residuals to the centroid: for inner-product scoring
``<q, c + r> = <q, c> + <q, r>``, so one query table serves every list and ``<q, c>`` is a per-list bias.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from qama_rs import _core
from qama_rs.errors import QamaError

__all__ = ["Partition", "default_nlist", "shortlist_basis"]

#: Sampled rows per list for training (more adds little to the centroids, and costs time).
SAMPLE_PER_LIST = 256
#: Lloyd iterations. faiss's IVF trains with 10; measured at 10M jittered rows in 4,096 lists, 10 instead of
#: 20 cost 0.01 of recall@10 at every nprobe (residual codes are as good as their lists are tight).
ITERATIONS = 20
#: Centroids scored exactly per vector when the assignment goes through a shortlist.
SHORTLIST = 16
#: Share of the centroids' variance the shortlist's directions hold.
SHORTLIST_VARIANCE = 0.9


def default_nlist(n: int) -> int:
    """Lists for ``n`` vectors when the spec says ``IVF`` alone: about ``sqrt(n)``, and at least 39 vectors a
    list on average (k-means needs rows per centroid). Measured (``benches/bench_ivf.py``, 199k wiki vectors,
    48-byte codes, recall@10 ~0.71): 512 lists 9,900 QPS one query at a time, 1,024 lists 8,200, faiss's
    ``4 sqrt(n)`` (1,784) 6,000 and a 3x longer build: a query's coarse scores cost more than its scan saves."""
    return max(1, min(int(round(math.sqrt(max(n, 1)))), n // 39))


def shortlist_basis(centroids: np.ndarray) -> np.ndarray | None:
    """The directions the assignment shortlists in, ``float32 (rank, dims)`` (orthonormal), or None for the
    exact assignment. ``rank``: the leading principal directions that hold ``SHORTLIST_VARIANCE`` of the
    centroids' variance (rounded up to 8); the shortlist is taken when its multiply-adds are at most half
    the exact assignment's (selecting the candidates costs about as much again). On real wiki vectors in
    384 dimensions (``benches/bench_assign.py``): 80 directions at 512 lists (0.82x the exact time), 144
    at 4,096 (0.51x); centroids with no dominant directions stay exact."""
    nlist, dims = centroids.shape

    def cheap(rank: int) -> bool:
        return rank < dims and rank * (dims + nlist) + SHORTLIST * dims <= 0.5 * dims * nlist

    if not cheap(8):
        return None
    values, vectors = np.linalg.eigh(np.cov(np.asarray(centroids, dtype=np.float64).T))
    values, vectors = np.maximum(values[::-1], 0.0), vectors[:, ::-1]
    held = np.cumsum(values) / max(float(values.sum()), np.finfo(np.float64).tiny)
    rank = -(-(int(np.searchsorted(held, SHORTLIST_VARIANCE)) + 1) // 8) * 8
    if not cheap(rank):
        return None
    return np.ascontiguousarray(vectors[:, :rank].T, dtype=np.float32)


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query when neither the call nor :meth:`Index.tune` says: about 1/32 of the lists
    (at least 8), a middle of the recall-speed curve; ``Index.tune`` picks it for a target recall."""
    return max(1, min(nlist, max(8, nlist // 32)))


class Partition:
    """Centroids ``(nlist, dims)`` and how codes relate to them (``residual``). Only the engine holds the
    centroids: as float16 where their values are float16 values (as training rounds them), else float32,
    and (where the CPU has AVX-512 VNNI) an int8 copy that shortlists a query's lists before they are scored
    exactly; :attr:`nbytes` counts both."""

    def __init__(self, nlist: int, residual: bool) -> None:
        self.requested = nlist  # 0: chosen from the training set's size
        self.nlist = nlist
        self.residual = residual
        self._coarse: Any = None  # the engine's centroids
        self.radius: float | None = None  # the rows' RMS norm the ranking scales queries to (None: by <q, c>)
        self._basis: np.ndarray | None = None  # the assignment's shortlist directions (many lists)

    @property
    def trained(self) -> bool:
        return self._coarse is not None

    @property
    def centroids(self) -> np.ndarray | None:
        """A copy of the centroids, ``float16 (nlist, dims)`` where every value is one, else float32."""
        if self._coarse is None:
            return None
        values = self._coarse.centroids()
        return values.astype(np.float16) if self._coarse.is_half else values

    def train(self, x: np.ndarray, seed: int = 0, iterations: int = ITERATIONS) -> None:
        n = len(x)
        nlist = self.requested or default_nlist(n)
        if nlist > n:
            raise QamaError(f"IVF{nlist} needs at least {nlist} training vectors, got {n}")
        rng = np.random.default_rng(seed)
        sample = x if n <= nlist * SAMPLE_PER_LIST else x[np.sort(rng.choice(n, nlist * SAMPLE_PER_LIST, replace=False))]
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        centroids = np.ascontiguousarray(sample[rng.choice(len(sample), nlist, replace=False)])
        show = len(sample) * nlist * x.shape[1] * iterations > 5e10  # ~ seconds of work
        progress = _progress(iterations, f"IVF{nlist} k-means on {len(sample):,} vectors", show)
        for _ in range(iterations):
            basis = shortlist_basis(centroids)
            centroids, _, inertia = _core.kmeans_iterate(sample, centroids, basis, SHORTLIST)
            progress.update(1)
            progress.set_postfix(mse=f"{inertia:.4g}", refresh=False)
        progress.close()
        # Centroids rounded to float16 values (where they fit): the engine then reads half the bytes
        # per query; residuals and assignments use the rounded values, so nothing disagrees.
        with np.errstate(over="ignore"):  # values past float16's range stay float32 (checked next)
            rounded = centroids.astype(np.float16).astype(np.float32)
        if np.isfinite(rounded).all():
            centroids = rounded
        self.nlist = nlist
        squares = np.einsum("ij,ij->i", sample, sample, dtype=np.float64)
        radius = math.sqrt(float(squares.mean()))
        self.radius = radius if 0.0 < radius < math.inf else None  # all-zero rows: ranked by <q, c>
        self._hold(centroids)

    def _hold(self, centroids: np.ndarray) -> None:
        """Gives float32 ``centroids`` (and the radius) to the engine (which holds them as float16 when every
        value is one)."""
        self._coarse = _core.Coarse(np.ascontiguousarray(centroids, dtype=np.float32), radius=self.radius)
        self._basis = shortlist_basis(centroids)

    def _centroids32(self) -> np.ndarray:
        return self._coarse.centroids()  # a float32 copy (float16 values widen exactly)

    @property
    def nbytes(self) -> int:
        """Bytes the engine holds for the centroids (their values, and their int8 copy where it is held)."""
        return 0 if self._coarse is None else int(self._coarse.nbytes)

    def assign(self, x: np.ndarray) -> np.ndarray:
        """List of each row (its nearest centroid; through the shortlist with many lists)."""
        rows = np.ascontiguousarray(x, dtype=np.float32)
        return _core.kmeans_assign(rows, self._centroids32(), self._basis, SHORTLIST)[0]

    def residuals(self, x: np.ndarray, lists: np.ndarray) -> np.ndarray:
        # Gathered from a float32 copy (NumPy's float16 casts in the subtraction cost 2x; same values),
        # into the one array that becomes the residuals: a second one of the chunk's size costs its page faults.
        out = np.take(self._centroids32(), lists, axis=0)
        return np.subtract(np.asarray(x, dtype=np.float32), out, out=out)

    def plan(self, q: np.ndarray, nprobe: int, width: int) -> Any:
        """Each query's ``width`` best lists (nearest cells first), the first ``nprobe`` scanned
        whatever happens (an engine ``Plan``; the engine ranks the lists past ``nprobe`` for a query they
        leave short of ``k``, when it gets there); residual codes get the product as their list's bias."""
        return self._coarse.plan(q, min(nprobe, self.nlist), min(max(width, nprobe), self.nlist), self.residual)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"nlist": self.nlist, "requested": self.requested, "residual": self.residual, "radius": self.radius}, {
            "centroids": self._centroids32()  # the file keeps float32 (the format's dtype)
        }

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray], name: str) -> None:
        centroids = arrays.get("centroids")
        nlist = int(meta["nlist"])
        if centroids is None or centroids.dtype != np.float32 or centroids.ndim != 2 or len(centroids) != nlist:
            raise QamaError(f"{name}: corrupt qama-rs index (IVF centroids)")
        radius = meta.get("radius")  # absent from files saved before it: lists rank by <q, c> as they did
        if radius is not None and not (type(radius) in (int, float) and 0.0 < radius < math.inf):
            raise QamaError(f"{name}: corrupt qama-rs index (IVF radius {radius!r})")
        self.nlist, self.requested, self.residual = nlist, int(meta["requested"]), bool(meta["residual"])
        self.radius = None if radius is None else float(radius)
        self._hold(centroids)


class _Quiet:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, show: bool) -> Any:
    if not show:
        return _Quiet()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="iteration", file=sys.stderr, leave=False)
