"""Search methods under evaluation: a small protocol, the built-in methods and a registry.

A :class:`Method` is calibrated on document embeddings only (``fit``) — never on queries or judgments — and
answers ``search(query_emb, k, dims=None) -> (scores, ids)``: ``ids`` int64 ``(q, min(k, n))`` row numbers of
the fitted documents, best first; ``scores`` float32 ``(q, min(k, n))``, higher is better (a Hamming method
returns ``-distance``).

Every built-in method is an :class:`IndexMethod`: a factory spec (:mod:`qama_rs.index`) searched by the Rust
kernels, so every number the evaluation reports comes from the shipped engine. ``method.spec`` is the spec
string (``method.spec_for(dims)`` at a prefix); :data:`qama_rs.index.names.METHOD_SPECS` is the name -> spec
table. Any spec string is itself a method name (``get_method("Hadamard,LloydMax2")``).

``dims=m`` searches the Matryoshka prefix, the way each family always has:

* float and per-dimension codecs fit a ``Prefix{m},<spec>`` index (first ``m`` dimensions, renormalized);
* uniform thermometer codes (``Sign``, ``Thermo1/1.5/2``) compare the first ``m`` quantized values of the
  same codes (engine prefix search);
* ``Hybrid`` splits *the searched* dimensions into quarters, so each prefix fits its own index on the first
  ``m`` document columns (``m`` a multiple of 8);
* ``qama`` uses the head's Matryoshka level ``m`` (its own learned thresholds).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from qama_rs.index import QamaError, index_factory, method_spec, parse_spec
from qama_rs.index.factory import build_pipeline
from qama_rs.index.transforms import prefix_normalize

__all__ = [
    "HeadMethod",
    "IndexMethod",
    "Method",
    "apply_head",
    "available_methods",
    "get_method",
    "prefix_normalize",
    "register_method",
]

# Nominal information bits per dimension of the thermometer codecs (hybrid: 2 + 1.5 + 1 + 0.5 over quarters).
_NOMINAL_BITS = {"Sign": 1.0, "Thermo1": 1.0, "Thermo1.5": 1.5, "Thermo2": 2.0, "Hybrid": 1.25}


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


def _prefix_mode(spec: str) -> str:
    """How a spec searches a prefix: ``engine`` (same codes), ``slice`` (refit on columns), ``level``
    (a head's Matryoshka level), ``none`` (full dimensions only) or ``refit`` (a ``Prefix{m}`` index)."""
    stages = parse_spec(spec)
    names = [s.key for s in stages]
    if names[0] == "qama":
        return "level"
    if any(n in ("rescore", "rflat") for n in names):
        return "none"
    if names == ["hybrid"]:
        return "slice"
    if names in (["sign"], ["thermo1"], ["thermo1.5"], ["thermo2"]):
        return "engine"
    return "refit"


class IndexMethod:
    """A method that is a factory spec: fit = train + add the documents into a :class:`qama_rs.index.Index`,
    search = its ``search``. ``head``: a loaded QAMA model for a ``QAMA(...)`` spec."""

    def __init__(self, name: str, spec: str, dims: int | None = None, head: Any = None) -> None:
        self.name = name
        self.spec = spec
        self.default_dims = dims
        self.head = head
        self.mode = _prefix_mode(spec)
        if self.mode == "none" and dims is not None:
            raise ValueError(f"{name} ({spec}) searches full dimensions only; leave dims unset")
        first = parse_spec(spec)[-1 if self.mode != "level" else 1].text
        self.bits = _NOMINAL_BITS.get(first, float("nan"))
        self._docs: np.ndarray | None = None
        self._indexes: dict[int | None, Any] = {}

    # ------------------------------------------------------------------------------------ prefixes
    def _dims(self, dims: int | None) -> int | None:
        """The searched prefix (None = all dimensions), checked against the fitted documents."""
        if self._docs is None:
            raise RuntimeError(f"{self.name}: call fit(doc_emb) first")
        full = self._docs.shape[1]
        dims = dims if dims is not None else self.default_dims
        if dims is None:
            return None
        if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or not 1 <= dims <= full:
            raise ValueError(f"dims must be an integer in 1..{full} or None, got {dims!r}")
        dims = int(dims)
        if self.mode == "none" and dims != full:
            raise ValueError(f"{self.name} ({self.spec}) searches full dimensions only, got dims={dims}")
        if self.mode == "slice" and dims % 8:
            raise ValueError(
                f"hybrid splits dims into quarters and halves its last one: dims must be a multiple of 8, got {dims}"
            )
        if self.mode == "level":
            levels = tuple(int(m) for m in self.head.levels)
            if dims not in levels:
                raise ValueError(f"dims must be one of the head's Matryoshka levels {levels}, got {dims!r}")
        return None if dims == full and self.mode != "level" else dims

    def spec_for(self, dims: int | None = None) -> str:
        """The spec of the index that answers the ``dims`` prefix (what a table should print)."""
        m = self._dims(dims) if self._docs is not None else dims
        if m is None or self.mode in ("engine", "slice"):
            return self.spec
        if self.mode == "level":
            first, _, rest = self.spec.partition(",")
            return f"{first[:-1]},{m}),{rest}"
        return f"Prefix{m},{self.spec}"

    def _index(self, dims: int | None):
        key = dims if self.mode in ("refit", "slice", "level") else None
        if key not in self._indexes:
            docs = (
                self._docs
                if self.mode != "slice" or key is None
                else np.ascontiguousarray(self._docs[:, :key])
            )
            try:
                index = index_factory(docs.shape[1], self.spec_for(key), head=self.head)
                if not index.is_trained:
                    index.train(docs)
                index.add(docs)
            except QamaError as err:
                raise ValueError(f"{self.name}: {err}") from None
            self._indexes[key] = index
        return self._indexes[key]

    # ------------------------------------------------------------------------------------- method
    def fit(self, doc_emb: np.ndarray):
        self._docs = _check_matrix(doc_emb, "doc_emb")
        self._indexes = {}
        index = self._index(self._dims(None))
        if math.isnan(self.bits):
            self.bits = 8.0 * index.bytes_per_vector / self._docs.shape[1]
        return self

    @property
    def index(self):
        """The full-dimension index (after ``fit``)."""
        return self._index(self._dims(None))

    def search(self, query_emb, k, dims=None):
        m = self._dims(dims)
        queries = _check_matrix(query_emb, "query_emb", self._docs.shape[1])
        k = min(_check_k(k), self._docs.shape[0])
        index = self._index(m)
        if self.mode == "slice" and m is not None:
            queries = np.ascontiguousarray(queries[:, :m])
        engine_dims = m if self.mode == "engine" else None
        try:
            scores, ids = index.search(queries, k, dims=engine_dims)
        except QamaError as err:
            raise ValueError(f"{self.name}: {err}") from None
        return scores, ids

    def bytes_per_vector(self, dims: int | None = None) -> float:
        """Stored bytes per vector of the index answering the prefix (thermometer prefixes: whole words)."""
        m = self._dims(dims)
        index = self._index(m)
        if self.mode == "engine" and m is not None:
            return float(-(-index.codec.quantizer.prefix_bits(m) // 64) * 8)
        return float(index.bytes_per_vector)

    def __repr__(self) -> str:
        return f"IndexMethod({self.name!r}, spec={self.spec!r})"


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
        self.spec = getattr(inner, "spec", None)

    def fit(self, doc_emb):
        self.inner.fit(apply_head(self.head, _check_matrix(doc_emb, "doc_emb")))
        self.bits = self.inner.bits
        return self

    def search(self, query_emb, k, dims=None):
        return self.inner.search(apply_head(self.head, _check_matrix(query_emb, "query_emb")), k, dims=dims)

    def bytes_per_vector(self, dims=None):
        return self.inner.bytes_per_vector(dims)

    def spec_for(self, dims=None):
        return f"head,{self.inner.spec_for(dims)}" if hasattr(self.inner, "spec_for") else None


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
    from qama_rs import quantizers

    return sorted({*quantizers.METHODS, *getattr(quantizers, "CODECS", {})})


def available_methods() -> list[str]:
    """Registered method names, then the training-free quantizers of :mod:`qama_rs.quantizers`."""
    return sorted(_REGISTRY) + [n for n in _training_free_names() if n not in _REGISTRY]


def _spec_method(name: str, bits, dims, head) -> Method:
    """The method of a ``qama eval`` name (via the name -> spec table) or of a spec string."""
    try:
        spec = method_spec(name, bits, head=_head_label(head) if name == "qama" else None)
    except QamaError as err:
        raise ValueError(str(err)) from None
    if spec is None:
        try:
            if "qama" not in name.lower():
                build_pipeline(name)
            else:
                parse_spec(name)
        except QamaError as err:
            raise ValueError(f"unknown method {name!r} ({err}); available: {available_methods()}") from None
        spec = name
    if name == "qama":
        if spec.endswith(",Flat"):
            return HeadMethod(IndexMethod("fp32", "Flat", dims), head)
        return IndexMethod(f"qama-{spec.rsplit(',', 1)[1]}", spec, dims, head=head)
    method = IndexMethod(name, spec, dims)
    return method if head is None else HeadMethod(method, head)


def _head_label(head) -> str:
    if head is None:
        raise ValueError("method 'qama' needs head= (a trained QamaModel, e.g. QamaModel.load(dir))")
    for attr in ("features", "quantizer", "levels"):
        if not hasattr(head, attr):
            raise TypeError(f"head must be a trained QamaModel (missing .{attr}); see qama_rs.qama.model")
    return str(getattr(head, "path", None) or "head")


def _builtin(name: str) -> MethodFactory:
    return lambda bits, dims, head: _spec_method(name, bits, dims, head)


for _name in ("fp32", "fp16", "int8", "sign", "quantile", "qama", "two_stage"):
    register_method(_name, _builtin(_name))


def get_method(name: str, bits=None, dims: int | None = None, head=None) -> Method:
    """An unfitted method by registry name (see :func:`available_methods`) or factory spec.

    ``bits`` selects the variant where a method has several (``quantile``: 1, 1.5, 2, ``"hybrid"``);
    ``dims`` is the default prefix searched; ``head`` (a trained head) transforms documents and queries.
    """
    if name in _REGISTRY:
        return _REGISTRY[name](bits, dims, head)
    return _spec_method(name, bits, dims, head)
