"""One evaluation: embed (cached), fit a method on the documents, search the queries, score NDCG@10.

The run handed to pytrec_eval holds the top ``k = 1000`` documents per query with the method's own scores —
what mteb's retrieval evaluator sees (its ``top_k`` is ``max(k_values) = 1000``) — so ties are broken the same
way (trec_eval: equal scores by document id, descending).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from qama_rs.data.beir import BeirDataset, load_beir
from qama_rs.data.embed import DatasetEmbeddings, dataset_embeddings
from qama_rs.eval.methods import Method, get_method
from qama_rs.eval.metrics import bootstrap_ci, ndcg_at_10, run_from_topk

__all__ = ["RESULT_KEYS", "evaluate", "evaluate_dims", "format_result"]

#: Keys of every result dict (``per_query`` is added unless ``keep_per_query=False``).
RESULT_KEYS = (
    "dataset",
    "split",
    "method",
    "spec",
    "bits",
    "dims",
    "ndcg@10",
    "ci95",
    "recall@10",
    "bytes_per_vector",
    "n_docs",
    "n_queries",
    "model",
)


def _dataset(dataset, split: str | None) -> BeirDataset:
    if isinstance(dataset, BeirDataset):
        if split is not None and dataset.split != split:
            raise ValueError(f"dataset holds split {dataset.split!r}, split={split!r} was asked for")
        return dataset
    if isinstance(dataset, (str, os.PathLike)):
        return load_beir(dataset, split=split or "test")
    raise TypeError(f"dataset must be a name, a path or a BeirDataset, got {type(dataset).__name__}")


def evaluate_dims(
    dataset,
    method,
    dims_list: Sequence[int | None],
    *,
    split: str | None = None,
    bits=None,
    head=None,
    model: str | None = None,
    embeddings: DatasetEmbeddings | None = None,
    k: int = 1000,
    n_resamples: int = 1000,
    seed: int = 0,
    cache_dir=None,
    keep_per_query: bool = True,
) -> list[dict]:
    """Fit ``method`` once on the documents, then evaluate each prefix in ``dims_list`` (``None`` = all).

    ``method`` is a :class:`Method` (fitted here) or a registry name built with ``get_method(method, bits,
    None, head)``. ``dataset`` is a name, a BEIR folder or a loaded :class:`BeirDataset`; ``split`` defaults to
    the loaded dataset's split, else ``"test"``.
    ``embeddings`` skips the embedding step (rows must follow the dataset's ids). Never tune on ``test``.
    """
    data = _dataset(dataset, split)
    if isinstance(method, str):
        method = get_method(method, bits=bits, dims=None, head=head)
    elif head is not None:
        raise ValueError("pass head only with a method name; wrap a Method instance yourself (HeadMethod)")
    if not isinstance(method, Method):
        raise TypeError(f"method must be a registry name or a Method, got {type(method).__name__}")
    if embeddings is None:
        embeddings = dataset_embeddings(data, model, cache_dir=cache_dir)
    elif list(embeddings.doc_ids) != list(data.doc_ids) or list(embeddings.query_ids) != list(data.query_ids):
        raise ValueError("embeddings ids do not match the dataset's doc_ids/query_ids")
    method.fit(embeddings.docs)
    truth = exact_top10(embeddings.docs, embeddings.queries)
    results = []
    for dims in dims_list:
        scores, ids = method.search(embeddings.queries, min(k, data.n_docs), dims=dims)
        run = run_from_topk(data.query_ids, data.doc_ids, ids, scores)
        mean, per_query = ndcg_at_10(data.qrels, run)
        lo, hi = bootstrap_ci(per_query, n_resamples=n_resamples, seed=seed)
        result = {
            "dataset": data.name,
            "split": data.split,
            "method": method.name,
            "spec": _spec_of(method, dims),
            "bits": float(method.bits),
            "dims": int(dims if dims is not None else embeddings.dim),
            "ndcg@10": mean,
            "ci95": [lo, hi],
            "recall@10": recall_at_10(ids, truth),
            "bytes_per_vector": float(method.bytes_per_vector(dims)),
            "n_docs": data.n_docs,
            "n_queries": data.n_queries,
            "model": str(embeddings.model),
        }
        if keep_per_query:
            result["per_query"] = per_query
        results.append(result)
    return results


def exact_top10(docs, queries):
    """Row numbers ``(q, 10)`` of each query's exact float32 top-10 (inner product of the full embeddings,
    the factory's ``Flat`` index: what the uncompressed search would return)."""
    from qama_rs.index import index_factory

    index = index_factory(docs.shape[1], "Flat")
    index.add(docs)
    return index.search(queries, min(10, len(docs)))[1]


def recall_at_10(ids, truth) -> float:
    """Mean over queries of the share of the exact float32 top-10 found in the method's top 10."""
    found = [len(set(row[:10].tolist()) & set(ref.tolist())) / len(ref) for row, ref in zip(ids, truth, strict=True)]
    return float(sum(found) / max(len(found), 1))


def _spec_of(method, dims) -> str | None:
    """The factory spec that answered this prefix (pasteable into ``qama_rs.index_factory``), if any."""
    spec_for = getattr(method, "spec_for", None)
    return spec_for(dims) if callable(spec_for) else getattr(method, "spec", None)


def evaluate(dataset, method, dims: int | None = None, **kwargs) -> dict:
    """NDCG@10 (+ bootstrap 95 % CI, storage) of one method at one prefix; see :func:`evaluate_dims`.

    Returns a dict with the keys of :data:`RESULT_KEYS` plus ``per_query``.
    """
    return evaluate_dims(dataset, method, [dims], **kwargs)[0]


def format_result(result: dict) -> str:
    """One aligned line, e.g. ``scifact  fp32 [Flat]  32 bits  384 d  NDCG@10 0.6451 [0.6180, 0.6722]  1536 B``."""
    lo, hi = result["ci95"]
    spec = f" [{result['spec']}]" if result.get("spec") and result["spec"] != result["method"] else ""
    return (
        f"{result['dataset']:<12} {result['method'] + spec:<30} {result['bits']:>5g} bits {result['dims']:>4} d  "
        f"NDCG@10 {result['ndcg@10']:.4f} [{lo:.4f}, {hi:.4f}]  recall@10 {result.get('recall@10', float('nan')):.3f}  "
        f"{result['bytes_per_vector']:>6g} B/vector  "
        f"({result['n_queries']} queries, {result['n_docs']} docs)"
    )
