"""One evaluation: embed (cached), fit a factory spec on the documents, search the queries, score NDCG@10.

The run handed to pytrec_eval holds the top ``k = 1000`` documents per query with the method's own scores —
what mteb's retrieval evaluator sees (its ``top_k`` is ``max(k_values) = 1000``) — so ties are broken the same
way (trec_eval: equal scores by document id, descending).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from qama_rs.data.beir import BeirDataset, load_beir
from qama_rs.data.embed import DatasetEmbeddings, dataset_embeddings
from qama_rs.eval.metrics import bootstrap_ci, ndcg_at_10, run_from_topk
from qama_rs.eval.prefix import prefix_index
from qama_rs.index import parse_spec

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
    spec: str,
    dims_list: Sequence[int | None],
    *,
    name: str | None = None,
    split: str | None = None,
    head=None,
    model: str | None = None,
    embeddings: DatasetEmbeddings | None = None,
    k: int = 1000,
    n_resamples: int = 1000,
    seed: int = 0,
    cache_dir=None,
    keep_per_query: bool = True,
) -> list[dict]:
    """Evaluate the factory ``spec`` at each prefix in ``dims_list`` (``None`` = all dimensions); each index is
    fitted on the documents once (:func:`qama_rs.eval.prefix.prefix_index` gives each family's prefix rule).

    ``name`` labels the results (default: the spec). ``head``: a loaded QAMA model for a ``QAMA(...)`` spec.
    ``dataset`` is a name, a BEIR folder or a loaded :class:`BeirDataset`; ``split`` defaults to the loaded
    dataset's split, else ``"test"``. ``embeddings`` skips the embedding step (rows must follow the dataset's
    ids). Never tune on ``test``.
    """
    data = _dataset(dataset, split)
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a factory spec string such as 'LloydMax2', got {type(spec).__name__}")
    parse_spec(spec)  # a malformed spec fails before any embedding work
    if embeddings is None:
        embeddings = dataset_embeddings(data, model, cache_dir=cache_dir)
    elif list(embeddings.doc_ids) != list(data.doc_ids) or list(embeddings.query_ids) != list(data.query_ids):
        raise ValueError("embeddings ids do not match the dataset's doc_ids/query_ids")
    cache: dict = {}
    prefix_index(spec, embeddings.docs, None, head=head, cache=cache)  # the full index first, as every prefix uses
    truth = exact_top10(embeddings.docs, embeddings.queries)
    results = []
    for dims in dims_list:
        prefix = prefix_index(spec, embeddings.docs, dims, head=head, cache=cache)
        scores, ids = prefix.index.search(
            prefix.queries(embeddings.queries), min(k, data.n_docs), dims=prefix.engine_dims
        )
        run = run_from_topk(data.query_ids, data.doc_ids, ids, scores)
        mean, per_query = ndcg_at_10(data.qrels, run)
        lo, hi = bootstrap_ci(per_query, n_resamples=n_resamples, seed=seed)
        result = {
            "dataset": data.name,
            "split": data.split,
            "method": name or spec,
            "spec": prefix.spec,
            "bits": prefix.bits,
            "dims": prefix.dims,
            "ndcg@10": mean,
            "ci95": [lo, hi],
            "recall@10": recall_at_10(ids, truth),
            "bytes_per_vector": prefix.bytes_per_vector,
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


def evaluate(dataset, spec: str, dims: int | None = None, **kwargs) -> dict:
    """NDCG@10 (+ bootstrap 95 % CI, storage) of one factory spec at one prefix; see :func:`evaluate_dims`.

    Returns a dict with the keys of :data:`RESULT_KEYS` plus ``per_query``.
    """
    return evaluate_dims(dataset, spec, [dims], **kwargs)[0]


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
