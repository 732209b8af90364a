"""Training-free quantizers: calibrated on corpus documents, scoring float queries asymmetrically.

``make_method("lloyd_max_gauss", rotation="hadamard", seed=0)`` builds an unfitted quantizer;
``METHODS`` maps each registry name to its class. Every quantizer implements
:class:`~qama_rs.quantizers.base.TrainingFreeQuantizer` (``fit``, ``encode``, ``reconstruct``,
``prepare_query``, ``reconstruction_values``, ``bytes_per_vector``, ``bits_per_dim``, ``thresholds``/``levels``, ``engine_arguments``);
``binary``, ``binary_median`` and ``gray_2bit`` also rank by symmetric Hamming distance.

Every quantizer and every byte-LUT codec of ``CODECS`` saves itself with ``to_state()`` (scalars and
numpy arrays, see :mod:`qama_rs.quantizers.state`) and loads with ``from_state(state)``, bit for bit.
Fits refuse fewer documents than they need (``QamaError``) and warn (``qama_rs.errors.QamaWarning``)
about training columns of zero spread; they work a block of columns or rows at a time, so their memory
stays a fraction of the corpus's.
"""

from __future__ import annotations

from qama_rs.quantizers.adaptive import AdaptiveBits
from qama_rs.quantizers.allocated import (
    Allocated,
    AllocatedNibble,
    AllocatedNibbleScaled,
    AllocatedScaled,
    TritRotation,
)
from qama_rs.quantizers.base import TrainingFreeQuantizer, check_embeddings
from qama_rs.quantizers.binary import MedianBinary, SignBinary
from qama_rs.quantizers.gray import GrayTwoBit, gray_decode, gray_encode
from qama_rs.quantizers.int8 import Int8
from qama_rs.quantizers.lloyd_max import (
    CalibrationFree2Bit,
    LloydMax4Bit,
    LloydMaxEmpirical,
    LloydMaxGauss,
    gaussian_lloyd_max,
)
from qama_rs.quantizers.product import PcaProduct
from qama_rs.quantizers.quaternary import Quaternary
from qama_rs.quantizers.rotation import (
    ROTATIONS,
    RandomizedHadamard,
    RandomOrthogonal,
    Rotated,
    Rotation,
    make_rotation,
)

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


#: Byte-LUT codecs (protocol B of the factory: ``fit``, ``encode -> uint8 (n, m)``, ``query_luts``,
#: optional ``row_scale``) that take the recall-per-byte frontier; not TrainingFreeQuantizers, so kept
#: apart from ``METHODS`` (whose entries all have per-dimension thresholds and reconstruction values).
CODECS: dict[str, type] = {
    cls.name: cls
    for cls in (Allocated, AllocatedScaled, AllocatedNibble, AllocatedNibbleScaled, TritRotation, PcaProduct)
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
    "CODECS",
    "METHODS",
    "Allocated",
    "AllocatedNibble",
    "AllocatedNibbleScaled",
    "AllocatedScaled",
    "PcaProduct",
    "TritRotation",
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
    "check_embeddings",
    "gaussian_lloyd_max",
    "gray_decode",
    "gray_encode",
    "make_method",
    "make_rotation",
]
