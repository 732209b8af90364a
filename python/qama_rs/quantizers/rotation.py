"""Rotations applied before quantization, and the wrapper that quantizes in the rotated space.

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

from qama_rs.quantizers.base import TrainingFreeQuantizer, check_embeddings, product_spans, row_spans
from qama_rs.quantizers.state import check_orthonormal, corrupt, state_array, state_int, state_str


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


ROTATIONS = {"none": Rotation, "orthogonal": RandomOrthogonal, "hadamard": RandomizedHadamard}


def make_rotation(kind: str = "none", seed: int = 0) -> Rotation:
    """``"none"``, ``"orthogonal"`` or ``"hadamard"``, seeded."""
    if kind not in ROTATIONS:
        raise ValueError(f"rotation must be one of {sorted(ROTATIONS)}, got {kind!r}")
    return ROTATIONS[kind](seed=seed)


class Rotated(TrainingFreeQuantizer):
    """Quantizes ``rotation.apply(x)`` with ``inner``; queries are rotated the same way.

    Thresholds, levels and codes live in the rotated space: an engine encoding these codes must be
    fed ``rotation.apply(x)``.
    """

    def __init__(self, inner: TrainingFreeQuantizer, rotation: Rotation) -> None:
        super().__init__()
        self.inner, self.rotation = inner, rotation
        self.name = f"{inner.name}@{rotation.name}"
        self.supports_hamming = inner.supports_hamming

    def fit(self, doc_emb) -> Rotated:
        x = check_embeddings(doc_emb, "doc_emb")
        self.rotation.fit(x.shape[1])
        self.inner.fit(self.rotation.apply(x))
        self.dim = x.shape[1]
        self._thresholds, self._levels = self.inner._thresholds, self.inner._levels
        return self

    def _to_code_space(self, x: np.ndarray) -> np.ndarray:
        return self.rotation.apply(x)

    def encode(self, x) -> np.ndarray:
        self._require_fitted()
        return self.inner.encode(self.rotation.apply(check_embeddings(x, "x", self.dim)))

    def reconstruct(self, codes) -> np.ndarray:
        return self.inner.reconstruct(codes)

    def prepare_query(self, query_emb) -> np.ndarray:
        self._require_fitted()
        q = check_embeddings(query_emb, "query_emb", self.dim)
        return self.inner.prepare_query(self.rotation.apply(q))

    def hamming_bits(self, codes) -> np.ndarray:
        return self.inner.hamming_bits(codes)

    def to_state(self) -> dict:
        """The rotation (``rotation``, ``seed``, and its ``matrix`` float32 or ``signs`` float64 array)
        and the inner quantizer's state under ``inner.*`` keys (see :mod:`qama_rs.quantizers.state`)."""
        self._require_fitted()
        rotation = self.rotation
        state = {"class": "Rotated", "dim": self.dim, "rotation": rotation.name, "seed": rotation.seed}
        if isinstance(rotation, RandomizedHadamard):
            state["signs"] = np.ascontiguousarray(rotation.signs, dtype=np.float64)
        elif isinstance(rotation, RandomOrthogonal):
            # C-ordered as fitted (QR's product), so the saved matrix rotates with the same rounding.
            state["matrix"] = np.ascontiguousarray(rotation.matrix, dtype=np.float32)
        state.update({f"inner.{key}": value for key, value in self.inner.to_state().items()})
        return state

    @classmethod
    def from_state(cls, state: dict) -> Rotated:
        """The rotated quantizer of :meth:`to_state`; a bad state raises ``QamaError``."""
        from qama_rs.quantizers import METHODS

        owner = "Rotated"
        if not isinstance(state, dict) or state.get("class") != owner:
            raise corrupt(owner, "not the state of a rotated quantizer")
        dim = state_int(state, "dim", owner, 1)
        kind = state_str(state, "rotation", owner, tuple(ROTATIONS))
        rotation = make_rotation(kind, state_int(state, "seed", owner))
        rotation.dim = dim
        if isinstance(rotation, RandomizedHadamard):
            rotation.padded_dim = 1 << (dim - 1).bit_length()
            rotation.signs = state_array(state, "signs", owner, np.float64, shape=(rotation.padded_dim,))
            if not np.all(np.abs(rotation.signs) == 1.0):
                raise corrupt(owner, "the Hadamard signs are not all +1 or -1")
        elif isinstance(rotation, RandomOrthogonal):
            rotation.matrix = state_array(state, "matrix", owner, np.float32, shape=(dim, dim))
            check_orthonormal(rotation.matrix, owner, "matrix")
        inner_state = {key[6:]: value for key, value in state.items() if key.startswith("inner.")}
        classes = {quantizer.__name__: quantizer for quantizer in METHODS.values()}
        if inner_state.get("class") not in classes:
            raise corrupt(owner, f"unknown inner quantizer {inner_state.get('class')!r}")
        inner = classes[inner_state["class"]].from_state(inner_state)
        if inner.dim != rotation.out_dim:
            raise corrupt(owner, f"inner quantizer of {inner.dim} values, rotation to {rotation.out_dim}")
        quantizer = cls(inner, rotation)
        quantizer.dim = dim
        quantizer._thresholds, quantizer._levels = inner._thresholds, inner._levels
        return quantizer
