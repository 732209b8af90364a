"""mteb integration: an encoder that reads our embedding cache and a search backend driven by a Method.

mteb 2.x lets ``SearchEncoderWrapper(encoder, index_backend=...)`` delegate the corpus search to any object
implementing ``mteb.models.search_encoder_index.IndexEncoderSearchProtocol`` (``add_documents``, ``search``,
``clear``). :class:`MethodSearchIndex` is such a backend: it fits a :class:`~qama_rs.eval.methods.Method` on
the documents mteb hands it and answers with the method's ranking, so the NDCG@10 is computed by mteb's own
``RetrievalEvaluator`` (pytrec_eval underneath).

:class:`CachedEncoder` is the mteb encoder: it looks each text up in the embeddings that
:func:`qama_rs.data.embed.dataset_embeddings` cached (a text's embedding depends on the text only) and embeds any
text it does not find with the sentence-transformers model, so an evaluation never re-embeds a cached corpus.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qama_rs.data.beir import BeirDataset
from qama_rs.data.embed import dataset_embeddings, default_model_path, embed_texts
from qama_rs.eval.methods import Method

__all__ = ["CachedEncoder", "MethodSearchIndex", "evaluate_mteb"]


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


class MethodSearchIndex:
    """``IndexEncoderSearchProtocol`` backend ranking with a :class:`Method` (``dims``: prefix searched).

    Documents are collected by ``add_documents``; the method is fitted on all of them (documents only) at
    the first ``search``. Scores returned to mteb are the method's own (``-distance`` for Hamming methods);
    a method without scores reports ``k - rank`` so mteb keeps its order. Reranking (``top_ranked``) is not
    supported: a code index answers for the whole corpus.
    """

    def __init__(self, method: Method, dims: int | None = None) -> None:
        if not isinstance(method, Method):
            raise TypeError(f"method must implement qama_rs.eval.methods.Method, got {type(method).__name__}")
        self.method = method
        self.dims = dims
        self.idxs: list[str] = []
        self._chunks: list[np.ndarray] = []
        self._fitted = False

    def add_documents(self, embeddings, idxs: list[str]) -> None:
        chunk = _to_numpy(embeddings)
        if chunk.ndim != 2 or chunk.shape[0] != len(idxs):
            raise ValueError(f"got {chunk.shape} embeddings for {len(idxs)} document ids")
        self._chunks.append(chunk)
        self.idxs.extend(str(i) for i in idxs)
        self._fitted = False

    def search(
        self,
        embeddings,
        top_k: int,
        similarity_fn=None,
        top_ranked=None,
        query_idx_to_id=None,
    ) -> tuple[list[list[float]], list[list[int]]]:
        if top_ranked is not None:
            raise NotImplementedError(
                "MethodSearchIndex searches the whole corpus; reranking tasks are unsupported"
            )
        if not self._chunks:
            raise ValueError("no documents added; call add_documents() first")
        if not self._fitted:
            self.method.fit(np.concatenate(self._chunks))
            self._fitted = True
        scores, ids = self.method.search(_to_numpy(embeddings), min(top_k, len(self.idxs)), dims=self.dims)
        if scores is None:
            scores = np.broadcast_to(np.arange(ids.shape[1], 0, -1, dtype=np.float32), ids.shape)
        return np.asarray(scores, dtype=np.float64).tolist(), np.asarray(ids, dtype=np.int64).tolist()

    def clear(self) -> None:
        self.idxs = []
        self._chunks = []
        self._fitted = False


def _make_cached_encoder_class():
    # mteb imports take seconds; build the class on first use only.
    from mteb.models.abs_encoder import AbsEncoder
    from mteb.models.model_meta import ModelMeta, ScoringFunction
    from mteb.types import PromptType

    class _CachedEncoder(AbsEncoder):
        def __init__(
            self, model: str | None = None, datasets: list[BeirDataset] = (), cache_dir=None
        ) -> None:
            self.model_path = default_model_path() if model is None else str(model)
            self._by_text: dict[str, dict[str, np.ndarray]] = {"query": {}, "document": {}}
            self.cache_misses = 0
            dim = None
            for dataset in datasets:
                cached = dataset_embeddings(dataset, self.model_path, cache_dir=cache_dir)
                dim = cached.dim
                self._by_text["document"].update(zip(dataset.doc_texts, cached.docs, strict=True))
                self._by_text["query"].update(zip(dataset.query_texts, cached.queries, strict=True))
            self.mteb_model_meta = ModelMeta(
                loader=None,
                name=f"qama-local/{self.model_path.rstrip('/').split('/')[-1]}",
                revision=None,
                release_date=None,
                languages=None,
                n_parameters=None,
                memory_usage_mb=None,
                max_tokens=None,
                embed_dim=dim,
                license=None,
                open_weights=None,
                public_training_code=None,
                public_training_data=None,
                framework=["Sentence Transformers"],
                similarity_fn_name=ScoringFunction.COSINE,
                use_instructions=False,
                training_datasets=None,
            )

        def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs: Any):
            kind = "query" if prompt_type == PromptType.query else "document"
            texts = [text for batch in inputs for text in batch["text"]]
            table = self._by_text[kind]
            missing = sorted({t for t in texts if t not in table})
            if missing:
                self.cache_misses += len(missing)
                table.update(zip(missing, embed_texts(missing, self.model_path, progress=False), strict=True))
            return np.stack([table[t] for t in texts]).astype(np.float32)

    return _CachedEncoder


_cached_encoder_class = None


def CachedEncoder(model: str | None = None, datasets: list[BeirDataset] = (), cache_dir=None):  # noqa: N802
    """An mteb encoder serving the cached embeddings of ``datasets`` (embedding unseen texts with ``model``).

    ``cache_misses`` counts the texts it had to embed; after a run on a cached dataset it is 0.
    """
    global _cached_encoder_class
    if _cached_encoder_class is None:
        _cached_encoder_class = _make_cached_encoder_class()
    return _cached_encoder_class(model, list(datasets), cache_dir)


def evaluate_mteb(
    dataset: str,
    method: Method,
    dims: int | None = None,
    model: str | None = None,
    split: str = "test",
    cache_dir=None,
) -> dict:
    """NDCG@10 of ``method`` on a local BEIR ``dataset`` computed by mteb's retrieval evaluator.

    Returns ``{"dataset", "method", "dims", "ndcg@10", "scores" (mteb's full score dict), "cache_misses"}``.
    """
    import mteb  # noqa: F401  (registers mteb's task/model machinery)
    from mteb.models.search_wrappers import SearchEncoderWrapper

    from qama_rs.eval.mteb_tasks import beir_task

    task = beir_task(dataset, split=split)
    encoder = CachedEncoder(model, [task.beir], cache_dir=cache_dir)
    backend = MethodSearchIndex(method, dims=dims)
    searcher = SearchEncoderWrapper(encoder, index_backend=backend)
    scores = task.evaluate(searcher, split=split, encode_kwargs={"batch_size": 64})
    default = scores["default"]
    return {
        "dataset": task.beir.name,
        "method": method.name,
        "dims": dims if dims is not None else encoder.mteb_model_meta.embed_dim,
        "ndcg@10": float(default["ndcg_at_10"]),
        "scores": dict(default),
        "cache_misses": encoder.cache_misses,
    }
