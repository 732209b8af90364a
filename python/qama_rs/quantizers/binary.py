"""1-bit quantizers: sign (threshold 0) and median-centred sign.

Both reconstruct a document as its ±1 sign vector in the centred space, so the asymmetric score
is ``(q - c) · sign(x - c)`` with ``c = 0`` (``binary``) or the per-dimension corpus median
(``binary_median``: the query is centred on the same median). Their symmetric variant is Hamming
distance between the sign bits, the query binarized with the same thresholds.
"""

from __future__ import annotations

import numpy as np

from qama_rs.quantizers.base import (
    TrainingFreeQuantizer,
    check_embeddings,
    column_stats,
    require_rows,
    warn_constant,
)


class _CentredSign(TrainingFreeQuantizer):
    supports_hamming = True
    _state_arrays = {"center": np.float32}

    def __init__(self) -> None:
        super().__init__()
        self.center: np.ndarray | None = None

    def _fit_center(self, center: np.ndarray) -> None:
        self.center = np.ascontiguousarray(center, dtype=np.float32)
        self.dim = self.center.shape[0]
        self._set_tables(
            [np.array([c], dtype=np.float32) for c in self.center],
            [np.array([-1.0, 1.0], dtype=np.float32) for _ in self.center],
        )

    def prepare_query(self, query_emb) -> np.ndarray:
        # Levels are ±1 around the centre, so the query is centred the same way.
        return super().prepare_query(query_emb) - self.center[None, :]

    def hamming_bits(self, codes) -> np.ndarray:
        return self.check_codes(codes)


class SignBinary(_CentredSign):
    """``binary``: bit = value > 0; score = q · sign(x). Learns nothing from the corpus but its width
    (one row is enough)."""

    name = "binary"

    def fit(self, doc_emb) -> SignBinary:
        x = check_embeddings(doc_emb, "doc_emb")
        self._fit_center(np.zeros(x.shape[1], dtype=np.float32))
        return self


class MedianBinary(_CentredSign):
    """``binary_median``: bit = value > corpus median of its dimension; score = (q - m) · sign(x - m)."""

    name = "binary_median"

    def fit(self, doc_emb) -> MedianBinary:
        """Needs at least 2 documents; warns (``QamaWarning``) about columns of zero spread."""
        x = check_embeddings(doc_emb, "doc_emb")
        require_rows(x, 2, "doc_emb", self.name)
        stats = column_stats(x, std=False)
        warn_constant(stats["constant"], self.name)
        self._fit_center(stats["median"])
        return self
