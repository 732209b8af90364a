"""Training-free quantizers: calibrated on corpus documents, scoring float queries asymmetrically.

Each class is an unfitted codec (``LloydMaxGauss(bits=2)``, ``AllocatedNibbleScaled(budget_bytes=48)``);
its ``name`` (``lloyd_max_gauss``, ``pca_nibble_scaled``, ...) is the codec stage that names it in an index
spec (``qama_rs.index_factory(dims, "pca_nibble_scaled(budget_bytes=48)")``): the index registry
(:mod:`qama_rs.index.registry`) is the one place names resolve to classes, and a rotation in front of a
quantizer is its ``Hadamard`` / ``Orthogonal`` transform stage (the :class:`Rotation` classes here).

Per-dimension quantizers implement :class:`~qama_rs.quantizers.base.TrainingFreeQuantizer` (``fit``,
``encode``, ``reconstruct``, ``prepare_query``, ``reconstruction_values``, ``bytes_per_vector``,
``bits_per_dim``, ``thresholds``/``levels``, ``engine_arguments``); ``binary``, ``binary_median`` and
``gray_2bit`` also rank by symmetric Hamming distance. The byte-LUT codecs (``Allocated*``,
``TritRotation``, ``PcaProduct``: ``fit``, ``encode -> uint8 (n, m)``, ``query_luts``, optional
``row_scale``) take the recall-per-byte frontier.

Every quantizer and byte-LUT codec saves itself with ``to_state()`` (scalars and numpy arrays, see
:mod:`qama_rs.quantizers.state`) and loads with ``from_state(state)``, bit for bit.
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
from qama_rs.quantizers.rotation import RandomizedHadamard, RandomOrthogonal, Rotation

__all__ = [
    "Allocated",
    "AllocatedNibble",
    "AllocatedNibbleScaled",
    "AllocatedScaled",
    "PcaProduct",
    "TritRotation",
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
    "Rotation",
    "SignBinary",
    "TrainingFreeQuantizer",
    "check_embeddings",
    "gaussian_lloyd_max",
    "gray_decode",
    "gray_encode",
]
