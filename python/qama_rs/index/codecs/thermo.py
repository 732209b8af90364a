"""Thermometer codes of a :class:`~qama_rs.engine.Quantizer`, searched by symmetric Hamming distance (the
codec whose prepared query is itself a code): ``Sign``, ``Thermo1/1.5/2``, ``Hybrid``,
``ThermoLloydMax{b}``, a QAMA head's learned thresholds, or any given quantizer."""

from __future__ import annotations

import numpy as np

from qama_rs import _core
from qama_rs.engine.quantizer import Quantizer
from qama_rs.errors import QamaError
from qama_rs.index.codecs.base import Codec

__all__ = ["LloydMaxThermoCodec", "ThermoCodec"]


class ThermoCodec(Codec):
    """``scheme``: ``"1bit"``, ``"1.5bit"``, ``"2bit"``, ``"hybrid"`` (per-dimension quantiles of the
    training vectors) or ``"sign"`` (threshold 0, nothing to learn). ``quantizer``: a ready quantizer (a QAMA
    head's learned thresholds) used as given."""

    kind = "thermo"
    metric = "hamming"
    dtype = np.uint64
    residual_capable = False

    def __init__(self, label: str, scheme: str, quantizer: Quantizer | None = None) -> None:
        super().__init__(label)
        self.scheme = scheme
        self.quantizer = quantizer
        self.training_free = scheme == "sign" or quantizer is not None

    def _train(self, x):
        if self.quantizer is None:
            self.quantizer = self._fit(x)
        if self.quantizer.input_dims != x.shape[1]:
            raise QamaError(
                f"{self.label}: the quantizer takes {self.quantizer.input_dims} columns, the vectors have {x.shape[1]}"
            )

    def _fit(self, x: np.ndarray) -> Quantizer:
        if self.scheme == "sign":
            return Quantizer(np.zeros(x.shape[1], dtype=np.float32), 2)
        return Quantizer.fit(x, self.scheme)

    @property
    def row_units(self) -> int:
        return self.quantizer.words

    @property
    def code_bits(self) -> int:
        """Bits of one code (what the distance counts)."""
        return self.quantizer.bits

    def encode(self, x):
        return self.quantizer.encode(x), None

    def _engine(self, dims):
        nbits = self.quantizer.bits if dims is None else self.quantizer.prefix_bits(dims)
        return _core.HammingCodec(self.quantizer.words, nbits)

    def queries(self, q, dims=None):
        m = self.quantizer.dims if dims is None else dims
        codes = self.quantizer.encode(q, m)
        if codes.shape[1] < self.quantizer.words:  # a prefix: missing words count as zero bits
            full = np.zeros((len(codes), self.quantizer.words), dtype=np.uint64)
            full[:, : codes.shape[1]] = codes
            codes = full
        return codes

    def prefix_dims(self):
        return self.quantizer.dims

    def state(self):
        return {"quantizer": self.quantizer.to_dict(), "scheme": self.scheme}, {}

    def restore(self, meta, arrays):
        self.quantizer = Quantizer.from_dict(meta["quantizer"])
        self.scheme = meta["scheme"]
        self.dims = self.quantizer.input_dims
        self._engines = {}
        self.trained = True


class LloydMaxThermoCodec(ThermoCodec):
    """Thermometer codes at the Gaussian Lloyd-Max boundaries (symmetric Hamming = L1 between levels)."""

    def __init__(self, label: str, bits: int) -> None:
        super().__init__(label, "lloydmax")
        self.bits = bits

    def _fit(self, x):
        from qama_rs.quantizers import LloydMaxGauss

        return Quantizer(**LloydMaxGauss(bits=self.bits).fit(x).engine_arguments())
