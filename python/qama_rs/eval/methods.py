"""Search methods under evaluation: a small protocol, the built-in methods and a registry.

A :class:`Method` is calibrated on document embeddings only (``fit``) — never on queries or judgments — and
answers ``search(query_emb, k, dims=None) -> (scores, ids)``: ``ids`` int64 ``(q, min(k, n))`` row numbers of
the fitted documents, best first; ``scores`` float ``(q, k)`` where higher is better (so a Hamming method
returns ``-distance``), or ``None`` when the method has no score to report (the rank is then used).
``dims=m`` searches the Matryoshka prefix: float methods truncate to ``m`` dimensions and renormalize; code
methods compare the first ``m`` quantized dimensions of the same codes.

Built in (``get_method(name, bits, dims)``):

* ``fp32`` / ``fp16`` — exhaustive inner product on (prefix-renormalized) float32 / float16 documents;
* ``int8`` — per-dimension min/max calibrated on the documents, 256 levels; a float32 query scores the
  dequantized documents (asymmetric). mteb's ``CompressionWrapper`` is not used: it estimates the ranges
  on whatever batch it encodes, queries included, which would calibrate on queries;
* ``sign`` — 1 bit per dimension with threshold 0 (the untrained baseline), symmetric Hamming in the engine;
* ``quantile`` — ``qama_rs.Quantizer.fit`` per-dimension quantile thresholds, ``bits`` in ``1, 1.5, 2,
  "hybrid"``, query quantized with the same thresholds, symmetric Hamming in ``qama_rs.Index``;
* ``qama`` (needs ``head=``, a trained ``QamaModel``) — the head's learned thresholds per Matryoshka level,
  symmetric Hamming; ``bits=32`` gives the head's float output instead.

Any training-free quantizer of :mod:`qama_rs.quantizers` (``make_method(name)``) is reachable by its registry
name and scored asymmetrically (float query · reconstructed documents). Other modules add methods with
:func:`register_method` (e.g. ``"qama"`` for a trained head).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Fp16Method",
    "Fp32Method",
    "HeadMethod",
    "Int8Method",
    "Method",
    "QamaMethod",
    "QuantizerAdapter",
    "SCHEME_BITS",
    "ThresholdMethod",
    "available_methods",
    "apply_head",
    "get_method",
    "prefix_normalize",
    "register_method",
    "topk_by_score",
]

#: Engine scheme name of each ``bits`` value accepted by the threshold methods.
#: (1 == 1.0 as a dict key, so float bits work too; engine scheme names are accepted as well.)
SCHEME_BITS: dict[Any, str] = {
    1: "1bit",
    1.5: "1.5bit",
    2: "2bit",
    "hybrid": "hybrid",
    "1bit": "1bit",
    "1.5bit": "1.5bit",
    "2bit": "2bit",
}
# Nominal information bits per dimension of each scheme (hybrid: 2 + 1.5 + 1 + 0.5 over four quarters).
_NOMINAL_BITS = {"1bit": 1.0, "1.5bit": 1.5, "2bit": 2.0, "hybrid": 1.25}


@runtime_checkable
class Method(Protocol):
    """What the evaluation needs from a search method (see the module docs for the contract)."""

    name: str
    #: Nominal bits per dimension (32 for fp32, 1.5 for 3-level codes, ...).
    bits: float

    def fit(self, doc_emb: np.ndarray) -> Method: ...

    def search(
        self, query_emb: np.ndarray, k: int, dims: int | None = None
    ) -> tuple[np.ndarray | None, np.ndarray]: ...

    def bytes_per_vector(self, dims: int | None = None) -> float: ...


# ------------------------------------------------------------------------------------------ helpers


def _check_matrix(x, argname: str, dim: int | None = None) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{argname} must be a numpy array, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{argname} must be a non-empty 2-D array (n, d), got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{argname} has {x.shape[1]} dimensions, the fitted documents have {dim}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{argname} must be a float array, got {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{argname} contains NaN or infinity")
    return x


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _check_dims(dims, full: int) -> int:
    if dims is None:
        return full
    if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or not 1 <= dims <= full:
        raise ValueError(f"dims must be an integer in 1..{full} or None, got {dims!r}")
    return int(dims)


def prefix_normalize(x: np.ndarray, dims: int) -> np.ndarray:
    """First ``dims`` columns, each row rescaled to unit L2 norm (a zero row stays zero)."""
    head = np.ascontiguousarray(x[:, :dims], dtype=np.float32)
    norms = np.linalg.norm(head, axis=1, keepdims=True)
    return head / np.maximum(norms, np.float32(1e-12))


def topk_by_score(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``min(k, n)`` per row, best first, ties by lower column: ``(scores, ids int64)``."""
    n = scores.shape[1]
    kk = min(k, n)
    if kk < n:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        # argpartition may cut a tie at the boundary arbitrarily; take everything tied with the k-th best.
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        ids = np.empty((scores.shape[0], kk), dtype=np.int64)
        for row in range(scores.shape[0]):
            candidates = np.flatnonzero(scores[row] >= kth[row])
            order = np.lexsort((candidates, -scores[row, candidates]))[:kk]
            ids[row] = candidates[order]
    else:
        ids = np.lexsort((np.broadcast_to(np.arange(n), scores.shape), -scores), axis=1).astype(np.int64)
    return np.take_along_axis(scores, ids, axis=1), ids


