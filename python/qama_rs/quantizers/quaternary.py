"""``quaternary``: 2-bit codes with per-dimension quartile boundaries, levels = bucket centroids.

Every bucket holds a quarter of the corpus values of its dimension (equal-mass, unlike Lloyd-Max);
a document is reconstructed as the mean corpus value of each of its buckets.
"""

from __future__ import annotations

import numpy as np

from qama_rs.quantizers.base import (
    TrainingFreeQuantizer,
    check_embeddings,
    column_spans,
    require_rows,
    warn_constant,
)
from qama_rs.quantizers.lloyd_max import bucket_means


class Quaternary(TrainingFreeQuantizer):
    name = "quaternary"

    def fit(self, doc_emb) -> Quaternary:
        """Needs at least 2 documents; warns (``QamaWarning``) about columns of zero spread."""
        x = check_embeddings(doc_emb, "doc_emb")
        require_rows(x, 2, "doc_emb", self.name)
        thresholds, levels = [], []
        constant = np.zeros(x.shape[1], dtype=bool)
        for cols in column_spans(*x.shape):  # a block of columns at a time: no float64 copy of the corpus
            sorted_x = np.sort(x[:, cols], axis=0)
            constant[cols] = sorted_x[0] == sorted_x[-1]
            # Quartiles of the sorted float64 block equal those of the unsorted columns (order statistics).
            wide = sorted_x.astype(np.float64)
            quartiles = np.quantile(wide, [0.25, 0.5, 0.75], axis=0, overwrite_input=True)
            # Boundaries are compared in float32 when encoding, so centroids use the same buckets.
            bounds = quartiles.T.astype(np.float32)
            for t in range(sorted_x.shape[1]):
                col = np.ascontiguousarray(sorted_x[:, t])
                prefix = np.concatenate(([0.0], np.cumsum(col, dtype=np.float64)))
                means = bucket_means(col, prefix, bounds[t])
                # An empty bucket (many equal values) falls back to its boundary: never used by encode.
                edge = np.concatenate(([bounds[t][0]], bounds[t]))
                thresholds.append(bounds[t])
                levels.append(np.where(np.isnan(means), edge, means))
        warn_constant(constant, self.name)
        self.dim = x.shape[1]
        self._set_tables(thresholds, levels)
        return self
