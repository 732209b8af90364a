"""Type stubs of the Rust extension ``qama_rs._core`` (rust/python/src).

Every array argument must be a C-contiguous, aligned NumPy array of exactly the dtype shown (else
``QamaTypeError``, also a ``TypeError``); shape and value problems raise ``QamaError`` (a ``ValueError``);
failed allocations ``MemoryError``. Messages name the argument. Integer arguments accept anything with
``__index__``; a ``k`` beyond the rows returns every row.

Threads: the GIL is released while the core runs, in a pool owned by the process (rebuilt after a fork).
Query-side arrays (queries, tables, candidates, thresholds) are copied first; a ``Store`` reads the
index's own arrays in place (the index never writes them during a call).

Codecs (``HammingCodec``, ``TableCodec``, ``FloatCodec``, ``Float16Codec``) answer the same calls over a
``Store``: ``search`` (every row), ``search_lists`` (each query its own lists, by a ``Plan``: made by
``Coarse.plan`` or given), ``score`` (given rows, in order), ``rescore`` (the best of given rows).
Results are ``(scores float32, ids int64)``, scores higher-is-better (Hamming: ``-distance``), ids the
store's labels (or positions), ``-1`` / ``-inf`` where a query has fewer results than asked (a filter). A
``Filter`` (``Filter.bits(uint64 bitmap words over labels)`` or ``Filter.labels(sorted uint64)``)
restricts the labels returned.
"""

from typing import final

import numpy as np
import numpy.typing as npt
from typing_extensions import Self

__all__ = [
    "Affine8Codec",
    "Coarse",
    "Filter",
    "Float16Codec",
    "FloatCodec",
    "HammingCodec",
    "Plan",
    "QamaError",
    "QamaTypeError",
    "Store",
    "TableCodec",
    "Thresholds",
    "__version__",
    "_gil_checks",
    "available_isas",
    "best_isa",
    "collapse",
    "cpu_features",
    "encode",
    "expand",
    "from_blocks",
    "hamming_distances",
    "keep_block_rows",
    "kmeans_assign",
    "kmeans_iterate",
    "num_threads",
    "pack_bits",
    "pack_codes",
    "peak_abs",
    "quantize",
    "to_blocks",
    "unpack_bits",
    "unpack_codes",
    "write_block_rows",
]

__version__: str

class QamaError(ValueError):
    """Base class of every qama_rs error (a ValueError): bad shapes, values, corrupt files."""

class QamaTypeError(QamaError, TypeError):
    """A qama_rs error about a type: wrong dtype, not an array, wrong memory layout, wrong argument type."""

_Scored = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]

# Thermometer codes.
def quantize(
    x: npt.NDArray[np.float32], thresholds: npt.NDArray[np.float32], levels: npt.NDArray[np.uint16]
) -> npt.NDArray[np.uint8]: ...
def expand(codes: npt.NDArray[np.uint8], levels: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint64]: ...
def collapse(packed: npt.NDArray[np.uint64], levels: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint8]: ...
def encode(
    x: npt.NDArray[np.float32], thresholds: npt.NDArray[np.float32], levels: npt.NDArray[np.uint16]
) -> npt.NDArray[np.uint64]: ...
def pack_bits(bits: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]: ...

@final
class Thresholds:
    """Per-dimension ascending thresholds, checked once; encodes many batches."""

    def __new__(cls, thresholds: npt.NDArray[np.float32], levels: npt.NDArray[np.uint16]) -> Thresholds: ...
    def quantize(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]: ...
    def encode(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.uint64]: ...
    @property
    def dims(self) -> int: ...
    @property
    def words(self) -> int: ...

def unpack_bits(words: npt.NDArray[np.uint64], nbits: int) -> npt.NDArray[np.uint8]: ...
def hamming_distances(
    queries: npt.NDArray[np.uint64],
    database: npt.NDArray[np.uint64],
    nbits: int | None = None,
    isa: str | None = None,
) -> npt.NDArray[np.int32]: ...

# Compact per-dimension codes and the 32-row block layout.
def pack_codes(codes: npt.NDArray[np.uint8], bits: int) -> npt.NDArray[np.uint8]: ...
def unpack_codes(packed: npt.NDArray[np.uint8], dims: int, bits: int) -> npt.NDArray[np.uint8]: ...
def to_blocks(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]: ...
def from_blocks(blocks: npt.NDArray[np.uint8], n: int, row_bytes: int) -> npt.NDArray[np.uint8]: ...
def write_block_rows(blocks: npt.NDArray[np.uint8], at: int, rows: npt.NDArray[np.uint8]) -> None: ...
def keep_block_rows(blocks: npt.NDArray[np.uint8], row_bytes: int, keep: npt.NDArray[np.bool_]) -> int: ...

# k-means.
def kmeans_iterate(
    x: npt.NDArray[np.float32],
    centroids: npt.NDArray[np.float32],
    basis: npt.NDArray[np.float32] | None = None,
    candidates: int | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint64], float]: ...
