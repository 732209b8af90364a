"""PCA + product quantization: the strongest principal components cut into ``m`` sub-spaces, each
coded by one byte (a 256-centroid k-means codebook), scored with per-query byte lookup tables.

Why. At a few bytes a vector a scalar code per dimension cannot place its cells where the data is;
a k-means codebook on a handful of dimensions can (it captures their joint distribution). PCA first
keeps the ``dims`` strongest directions, and dimensions are dealt round-robin to the sub-spaces so
each sub-space gets a similar share of strong and weak components (a balanced variance budget).
Fitted on corpus documents only; a query's table for byte ``b`` is ``<q'_b, centroid_c>`` for every
centroid ``c``, so the Rust table codec computes ``<q', x̂>`` exactly.
"""

from __future__ import annotations

import numpy as np

from qama_rs.errors import QamaError
from qama_rs.quantizers.allocated import PcaTables, _centred, _check_codes, _check_int, _covariance
from qama_rs.quantizers.base import (
    check_embeddings,
    column_spans,
    one_piece,
    product_spans,
    require_rows,
    scratch_items,
    warn_constant,
)
from qama_rs.quantizers.state import check_orthonormal, corrupt, flatten, ragged, state_array, state_int

#: Rows scored against the centroids at a time (16 MiB of float32 distances, 32 MiB of float64 ones).
#: The published codes were computed in these blocks, so encoding keeps them: the block sets which
#: kernel computes the distances of a short last block (see :func:`qama_rs.quantizers.base.spans`).
_NEAREST_ROWS = 16384
#: Least PCA coordinates computed together in a fit (a block of sub-spaces).
_MIN_BATCH_COLUMNS = 32
#: Rows per centroid the codebooks are fitted on at most (faiss's rule for PQ training): more add little
#: to 256 centroids and cost time (200k rows: 3x the k-means work of a 65,536-row sample).
SAMPLE_PER_CENTROID = 256


