"""qama-rs: Quantization Aware Matryoshka Adaptation with a Rust search engine.

User API (NumPy in, NumPy out; heavy work in Rust with the GIL released):

* :func:`index_factory` / :class:`Index` — one index for every codec, named by a faiss-style spec:
  ``index = qama_rs.index_factory(384, "Hadamard,LloydMax2")``; ``index.train(docs)``; ``index.add(docs)``;
  ``D, I = index.search(queries, k)`` (float queries always; higher scores are better for every codec;
  ``I = -1`` past the stored vectors; ``allowed=ids`` filters inside the scan, :class:`Allowed` prepares such a
  filter once for many searches); ``index.save(path)``,
  ``Index.load(path, mmap=True)``. :func:`register_codec` plugs in a new codec;
* :class:`QamaError` — the one exception class of bad input and corrupt files (a ``ValueError``;
  :class:`QamaTypeError` is also a ``TypeError``); allocation failures raise ``MemoryError``.

Engine API (what the index is built on, for direct use):

* :class:`Quantizer` — per-dimension thresholds: ``Quantizer.fit(x, "2bit")``, ``.encode(x, dims=None)``;
* :func:`encode`, :func:`search`, :func:`hamming_distances`, :func:`pack_bits`, :func:`unpack_bits` on packed
  ``uint64`` codes; :func:`pack_codes` / :func:`unpack_codes` for compact per-dimension codes;
  :func:`available_isas` / :func:`best_isa` name the kernels' instruction-set levels.

The engine runs on its own thread pool sized by ``RAYON_NUM_THREADS`` (default: all cores); a process
forked after a search (multiprocessing, gunicorn ``--preload``, PyTorch ``DataLoader`` workers) builds a
fresh pool on its first call, so searching in the child is safe.
"""

from qama_rs._core import (
    __version__,
    available_isas,
    best_isa,
    hamming_distances,
    pack_bits,
    pack_codes,
    unpack_bits,
    unpack_codes,
)
from qama_rs.engine.cpu import cpu_description
from qama_rs.engine.quantizer import Quantizer, encode
from qama_rs.errors import QamaWarning
from qama_rs.index import (
    Allowed,
    Index,
    QamaError,
    QamaTypeError,
    available_codecs,
    index_factory,
    register_codec,
    search,
)

__all__ = [
    "Allowed",
    "Index",
    "QamaError",
    "QamaTypeError",
    "QamaWarning",
    "Quantizer",
    "__version__",
    "available_codecs",
    "available_isas",
    "best_isa",
    "cpu_description",
    "encode",
    "hamming_distances",
    "index_factory",
    "pack_bits",
    "pack_codes",
    "register_codec",
    "search",
    "unpack_bits",
    "unpack_codes",
]
