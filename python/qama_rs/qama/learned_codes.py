"""Asymmetric scoring of a QAMA head's learned codes: documents stored as per-feature quantile codes of the
head's (code-rotated) features, a float query scored against them through per-level reconstruction values —
the conditional mean of each feature in each of its bins over the documents — in the Rust asymmetric kernel.

In a factory spec it follows a head: ``QAMA(path),QamaAsym1`` (48 B at 384 d) or ``QAMA(path),QamaAsym2``
(96 B): the head maps documents and queries to its features for the scheme of the same levels (1-bit, 2-bit)
and the codec stores compact 1- or 2-bit codes (not thermometer bits) of them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LearnedAsymmetric"]

_SCHEMES = {1: ("1bit", 2), 2: ("2bit", 4)}


class LearnedAsymmetric:
    """Protocol (A) codec: per-feature quantile thresholds with ``2**bits`` levels, conditional-mean
    reconstruction values, the query used as it is."""

    def __init__(self, bits: int) -> None:
        if bits not in _SCHEMES:
            raise ValueError(f"bits must be 1 or 2, got {bits!r}")
        self.bits = bits
        self.scheme, self.level_count = _SCHEMES[bits]
        self._thresholds: np.ndarray | None = None
        self._recon: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> LearnedAsymmetric:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or len(x) < self.level_count:
            raise ValueError(f"x must be (n >= {self.level_count}, d), got shape {x.shape}")
        qs = np.arange(1, self.level_count) / self.level_count
        self._thresholds = np.quantile(x, qs, axis=0).T.astype(np.float32)  # (d, L - 1)
        codes = self.encode(x)
        recon = np.zeros((x.shape[1], self.level_count), dtype=np.float64)
        for level in range(self.level_count):
            mask = codes == level
            count = mask.sum(0)
            mean = np.where(mask, x, 0.0).sum(0) / np.maximum(count, 1)
            # An empty bin (ties at a threshold) decodes to its nearest threshold.
            fallback = self._thresholds[:, min(level, self.level_count - 2)]
            recon[:, level] = np.where(count > 0, mean, fallback)
        self._recon = recon.astype(np.float32)
        return self

    def _require(self) -> None:
        if self._thresholds is None:
            raise ValueError("LearnedAsymmetric is not fitted; call fit(documents) first")

    @property
    def thresholds(self) -> list[np.ndarray]:
        self._require()
        return list(self._thresholds)

    @property
    def levels(self) -> np.ndarray:
        self._require()
        return np.full(len(self._thresholds), self.level_count, dtype=np.int64)

    def to_code_space(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Per-feature codes ``uint8 (n, d)``: the number of thresholds each value strictly exceeds."""
        self._require()
        x = np.asarray(x, dtype=np.float32)
        return (x[:, :, None] > self._thresholds[None]).sum(-1).astype(np.uint8)

    @property
    def reconstruction_values(self) -> np.ndarray:
        self._require()
        return self._recon

    def prepare_query(self, xq: np.ndarray) -> np.ndarray:
        return np.asarray(xq, dtype=np.float32)

    @property
    def bytes_per_vector(self) -> int:
        self._require()
        return -(-len(self._thresholds) * self.bits // 8)
