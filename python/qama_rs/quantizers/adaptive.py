"""``adaptive_bits``: more bits for some dimensions, fewer for the rest (Gaussian Lloyd-Max each).

Default: 4 bits for the first 64 dimensions, 2 bits for the others (384 d → 112 bytes, against 96
for uniform 2-bit), which pays off when the leading dimensions carry the most information (a
Matryoshka or PCA-ordered embedding). ``order="variance"`` gives the high-bit budget to the
dimensions of largest corpus variance instead. ``low_dims`` splits the remainder further so that
a configuration can be compared at equal bytes with a uniform quantizer, e.g. 64×4 + 192×2 +
128×1 bits = 96 bytes, the size of uniform 2-bit.
"""

from __future__ import annotations

import numpy as np

from qama_rs.quantizers.base import (
    TrainingFreeQuantizer,
    check_embeddings,
    column_spans,
    column_stats,
    require_rows,
    warn_constant,
)
from qama_rs.quantizers.lloyd_max import gaussian_lloyd_max


class AdaptiveBits(TrainingFreeQuantizer):
    name = "adaptive_bits"
    _state_params = ("high_dims", "high_bits", "low_bits", "low_dims", "rest_bits", "order")
    _state_arrays = {"bits_of_dim": np.int64}

    def __init__(
        self,
        high_dims: int = 64,
        high_bits: int = 4,
        low_bits: int = 2,
        low_dims: int | None = None,
        rest_bits: int = 1,
        order: str = "first",
    ) -> None:
        super().__init__()
        for arg, value in (("high_bits", high_bits), ("low_bits", low_bits), ("rest_bits", rest_bits)):
            if not isinstance(value, int) or not 1 <= value <= 8:
                raise ValueError(f"{arg} must be an integer in 1..8, got {value!r}")
        if not isinstance(high_dims, int) or high_dims < 0:
            raise ValueError(f"high_dims must be a non-negative integer, got {high_dims!r}")
        if low_dims is not None and (not isinstance(low_dims, int) or low_dims < 0):
            raise ValueError(f"low_dims must be a non-negative integer or None, got {low_dims!r}")
        if order not in ("first", "variance"):
            raise ValueError(f"order must be 'first' or 'variance', got {order!r}")
        self.high_dims, self.high_bits = high_dims, high_bits
        self.low_dims, self.low_bits, self.rest_bits = low_dims, low_bits, rest_bits
        self.order = order
        self.bits_of_dim: np.ndarray | None = None

    def _allocate(self, x: np.ndarray) -> np.ndarray:
        d = x.shape[1]
        if self.high_dims > d:
            raise ValueError(f"high_dims={self.high_dims} exceeds the {d} dimensions of doc_emb")
        low = d - self.high_dims if self.low_dims is None else self.low_dims
        if self.high_dims + low > d:
            raise ValueError(f"high_dims + low_dims = {self.high_dims + low} exceeds {d} dimensions")
        if self.order == "first":
            ranked = np.arange(d)
        else:  # float32 variances, a block of columns at a time (the same values as x.var(axis=0))
            variance = np.concatenate([x[:, cols].var(axis=0) for cols in column_spans(*x.shape, 4)])
            ranked = np.argsort(-variance, kind="stable")
        bits = np.full(d, self.rest_bits, dtype=np.int64)
        bits[ranked[: self.high_dims]] = self.high_bits
        bits[ranked[self.high_dims : self.high_dims + low]] = self.low_bits
        return bits

    def fit(self, doc_emb) -> AdaptiveBits:
        """Needs at least 2 documents; warns (``QamaWarning``) about columns of zero spread."""
        x = check_embeddings(doc_emb, "doc_emb")
        require_rows(x, 2, "doc_emb", self.name)
        self.bits_of_dim = self._allocate(x)
        stats = column_stats(x)
        warn_constant(stats["constant"], self.name)
        center, scale = stats["median"], stats["std"]
        thresholds, levels = [], []
        for m, s, b in zip(center, scale, self.bits_of_dim, strict=True):
            g_bounds, g_levels = gaussian_lloyd_max(2 ** int(b))
            thresholds.append(m + s * g_bounds)
            levels.append(m + s * g_levels)
        self.dim = x.shape[1]
        self._set_tables(thresholds, levels)
        return self