def _exhaustive(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product top-k in query blocks, so a large corpus never needs a (q, n) matrix at once."""
    block = max(1, (1 << 25) // max(1, docs.shape[0]))
    out_s, out_i = [], []
    for start in range(0, queries.shape[0], block):
        scores = queries[start : start + block] @ docs.T
        s, i = topk_by_score(scores, k)
        out_s.append(s)
        out_i.append(i)
    return np.concatenate(out_s), np.concatenate(out_i)


# ------------------------------------------------------------------------------------ float methods


class _FloatMethod:
    """Shared code of the float-like methods: per-prefix document matrices built lazily from ``fit``."""

    name = "float"
    bits = 32.0
    default_dims: int | None = None

    def __init__(self, dims: int | None = None) -> None:
        self.default_dims = dims
        self._docs: np.ndarray | None = None
        self._stored: dict[int, np.ndarray] = {}

    @property
    def dim(self) -> int:
        if self._docs is None:
            raise RuntimeError(f"{self.name}: call fit(doc_emb) first")
        return self._docs.shape[1]

    def fit(self, doc_emb: np.ndarray):
        self._docs = _check_matrix(doc_emb, "doc_emb")
        self._stored = {}
        if self.default_dims is not None:
            _check_dims(self.default_dims, self._docs.shape[1])
        return self

    def _store(self, docs: np.ndarray) -> np.ndarray:
        """The scoring-space document matrix kept for a prefix (float32 for the exact products)."""
        return docs

    def _documents(self, dims: int) -> np.ndarray:
        if dims not in self._stored:
            self._stored[dims] = self._store(prefix_normalize(self._docs, dims))
        return self._stored[dims]

    def search(self, query_emb, k, dims=None):
        dims = _check_dims(dims if dims is not None else self.default_dims, self.dim)
        queries = prefix_normalize(_check_matrix(query_emb, "query_emb", self.dim), dims)
        return _exhaustive(queries, self._documents(dims), _check_k(k))

    def bytes_per_vector(self, dims: int | None = None) -> float:
        dims = dims if dims is not None else (self.default_dims or self.dim)
        return dims * self.bits / 8


class Fp32Method(_FloatMethod):
    """Exhaustive cosine search on float32 embeddings (the reference every other method is compared to)."""

    name = "fp32"
    bits = 32.0


class Fp16Method(_FloatMethod):
    """Documents stored as float16; float32 query; products in float32."""

    name = "fp16"
    bits = 16.0

    def _store(self, docs):
        return docs.astype(np.float16).astype(np.float32)


class Int8Method(_FloatMethod):
    """Per-dimension min/max scalar quantization to 256 levels, calibrated on the (prefix) documents.

    Scoring is asymmetric: the float32 query is dotted with the dequantized documents.
    """

    name = "int8"
    bits = 8.0

    def _store(self, docs):
        low = docs.min(axis=0)
        step = (docs.max(axis=0) - low) / 255.0
        step = np.where(step > 0, step, np.float32(1.0)).astype(np.float32)
        codes = np.clip(np.rint((docs - low) / step), 0, 255).astype(np.uint8)
        return (low + codes.astype(np.float32) * step).astype(np.float32)


# ---------------------------------------------------------------------------------- engine methods


def _engine():
    """``(Quantizer, Index)`` of the Rust engine, or a clear error when it is not built."""
    try:
        import qama_rs

        return qama_rs.Quantizer, qama_rs.Index
    except (ImportError, AttributeError) as err:
        raise ImportError(
            "the threshold methods need the compiled engine (qama_rs.Quantizer and qama_rs.Index); "
            "build it with `maturin develop --release`"
        ) from err


class ThresholdMethod:
    """Training-free threshold codes searched by symmetric Hamming distance in ``qama_rs.Index``.

    ``scheme`` is an engine scheme (``"1bit"``, ``"1.5bit"``, ``"2bit"``, ``"hybrid"``): thresholds are the
    per-dimension quantiles of the documents (``Quantizer.fit``). ``zero_threshold=True`` gives the untrained
    sign binarization instead (1 bit, threshold 0). Queries are quantized with the same thresholds.

    ``dims`` counts input dimensions, as for the float methods. Uniform schemes search the prefix of one
    index (quantized value ``j`` is input dimension ``j``). ``hybrid`` splits *the searched* dimensions into
    quarters (2, 1.5, 1, 0.5 bits), so each prefix gets its own quantizer and index, fitted on the first
    ``dims`` document dimensions (``dims`` a multiple of 8).
    """

    def __init__(self, scheme: str = "1bit", dims: int | None = None, zero_threshold: bool = False) -> None:
        if scheme not in _NOMINAL_BITS:
            raise ValueError(f"scheme must be one of {sorted(_NOMINAL_BITS)}, got {scheme!r}")
        if zero_threshold and scheme != "1bit":
            raise ValueError("zero_threshold (sign binarization) is a 1-bit scheme")
        self.scheme = scheme
        self.zero_threshold = zero_threshold
        self.name = "sign" if zero_threshold else f"quantile-{scheme}"
        self.bits = _NOMINAL_BITS[scheme]
        self.default_dims = dims
        self._docs: np.ndarray | None = None
        self._indexes: dict[int, Any] = {}

    @property
    def quantizer(self):
        """The engine quantizer of the full-dimension index."""
        return self._index(self._dims(None)).quantizer

    def fit(self, doc_emb: np.ndarray):
        docs = _check_matrix(doc_emb, "doc_emb")
        if self.default_dims is not None:
            _check_dims(self.default_dims, docs.shape[1])
        _engine()  # fail here, not at search time, when the engine is missing
        self._docs = docs
        self._indexes = {}
        self._index(docs.shape[1])
        return self

    def _dims(self, dims: int | None) -> int:
        if self._docs is None:
            raise RuntimeError(f"{self.name}: call fit(doc_emb) first")
        dims = _check_dims(dims if dims is not None else self.default_dims, self._docs.shape[1])
        if self.scheme == "hybrid" and dims % 8:
            raise ValueError(
                f"hybrid splits dims into quarters and halves its last one: dims must be a multiple of 8, got {dims}"
            )
        return dims

    def _index(self, dims: int):
        """The index answering a ``dims`` prefix (built once per prefix for hybrid)."""
        key = dims if self.scheme == "hybrid" else self._docs.shape[1]
        if key not in self._indexes:
            quantizer_cls, index_cls = _engine()
            docs = np.ascontiguousarray(self._docs[:, :key])
            if self.zero_threshold:
                quantizer = quantizer_cls(np.zeros(key, dtype=np.float32), 2)
            else:
                quantizer = quantizer_cls.fit(docs, self.scheme)
            index = index_cls(quantizer)
            index.add(docs)
            self._indexes[key] = index
        return self._indexes[key]

    def _search_args(self, dims: int | None) -> tuple[Any, int | None, int]:
        """(index, engine ``dims`` argument, input columns the query needs)."""
        dims = self._dims(dims)
        index = self._index(dims)
        if self.scheme == "hybrid" or dims == self._docs.shape[1]:
            return index, None, dims
        return index, dims, self._docs.shape[1]

    def search(self, query_emb, k, dims=None):
        queries = _check_matrix(query_emb, "query_emb", None if self._docs is None else self._docs.shape[1])
        index, engine_dims, columns = self._search_args(dims)
        distances, ids = index.search(
            np.ascontiguousarray(queries[:, :columns]), _check_k(k), dims=engine_dims
        )
        return -np.asarray(distances, dtype=np.float32), np.asarray(ids, dtype=np.int64)

    def stored_bits(self, dims: int | None = None) -> int:
        """Thermometer bits per vector the search reads for the prefix (2-bit: 3 per dimension)."""
        index, engine_dims, _ = self._search_args(dims)
        quantizer = index.quantizer
        return int(quantizer.bits if engine_dims is None else quantizer.prefix_bits(engine_dims))

    def bytes_per_vector(self, dims: int | None = None) -> float:
        """Bytes of the packed thermometer code of one vector for the prefix."""
        return float(math.ceil(self.stored_bits(dims) / 8))


# ------------------------------------------------------------------------ training-free quantizers


class QuantizerAdapter:
    """Asymmetric search with a :mod:`qama_rs.quantizers` quantizer (float query · reconstructed documents).

    The quantizer is calibrated separately for each searched prefix, on the prefix-renormalized documents.
    """

    def __init__(self, factory: Callable[[], Any], name: str, dims: int | None = None) -> None:
        self._factory = factory
        self.name = name
        self.default_dims = dims
        self._docs: np.ndarray | None = None
        self._fitted: dict[int, tuple[Any, np.ndarray]] = {}
        self.bits = float("nan")

    def fit(self, doc_emb: np.ndarray):
        self._docs = _check_matrix(doc_emb, "doc_emb")
        self._fitted = {}
        self.bits = float(self._prefix(None)[0].bits_per_dim)
        return self

    def _prefix(self, dims):
        if self._docs is None:
            raise RuntimeError(f"{self.name}: call fit(doc_emb) first")
        dims = _check_dims(dims if dims is not None else self.default_dims, self._docs.shape[1])
        if dims not in self._fitted:
            docs = prefix_normalize(self._docs, dims)
            quantizer = self._factory().fit(docs)
            self._fitted[dims] = (quantizer, quantizer.encode(docs))
        return self._fitted[dims] + (dims,)

    def search(self, query_emb, k, dims=None):
        quantizer, codes, dims = self._prefix(dims)
        queries = prefix_normalize(_check_matrix(query_emb, "query_emb", self._docs.shape[1]), dims)
        k = _check_k(k)
        block = max(1, (1 << 25) // codes.shape[0])
        out_s, out_i = [], []
        for start in range(0, queries.shape[0], block):
            s, i = topk_by_score(np.asarray(quantizer.score(queries[start : start + block], codes)), k)
            out_s.append(s)
            out_i.append(i)
        return np.concatenate(out_s), np.concatenate(out_i)

    def bytes_per_vector(self, dims: int | None = None) -> float:
        return float(self._prefix(dims)[0].bytes_per_vector)


# ------------------------------------------------------------------------------------------- heads


def apply_head(head, x: np.ndarray) -> np.ndarray:
    """Run float embeddings through a head: ``head.transform(x)``, ``head.encode(x)`` or ``head(x)``."""
    for attr in ("transform", "encode"):
        fn = getattr(head, attr, None)
        if callable(fn):
            return _check_matrix(np.asarray(fn(x), dtype=np.float32), f"head.{attr}(x)")
    if callable(head):
        return _check_matrix(np.asarray(head(x), dtype=np.float32), "head(x)")
    raise TypeError("head must have a transform(x) or encode(x) method, or be callable on a (n, d) array")


class HeadMethod:
    """Any method applied to head outputs: documents and queries both go through ``head`` first."""

    def __init__(self, inner, head) -> None:
        self.inner = inner
        self.head = head
        self.name = f"{inner.name}+head"
        self.bits = inner.bits

    def fit(self, doc_emb):
        self.inner.fit(apply_head(self.head, _check_matrix(doc_emb, "doc_emb")))
        self.bits = self.inner.bits
        return self

    def search(self, query_emb, k, dims=None):
        return self.inner.search(apply_head(self.head, _check_matrix(query_emb, "query_emb")), k, dims=dims)

    def bytes_per_vector(self, dims=None):
        return self.inner.bytes_per_vector(dims)


class QamaMethod:
    """A trained QAMA head's codes searched by symmetric Hamming distance in ``qama_rs.Index``.

    ``head`` is a :class:`qama_rs.qama.model.QamaModel` (anything with ``features(emb, dims, scheme)``,
    ``quantizer(dims, scheme)`` and ``levels``): documents and queries are base-model embeddings; each
    Matryoshka level ``dims`` (one of ``head.levels``) has its own learned thresholds, so it gets its own index.
    """

    def __init__(self, head, scheme: str, dims: int | None = None) -> None:
        if scheme not in _NOMINAL_BITS:
            raise ValueError(f"scheme must be one of {sorted(_NOMINAL_BITS)}, got {scheme!r}")
        for attr in ("features", "quantizer", "levels"):
            if not hasattr(head, attr):
                raise TypeError(f"head must be a trained QamaModel (missing .{attr}); see qama_rs.qama.model")
        self.head = head
        self.scheme = scheme
        self.name = f"qama-{scheme}"
        self.bits = _NOMINAL_BITS[scheme]
        self.default_dims = dims
        self._docs: np.ndarray | None = None
        self._indexes: dict[int, Any] = {}

    def fit(self, doc_emb: np.ndarray):
        self._docs = _check_matrix(doc_emb, "doc_emb")
        self._indexes = {}
        self._index(self.default_dims)
        return self

    def _level(self, dims: int | None) -> int:
        if self._docs is None:
            raise RuntimeError(f"{self.name}: call fit(doc_emb) first")
        dims = dims if dims is not None else self.default_dims
        levels = tuple(int(m) for m in self.head.levels)
        if dims is None:
            return levels[0]
        if dims not in levels:
            raise ValueError(f"dims must be one of the head's Matryoshka levels {levels}, got {dims!r}")
        return int(dims)

    def _index(self, dims: int | None):
        level = self._level(dims)
        if level not in self._indexes:
            _, index_cls = _engine()
            index = index_cls(self.head.quantizer(level, self.scheme))
            index.add(self.head.features(self._docs, level, self.scheme))
            self._indexes[level] = index
        return self._indexes[level], level

    def search(self, query_emb, k, dims=None):
        index, level = self._index(dims)
        queries = _check_matrix(query_emb, "query_emb", self._docs.shape[1])
        distances, ids = index.search(self.head.features(queries, level, self.scheme), _check_k(k))
        return -np.asarray(distances, dtype=np.float32), np.asarray(ids, dtype=np.int64)

    def bytes_per_vector(self, dims: int | None = None) -> float:
        """Bytes of the packed thermometer code at this level (the head's hybrid: 624 bits at 384 dims)."""
        return float(self._index(dims)[0].quantizer.bytes_per_vector)


# ---------------------------------------------------------------------------------------- registry

#: ``factory(bits, dims, head) -> Method``
MethodFactory = Callable[[Any, "int | None", Any], Method]
_REGISTRY: dict[str, MethodFactory] = {}


def register_method(name: str, factory: MethodFactory, *, overwrite: bool = False) -> None:
    """Make ``get_method(name, bits, dims, head)`` build methods with ``factory(bits, dims, head)``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError("factory must be callable as factory(bits, dims, head)")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"method {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def _training_free_names() -> list[str]:
    try:
        from qama_rs.quantizers import METHODS
    except ImportError:
        return []
    return sorted(METHODS)


def available_methods() -> list[str]:
    """Registered method names, then the training-free quantizers of :mod:`qama_rs.quantizers`."""
    return sorted(_REGISTRY) + [n for n in _training_free_names() if n not in _REGISTRY]


def _wrap_head(method, head):
    return method if head is None else HeadMethod(method, head)


def _float_factory(cls, expected_bits):
    def factory(bits, dims, head):
        if bits is not None and float(bits) != expected_bits:
            raise ValueError(f"{cls.name} stores {expected_bits:g} bits per dimension, got bits={bits!r}")
        return _wrap_head(cls(dims), head)

    return factory


def _quantile_factory(bits, dims, head):
    if isinstance(bits, bool) or bits not in SCHEME_BITS:
        raise ValueError(f"quantile bits must be one of 1, 1.5, 2 or 'hybrid', got {bits!r}")
    return _wrap_head(ThresholdMethod(SCHEME_BITS[bits], dims), head)


def _sign_factory(bits, dims, head):
    if bits is not None and bits != 1:
        raise ValueError(f"sign binarization has 1 bit per dimension, got bits={bits!r}")
    return _wrap_head(ThresholdMethod("1bit", dims, zero_threshold=True), head)


register_method("fp32", _float_factory(Fp32Method, 32.0))
register_method("fp16", _float_factory(Fp16Method, 16.0))
register_method("int8", _float_factory(Int8Method, 8.0))
register_method("sign", _sign_factory)
register_method("quantile", _quantile_factory)


def _qama_factory(bits, dims, head):
    if head is None:
        raise ValueError("method 'qama' needs head= (a trained QamaModel, e.g. QamaModel.load(dir))")
    if bits is not None and not isinstance(bits, str) and float(bits) == 32:
        return HeadMethod(Fp32Method(dims), head)  # the head's float output, prefix renormalized
    if isinstance(bits, bool) or bits not in SCHEME_BITS:
        raise ValueError(f"qama bits must be one of 1, 1.5, 2, 'hybrid' or 32 (float), got {bits!r}")
    return QamaMethod(head, SCHEME_BITS[bits], dims)


register_method("qama", _qama_factory)


def _two_stage_factory(bits, dims, head):
    """Hamming top-k′ on 1-bit sign codes, then 2-bit Lloyd-Max float-query rescoring (k′ = 100)."""
    if dims is not None:
        raise ValueError("two_stage searches full dimensions only; leave dims unset")
    from qama_rs.quantizers.two_stage import TwoStageSearch

    return _wrap_head(TwoStageSearch(), head)


register_method("two_stage", _two_stage_factory)


def get_method(name: str, bits=None, dims: int | None = None, head=None) -> Method:
    """An unfitted method by registry name (see :func:`available_methods`).

    ``bits`` selects the variant where a method has several (``quantile``: 1, 1.5, 2, ``"hybrid"``);
    ``dims`` is the default prefix searched; ``head`` (a trained head) transforms documents and queries.
    """
    if name in _REGISTRY:
        return _REGISTRY[name](bits, dims, head)
    # A training-free quantizer, optionally behind a rotation: "lloyd_max_gauss@hadamard".
    base, _, rotation = name.partition("@")
    if base in _training_free_names():
        from qama_rs.quantizers import make_method

        rotation = rotation or "none"
        return _wrap_head(QuantizerAdapter(lambda: make_method(base, rotation=rotation), name, dims), head)
    raise ValueError(f"unknown method {name!r}; available: {available_methods()}")
