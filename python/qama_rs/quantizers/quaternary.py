"""``quaternary``: 2-bit codes with per-dimension quartile boundaries, levels = bucket centroids.

Every bucket holds a quarter of the corpus values of its dimension (equal-mass, unlike Lloyd-Max);
a document is reconstructed as the mean corpus value of each of its buckets.
"""

from __future__ import annotations

import numpy as np

from qama_rs.quantizers.base import TrainingFreeQuantizer, check_embeddings
from qama_rs.quantizers.lloyd_max import bucket_means


class Quaternary(TrainingFreeQuantizer):
    name = "quaternary"

    def fit(self, doc_emb) -> Quaternary:
        x = check_embeddings(doc_emb, "doc_emb")
        bounds = np.quantile(x.astype(np.float64), [0.25, 0.5, 0.75], axis=0).T  # (d, 3)
        # Boundaries are compared in float32 when encoding, so centroids use the same buckets.
        bounds = bounds.astype(np.float32)
        sorted_x = np.sort(x, axis=0)
        thresholds, levels = [], []
        for j in range(x.shape[1]):
            col = sorted_x[:, j]
            prefix = np.concatenate(([0.0], np.cumsum(col, dtype=np.float64)))
            means = bucket_means(col, prefix, bounds[j])
            # An empty bucket (many equal values) falls back to its boundary: never used by encode.
            edge = np.concatenate(([bounds[j][0]], bounds[j]))
            thresholds.append(bounds[j])
            levels.append(np.where(np.isnan(means), edge, means))
        self.dim = x.shape[1]
        self._set_tables(thresholds, levels)
        return self
