"""Engine layer: thin Python objects over the Rust core (``qama_rs._core``): thermometer quantizers, the
CPU description, and the one atomic file writer every layer uses. Imports nothing of qama_rs but
``_core`` and ``errors``. The codecs themselves (``_core.HammingCodec``, ``TableCodec``, ``FloatCodec``)
are used through :mod:`qama_rs.index`."""

from qama_rs.engine.cpu import cpu_description
from qama_rs.engine.files import atomic_write
from qama_rs.engine.quantizer import Quantizer, encode

__all__ = ["Quantizer", "atomic_write", "cpu_description", "encode"]
