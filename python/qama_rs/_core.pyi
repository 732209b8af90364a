"""Type stubs of the Rust extension ``qama_rs._core`` (rust/python/src/lib.rs).

Every array argument must be a C-contiguous, aligned NumPy array of exactly the dtype shown (else
``QamaTypeError``, also a ``TypeError``); shape and value problems raise ``QamaError`` (a
``ValueError``); failed allocations ``MemoryError``. Messages name the argument. Integer arguments
accept anything with ``__index__``; a ``k`` beyond the rows returns every row.

Threads: the GIL is released while the core runs. Query-side arrays (queries, tables, candidates,
thresholds) are copied first; other arrays are read in place when read-only and copied when
writeable, so another thread writing an argument cannot change a running call's result.
"""

import numpy as np
import numpy.typing as npt

__all__ = [
    "QamaError",
    "QamaTypeError",
    "__version__",
    "quantize",
    "expand",
    "collapse",
    "encode",
    "pack_bits",
    "unpack_bits",
    "hamming_distances",
    "search",
    "available_backends",
    "best_backend",
    "cpu_features",
    "num_threads",
    "asym_pack",
    "asym_unpack",
    "asym_to_blocks",
    "asym_from_blocks",
    "asym_search",
    "asym_search_blocked",
    "asym_score_candidates",
    "asym_rescore",
    "float_rescore",
    "lut_search",
    "lut_search_blocked",
    "lut_score_candidates",
    "lut_rescore",
    "asym_kernels",
    "_gil_checks",
]

__version__: str

class QamaError(ValueError):
    """Base class of every qama_rs error (a ValueError): bad shapes, values, corrupt files."""

class QamaTypeError(QamaError, TypeError):
    """A qama_rs error about a type: wrong dtype, not an array, wrong memory layout, wrong argument type."""

def quantize(
    x: npt.NDArray[np.float32], thresholds: npt.NDArray[np.float32], levels: npt.NDArray[np.uint16]
) -> npt.NDArray[np.uint8]: ...
def expand(codes: npt.NDArray[np.uint8], levels: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint64]: ...
def collapse(packed: npt.NDArray[np.uint64], levels: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint8]: ...
def encode(
    x: npt.NDArray[np.float32], thresholds: npt.NDArray[np.float32], levels: npt.NDArray[np.uint16]
) -> npt.NDArray[np.uint64]: ...
def pack_bits(bits: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]: ...
def unpack_bits(words: npt.NDArray[np.uint64], nbits: int) -> npt.NDArray[np.uint8]: ...
def hamming_distances(
    queries: npt.NDArray[np.uint64],
    database: npt.NDArray[np.uint64],
    nbits: int | None = None,
    backend: str | None = None,
) -> npt.NDArray[np.int32]: ...
def search(
    queries: npt.NDArray[np.uint64],
    database: npt.NDArray[np.uint64],
    k: int,
    nbits: int | None = None,
    backend: str | None = None,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...
def available_backends() -> list[str]: ...
def best_backend() -> str: ...
def cpu_features() -> str: ...
def num_threads() -> int: ...
def _gil_checks() -> tuple[int, int]: ...

# Asymmetric scoring (rust/python/src/asym.rs). `recon` is float32 (dims, 2^bits): 2, 4, 16 or 256
# columns give bits 1, 2, 4, 8. Packed codes are uint8 (n, ceil(dims * bits / 8)). `row_scale`
# (float32 (n,), optional) multiplies row i's score. Byte-LUT tables are float32 (nq, m, 256)
# against uint8 (n, m) codes.
def asym_pack(codes: npt.NDArray[np.uint8], bits: int) -> npt.NDArray[np.uint8]: ...
def asym_unpack(packed: npt.NDArray[np.uint8], dims: int, bits: int) -> npt.NDArray[np.uint8]: ...
def asym_to_blocks(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]: ...
def asym_from_blocks(blocks: npt.NDArray[np.uint8], n: int, row_bytes: int) -> npt.NDArray[np.uint8]: ...
def asym_search(
    queries: npt.NDArray[np.float32],
    recon: npt.NDArray[np.float32],
    codes: npt.NDArray[np.uint8],
    k: int,
    kernel: str | None = None,
    row_scale: npt.NDArray[np.float32] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def asym_search_blocked(
    queries: npt.NDArray[np.float32],
    recon: npt.NDArray[np.float32],
    blocks: npt.NDArray[np.uint8],
    n: int,
    k: int,
    kernel: str | None = None,
    row_scale: npt.NDArray[np.float32] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def asym_score_candidates(
    queries: npt.NDArray[np.float32],
    recon: npt.NDArray[np.float32],
    codes: npt.NDArray[np.uint8],
    candidates: npt.NDArray[np.int64],
    row_scale: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def asym_rescore(
    queries: npt.NDArray[np.float32],
    recon: npt.NDArray[np.float32],
    codes: npt.NDArray[np.uint8],
    candidates: npt.NDArray[np.int64],
    k: int,
    row_scale: npt.NDArray[np.float32] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def float_rescore(
    queries: npt.NDArray[np.float32],
    vectors: npt.NDArray[np.float32],
    candidates: npt.NDArray[np.int64],
    k: int,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def lut_search(
    luts: npt.NDArray[np.float32],
    codes: npt.NDArray[np.uint8],
    k: int,
    row_scale: npt.NDArray[np.float32] | None = None,
    kernel: str | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def lut_search_blocked(
    luts: npt.NDArray[np.float32],
    blocks: npt.NDArray[np.uint8],
    n: int,
    k: int,
    row_scale: npt.NDArray[np.float32] | None = None,
    kernel: str | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def lut_score_candidates(
    luts: npt.NDArray[np.float32],
    codes: npt.NDArray[np.uint8],
    candidates: npt.NDArray[np.int64],
    row_scale: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]: ...
def lut_rescore(
    luts: npt.NDArray[np.float32],
    codes: npt.NDArray[np.uint8],
    candidates: npt.NDArray[np.int64],
    k: int,
    row_scale: npt.NDArray[np.float32] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def asym_kernels() -> list[str]: ...
