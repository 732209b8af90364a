"""``int8``: 256 uniform levels per dimension between the corpus minimum and maximum.

As sentence-transformers' int8 calibration: per-dimension range ``[min, max]`` cut into 256 equal
steps; a value outside the range clips to the end code. Reconstruction is the step midpoint,
scored asymmetrically against the float query.
"""

from __future__ import annotations

import numpy as np

from qama_rs.quantizers.base import TrainingFreeQuantizer, check_embeddings


class Int8(TrainingFreeQuantizer):
    name = "int8"

    def fit(self, doc_emb) -> Int8:
        x = check_embeddings(doc_emb, "doc_emb").astype(np.float64)
        lo, hi = x.min(axis=0), x.max(axis=0)
        step = (hi - lo) / 256.0
        k = np.arange(257, dtype=np.float64)
        thresholds = [a + s * k[1:256] for a, s in zip(lo, step, strict=True)]
        levels = [a + s * (k[:256] + 0.5) for a, s in zip(lo, step, strict=True)]
        self.dim = x.shape[1]
        self._set_tables(thresholds, levels)
        return self