def kmeans_assign(
    x: npt.NDArray[np.float32],
    centroids: npt.NDArray[np.float32],
    basis: npt.NDArray[np.float32] | None = None,
    candidates: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...

# Argument checks.
def peak_abs(x: npt.NDArray[np.float32]) -> float: ...

# The machine.
def available_isas() -> list[str]: ...
def best_isa() -> str: ...
def cpu_features() -> str: ...
def num_threads() -> int: ...
def _gil_checks() -> tuple[int, int]: ...

@final
class Store:
    """Rows of one codec family read in place: segments of one dtype (uint8, uint64, float32, or uint16
    float16 bits), a uint64 table (lists, 2 * segments) of row offsets and counts, optional uint64 labels
    and float32 row scales per segment."""

    def __new__(
        cls,
        segments: list[npt.NDArray[np.generic]],
        table: npt.NDArray[np.uint64],
        labels: list[npt.NDArray[np.uint64]] | None = None,
        row_scale: list[npt.NDArray[np.float32]] | None = None,
        max_scale: float | None = None,
    ) -> Self: ...
    @property
    def rows(self) -> int: ...
    @property
    def lists(self) -> int: ...
    @property
    def serial(self) -> int: ...

@final
class Filter:
    """Labels a search may return."""

    @staticmethod
    def bits(words: npt.NDArray[np.uint64]) -> Filter: ...
    @staticmethod
    def labels(labels: npt.NDArray[np.uint64]) -> Filter: ...
    def admitting(self, store: Store) -> Filter: ...
    @property
    def store_serial(self) -> int | None: ...

@final
class Plan:
    """Each query's lists, best first, with their biases; the first ``nprobe`` are always scanned."""

    def __new__(
        cls, lists: npt.NDArray[np.int64], nprobe: int, bias: npt.NDArray[np.float32] | None = None
    ) -> Self: ...
    def arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...

@final
class Coarse:
    """A partition's centroids ``float32 (nlist, dims)`` (held as float16 when every value is one). With
    ``radius`` (the rows' typical norm) lists rank by how near their centroid is to the query scaled to that
    norm, by the key ``fl32(<q, c> - fl32(|q| / (2 radius) * fl32(|c|^2)))``; without, by ``<q, c>``."""

    def __new__(cls, centroids: npt.NDArray[np.float32], isa: str | None = None, radius: float | None = None) -> Self: ...
    @property
    def radius(self) -> float | None: ...
    def plan(self, queries: npt.NDArray[np.float32], nprobe: int, width: int, residual: bool) -> Plan: ...
    @property
    def is_half(self) -> bool: ...
    @property
    def nlist(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    def centroids(self) -> npt.NDArray[np.float32]: ...

class _Codec:
    @property
    def row_units(self) -> int: ...
    @property
    def block_rows(self) -> int: ...
    @property
    def isa(self) -> str: ...
    def search(
        self, queries: npt.NDArray[np.generic], store: Store, k: int, filter: Filter | None = None
    ) -> _Scored: ...
    def search_lists(
        self, queries: npt.NDArray[np.generic], store: Store, k: int, plan: Plan, filter: Filter | None = None
    ) -> _Scored: ...
    def score(
        self, queries: npt.NDArray[np.generic], store: Store, candidates: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]: ...
    def rescore(
        self,
        queries: npt.NDArray[np.generic],
        store: Store,
        candidates: npt.NDArray[np.int64],
        k: int,
        filter: Filter | None = None,
    ) -> _Scored: ...

@final
class HammingCodec(_Codec):
    """Symmetric Hamming over ``words``-word codes, the first ``nbits`` bits compared."""

    def __new__(cls, words: int, nbits: int | None = None, isa: str | None = None) -> Self: ...
    @property
    def nbits(self) -> int: ...

@final
class TableCodec(_Codec):
    """Codes scored through per-query byte tables (``layout``: ``"rows"`` or ``"blocks"``)."""

    @staticmethod
    def recon(
        recon: npt.NDArray[np.float32], layout: str | None = None, isa: str | None = None
    ) -> TableCodec: ...
    @staticmethod
    def given(m: int, layout: str | None = None, isa: str | None = None) -> TableCodec: ...
    @staticmethod
    def projected(
        basis: npt.NDArray[np.float32],
        slot_dims: npt.NDArray[np.int64],
        slot_values: npt.NDArray[np.float32],
        layout: str | None = None,
        isa: str | None = None,
    ) -> TableCodec: ...
    @property
    def layout(self) -> str: ...

@final
class FloatCodec(_Codec):
    """Float32 rows scored by inner product."""

    def __new__(cls, dims: int, isa: str | None = None) -> Self: ...

@final
class Float16Codec(_Codec):
    """Float16 rows (``uint16`` bits) scored by inner product, widened a tile at a time."""

    def __new__(cls, dims: int, isa: str | None = None) -> Self: ...

@final
class Affine8Codec(_Codec):
    """``uint8`` rows decoded as ``base + step * code`` (float32) and scored as float rows."""

    def __new__(cls, base: npt.NDArray[np.float32], step: npt.NDArray[np.float32], isa: str | None = None) -> Self: ...
