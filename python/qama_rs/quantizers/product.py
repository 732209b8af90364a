"""PCA + product quantization: the strongest principal components cut into ``m`` sub-spaces, each
coded by one byte (a 256-centroid k-means codebook), scored with per-query byte lookup tables.

Why. At a few bytes a vector a scalar code per dimension cannot place its cells where the data is;
a k-means codebook on a handful of dimensions can (it captures their joint distribution). PCA first
keeps the ``dims`` strongest directions, and dimensions are dealt round-robin to the sub-spaces so
each sub-space gets a similar share of strong and weak components (a balanced variance budget).
Fitted on corpus documents only; a query's table for byte ``b`` is ``<q'_b, centroid_c>`` for every
centroid ``c``, so the engine's ``lut_search`` computes ``<q', x̂>`` exactly.
"""

from __future__ import annotations

import numpy as np

from qama_rs.errors import QamaError
from qama_rs.quantizers.allocated import _check_codes, _check_int
from qama_rs.quantizers.base import check_embeddings


def _nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of every row (squared Euclidean), in chunks to bound memory."""
    c2 = np.sum(centroids * centroids, axis=1)
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), 16384):
        block = x[start : start + 16384]
        out[start : start + len(block)] = np.argmin(c2[None, :] - 2.0 * block @ centroids.T, axis=1)
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


class PcaProduct:
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
        x = check_embeddings(x, "x").astype(np.float64)
        n, d = x.shape
        dims = min(d, 6 * self.m_bytes) if self.dims is None else self.dims
        if dims > d or dims < self.m_bytes:
            raise QamaError(f"dims = {dims}; must be in m..input dimension ({self.m_bytes}..{d})")
        k = min(256, n)
        if k < 2:
            raise QamaError(f"x: fitting needs at least 2 documents, got {n}")
        self.mean = x.mean(axis=0)
        centred = x - self.mean
        variance, vectors = np.linalg.eigh(centred.T @ centred / n)
        self.basis = vectors[:, np.argsort(-variance, kind="stable")[:dims]].astype(np.float32)
        z = centred @ self.basis
        self.groups = [np.arange(b, dims, self.m_bytes) for b in range(self.m_bytes)]
        rng = np.random.default_rng(self.seed)
        self.centroids = [kmeans(z[:, g], k, self.iterations, rng).astype(np.float32) for g in self.groups]
        self.dim = d
        return self

    def _require_fitted(self) -> None:
        if self.dim is None:
            raise QamaError(f"{self.name}: call fit(x) before using the codec")

    @property
    def m(self) -> int:
        return self.m_bytes

    @property
    def bytes_per_vector(self) -> int:
        """One byte per sub-space; no per-vector factors."""
        return self.m_bytes

    def _coordinates(self, x) -> np.ndarray:
        x = check_embeddings(x, "x", self.dim)
        return (x - self.mean.astype(np.float32)) @ self.basis

    def encode(self, x) -> np.ndarray:
        """``(n, dim)`` floats → ``uint8 (n, m)`` centroid numbers."""
        self._require_fitted()
        z = self._coordinates(x)
        return np.stack([_nearest(z[:, g], c) for g, c in zip(self.groups, self.centroids, strict=True)], 1).astype(
            np.uint8
        )

    def decode(self, codes) -> np.ndarray:
        """Codes → float32 ``(n, dims)`` reconstructed PCA coordinates."""
        self._require_fitted()
        codes = _check_codes(codes, self.m_bytes)
        out = np.zeros((len(codes), self.basis.shape[1]), dtype=np.float32)
        for b, (g, c) in enumerate(zip(self.groups, self.centroids, strict=True)):
            out[:, g] = c[codes[:, b]]
        return out

    def prepare_query(self, xq) -> np.ndarray:
        self._require_fitted()
        return check_embeddings(xq, "xq", self.dim) @ self.basis

    def query_luts(self, xq) -> np.ndarray:
        """Float32 ``(nq, m, 256)``: ``lut[q, b, c] = <q'_b, centroid_{b,c}>`` (0 past ``k`` centroids)."""
        q = self.prepare_query(xq)
        luts = np.zeros((len(q), self.m_bytes, 256), dtype=np.float32)
        for b, (g, c) in enumerate(zip(self.groups, self.centroids, strict=True)):
            luts[:, b, : len(c)] = q[:, g] @ c.T
        return luts

    def to_state(self) -> dict:
        self._require_fitted()
        return {
            "m": self.m_bytes,
            "dims": self.basis.shape[1],
            "iterations": self.iterations,
            "seed": self.seed,
            "mean": self.mean.tolist(),
            "basis": self.basis.tolist(),
            "centroids": [c.tolist() for c in self.centroids],
        }

    @classmethod
    def from_state(cls, state: dict) -> PcaProduct:
        try:
            codec = cls(int(state["m"]), int(state["dims"]), int(state["iterations"]), int(state["seed"]))
            codec.mean = np.asarray(state["mean"], dtype=np.float64)
            codec.basis = np.asarray(state["basis"], dtype=np.float32)
            codec.centroids = [np.asarray(c, dtype=np.float32) for c in state["centroids"]]
        except (KeyError, TypeError, ValueError) as err:
            raise QamaError(f"{cls.__name__}: corrupt saved state ({err})") from None
        dims = codec.basis.shape[1]
        codec.groups = [np.arange(b, dims, codec.m_bytes) for b in range(codec.m_bytes)]
        if len(codec.centroids) != codec.m_bytes or codec.basis.shape[0] != codec.mean.shape[0]:
            raise QamaError(f"{cls.__name__}: corrupt saved state (shapes do not match)")
        codec.dim = int(codec.mean.shape[0])
        return codec

    def __repr__(self) -> str:
        state = f"dims={self.basis.shape[1]}" if self.dim is not None else "unfitted"
        return f"PcaProduct(m={self.m_bytes}, {state})"
