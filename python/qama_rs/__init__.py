"""qama-rs: Quantization Aware Matryoshka Adaptation with a Rust Hamming search engine.

Engine API (NumPy in, NumPy out; heavy work in Rust with the GIL released):

* :class:`Quantizer` — per-dimension thresholds: ``Quantizer.fit(x, "2bit")``, ``.encode(x, dims=None)``;
* :class:`Index` — faiss-like exact Hamming index: ``.add(x)``, ``D, I = .search(xq, k, dims=None)``;
* :func:`encode`, :func:`search`, :func:`hamming_distances`, :func:`pack_bits`, :func:`unpack_bits`
  on packed ``uint64`` codes; :func:`available_backends` / :func:`best_backend` name the SIMD kernels.

The engine runs on a rayon thread pool sized by ``RAYON_NUM_THREADS``; don't fork after using it
(use the "spawn" start method for worker processes).
"""

from ._core import (
    __version__,
    available_backends,
    best_backend,
    hamming_distances,
    pack_bits,
    unpack_bits,
)
from .cpu import cpu_description
from .index import Index, search
from .quantizer import Quantizer, encode

__all__ = [
    "Index",
    "Quantizer",
    "__version__",
    "available_backends",
    "best_backend",
    "cpu_description",
    "encode",
    "hamming_distances",
    "pack_bits",
    "search",
    "unpack_bits",
]
