"""Type stubs of the Rust extension ``qama_rs._core`` (rust/python/src/lib.rs).

Every array argument must be a C-contiguous NumPy array of exactly the dtype shown (else
``TypeError``); shape and value problems raise ``ValueError``. Nothing is copied on the way in.
"""

import numpy as np
import numpy.typing as npt

__all__ = [
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
    "asym_kernels",
]

__version__: str

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

# Asymmetric scoring (rust/python/src/asym.rs). `recon` is float32 (dims, 2^bits): 2, 4, 16 or 256
# columns give bits 1, 2, 4, 8. Packed codes are uint8 (n, ceil(dims * bits / 8)).
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
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def asym_search_blocked(
    queries: npt.NDArray[np.float32],
    recon: npt.NDArray[np.float32],
    blocks: npt.NDArray[np.uint8],
    n: int,
    k: int,
    kernel: str | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def asym_score_candidates(
    queries: npt.NDArray[np.float32],
    recon: npt.NDArray[np.float32],
    codes: npt.NDArray[np.uint8],
    candidates: npt.NDArray[np.int64],
) -> npt.NDArray[np.float32]: ...
def asym_rescore(
    queries: npt.NDArray[np.float32],
    recon: npt.NDArray[np.float32],
    codes: npt.NDArray[np.uint8],
    candidates: npt.NDArray[np.int64],
    k: int,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def float_rescore(
    queries: npt.NDArray[np.float32],
    vectors: npt.NDArray[np.float32],
    candidates: npt.NDArray[np.int64],
    k: int,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def asym_kernels() -> list[str]: ...
