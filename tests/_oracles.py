"""NumPy scorers kept as test oracles only (they used to score the published figures; the Rust engine
does now, through ``qama_rs.index``): Hamming distances and exact top-k, a quantizer's float scores,
and the two-stage search of ``quantizers/two_stage.py``.

Order conventions are the engine's: top-k by descending score (or ascending distance), ties by the
lower document index.
"""

from __future__ import annotations

import numpy as np

from qama_rs.quantizers.base import TrainingFreeQuantizer, check_embeddings
from qama_rs.quantizers.binary import SignBinary
from qama_rs.quantizers.lloyd_max import LloydMaxGauss

# Rows of the (queries x docs x bytes) XOR temporary per block; keeps memory near 64 MiB.
_BLOCK_BYTES = 1 << 26


def hamming_distances(query_bits: np.ndarray, doc_bits: np.ndarray) -> np.ndarray:
    """``(q, b)`` and ``(n, b)`` packed uint8 -> ``(q, n)`` int32 Hamming distances."""
    for arg, name in ((query_bits, "query_bits"), (doc_bits, "doc_bits")):
        if not isinstance(arg, np.ndarray) or arg.dtype != np.uint8 or arg.ndim != 2:
            raise TypeError(f"{name} must be a 2-D uint8 array of packed bits")
    if query_bits.shape[1] != doc_bits.shape[1]:
        raise ValueError(f"query_bits has {query_bits.shape[1]} bytes per row, doc_bits {doc_bits.shape[1]}")
    q, n, b = query_bits.shape[0], doc_bits.shape[0], doc_bits.shape[1]
    out = np.empty((q, n), dtype=np.int32)
    rows = max(1, _BLOCK_BYTES // max(1, n * b))
    for start in range(0, q, rows):
        block = query_bits[start : start + rows, None, :] ^ doc_bits[None, :, :]
        out[start : start + rows] = np.bitwise_count(block).sum(axis=2, dtype=np.int32)
    return out


def topk_smallest(distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` smallest values ascending, ties by lower column; ``k > n`` gives ``n``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, distances.shape[1])
    # A stable argsort keeps equal values in column order: the tie rule for free.
    ids = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, ids, axis=1), ids.astype(np.int64)


def topk_largest(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` largest scores descending, ties by lower column."""
    _, ids = topk_smallest(-scores, k)
    return np.take_along_axis(scores, ids, axis=1), ids


def quantizer_scores(quantizer: TrainingFreeQuantizer, query_emb, codes) -> np.ndarray:
    """Asymmetric scores ``(n_queries, n_docs)`` float32: prepared query . reconstructed documents."""
    return quantizer.prepare_query(query_emb) @ quantizer.reconstruct(codes).T


def quantizer_hamming_distances(quantizer: TrainingFreeQuantizer, query_emb, codes) -> np.ndarray:
    """Symmetric distances ``(n_queries, n_docs)`` int32 of a method's Hamming bits (queries quantized too)."""
    qbits = quantizer.pack_hamming(quantizer.encode(query_emb))
    return hamming_distances(qbits, quantizer.pack_hamming(codes))


class TwoStageSearch:
    """Two-stage search in NumPy: 1-bit candidates for everyone, finer codes for the few candidates.

    Stage 1 keeps the ``k_prime`` best documents by Hamming distance of the 1-bit codes (or, with
    ``first_stage_mode="asymmetric"``, the float query against the +-1 codes); stage 2 rescores those
    with the float query against a finer quantizer (default 2-bit Lloyd-Max) or ``"float32"`` vectors.
    """

    name = "two_stage"

    def __init__(self, first_stage=None, rescorer=None, first_stage_mode: str = "hamming", k_prime: int = 100):
        self.k_prime = k_prime
        self.first_stage = SignBinary() if first_stage is None else first_stage
        self.rescorer = LloydMaxGauss(bits=2) if rescorer is None else rescorer
        if first_stage_mode not in ("hamming", "asymmetric"):
            raise ValueError(f"first_stage_mode must be 'hamming' or 'asymmetric', got {first_stage_mode!r}")
        self.first_stage_mode = first_stage_mode

    def fit(self, doc_emb) -> TwoStageSearch:
        docs = check_embeddings(doc_emb, "doc_emb")
        self.first_stage.fit(docs)
        self._first_codes = self.first_stage.encode(docs)
        self._first_packed = self.first_stage.pack_hamming(self._first_codes)
        if isinstance(self.rescorer, str):
            self._rescore_vectors = docs.copy()
        else:
            self.rescorer.fit(docs)
            self._rescore_vectors = self.rescorer.reconstruct(self.rescorer.encode(docs))
        self.n_docs, self.dim = docs.shape
        return self

    def candidate_order(self, query_emb) -> np.ndarray:
        """All document ids per query in first-stage order ``(q, n)`` (best first, ties by id)."""
        query_emb = check_embeddings(query_emb, "query_emb", self.dim)
        if self.first_stage_mode == "hamming":
            dist = hamming_distances(self.first_stage.pack_hamming(self.first_stage.encode(query_emb)), self._first_packed)
            return np.argsort(dist, axis=1, kind="stable")
        scores = quantizer_scores(self.first_stage, query_emb, self._first_codes)
        return np.argsort(-scores, axis=1, kind="stable")

    def rescore(self, query_emb, candidate_ids: np.ndarray) -> np.ndarray:
        """Stage-2 scores ``(q, k')`` of each query's candidates."""
        if isinstance(self.rescorer, str):
            q = check_embeddings(query_emb, "query_emb", self.dim)
        else:
            q = self.rescorer.prepare_query(query_emb)
        out = np.empty(candidate_ids.shape, dtype=np.float32)
        for i in range(q.shape[0]):
            out[i] = self._rescore_vectors[candidate_ids[i]] @ q[i]
        return out

    def _top_k(self, query_emb, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        candidates = np.sort(candidates, axis=1)  # a stable sort on -score then breaks ties by lower id
        scores = self.rescore(query_emb, candidates)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(candidates, order, axis=1).astype(np.int64)

    def search(self, query_emb, k: int = 10, k_prime: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(scores (q, k) float32, ids (q, k) int64)``; ``k`` and ``k_prime`` clip to ``n``."""
        k_prime = self.k_prime if k_prime is None else k_prime
        order = self.candidate_order(query_emb)
        return self._top_k(query_emb, order[:, : min(k_prime, self.n_docs)], min(k, k_prime, self.n_docs))

    def sweep(self, query_emb, k_primes, k: int = 10) -> dict[int, np.ndarray]:
        """``{k_prime: ids (q, k)}``; the first stage runs once."""
        order = self.candidate_order(query_emb)
        return {kp: self._top_k(query_emb, order[:, : min(kp, self.n_docs)], min(k, kp, self.n_docs))[1] for kp in k_primes}
