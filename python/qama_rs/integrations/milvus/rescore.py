"""Rescoring Milvus's Hamming candidates in qama-rs: the second stage of a two-stage search across the
engine boundary.

The rescorer is a :class:`qama_rs.Index` holding the same ids as the collection, in any codec: compact
codes scored asymmetrically against the float query (``LloydMax2``, ``Hadamard,LloydMax2``, ...), or the
float32 vectors themselves (``Flat``; ``Index.load(path, mmap=True)`` reads them in place, so a corpus
larger than RAM rescores from the page cache). Each query is searched among its own candidates
(``Index.search(q, k, allowed=candidates)``): scores are the rescorer's, higher is better.

A collection may also keep every document's compact code in a ``VARCHAR`` field (``rescore_bytes``); a
client then needs only the rescorer's trained, *empty* index: the candidates' codes are fetched from
Milvus and scored in a scratch copy of it (:func:`scratch_index`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from qama_rs.errors import QamaError, QamaTypeError
from qama_rs.index import Index

__all__ = ["check_rescorer", "positions_of", "rescore", "scratch_index"]

_RESULTS_PER_CALL = 1 << 24


def check_rescorer(rescorer: object) -> Index:
    if not isinstance(rescorer, Index):
        raise QamaTypeError(
            f"rescorer must be a qama_rs.Index holding the ids written to Milvus (e.g. index_factory(dims, "
            f"'LloydMax2') or a 'Flat' index of the float32 vectors), got {type(rescorer).__name__}"
        )
    if not rescorer.is_trained:
        raise QamaError(f"rescorer {rescorer.spec!r} is not trained")
    return rescorer


def rescore(rescorer: Index, queries: Any, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of each query's candidates (int64 ids ``(nq, c)``, distinct per row, ``-1``
    padding) by ``rescorer``: ``(D float32, I int64)``, both ``(nq, k)``, best first; ``I = -1``,
    ``D = -inf`` past a query's candidates. A candidate the rescorer does not hold is an error, not a
    silent drop."""
    width = candidates.shape[1]
    depth = max(width, k)
    step = max(1, _RESULTS_PER_CALL // depth)  # bounds the (nq, depth) result of one search call
    parts = [
        rescorer.search(queries[lo : lo + step], depth, allowed=candidates[lo : lo + step])
        for lo in range(0, len(candidates), step)
    ]
    D = np.concatenate([p[0] for p in parts])
    I = np.concatenate([p[1] for p in parts])  # noqa: E741
    # Every candidate comes back (the search is as deep as the candidate list), so a short row names an
    # id the rescorer lacks.
    expected = (candidates >= 0).sum(axis=1)
    short = np.flatnonzero((I >= 0).sum(axis=1) < expected)
    if len(short):
        row = short[0]
        missing = np.setdiff1d(candidates[row][candidates[row] >= 0], I[row])
        raise QamaError(
            f"candidate id {int(missing[0])} (query {int(row)}) is not in the rescorer {rescorer!r}; it must "
            "hold every id written to Milvus"
        )
    return np.ascontiguousarray(D[:, :k]), np.ascontiguousarray(I[:, :k])


def scratch_index(template: Index, packed: np.ndarray, ids: np.ndarray) -> Index:
    """A copy of the trained, empty ``template`` holding the stored codes ``packed`` under ``ids``
    (ascending, so ties fall to the lower id, as in an index filled in id order)."""
    if len(template):
        raise QamaError(
            f"rescorer {template.spec!r} holds {len(template)} vectors; to rescore from the codes stored in "
            "Milvus pass the trained index empty"
        )
    with tempfile.TemporaryDirectory(prefix="qama-milvus-") as tmp:
        path = Path(tmp) / "template.qidx"  # save/load is the index's one public copy
        template.save(path)
        scratch = Index.load(path)
    scratch.add_codes(packed, ids)
    return scratch


def positions_of(row_ids: np.ndarray, wanted: np.ndarray, what: str) -> np.ndarray:
    """Positions in ``row_ids`` of every id in ``wanted``; an id missing from ``row_ids`` is an error
    naming ``what`` holds them."""
    order = np.argsort(row_ids, kind="stable")
    keys = row_ids[order]
    at = np.searchsorted(keys, wanted).clip(0, max(len(keys) - 1, 0))
    hit = keys[at] == wanted if len(keys) else np.zeros(wanted.shape, dtype=bool)
    if not hit.all():
        raise QamaError(f"id {int(wanted[~hit][0])} is not in {what}")
    return order[at]
