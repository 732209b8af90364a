"""The index layer: ``index_factory(dims, spec)`` builds one :class:`Index` for every codec.

Spec strings are faiss-style comma-separated stages: transforms, one codec, an optional refinement::

    Flat                             float32, exact inner product
    LloydMax2                        2-bit Lloyd-Max codes, float queries scored asymmetrically
    Thermo2                          2-bit thermometer codes, symmetric Hamming
    Hadamard,LloydMax2               behind a seeded randomized Hadamard rotation
    Prefix96,LloydMax2               the first 96 dimensions (Matryoshka prefix), renormalized
    QAMA(runs/head),Hybrid           a trained QAMA head's features and learned thresholds
    Sign,Rescore(LloydMax2,100)      Hamming top-100, rescored by 2-bit codes
    Thermo1,RFlat(200)               Hamming top-200, rescored with float32 vectors

:mod:`qama_rs.index.registry` lists the stages, :mod:`qama_rs.index.index` the search conventions (higher
score is better for every codec; ``I = -1``, ``D = -inf`` past the stored vectors),
:mod:`qama_rs.index.storage` how rows are kept and :mod:`qama_rs.index.fileformat` the file.
:class:`Allowed` prepares a search filter once for many searches; :func:`search` searches bare code
arrays. Imports engine, quantizers and qama only.
"""

from __future__ import annotations

from qama_rs.errors import QamaError, QamaTypeError
from qama_rs.index.allowed import Allowed
from qama_rs.index.codes import search
from qama_rs.index.index import MAX_K, Index, index_factory
from qama_rs.index.registry import available_codecs, register_codec
from qama_rs.index.spec import Stage, parse_spec

__all__ = [
    "MAX_K",
    "Allowed",
    "Index",
    "QamaError",
    "QamaTypeError",
    "Stage",
    "available_codecs",
    "index_factory",
    "parse_spec",
    "register_codec",
    "search",
]
