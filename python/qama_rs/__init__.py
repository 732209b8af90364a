"""qama-rs: Quantization Aware Matryoshka Adaptation with a Rust Hamming search engine.

Engine API (NumPy in, NumPy out; heavy work in Rust with the GIL released):

* :class:`Quantizer` — per-dimension thresholds: ``Quantizer.fit(x, "2bit")``, ``.encode(x, dims=None)``;
* :class:`Index` — faiss-like exact Hamming index: ``.add(x)``, ``D, I = .search(xq, k, dims=None)``;
* :func:`encode`, :func:`search`, :func:`hamming_distances`, :func:`pack_bits`, :func:`unpack_bits`
  on packed ``uint64`` codes; :func:`available_backends` / :func:`best_backend` name the SIMD kernels;
* :class:`AsymmetricIndex` — float32 queries scored against compact 1/2/4/8-bit codes through a
  reconstruction table (``D, I = .search(xq, k)``, exact); :class:`TwoStageIndex` — Hamming
  candidates from an :class:`Index`, rescored asymmetrically or with (memory-mapped) float32 vectors;
  :func:`asym_pack` / :func:`asym_unpack` convert ``uint8`` codes to and from the compact layout.

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
from qama_rs.engine.index import Index, search
from qama_rs.engine.quantizer import Quantizer, encode

__all__ = [
    "AsymmetricIndex",
    "FloatVectors",
    "Index",
    "Quantizer",
    "TwoStageIndex",
    "__version__",
    "asym_kernels",
    "asym_pack",
    "asym_unpack",
    "available_backends",
    "best_backend",
    "cpu_description",
    "encode",
    "hamming_distances",
    "pack_bits",
    "recon_table",
    "search",
    "unpack_bits",
]
