"""Shared pieces of the documents-only experiments (train/lab): data, symmetric Hamming scoring through the
Rust engine, NDCG@10 and recall@10 against the exact float32 top-10."""

from __future__ import annotations

import numpy as np

import qama_rs
from qama_rs.data.beir import load_beir, resolve_dataset
from qama_rs.data.embed import dataset_embeddings
from qama_rs.eval.metrics import ndcg_at_10, run_from_topk

SCHEMES = ("1bit", "1.5bit", "2bit", "hybrid")


class Bench:
    """One dataset's test queries, documents, qrels and exact float32 top-10."""

    def __init__(self, name: str):
        ds = load_beir(resolve_dataset(name), split="test")
        emb = dataset_embeddings(ds, progress=False)
        self.name = name
        self.ds = ds
        keep = [i for i, q in enumerate(emb.query_ids) if q in ds.qrels]
        self.query_ids = [emb.query_ids[i] for i in keep]
        self.queries = emb.queries[keep]
        self.docs = emb.docs
        self.doc_ids = emb.doc_ids
        self.qrels = ds.qrels
        self.float_top = np.argsort(-(self.queries @ self.docs.T), axis=1)[:, :10]

    def score(self, ids: np.ndarray) -> tuple[float, float]:
        """(NDCG@10, recall@10 vs the float32 top-10) of a ranked id matrix (q, >=10)."""
        ndcg, _ = ndcg_at_10(self.qrels, run_from_topk(self.query_ids, self.doc_ids, ids[:, :10]))
        hits = [len(set(a) & set(b)) for a, b in zip(ids[:, :10], self.float_top, strict=True)]
        return ndcg, float(np.mean(hits)) / 10

    def hamming(self, q_feat: np.ndarray, d_feat: np.ndarray, scheme: str, quantizer=None):
        """Symmetric Hamming search of thermometer codes (quantile thresholds fitted on the documents)."""
        quantizer = quantizer or qama_rs.Quantizer.fit(np.ascontiguousarray(d_feat, np.float32), scheme)
        index = qama_rs.Index(quantizer)
        index.add(np.ascontiguousarray(d_feat, np.float32))
        _, ids = index.search(np.ascontiguousarray(q_feat, np.float32), 100)
        return self.score(ids)

    def cosine(self, q_feat: np.ndarray, d_feat: np.ndarray):
        qn = q_feat / np.linalg.norm(q_feat, axis=1, keepdims=True)
        dn = d_feat / np.linalg.norm(d_feat, axis=1, keepdims=True)
        return self.score(np.argsort(-(qn @ dn.T), axis=1)[:, :100])
