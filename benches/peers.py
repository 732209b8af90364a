"""Peer methods for the frontier bench: each ranks a whole corpus by its own compressed scores.

Every ``search_*`` function takes normalized float32 documents and queries and returns the ids of each
query's top ``k`` (int64 ``(nq, k)``) by the peer's scores alone (no float rescoring), plus the bytes
the peer stores per vector (codes + per-vector factors + padding, as the library stores them).
Peers are benchmark extras (``pip install -e .[bench]``), never runtime dependencies.
"""

from __future__ import annotations

import contextlib
import tempfile

import numpy as np


def faiss_rabitq(
    docs: np.ndarray, queries: np.ndarray, k: int, nb_bits: int, qb: int
) -> tuple[np.ndarray, int]:
    """faiss ``IndexRaBitQ`` (inner product), query quantized to ``qb`` bits. No pre-rotation (as shipped)."""
    import faiss

    index = faiss.IndexRaBitQ(docs.shape[1], faiss.METRIC_INNER_PRODUCT, nb_bits)
    index.train(docs)
    index.add(docs)
    params = faiss.RaBitQSearchParameters()
    params.qb = qb
    return index.search(queries, k, params=params)[1], int(index.code_size)


def faiss_pq(docs: np.ndarray, queries: np.ndarray, k: int, m: int) -> tuple[np.ndarray, int]:
    """faiss ``IndexPQ``: ``m`` sub-spaces x 8 bits, inner product, float query (ADC)."""
    import faiss

    index = faiss.IndexPQ(docs.shape[1], m, 8, faiss.METRIC_INNER_PRODUCT)
    index.train(docs)
    index.add(docs)
    return index.search(queries, k)[1], int(index.code_size)


def st_binary(docs: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """sentence-transformers ``quantize_embeddings(..., "ubinary")`` for both sides, Hamming ranking."""
    import faiss
    from sentence_transformers.util.quantization import quantize_embeddings

    d_codes = quantize_embeddings(docs, precision="ubinary")
    q_codes = quantize_embeddings(queries, precision="ubinary")
    index = faiss.IndexBinaryFlat(docs.shape[1])
    index.add(d_codes)
    return index.search(q_codes, k)[1], int(d_codes.shape[1])


def st_int8(docs: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """sentence-transformers ``quantize_embeddings(..., "int8")`` calibrated on the documents, both
    sides int8, ranked by the integer dot product."""
    from sentence_transformers.util.quantization import quantize_embeddings

    d_codes = quantize_embeddings(docs, precision="int8", calibration_embeddings=docs).astype(np.int32)
    q_codes = quantize_embeddings(queries, precision="int8", calibration_embeddings=docs).astype(np.int32)
    scores = q_codes @ d_codes.T
    return _topk(scores.astype(np.float64), k), int(docs.shape[1])


# Bytes Qdrant stores per vector at 384 d (ANCHORS.md): BQ codes (1.5-bit padded to 80 B); TurboQuant
# codes + two float32 factors.
QDRANT_BQ_BYTES = {"1bit": 48, "1.5bit": 80, "2bit": 96}
QDRANT_TQ_BYTES = {"1bit": 56, "1.5bit": 80, "2bit": 104, "4bit": 200}


@contextlib.contextmanager
def qdrant_shard(docs: np.ndarray, kind: str, bits: str, query_encoding: str = "Default"):
    """A Qdrant edge (``qdrant-edge-py``) shard holding ``docs`` quantized, yielding
    ``(search(queries, k) -> ids, bytes per vector)``: a full quantized scan, no rescoring.

    ``kind``: ``"bq"`` (binary quantization, ``query_encoding`` Binary / Scalar4Bits / Scalar8Bits) or
    ``"tq"`` (TurboQuant). Traps handled (ANCHORS.md): ``exact=True`` would switch quantization off, so
    a plain segment (``m=0``, huge ``full_scan_threshold``) is scanned with ``exact=False`` and
    ``rescore=False``; one optimized segment so the quantization is calibrated. Points are upserted in
    batches of 1,000 (Python lists of one batch at a time, so 1M vectors fit in memory).
    """
    import qdrant_edge as q

    if kind == "bq":
        enc = {"1bit": "OneBit", "1.5bit": "OneAndHalfBits", "2bit": "TwoBits"}[bits]
        config = q.BinaryQuantizationConfig(
            always_ram=True,
            encoding=getattr(q.BinaryQuantizationEncoding, enc),
            query_encoding=getattr(q.BinaryQuantizationQueryEncoding, query_encoding),
        )
        nbytes = QDRANT_BQ_BYTES[bits]
    else:
        size = {"1bit": "Bits1", "1.5bit": "Bits1_5", "2bit": "Bits2", "4bit": "Bits4"}[bits]
        config = q.TurboQuantQuantizationConfig(always_ram=True, bits=getattr(q.TurboQuantBitSize, size))
        nbytes = QDRANT_TQ_BYTES[bits]
    with tempfile.TemporaryDirectory() as path:
        shard = q.EdgeShard.create(
            path,
            q.EdgeConfig(
                vectors={
                    "": q.EdgeVectorParams(
                        size=docs.shape[1], distance=q.Distance.Dot, quantization_config=config
                    )
                },
                hnsw_config=q.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10**9),
                optimizers=q.EdgeOptimizersConfig(indexing_threshold=1, default_segment_number=1),
            ),
        )
        for start in range(0, len(docs), 1000):
            batch = [q.Point(start + i, row.tolist()) for i, row in enumerate(docs[start : start + 1000])]
            shard.update(q.UpdateOperation.upsert_points(batch))
        shard.optimize()
        params = q.SearchParams(
            exact=False, quantization=q.QuantizationSearchParams(rescore=False, oversampling=1.0)
        )

        def search(queries: np.ndarray, k: int) -> np.ndarray:
            requests = [
                q.QueryRequest(limit=k, query=q.Query.Nearest(v.tolist()), params=params) for v in queries
            ]
            results = shard.query_batch(q.QueryBatchRequest(requests))
            ids = np.full((len(queries), k), -1, dtype=np.int64)
            for row, hits in enumerate(results):
                ids[row, : len(hits)] = [h.id for h in hits]
            return ids

        try:
            yield search, nbytes
        finally:
            shard.close()


def qdrant(
    docs: np.ndarray, queries: np.ndarray, k: int, kind: str, bits: str, query_encoding: str = "Default"
):
    """``(ids, bytes per vector)`` of a Qdrant edge quantized full scan (see :func:`qdrant_shard`)."""
    with qdrant_shard(docs, kind, bits, query_encoding) as (search, nbytes):
        return search(queries, k), nbytes


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1).astype(np.int64)
