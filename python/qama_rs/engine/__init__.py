"""Engine layer: thin Python objects over the Rust core (``qama_rs._core``).

Thermometer quantizers and the exact Hamming index, compact-code asymmetric scoring (optional
per-row scales), byte-LUT codes (LutIndex) and two-stage search, the CPU description, and the one
atomic file writer every layer uses. Imports nothing of qama_rs but ``_core`` and ``errors``.
"""

from qama_rs.engine.asym import AsymmetricIndex, FloatVectors, LutIndex, TwoStageIndex, recon_table
from qama_rs.engine.cpu import cpu_description
from qama_rs.engine.index import Index, search
from qama_rs.engine.quantizer import Quantizer, atomic_write, encode

__all__ = [
    "AsymmetricIndex",
    "FloatVectors",
    "Index",
    "LutIndex",
    "Quantizer",
    "TwoStageIndex",
    "atomic_write",
    "cpu_description",
    "encode",
    "recon_table",
    "search",
]
