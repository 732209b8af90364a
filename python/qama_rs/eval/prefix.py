"""The index that answers one (spec, prefix) pair: how each spec family searches a Matryoshka prefix.

Every evaluated number comes from a factory index (:mod:`qama_rs.index`, the Rust engine) fitted on the
documents only. :func:`prefix_index` builds it for ``dims = m`` (``None``: all dimensions), the way each
family always has:

* float and per-dimension codecs fit a ``Prefix{m},<spec>`` index (first ``m`` dimensions, renormalized);
* uniform thermometer codes (``Sign``, ``Thermo1/1.5/2``) compare the first ``m`` quantized values of the
  same codes (``index.search(xq, k, dims=m)``);
* ``Hybrid`` splits *the searched* dimensions into quarters, so each prefix fits its own index on the first
  ``m`` document columns (``m`` a multiple of 8);
* a ``QAMA(...)`` spec uses the head's Matryoshka level ``m`` (``QAMA(src,m),...``: its own learned codes);
* a spec with a refinement stage (``Rescore``, ``RFlat``) searches all dimensions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from qama_rs.index import Index, index_factory, parse_spec

__all__ = ["NOMINAL_BITS", "PrefixIndex", "prefix_index"]

#: Nominal information bits per dimension of the thermometer codecs (hybrid: 2 + 1.5 + 1 + 0.5 over quarters).
NOMINAL_BITS = {"Sign": 1.0, "Thermo1": 1.0, "Thermo1.5": 1.5, "Thermo2": 2.0, "Hybrid": 1.25}
# Stored thermometer bits per dimension of the uniform codes (levels - 1): what a prefix search reads.
_THERMO_BITS_PER_DIM = {"sign": 1, "thermo1": 1, "thermo1.5": 2, "thermo2": 3}


@dataclass(frozen=True)
class PrefixIndex:
    """A trained, filled index and how to query it for one prefix (see the module docs).

    Query it with ``index.search(prefix.queries(xq), k, dims=prefix.engine_dims)``."""

    index: Index
    #: The spec of the index that answers this prefix (pasteable into ``index_factory``; tables print it).
    spec: str
    #: Dimensions of the document embeddings the index was built from (queries must have as many).
    input_dims: int
    #: The prefix searched (``input_dims`` when all dimensions are).
    dims: int
    #: ``dims`` handed to ``Index.search`` (thermometer prefixes of the same codes), else ``None``.
    engine_dims: int | None
    #: Queries are cut to their first ``columns`` values first (``Hybrid`` prefixes), else ``None``.
    columns: int | None
    #: Nominal bits per dimension of the spec (32 for ``Flat``, 1.5 for 3-level codes, ...).
    bits: float
    #: Stored bytes per vector the search reads (thermometer prefixes: whole 64-bit words).
    bytes_per_vector: float

    def queries(self, xq: Any) -> np.ndarray:
        """``xq`` checked against the documents' width and cut to what the index takes."""
        x = _check_matrix(xq, "queries", self.input_dims)
        return x if self.columns is None else np.ascontiguousarray(x[:, : self.columns])


def _check_matrix(x: Any, argname: str, dim: int | None = None) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{argname} must be a numpy array, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{argname} must be a non-empty 2-D array (n, d), got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{argname} has {x.shape[1]} dimensions, the documents have {dim}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{argname} must be a float array, got {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{argname} contains NaN or infinity")
    return x


def _prefix_mode(stages) -> str:
    """How a spec searches a prefix: ``engine`` (same codes), ``slice`` (refit on columns), ``level``
    (a head's Matryoshka level), ``none`` (full dimensions only) or ``refit`` (a ``Prefix{m}`` index)."""
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


def _checked_dims(spec: str, mode: str, dims: Any, full: int, head: Any) -> int | None:
    """The searched prefix (``None`` = all dimensions), checked against the spec's family."""
    if dims is None:
        return None
    if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or not 1 <= dims <= full:
        raise ValueError(f"dims must be an integer in 1..{full} or None, got {dims!r}")
    dims = int(dims)
    if mode == "none" and dims != full:
        raise ValueError(f"{spec} searches full dimensions only, got dims={dims}")
    if mode == "slice" and dims % 8:
        raise ValueError(
            f"hybrid splits dims into quarters and halves its last one: dims must be a multiple of 8, got {dims}"
        )
    if mode == "level" and head is not None:
        levels = tuple(int(m) for m in head.levels)
        if dims not in levels:
            raise ValueError(f"dims must be one of the head's Matryoshka levels {levels}, got {dims!r}")
    return None if dims == full and mode != "level" else dims


def _spec_at(spec: str, stages, mode: str, m: int | None) -> str:
    """The spec of the index that answers prefix ``m``."""
    if m is None or mode in ("engine", "slice"):
        return spec
    if mode == "level":
        first = stages[0]
        rest = "".join("," + s.text for s in stages[1:])
        return f"{first.name}({','.join((*first.args[:1], str(m)))}){rest}"
    return f"Prefix{m},{spec}"


def prefix_index(
    spec: str, docs: np.ndarray, dims: int | None = None, *, head: Any = None, cache: dict | None = None
) -> PrefixIndex:
    """The index answering ``spec`` at prefix ``dims`` over ``docs`` (document embeddings ``(n, d)``), trained
    on and filled with the documents (see the module docs for each family's rule).

    ``head``: a loaded QAMA model for a ``QAMA(...)`` spec (else the spec's path is loaded).
    ``cache``: a dict kept by the caller for one ``docs`` matrix and head; indexes are built once per
    (spec, prefix) in it, so evaluating several prefixes of one spec fits each index once."""
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a factory spec string such as 'LloydMax2', got {type(spec).__name__}")
    stages = parse_spec(spec)
    mode = _prefix_mode(stages)
    if head is not None and mode != "level":
        raise ValueError(f"head= goes with a QAMA(...) spec, not {spec!r}")
    docs = _check_matrix(docs, "docs")
    full = docs.shape[1]
    m = _checked_dims(spec, mode, dims, full, head)
    cache = {} if cache is None else cache
    index = _built(spec, stages, mode, m, docs, head, cache)
    full_index = index if m is None else _built(spec, stages, mode, None, docs, head, cache)
    codec = stages[1 if mode == "level" else -1]
    bits = NOMINAL_BITS.get(codec.text, math.nan)
    if math.isnan(bits):
        bits = 8.0 * full_index.bytes_per_vector / full
    if mode == "engine" and m is not None:
        nbytes = float(-(-m * _THERMO_BITS_PER_DIM[stages[0].key] // 64) * 8)
    else:
        nbytes = float(index.bytes_per_vector)
    return PrefixIndex(
        index=index,
        spec=_spec_at(spec, stages, mode, m),
        input_dims=full,
        dims=full if m is None else m,
        engine_dims=m if mode == "engine" else None,
        columns=m if mode == "slice" else None,
        bits=float(bits),
        bytes_per_vector=nbytes,
    )


def _built(spec: str, stages, mode: str, m: int | None, docs: np.ndarray, head: Any, cache: dict) -> Index:
    # Thermometer prefixes search the full-dimension codes; every other family has an index per prefix.
    key = (spec, m if mode in ("refit", "slice", "level") else None)
    if key not in cache:
        rows = docs if mode != "slice" or key[1] is None else np.ascontiguousarray(docs[:, : key[1]])
        index = index_factory(rows.shape[1], _spec_at(spec, stages, mode, key[1]), head=head)
        if not index.is_trained:
            index.train(rows)
        index.add(rows)
        cache[key] = index
    return cache[key]
