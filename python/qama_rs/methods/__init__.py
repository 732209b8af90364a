"""Training-free quantizers: calibrated on corpus documents, scoring float queries asymmetrically.

``make_method("lloyd_max_gauss", rotation="hadamard", seed=0)`` builds an unfitted quantizer;
``METHODS`` maps each registry name to its class. Every quantizer implements
:class:`~qama_rs.methods.base.TrainingFreeQuantizer` (``fit``, ``encode``, ``reconstruct``,
``score``, ``bytes_per_vector``, ``bits_per_dim``, ``thresholds``/``levels``, ``engine_arguments``);
``binary``, ``binary_median`` and ``gray_2bit`` also rank by symmetric Hamming distance.
"""

from __future__ import annotations

from .adaptive import AdaptiveBits
from .base import TrainingFreeQuantizer, check_embeddings
from .binary import MedianBinary, SignBinary
from .gray import GrayTwoBit, gray_decode, gray_encode
from .int8 import Int8
from .lloyd_max import CalibrationFree2Bit, LloydMax4Bit, LloydMaxEmpirical, LloydMaxGauss, gaussian_lloyd_max
from .quaternary import Quaternary
from .rotation import ROTATIONS, RandomizedHadamard, RandomOrthogonal, Rotated, Rotation, make_rotation
from .two_stage import TwoStageSearch

METHODS: dict[str, type[TrainingFreeQuantizer]] = {
    cls.name: cls
    for cls in (
        SignBinary,
        MedianBinary,
        Quaternary,
        LloydMaxGauss,
        LloydMaxEmpirical,
        LloydMax4Bit,
        CalibrationFree2Bit,
        Int8,
        AdaptiveBits,
        GrayTwoBit,
    )
}


def make_method(name: str, rotation: str = "none", seed: int = 0, **kwargs) -> TrainingFreeQuantizer:
    """An unfitted quantizer by registry name, optionally behind a seeded rotation."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    quantizer = METHODS[name](**kwargs)
    if rotation == "none":
        return quantizer
    return Rotated(quantizer, make_rotation(rotation, seed))


__all__ = [
    "METHODS",
    "ROTATIONS",
    "AdaptiveBits",
    "CalibrationFree2Bit",
    "GrayTwoBit",
    "Int8",
    "LloydMax4Bit",
    "LloydMaxEmpirical",
    "LloydMaxGauss",
    "MedianBinary",
    "Quaternary",
    "RandomOrthogonal",
    "RandomizedHadamard",
    "Rotated",
    "Rotation",
    "SignBinary",
    "TrainingFreeQuantizer",
    "TwoStageSearch",
    "check_embeddings",
    "gaussian_lloyd_max",
    "gray_decode",
    "gray_encode",
    "make_method",
    "make_rotation",
]
