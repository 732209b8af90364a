"""The interface every training-free quantizer implements, and the input checks they share.

A quantizer is fitted on corpus documents only. It maps each vector to one ``uint8`` code per
(coded) dimension, where the code of a value is the number of that dimension's ascending thresholds
it strictly exceeds — the same rule as the Rust engine's ``qama_rs.Quantizer``, so
:meth:`TrainingFreeQuantizer.engine_arguments` hands the engine thresholds that reproduce
:meth:`~TrainingFreeQuantizer.encode` code for code.

Scoring is asymmetric: a float32 query is mapped into the quantizer's scoring space by
:meth:`~TrainingFreeQuantizer.prepare_query` and dotted with the reconstructed documents
(``prepare_query(q) @ reconstruct(codes).T``). The scoring itself is the engine's: an index over the
codec (``qama_rs.index_factory(d, "LloydMax2")``) runs the Rust reconstruction kernel on
:attr:`reconstruction_values`;
the NumPy version lives in ``tests/_oracles.py`` as a test oracle only.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod

import numpy as np

from qama_rs.errors import QamaError, QamaTypeError, QamaWarning
from qama_rs.quantizers.state import corrupt, flatten, ragged, state_array, state_int

#: Bytes of scratch one block of a fit or an encode may take. Fits compute their statistics a block of
#: columns at a time and encodes a block of rows at a time, so their memory stays a small fraction of
#: the input's (a 200k x 384 float32 corpus is 293 MiB; whole-array float64 copies cost twice that).
SCRATCH_BYTES = 8 * 2**20
#: Corpora of up to this many rows get each matrix product (covariance, projections) in one piece, as
#: before fits were chunked: BLAS splits a product among threads and kernels by its shape, so a product
#: computed in blocks can round differently in the last bits — and the published numbers (BEIR corpora
#: of about 5k documents) must not move. Their statistics, sorts and quantiles are still chunked (those
#: are exact). Larger corpora compute products in blocks of rows too: bounded memory, and results that
#: may differ from a one-piece computation in float rounding only.
EXACT_ROWS = 65536
#: Least multiply-adds of one block of a chunked product (corpora over ``EXACT_ROWS`` rows). OpenBLAS
#: hands small products to other kernels (its small-matrix kernels below about a million multiply-adds;
#: on AVX-512 its "direct" sgemm below 7.3 million), which round differently again.
BIG_PRODUCT = 1 << 24


def spans(total: int, step: int) -> list[slice]:
    """``0..total`` cut into slices of ``step``; a tail shorter than half a step (or than 2) joins the
    slice before it, so every slice is at least ``min(total, step // 2)`` long.

    Why: an axis-0 NumPy reduction (a sum, a median, a quantile) computes each column in the same
    order whatever the columns beside it, so column blocks reproduce the whole array's statistics bit
    for bit — except a one-column block, which NumPy sums pairwise. Matrix products are another matter
    (see :data:`EXACT_ROWS`): a one-row product goes to ``gemv`` and small ones to other BLAS kernels,
    so long slices also keep a chunked product close to the one-piece one.
    """
    step = max(2, int(step))
    edges = [*range(0, total, step), total]
    if len(edges) > 2 and edges[-1] - edges[-2] < max(2, step // 2):
        edges.pop(-2)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def scratch_items(itemsize: int, per: int, blocks: int = 1) -> int:
    """How many slices of ``per`` items of ``itemsize`` bytes take ``blocks`` times ``SCRATCH_BYTES``."""
    return blocks * SCRATCH_BYTES // max(1, per * itemsize)


def column_spans(n: int, d: int, itemsize: int = 8, blocks: int = 1, least: int = 2) -> list[slice]:
    """Column blocks (at least ``least`` wide) of an ``(n, d)`` array whose ``itemsize``-byte copies take
    about ``blocks`` times ``SCRATCH_BYTES``."""
    return spans(d, max(least, scratch_items(itemsize, n, blocks)))


def row_spans(n: int, d: int, itemsize: int = 4) -> list[slice]:
    """Row blocks of an ``(n, d)`` array whose ``itemsize``-byte copies take about ``SCRATCH_BYTES``."""
    return spans(n, scratch_items(itemsize, d))


def one_piece(n: int) -> bool:
    """Whether ``n`` rows get each matrix product in one piece (:data:`EXACT_ROWS`)."""
    return n <= EXACT_ROWS


def product_spans(n: int, inner: int, outer: int, itemsize: int = 4, *, exact: bool = True) -> list[slice]:
    """Row blocks of a product ``(n, inner) @ (inner, outer)``: all ``n`` rows at once up to
    :data:`EXACT_ROWS` (bit-identical to the one-piece product; ``exact=False``: not even then, for rows
    sampled from a larger corpus, which has no one-piece figure to keep), else about ``SCRATCH_BYTES`` of
    ``itemsize``-byte rows and never fewer than :data:`BIG_PRODUCT` multiply-adds a block."""
    if exact and one_piece(n):
        return [slice(0, n)]
    least = -(-2 * BIG_PRODUCT // max(1, inner * outer))  # a last block may be half a step
    return spans(n, max(scratch_items(itemsize, inner), least))


def check_finite(x: np.ndarray, argname: str) -> None:
    """Raises ``QamaError`` naming ``argname`` and the first NaN/inf, checked a block of rows at a time."""
    for rows in row_spans(len(x), x.shape[1], 1):
        finite = np.isfinite(x[rows])
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise QamaError(
                f"{argname} has a non-finite value (NaN or inf) at row {rows.start + row}, column {col}"
            )


def check_embeddings(x, argname: str, dim: int | None = None) -> np.ndarray:
    """Validates a 2-D finite real array (n >= 1 rows, >= 1 columns) and returns it as float32.

    ``dim``, when given, is the number of columns ``x`` must have. Errors name ``argname``
    (``QamaTypeError`` for a wrong type, ``QamaError`` for wrong values). A C-contiguous float32 array
    is returned as it is, not copied.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise QamaTypeError(f"{argname} must be a 2-D array of real numbers: {exc}") from exc
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise QamaTypeError(f"{argname} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise QamaError(f"{argname} must be 2-D (n, dim), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise QamaError(f"{argname} is empty: shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise QamaError(f"{argname} has {arr.shape[1]} dimensions, the quantizer was fitted on {dim}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    check_finite(arr, argname)
    return arr


def require_rows(x: np.ndarray, needed: int, argname: str, what: str) -> None:
    """Refuses a fit on fewer than ``needed`` rows (``what``: the codec, for the message)."""
    if len(x) < needed:
        raise QamaError(
            f"{argname} has {len(x)} row{'s' if len(x) != 1 else ''}; fitting {what} needs at least "
            f"{needed} documents (one row gives no spread to place thresholds or levels in)"
        )


def warn_constant(constant, what: str, unit: str = "column") -> None:
    """Warns (:class:`~qama_rs.errors.QamaWarning`) when some ``unit`` of the training data had zero
    spread: its codes are then the same for every document and carry no information.

    ``constant``: a boolean mask over the units."""
    constant = np.flatnonzero(np.asarray(constant, dtype=bool))
    if not len(constant):
        return
    shown = ", ".join(str(int(j)) for j in constant[:8]) + (", ..." if len(constant) > 8 else "")
    many = len(constant) != 1
    warnings.warn(
        f"{what}: {len(constant)} {unit}{'s' if many else ''} of the training data ({shown}) "
        f"{'have' if many else 'has'} zero spread (every value equal): {'their' if many else 'its'} codes "
        "carry no information, so documents that differ only there score the same; fit on more (and more "
        "varied) documents",
        QamaWarning,
        stacklevel=3,
    )


def column_stats(x: np.ndarray, median: bool = True, std: bool = True, spread: bool = True) -> dict:
    """Per-column statistics of a float32 ``(n, d)`` array, a block of columns at a time.

    ``"median"`` (float64 of ``np.median(x, axis=0)``), ``"std"`` (``x.std(axis=0, dtype=float64)``),
    ``"constant"`` (``min == max``) — bit-identical to the whole-array calls (see :func:`spans`),
    without their ``(n, d)`` copies (float64 for the standard deviation).
    """
    n, d = x.shape
    out: dict[str, np.ndarray] = {}
    if median:
        out["median"] = np.empty(d, dtype=np.float64)
    if std:
        out["std"] = np.empty(d, dtype=np.float64)
    if spread:
        out["constant"] = np.empty(d, dtype=bool)
    for cols in column_spans(n, d):
        block = x[:, cols]
        if median:
            out["median"][cols] = np.median(block, axis=0)
        if std:
            out["std"][cols] = block.std(axis=0, dtype=np.float64)
        if spread:
            out["constant"][cols] = block.min(axis=0) == block.max(axis=0)
    return out


def encode_with_thresholds(x: np.ndarray, thresholds: list[np.ndarray]) -> np.ndarray:
    """Code of ``x[i, j]`` = number of ``thresholds[j]`` it strictly exceeds (the engine's rule).

    ``x`` is float32 and the thresholds float32, so the comparison is the one the engine makes.
    """
    codes = np.empty(x.shape, dtype=np.uint8)
    for j, t in enumerate(thresholds):
        # searchsorted(side="left") counts the thresholds strictly below the value.
        codes[:, j] = np.searchsorted(t, x[:, j], side="left")
    return codes


class TrainingFreeQuantizer(ABC):
    """Base class: per-dimension thresholds (encoding) and per-dimension levels (reconstruction).

    Subclasses set, in :meth:`fit`, ``self._thresholds`` (one ascending float32 array per coded
    dimension) and ``self._levels`` (one float32 array of ``len(thresholds) + 1`` reconstruction
    values per coded dimension); everything else follows from those two lists unless overridden.
    Public names follow the engine: :attr:`thresholds` and :attr:`levels` (level *counts*) are what
    ``qama_rs.Quantizer(thresholds=..., levels=...)`` takes; the values a code decodes to are
    :attr:`reconstruction_values`.
    """

    #: Registry name of the method (without rotation suffix).
    name: str = "quantizer"
    #: Whether the method has a symmetric Hamming variant (:meth:`hamming_bits`).
    supports_hamming: bool = False
    #: Constructor keywords saved by :meth:`to_state` (each an attribute of the same name).
    _state_params: tuple[str, ...] = ()
    #: Fitted per-dimension attributes saved by :meth:`to_state` as arrays, with their dtypes.
    _state_arrays: dict[str, type] = {}

    def __init__(self) -> None:
        self._thresholds: list[np.ndarray] | None = None
        self._levels: list[np.ndarray] | None = None
        self.dim: int | None = None

    # ----------------------------------------------------------------- fitting
    @abstractmethod
    def fit(self, doc_emb) -> TrainingFreeQuantizer:
        """Calibrates on corpus documents ``(n, dim)``; returns ``self``."""

    @property
    def is_fitted(self) -> bool:
        return self._thresholds is not None

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"{self.name}: call fit(doc_emb) before using the quantizer")

    def _set_tables(self, thresholds: list[np.ndarray], levels: list[np.ndarray]) -> None:
        if len(thresholds) != len(levels):
            raise AssertionError("one threshold array and one level array per dimension")
        clean_t, clean_l = [], []
        for t, lv in zip(thresholds, levels, strict=True):
            t = np.ascontiguousarray(t, dtype=np.float32)
            lv = np.ascontiguousarray(lv, dtype=np.float32)
            if lv.shape != (t.shape[0] + 1,):
                raise AssertionError("a dimension with T thresholds has T + 1 levels")
            if t.shape[0] + 1 > 256:
                raise AssertionError("codes are uint8: at most 256 levels per dimension")
            # Float32 rounding can make neighbouring thresholds swap by one ulp; keep them sorted so
            # the engine accepts them and encoding stays well defined.
            clean_t.append(np.maximum.accumulate(t) if t.size else t)
            clean_l.append(lv)
        self._thresholds, self._levels = clean_t, clean_l

    # ------------------------------------------------------------- encoding
    @property
    def input_dim(self) -> int:
        """Dimension of the vectors :meth:`encode` and :meth:`score` accept."""
        self._require_fitted()
        return self.dim

    @property
    def code_dim(self) -> int:
        """Number of codes per vector (equals ``input_dim`` unless a rotation pads)."""
        self._require_fitted()
        return len(self._thresholds)

    def encode(self, x) -> np.ndarray:
        """``(n, input_dim)`` floats → ``(n, code_dim)`` uint8 codes in ``0..levels[j]-1``."""
        self._require_fitted()
        x = check_embeddings(x, "x", self.input_dim)
        return encode_with_thresholds(self._to_code_space(x), self._thresholds)

    def _to_code_space(self, x: np.ndarray) -> np.ndarray:
        """Hook for wrappers (rotation) that transform vectors before thresholding."""
        return x

    def to_code_space(self, x) -> np.ndarray:
        """The vectors the thresholds apply to (rotated for a rotated method): what an engine encodes."""
        self._require_fitted()
        return self._to_code_space(check_embeddings(x, "x", self.input_dim))

    def check_codes(self, codes, argname: str = "codes") -> np.ndarray:
        """Validates a ``(n, code_dim)`` uint8 code array with every code below its level count."""
        self._require_fitted()
        if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8:
            raise TypeError(f"{argname} must be a uint8 numpy array from encode()")
        if codes.ndim != 2 or codes.shape[1] != self.code_dim:
            raise ValueError(f"{argname} must have shape (n, {self.code_dim}), got {codes.shape}")
        if codes.shape[0] == 0:
            raise ValueError(f"{argname} is empty")
        if (codes >= self.levels[None, :]).any():
            raise ValueError(f"{argname} holds a code outside its dimension's level range")
        return codes

    def reconstruct(self, codes) -> np.ndarray:
        """Codes → float32 ``(n, code_dim)`` vectors in the scoring space (level lookup)."""
        codes = self.check_codes(codes)
        out = np.empty(codes.shape, dtype=np.float32)
        for j, lv in enumerate(self._levels):
            out[:, j] = lv[codes[:, j]]
        return out

    def prepare_query(self, query_emb) -> np.ndarray:
        """Maps float queries into the scoring space; identity unless a method centres or rotates."""
        self._require_fitted()
        return self._to_code_space(check_embeddings(query_emb, "query_emb", self.input_dim))

    # ------------------------------------------------------------ accounting
    @property
    def levels(self) -> np.ndarray:
        """Number of levels of each coded dimension (int64 ``(code_dim,)``), as the engine's ``levels``."""
        self._require_fitted()
        return np.array([t.shape[0] + 1 for t in self._thresholds], dtype=np.int64)

    @property
    def bits_per_code(self) -> np.ndarray:
        """Storage bits of each coded dimension: ``ceil(log2(levels))``."""
        return np.array([max(1, math.ceil(math.log2(L))) for L in self.levels], dtype=np.int64)

    @property
    def bits_per_dim(self) -> float:
        """Mean storage bits per input dimension (padding of a rotation counts)."""
        return float(self.bits_per_code.sum()) / self.input_dim

    @property
    def bytes_per_vector(self) -> int:
        """Bytes of one densely packed code vector."""
        return math.ceil(int(self.bits_per_code.sum()) / 8)

    # ---------------------------------------------------------- engine export
    @property
    def thresholds(self) -> list[np.ndarray]:
        """Ascending float32 thresholds, one array per coded dimension (copies)."""
        self._require_fitted()
        return [t.copy() for t in self._thresholds]

    @property
    def reconstruction_values(self) -> list[np.ndarray]:
        """Reconstruction values (the Lloyd-Max "levels"), one float32 array of ``levels[j]`` values
        per coded dimension (copies)."""
        self._require_fitted()
        return [lv.copy() for lv in self._levels]

    def thresholds_matrix(self) -> np.ndarray:
        """Thresholds as one ``(code_dim, L-1)`` float32 matrix; only when every dimension has L levels."""
        counts = self.levels
        if (counts != counts[0]).any():
            raise ValueError(f"{self.name} has a varying number of levels per dimension; use .thresholds")
        return np.stack(self._thresholds)

    def engine_arguments(self) -> dict:
        """Keyword arguments for ``qama_rs.Quantizer(thresholds=..., levels=...)``.

        ``thresholds`` is the concatenation of every dimension's ascending thresholds (dimension
        order) and ``levels`` the per-dimension level counts. The engine then produces exactly the
        codes of :meth:`encode` from :meth:`to_code_space` of the same vectors (rotated if any).
        """
        self._require_fitted()
        return {
            "thresholds": np.concatenate(self._thresholds).astype(np.float32),
            "levels": self.levels.astype(np.uint32),
        }

    # ------------------------------------------------------------------ persistence
    def to_state(self) -> dict:
        """The fitted quantizer (see :mod:`qama_rs.quantizers.state`): its constructor keywords,
        ``dim`` and ``code_dim``, the thresholds and reconstruction ``values`` (float32, flat with
        ``*_offsets``) and the fitted per-dimension arrays (``center``, ...)."""
        self._require_fitted()
        thresholds, thresholds_offsets = flatten(self._thresholds, np.float32)
        values, values_offsets = flatten(self._levels, np.float32)
        state = {"class": type(self).__name__, "dim": self.dim, "code_dim": len(self._thresholds)}
        state.update({key: getattr(self, key) for key in self._state_params})
        state.update(
            thresholds=thresholds,
            thresholds_offsets=thresholds_offsets,
            values=values,
            values_offsets=values_offsets,
        )
        for key, dtype in self._state_arrays.items():
            state[key] = np.ascontiguousarray(getattr(self, key), dtype=dtype)
        return state

    @classmethod
    def from_state(cls, state: dict) -> TrainingFreeQuantizer:
        """The quantizer of :meth:`to_state`; keeps read-only views of the arrays. A bad state raises
        ``QamaError`` ("corrupt saved state")."""
        owner = cls.__name__
        if not isinstance(state, dict):
            raise corrupt(owner, f"a {type(state).__name__}, expected a dict")
        if state.get("class") != owner:
            raise corrupt(owner, f"it holds a {state.get('class')!r}")
        try:
            quantizer = cls(**{key: state[key] for key in cls._state_params})
        except KeyError as err:
            raise corrupt(owner, f"{err} is missing") from None
        except (TypeError, ValueError) as err:
            raise corrupt(owner, str(err)) from None
        dim = state_int(state, "dim", owner, 1)
        code_dim = state_int(state, "code_dim", owner, 1)
        if code_dim != dim:
            raise corrupt(owner, f"code_dim = {code_dim} for dim = {dim}")
        quantizer._restore_tables(state, code_dim)
        for key, dtype in cls._state_arrays.items():
            setattr(quantizer, key, state_array(state, key, owner, dtype, shape=(dim,)))
        quantizer.dim = dim
        return quantizer

    def _restore_tables(self, state: dict, code_dim: int) -> None:
        """Thresholds and values of a saved state, checked: ``T`` ascending thresholds and ``T + 1``
        values (at most 256) a dimension."""
        owner = type(self).__name__
        thresholds = ragged(state, "thresholds", owner, np.float32, code_dim)
        values = ragged(state, "values", owner, np.float32, code_dim)
        for j, (t, v) in enumerate(zip(thresholds, values, strict=True)):
            if len(v) != len(t) + 1 or len(v) > 256:
                raise corrupt(owner, f"dimension {j} has {len(t)} thresholds and {len(v)} values")
            if np.any(np.diff(t) < 0):
                raise corrupt(owner, f"the thresholds of dimension {j} are not ascending")
        self._thresholds, self._levels = thresholds, values

    # -------------------------------------------------- symmetric Hamming search
    def hamming_bits(self, codes) -> np.ndarray:
        """Codes → ``(n, n_bits)`` uint8 0/1 array whose Hamming distance the method ranks by."""
        raise NotImplementedError(f"{self.name} has no symmetric Hamming variant")

    def pack_hamming(self, codes) -> np.ndarray:
        """Hamming bits packed 8 per byte (little bit order, as the engine's words)."""
        return np.packbits(self.hamming_bits(codes), axis=1, bitorder="little")

    def __repr__(self) -> str:
        state = f"dim={self.dim}" if self.is_fitted else "unfitted"
        return f"{type(self).__name__}({state})"
