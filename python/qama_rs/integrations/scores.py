"""What a search hit's score means (``Hit.score``; higher is better, as for every :class:`qama_rs.Index`):

* before the first fit, ``Flat`` and ``RFlat`` rescoring: the inner product of the float32 embeddings (the cosine
  similarity for unit-length embeddings, as sentence-transformers with ``normalize_embeddings=True`` and most
  embedding APIs return them);
* float-query codecs (``LloydMax*``, ``Binary``, ``Int8``, the byte-table ``pca_*`` codecs, ``Rescore(...)``):
  the codec's estimate of that inner product;
* symmetric codes (``Thermo*``, ``Sign``, ``Hybrid``, ``QAMA(...),Thermo*``): minus the Hamming distance between
  the query's code and the document's (0 is identical codes).

``Hit.relevance`` maps a score into [0, 1]: ``(1 + s) / 2`` clipped for inner products (exact for cosine), ``1 -
d / bits`` for a Hamming distance ``d`` over the code's ``bits``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qama_rs.index import Index
from qama_rs.integrations.docstore import Row

__all__ = ["Hit", "relevance_fn", "score_kind"]


@dataclass(frozen=True)
class Hit:
    """One search result: the stored document, its score and the score mapped into [0, 1]."""

    row: Row
    score: float
    relevance: float


def score_kind(index: Index | None) -> tuple[str, int | None]:
    """``("inner_product", None)`` or ``("hamming", bits)``: what ``index``'s final scores are (no index yet: the
    exact float32 inner product)."""
    if index is None or index.metric != "hamming":
        return "inner_product", None
    return "hamming", max(int(index.code_bits or 1), 1)


def relevance_fn(index: Index | None) -> Callable[[float], float]:
    """Maps a score of ``index`` into [0, 1] (see the module docs)."""
    kind, bits = score_kind(index)
    if kind == "hamming":
        return lambda s: min(1.0, max(0.0, 1.0 + s / bits))
    return lambda s: min(1.0, max(0.0, (1.0 + s) / 2.0))