def _argmin_distance(block: np.ndarray, centroids: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """Nearest centroid of each row of ``block``: ``argmin(c2 - 2 block·c)``, computed in place."""
    distance = block @ centroids.T
    distance *= 2.0  # exact (a power of two), as is the subtraction's single rounding below
    np.subtract(c2[None, :], distance, out=distance)
    return np.argmin(distance, axis=1)


def _nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of every row (squared Euclidean), in chunks to bound memory."""
    c2 = np.sum(centroids * centroids, axis=1)
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), _NEAREST_ROWS):
        block = x[start : start + _NEAREST_ROWS]
        out[start : start + len(block)] = _argmin_distance(block, centroids, c2)
    return out


def kmeans(x: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """Lloyd's k-means from ``k`` distinct random rows; an emptied cluster restarts at a random row."""
    centroids = x[rng.choice(len(x), size=k, replace=False)].astype(np.float64)
    for _ in range(iterations):
        assign = _nearest(x, centroids)
        counts = np.bincount(assign, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        if not filled.all():
            centroids[~filled] = x[rng.choice(len(x), size=int((~filled).sum()), replace=False)]
    return centroids


class PcaProduct(PcaTables):
    """``pca_pq``: protocol (B) codec of ``m`` bytes: PCA to ``dims`` components (default ``6 m``,
    at most the input dimension), ``m`` round-robin sub-spaces, 256 centroids each."""

    name = "pca_pq"

    def __init__(self, m: int = 12, dims: int | None = None, iterations: int = 20, seed: int = 0) -> None:
        self.m_bytes = _check_int(m, "m", 1)
        self.dims = None if dims is None else _check_int(dims, "dims", 1)
        self.iterations = _check_int(iterations, "iterations", 1)
        self.seed = _check_int(seed, "seed", 0)
        self.dim: int | None = None

    def fit(self, x) -> PcaProduct:
        """PCA, then ``min(256, n)`` centroids per sub-space. Needs at least 2 documents; warns
        (``QamaWarning``) when a sub-space's training points all coincide (its byte carries nothing).
        The PCA uses every row; the codebooks a seeded sample of ``SAMPLE_PER_CENTROID`` rows a centroid
        where there are more (up to 65,536 rows every row, as before).

        Up to ``base.EXACT_ROWS`` documents the covariance and the PCA coordinates are one product each,
        exactly as before (bit-identical tables; a float64 copy of the corpus while they are computed).
        Larger corpora: the covariance summed over blocks of rows and the coordinates a few sub-spaces
        at a time, a small fraction of the input's size (float rounding may differ).
        """
        x = check_embeddings(x, "x")
        n, d = x.shape
        dims = min(d, 6 * self.m_bytes) if self.dims is None else self.dims
        if dims > d or dims < self.m_bytes:
            raise QamaError(f"dims = {dims}; must be in m..input dimension ({self.m_bytes}..{d})")
        require_rows(x, 2, "x", self.name)
        k = min(256, n)
        mean = np.concatenate([x[:, cols].astype(np.float64).mean(axis=0) for cols in column_spans(n, d)])
        centred = _centred(x, mean) if one_piece(n) else None  # one product each (see base.EXACT_ROWS)
        cov = _covariance(x, mean) if centred is None else centred.T @ centred / n
        variance, vectors = np.linalg.eigh(cov)
        self.basis = vectors[:, np.argsort(-variance, kind="stable")[:dims]].astype(np.float32)
        self.mean = mean.astype(np.float32)  # what encoding centres with (and to_state saves)
        self.groups = [np.arange(b, dims, self.m_bytes) for b in range(self.m_bytes)]
        pick = None  # the sampled rows (sorted), read a block at a time: no copy of the sample
        if n > k * SAMPLE_PER_CENTROID:  # (n > EXACT_ROWS: no one-piece figure to keep)
            pick = np.sort(np.random.default_rng([self.seed, 1]).choice(n, k * SAMPLE_PER_CENTROID, replace=False))
        if centred is None:
            coordinates = self._batched_coordinates(x, mean, pick)
        else:
            z = centred @ self.basis
            del centred
            if pick is not None:
                z = z[pick]
            coordinates = ((b, z[:, g]) for b, g in enumerate(self.groups))
        rng = np.random.default_rng(self.seed)
        self.centroids = []
        constant = np.zeros(self.m_bytes, dtype=bool)
        for b, zg in coordinates:
            constant[b] = bool(np.all(zg == zg[0]))
            self.centroids.append(kmeans(zg, k, self.iterations, rng).astype(np.float32))
        warn_constant(constant, self.name, "sub-space")
        self.dim = d
        return self

    def _batched_coordinates(self, x: np.ndarray, mean: np.ndarray, pick: np.ndarray | None = None):
        """``(b, z)`` for every sub-space in order: its float64 PCA coordinates ``(n, len(group))`` (of the
        rows ``pick`` only, if given), computed a batch of sub-spaces and a block of rows at a time."""
        n, d = x.shape
        m = n if pick is None else len(pick)
        for batch in self._group_batches(m):
            columns = np.concatenate([self.groups[b] for b in batch])
            z = np.empty((m, len(columns)), dtype=np.float64)
            basis = self.basis[:, columns]
            for rows in product_spans(m, d, len(columns), 8, exact=pick is None):
                z[rows] = _centred(x[rows] if pick is None else x[pick[rows]], mean) @ basis
            start = 0
            for b in batch:
                yield b, np.ascontiguousarray(z[:, start : start + len(self.groups[b])])
                start += len(self.groups[b])

    def _group_batches(self, n: int) -> list[list[int]]:
        """Sub-spaces in order, batched so a batch's float64 coordinates take about twice
        ``SCRATCH_BYTES``, none slim (see :func:`qama_rs.quantizers.base.spans`)."""
        budget = max(_MIN_BATCH_COLUMNS, scratch_items(8, n, blocks=2))
        batches: list[list[int]] = [[]]
        width = 0
        for b, g in enumerate(self.groups):
            if batches[-1] and width + len(g) > budget and width >= 2:
                batches.append([])
                width = 0
            batches[-1].append(b)
            width += len(g)
        if len(batches) > 1 and width < budget // 2:  # no slim last batch (see base.spans)
            batches[-2].extend(batches.pop())
        return batches

    @property
    def m(self) -> int:
        return self.m_bytes

    def encode(self, x) -> np.ndarray:
        """``(n, dim)`` floats → ``uint8 (n, m)`` centroid numbers (a block of rows at a time)."""
        self._require_fitted()
        x = check_embeddings(x, "x", self.dim)
        n = len(x)
        if one_piece(n):  # one product, as before (see base.EXACT_ROWS)
            z = (x - self.mean) @ self.basis
            nearest = [_nearest(z[:, g], c) for g, c in zip(self.groups, self.centroids, strict=True)]
            return np.stack(nearest, 1).astype(np.uint8)
        out = np.empty((n, self.m_bytes), dtype=np.uint8)
        for start in range(0, n, _NEAREST_ROWS):
            stop = min(n, start + _NEAREST_ROWS)
            # Coordinates from products of _NEAREST_ROWS rows (a short last block reaches back, so no
            # product is small), distances in the blocks of _nearest.
            first = max(0, stop - _NEAREST_ROWS)
            z = ((x[first:stop] - self.mean) @ self.basis)[start - first :]
            for b, (g, c) in enumerate(zip(self.groups, self.centroids, strict=True)):
                out[start:stop, b] = _argmin_distance(z[:, g], c, np.sum(c * c, axis=1))
        return out

    def decode(self, codes) -> np.ndarray:
        """Codes → float32 ``(n, dims)`` reconstructed PCA coordinates."""
        self._require_fitted()
        codes = _check_codes(codes, self.m_bytes)
        out = np.zeros((len(codes), self.basis.shape[1]), dtype=np.float32)
        for b, (g, c) in enumerate(zip(self.groups, self.centroids, strict=True)):
            out[:, g] = c[codes[:, b]]
        return out

    def query_luts(self, xq) -> np.ndarray:
        """Float32 ``(nq, m, 256)``: ``lut[q, b, c] = <q'_b, centroid_{b,c}>`` (0 past ``k`` centroids)."""
        q = self.prepare_query(xq)
        luts = np.zeros((len(q), self.m_bytes, 256), dtype=np.float32)
        for b, (g, c) in enumerate(zip(self.groups, self.centroids, strict=True)):
            luts[:, b, : len(c)] = q[:, g] @ c.T
        return luts

    def projection(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The query tables as the engine builds them (``_core.TableCodec.projected``): ``basis`` float32
        ``(d, dims)``, and byte ``b``'s table ``Σ_t (q · basis)[slot_dims[b, t]] · slot_values[b, t]`` with
        ``slot_values[b, t, c]`` coordinate ``t`` of centroid ``c`` of sub-space ``b`` (0 past ``k``)."""
        self._require_fitted()
        width = max(len(g) for g in self.groups)
        dims = np.full((self.m_bytes, width), -1, dtype=np.int64)
        values = np.zeros((self.m_bytes, width, 256), dtype=np.float32)
        for b, (g, c) in enumerate(zip(self.groups, self.centroids, strict=True)):
            dims[b, : len(g)] = g
            values[b, : len(g), : len(c)] = c.T
        return np.ascontiguousarray(self.basis, dtype=np.float32), dims, values

    def to_state(self) -> dict:
        """The fitted codec (see :mod:`qama_rs.quantizers.state`): ``mean`` float32 ``(d,)``, ``basis``
        float32 (``basis_transposed``: the array is ``basis.T``, the codec's basis being column-major)
        and the sub-spaces' ``(k, len(group))`` centroids, float32, flat with ``centroids_offsets``."""
        self._require_fitted()
        transposed = not self.basis.flags.c_contiguous
        centroids, offsets = flatten(self.centroids, np.float32)
        return {
            "m": self.m_bytes,
            "dims": self.basis.shape[1],
            "iterations": self.iterations,
            "seed": self.seed,
            "k": len(self.centroids[0]),
            "mean": np.ascontiguousarray(self.mean, dtype=np.float32),
            "basis": np.ascontiguousarray(self.basis.T if transposed else self.basis, dtype=np.float32),
            "basis_transposed": transposed,
            "centroids": centroids,
            "centroids_offsets": offsets,
        }

    @classmethod
    def from_state(cls, state: dict) -> PcaProduct:
        """The codec of :meth:`to_state` (or of a state saved before arrays, with nested lists). Keeps
        read-only views of the arrays; a bad state raises ``QamaError`` ("corrupt saved state")."""
        owner = cls.__name__
        if not isinstance(state, dict):
            raise corrupt(owner, f"a {type(state).__name__}, expected a dict")
        m = state_int(state, "m", owner, 1)
        dims = state_int(state, "dims", owner, m)
        codec = cls(m, dims, state_int(state, "iterations", owner, 1), state_int(state, "seed", owner))
        codec.mean = state_array(state, "mean", owner, np.float32, ndim=1)
        d = codec.mean.shape[0]
        if not m <= dims <= d:
            raise corrupt(owner, f"m = {m}, dims = {dims} and a mean of {d} values do not fit together")
        transposed = state.get("basis_transposed", False)
        if transposed not in (True, False):
            raise corrupt(owner, f"basis_transposed = {transposed!r}")
        basis = state_array(state, "basis", owner, np.float32, shape=(dims, d) if transposed else (d, dims))
        codec.basis = basis.T if transposed else basis
        check_orthonormal(codec.basis, owner)
        codec.groups = [np.arange(b, dims, m) for b in range(m)]
        if isinstance(state.get("centroids"), list):  # saved before arrays: one nested list per sub-space
            if len(state["centroids"]) != m:
                raise corrupt(owner, f"{len(state['centroids'])} centroid tables for m = {m}")
            tables = [state_array({"c": c}, "c", owner, np.float32, ndim=2) for c in state["centroids"]]
        else:
            k = state_int(state, "k", owner, 2, 256)
            flat = ragged(state, "centroids", owner, np.float32, m)
            tables = []
            for b, (g, part) in enumerate(zip(codec.groups, flat, strict=True)):
                if part.size != k * len(g):
                    raise corrupt(owner, f"sub-space {b} has {part.size} centroid values, not {k} x {len(g)}")
                tables.append(part.reshape(k, len(g)))
        k = len(tables[0])
        for b, (g, c) in enumerate(zip(codec.groups, tables, strict=True)):
            if c.shape != (k, len(g)) or not 2 <= k <= 256:
                raise corrupt(owner, f"sub-space {b} has centroids of shape {c.shape}, not ({k}, {len(g)})")
        codec.centroids = tables
        codec.dim = d
        return codec

    def __repr__(self) -> str:
        state = f"dims={self.basis.shape[1]}" if self.dim is not None else "unfitted"
        return f"PcaProduct(m={self.m_bytes}, {state})"
