"""``Flat`` / ``Flat16``: float vectors scored by exact inner product (float16 storage halves the bytes;
the kernel widens each tile, so ``Flat16`` scores equal ``Flat`` scores of the rounded vectors)."""

from __future__ import annotations

import numpy as np

from qama_rs import _core
from qama_rs.index.codecs.base import Codec

__all__ = ["FlatCodec"]


class FlatCodec(Codec):
    kind = "flat"
    training_free = True

    def __init__(self, label: str, half: bool = False) -> None:
        super().__init__(label)
        self.half = half
        self.dtype = np.uint16 if half else np.float32

    @property
    def row_units(self) -> int:
        return int(self.dims)

    def encode(self, x):
        if self.half:
            return x.astype(np.float16).view(np.uint16), None
        return np.ascontiguousarray(x, dtype=np.float32), None

    def _engine(self, dims):
        return _core.Float16Codec(self.dims) if self.half else _core.FloatCodec(self.dims)

    def queries(self, q, dims=None):
        if dims is not None and dims < self.dims:
            q = q.copy()
            q[:, dims:] = 0.0
        return np.ascontiguousarray(q, dtype=np.float32)

    def prefix_dims(self):
        return self.dims

    def state(self):
        return {"dims": self.dims, "half": self.half}, {}

    def restore(self, meta, arrays):
        self.dims, self.half = int(meta["dims"]), bool(meta["half"])
        self.dtype = np.uint16 if self.half else np.float32
        self.trained = True
