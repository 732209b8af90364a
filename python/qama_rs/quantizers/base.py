"""The interface every training-free quantizer implements, and the input checks they share.

A quantizer is fitted on corpus documents only. It maps each vector to one ``uint8`` code per
(coded) dimension, where the code of a value is the number of that dimension's ascending thresholds
it strictly exceeds — the same rule as the Rust engine's ``qama_rs.Quantizer``, so
:meth:`TrainingFreeQuantizer.engine_arguments` hands the engine thresholds that reproduce
:meth:`~TrainingFreeQuantizer.encode` code for code.

Scoring is asymmetric: a float32 query is mapped into the quantizer's scoring space by
:meth:`~TrainingFreeQuantizer.prepare_query` and dotted with the reconstructed documents
(``prepare_query(q) @ reconstruct(codes).T``). The scoring itself is the engine's: ``qama_rs.index``
(``index_factory(d, "LloydMax2")``) or ``qama_rs.AsymmetricIndex`` with :attr:`reconstruction_values`;
the NumPy version lives in ``tests/_oracles.py`` as a test oracle only.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np


def check_embeddings(x, argname: str, dim: int | None = None) -> np.ndarray:
    """Validates a 2-D finite real array (n >= 1 rows, >= 1 columns) and returns it as float32.

    ``dim``, when given, is the number of columns ``x`` must have. Errors name ``argname``.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{argname} must be a 2-D array of real numbers: {exc}") from exc
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{argname} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{argname} must be 2-D (n, dim), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{argname} is empty: shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{argname} has {arr.shape[1]} dimensions, the quantizer was fitted on {dim}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        row, col = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{argname} has a non-finite value (NaN or inf) at row {row}, column {col}")
    return arr


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
