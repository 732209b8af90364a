"""Pseudo-queries from documents alone (inverse cloze): a sentence or short span cropped out of a document
stands for a query whose relevant document is that document. No extra model, no labels; the crops are
embedded with the same base model as the documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["crop_queries"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def crop_queries(
    texts: Sequence[str], seed: int = 0, min_words: int = 4, max_words: int = 24
) -> tuple[list[str], np.ndarray]:
    """One pseudo-query per document that has at least ``min_words`` words: a random sentence of it with
    ``min_words``..``max_words`` words, else a random window of ``max_words`` words. Returns ``(queries,
    source_rows)`` — ``source_rows[i]`` is the document ``queries[i]`` was cut from. Deterministic per seed."""
    if min_words < 1 or max_words < min_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    rng = np.random.default_rng(seed)
    queries: list[str] = []
    rows: list[int] = []
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{row}] must be a str, got {type(text).__name__}")
        words = text.split()
        if len(words) < min_words:
            continue
        sentences = [s for s in _SENTENCE_END.split(text) if min_words <= len(s.split()) <= max_words]
        if sentences:
            query = sentences[int(rng.integers(len(sentences)))].strip()
        else:
            start = int(rng.integers(max(1, len(words) - max_words + 1)))
            query = " ".join(words[start : start + max_words])
        queries.append(query)
        rows.append(row)
    return queries, np.asarray(rows, dtype=np.int64)
