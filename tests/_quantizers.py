"""The per-dimension training-free quantizer classes: the set the method and robustness tests sweep."""

from __future__ import annotations

from qama_rs import quantizers as q

#: Every per-dimension training-free quantizer class (each a codec stage of the index by its ``name``).
PER_DIM = (q.SignBinary, q.MedianBinary, q.Quaternary, q.LloydMaxGauss, q.LloydMaxEmpirical, q.LloydMax4Bit,
           q.CalibrationFree2Bit, q.Int8, q.AdaptiveBits, q.GrayTwoBit)  # fmt: skip
