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
