"""``int8``: 256 uniform levels per dimension between the corpus minimum and maximum.

As sentence-transformers' int8 calibration: per-dimension range ``[min, max]`` cut into 256 equal
steps; a value outside the range clips to the end code. Reconstruction is the step midpoint, in
float32 exactly ``base + step * code`` (the product rounded, then the sum), so the engine decodes a
tile of codes and scores it as float rows (``_core.Affine8Codec``: the ``Flat`` scores of the decoded
vectors), scored asymmetrically against the float query.
"""

from __future__ import annotations

import numpy as np

from qama_rs.quantizers.base import TrainingFreeQuantizer, check_embeddings, require_rows, warn_constant


class Int8(TrainingFreeQuantizer):
    name = "int8"

    def fit(self, doc_emb) -> Int8:
        """Needs at least 2 documents; warns (``QamaWarning``) about columns of zero spread."""
        x = check_embeddings(doc_emb, "doc_emb")
        require_rows(x, 2, "doc_emb", self.name)
        # float32 extremes widened exactly (no float64 copy of the corpus).
        lo, hi = x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64)
        warn_constant(lo == hi, self.name)
        step = (hi - lo) / 256.0
        k = np.arange(257, dtype=np.float64)
        thresholds = [a + s * k[1:256] for a, s in zip(lo, step, strict=True)]
        # Midpoints as float32 base + step * code (see the module docs).
        base32, step32 = (lo + 0.5 * step).astype(np.float32), step.astype(np.float32)
        codes32 = np.arange(256, dtype=np.float32)
        levels = [b + s * codes32 for b, s in zip(base32, step32, strict=True)]
        self.dim = x.shape[1]
        self._set_tables(thresholds, levels)
        return self
