"""Rotations applied before quantization (the index's ``Hadamard`` / ``Orthogonal`` transform stages).

A rotation spreads information evenly over the coordinates, so per-dimension scalar quantizers
lose less. Both rotations are orthogonal, so inner products (and the float ranking) are unchanged:
- ``orthogonal``: a seeded random orthogonal matrix (QR of a Gaussian matrix, signs fixed so the
  distribution is Haar);
- ``hadamard``: zero-pad to the next power of two, flip signs by a seeded random ±1 vector, apply
  the normalized Walsh-Hadamard transform (O(d log d)). Padding makes more coded dimensions
  (384 → 512), and the byte counts say so.
"""

from __future__ import annotations

import numpy as np

from qama_rs.quantizers.base import check_embeddings, product_spans, row_spans


class Rotation:
    """Identity; base class. ``fit(dim)`` draws the rotation, ``apply(x)`` rotates rows."""

    name = "none"

    def __init__(self, seed: int = 0) -> None:
        if not isinstance(seed, int | np.integer):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)
        self.dim: int | None = None

    @property
    def out_dim(self) -> int:
        return self.dim

    def fit(self, dim: int) -> Rotation:
        if not isinstance(dim, int | np.integer) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        return self

    def apply(self, x) -> np.ndarray:
        if self.dim is None:
            raise RuntimeError(f"rotation {self.name!r}: call fit(dim) first")
        x = check_embeddings(x, "x", self.dim)
        return self._apply(x)

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return x


class RandomOrthogonal(Rotation):
    name = "orthogonal"

    def fit(self, dim: int) -> RandomOrthogonal:
        super().fit(dim)
        rng = np.random.default_rng(self.seed)
        q, r = np.linalg.qr(rng.standard_normal((self.dim, self.dim)))
        # Multiplying each column by sign(R_jj) makes Q Haar-distributed (plain QR is biased).
        self.matrix = (q * np.sign(np.diag(r))[None, :]).astype(np.float32)
        return self

    def _apply(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), self.dim), dtype=np.float32)
        for rows in product_spans(len(x), self.dim, self.dim):  # one piece up to base.EXACT_ROWS rows
            out[rows] = x[rows] @ self.matrix
        return out


def walsh_hadamard(x: np.ndarray) -> np.ndarray:
    """Normalized fast Walsh-Hadamard transform along the last axis (length a power of two)."""
    n, d = x.shape
    if d & (d - 1):
        raise ValueError(f"walsh_hadamard needs a power-of-two length, got {d}")
    y = np.array(x, dtype=np.float64, copy=True)
    h = 1
    while h < d:
        y = y.reshape(n, d // (2 * h), 2, h)
        a, b = y[:, :, 0, :], y[:, :, 1, :]
        y = np.stack([a + b, a - b], axis=2).reshape(n, d)
        h *= 2
    return y / np.sqrt(d)


class RandomizedHadamard(Rotation):
    name = "hadamard"

    def fit(self, dim: int) -> RandomizedHadamard:
        super().fit(dim)
        self.padded_dim = 1 << (self.dim - 1).bit_length()
        rng = np.random.default_rng(self.seed)
        self.signs = rng.choice(np.array([-1.0, 1.0]), size=self.padded_dim)
        return self

    @property
    def out_dim(self) -> int:
        return self.padded_dim

    def _apply(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), self.padded_dim), dtype=np.float32)
        # Row by row arithmetic, so a block of rows at a time bounds the float64 scratch.
        for rows in row_spans(len(x), self.padded_dim, 8):
            padded = np.zeros((rows.stop - rows.start, self.padded_dim), dtype=np.float64)
            padded[:, : self.dim] = x[rows]
            out[rows] = walsh_hadamard(padded * self.signs[None, :])
        return out
