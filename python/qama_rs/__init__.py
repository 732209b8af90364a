"""qama-rs: Quantization Aware Matryoshka Adaptation with a Rust search engine.

User API (NumPy in, NumPy out; heavy work in Rust with the GIL released):

* :func:`index_factory` / :class:`Index` — one index for every codec, named by a faiss-style spec:
  ``index = qama_rs.index_factory(384, "Hadamard,LloydMax2")``; ``index.train(docs)``; ``index.add(docs)``;
  ``D, I = index.search(queries, k)`` (float queries always; higher scores are better for every codec;
  ``I = -1`` past the stored vectors); ``index.save(path)``, ``Index.load(path, mmap=True)``.
  :func:`register_codec` plugs in a new codec; :data:`METHOD_SPECS` maps ``qama eval`` method names to specs;
* :class:`QamaError` — the one exception class of bad input and corrupt files (a ``ValueError``;
  :class:`QamaTypeError` is also a ``TypeError``); allocation failures raise ``MemoryError``.

Engine API (what the index is built on, for direct use):

* :class:`Quantizer` — per-dimension thresholds: ``Quantizer.fit(x, "2bit")``, ``.encode(x, dims=None)``;
* :class:`HammingIndex` — the exact symmetric Hamming index (``Index(quantizer)`` still builds one);
* :func:`encode`, :func:`search`, :func:`hamming_distances`, :func:`pack_bits`, :func:`unpack_bits`
  on packed ``uint64`` codes; :func:`available_backends` / :func:`best_backend` name the SIMD kernels;
* :class:`AsymmetricIndex` — float32 queries scored against compact 1/2/4/8-bit codes through a
  reconstruction table; :class:`TwoStageIndex` — Hamming candidates rescored asymmetrically or with
  (memory-mapped) float32 vectors; :func:`asym_pack` / :func:`asym_unpack` convert ``uint8`` codes.

The engine runs on a rayon thread pool sized by ``RAYON_NUM_THREADS``; don't fork after using it
(use the "spawn" start method for worker processes).
"""

from qama_rs._core import (
    __version__,
    asym_kernels,
    asym_pack,
    asym_unpack,
    available_backends,
    best_backend,
    hamming_distances,
    pack_bits,
    unpack_bits,
)
from qama_rs.engine.asym import AsymmetricIndex, FloatVectors, TwoStageIndex, recon_table
from qama_rs.engine.cpu import cpu_description
from qama_rs.engine.index import Index as HammingIndex
from qama_rs.engine.index import search
from qama_rs.engine.quantizer import Quantizer, encode
from qama_rs.index import (
    Index,
    QamaError,
    QamaTypeError,
    available_codecs,
    index_factory,
    register_codec,
)

__all__ = [
    "AsymmetricIndex",
    "FloatVectors",
    "HammingIndex",
    "Index",
    "QamaError",
    "QamaTypeError",
    "Quantizer",
    "TwoStageIndex",
    "__version__",
    "asym_kernels",
    "asym_pack",
    "asym_unpack",
    "available_backends",
    "available_codecs",
    "best_backend",
    "cpu_description",
    "encode",
    "hamming_distances",
    "index_factory",
    "pack_bits",
    "recon_table",
    "register_codec",
    "search",
    "unpack_bits",
]
