"""Two-stage search in NumPy: 1-bit candidates for everyone, finer codes for the few candidates.

Stage 1 scans the 1-bit codes of every document and keeps the ``k_prime`` best (Hamming distance
to the binarized query, or — ``first_stage="asymmetric"`` — the float query against the ±1 codes;
ties by lower document id). Stage 2 rescores only those candidates with the float query against a
finer representation (2-bit Lloyd-Max codes by default, any fitted-at-once quantizer, or float32)
and returns the top ``k`` by descending score (ties by lower document id).

Bytes read per query are counted honestly: ``n`` first-stage codes plus ``k_prime`` second-stage
vectors (:meth:`TwoStageSearch.bytes_scanned`).
"""

from __future__ import annotations

import numpy as np

from qama_rs.quantizers.base import TrainingFreeQuantizer, check_embeddings
from qama_rs.quantizers.binary import SignBinary
from qama_rs.quantizers.hamming import hamming_distances
from qama_rs.quantizers.lloyd_max import LloydMaxGauss


class TwoStageSearch:
    """``fit(docs)`` then ``search(queries, k, k_prime)`` or ``sweep(queries, k_primes, k)``.

    ``first_stage``: a 1-bit quantizer with a Hamming variant (default sign binary).
    ``rescorer``: a quantizer for stage 2 (default 2-bit Lloyd-Max Gaussian), or the string
    ``"float32"`` to rescore with the original vectors. ``k_prime``: default candidate count.

    It follows the evaluation's ``Method`` protocol (``name``, ``bits``, ``fit``,
    ``search(query_emb, k, dims=None)``, ``bytes_per_vector``) for full-dimension search.
    """

    name = "two_stage"

    def __init__(
        self,
        first_stage: TrainingFreeQuantizer | None = None,
        rescorer: TrainingFreeQuantizer | str | None = None,
        first_stage_mode: str = "hamming",
        k_prime: int = 100,
    ) -> None:
        self.k_prime = self._check_k(k_prime, "k_prime")
        self.first_stage = SignBinary() if first_stage is None else first_stage
        if not self.first_stage.supports_hamming:
            raise ValueError(f"first_stage {self.first_stage.name!r} has no Hamming variant")
        self.rescorer = LloydMaxGauss(bits=2) if rescorer is None else rescorer
        if isinstance(self.rescorer, str) and self.rescorer != "float32":
            raise ValueError(f"rescorer must be a quantizer or 'float32', got {self.rescorer!r}")
        if first_stage_mode not in ("hamming", "asymmetric"):
            raise ValueError(f"first_stage_mode must be 'hamming' or 'asymmetric', got {first_stage_mode!r}")
        self.first_stage_mode = first_stage_mode
        self._fitted = False

    # ---------------------------------------------------------------- build
    def fit(self, doc_emb) -> TwoStageSearch:
        """Fits both quantizers on the documents and stores their codes."""
        docs = check_embeddings(doc_emb, "doc_emb")
        self.first_stage.fit(docs)
        self._first_codes = self.first_stage.encode(docs)
        self._first_packed = self.first_stage.pack_hamming(self._first_codes)
        if isinstance(self.rescorer, str):
            self._rescore_codes = None
            self._rescore_vectors = docs.copy()
        else:
            self.rescorer.fit(docs)
            self._rescore_codes = self.rescorer.encode(docs)
            # Decoding once is a NumPy convenience; the byte count is still that of the codes.
            self._rescore_vectors = self.rescorer.reconstruct(self._rescore_codes)
        self.n_docs, self.dim = docs.shape
        self._fitted = True
        return self

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("TwoStageSearch: call fit(doc_emb) first")

    # ------------------------------------------------------------- accounting
    @property
    def first_stage_bytes_per_doc(self) -> int:
        self._require_fitted()
        return self.first_stage.bytes_per_vector

    @property
    def rescore_bytes_per_doc(self) -> int:
        self._require_fitted()
        if isinstance(self.rescorer, str):
            return 4 * self.dim
        return self.rescorer.bytes_per_vector

    @property
    def bits(self) -> float:
        """Bits per dimension of the first stage (the codes every query scans)."""
        return self.first_stage.bits_per_dim if self._fitted else float("nan")

    def bytes_per_vector(self, dims: int | None = None) -> int:
        """Stored bytes per document: first-stage code plus rescoring vector."""
        self._check_dims(dims)
        return self.first_stage_bytes_per_doc + self.rescore_bytes_per_doc

    def _check_dims(self, dims) -> None:
        self._require_fitted()
        if dims is not None and dims != self.dim:
            raise ValueError(f"dims: TwoStageSearch searches all {self.dim} dimensions, got dims={dims!r}")

    def bytes_scanned(self, k_prime: int) -> int:
        """Bytes read for one query: every first-stage code plus ``k_prime`` rescoring vectors."""
        self._require_fitted()
        k_prime = self._check_k(k_prime, "k_prime")
        return (
            self.n_docs * self.first_stage_bytes_per_doc
            + min(k_prime, self.n_docs) * self.rescore_bytes_per_doc
        )

    # ----------------------------------------------------------------- search
    @staticmethod
    def _check_k(k, argname: str) -> int:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"{argname} must be a positive integer, got {k!r}")
        return int(k)

    def candidate_order(self, query_emb) -> np.ndarray:
        """All document ids per query, in first-stage order ``(q, n)`` (best first, ties by id)."""
        self._require_fitted()
        query_emb = check_embeddings(query_emb, "query_emb", self.dim)
        if self.first_stage_mode == "hamming":
            dist = hamming_distances(
                self.first_stage.pack_hamming(self.first_stage.encode(query_emb)), self._first_packed
            )
            return np.argsort(dist, axis=1, kind="stable")
        scores = self.first_stage.score(query_emb, self._first_codes)
        return np.argsort(-scores, axis=1, kind="stable")

    def rescore(self, query_emb, candidate_ids: np.ndarray) -> np.ndarray:
        """Stage-2 scores ``(q, k')`` of each query's candidates (float query · stage-2 vectors)."""
        self._require_fitted()
        if isinstance(self.rescorer, str):
            q = check_embeddings(query_emb, "query_emb", self.dim)
        else:
            q = self.rescorer.prepare_query(query_emb)
        candidate_ids = np.asarray(candidate_ids)
        if candidate_ids.ndim != 2 or candidate_ids.shape[0] != q.shape[0]:
            raise ValueError(f"candidate_ids must have shape ({q.shape[0]}, k'), got {candidate_ids.shape}")
        out = np.empty(candidate_ids.shape, dtype=np.float32)
        for i in range(q.shape[0]):
            out[i] = self._rescore_vectors[candidate_ids[i]] @ q[i]
        return out

    def _top_k(self, query_emb, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # Sort candidates by id first so a stable sort on -score breaks ties by lower id.
        candidates = np.sort(candidates, axis=1)
        scores = self.rescore(query_emb, candidates)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(
            candidates, order, axis=1
        ).astype(np.int64)

    def search(
        self, query_emb, k: int = 10, dims: int | None = None, k_prime: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores (q, k) float32, ids (q, k) int64)``; ``k`` and ``k_prime`` clip to ``n``."""
        self._check_dims(dims)
        k = self._check_k(k, "k")
        k_prime = self._check_k(self.k_prime if k_prime is None else k_prime, "k_prime")
        order = self.candidate_order(query_emb)
        return self._top_k(query_emb, order[:, : min(k_prime, self.n_docs)], min(k, k_prime, self.n_docs))

    def sweep(self, query_emb, k_primes, k: int = 10) -> dict[int, np.ndarray]:
        """``{k_prime: ids (q, k)}`` for each ``k_prime``; the first stage runs once."""
        k = self._check_k(k, "k")
        k_primes = [self._check_k(kp, "k_primes") for kp in k_primes]
        order = self.candidate_order(query_emb)
        return {
            kp: self._top_k(query_emb, order[:, : min(kp, self.n_docs)], min(k, kp, self.n_docs))[1]
            for kp in k_primes
        }
