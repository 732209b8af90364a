"""Codec adapters of the index: one per codec family (see :mod:`qama_rs.index.codecs.base`)."""

from qama_rs.index.codecs.base import Codec
from qama_rs.index.codecs.flat import FlatCodec
from qama_rs.index.codecs.table import LutCodec, PerDimCodec, recon_table
from qama_rs.index.codecs.thermo import LloydMaxThermoCodec, ThermoCodec

__all__ = ["Codec", "FlatCodec", "LloydMaxThermoCodec", "LutCodec", "PerDimCodec", "ThermoCodec", "recon_table"]
