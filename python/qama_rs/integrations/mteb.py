"""mteb integration: an encoder that reads our embedding cache and a search backend driven by a factory spec.

mteb 2.x lets ``SearchEncoderWrapper(encoder, index_backend=...)`` delegate the corpus search to any object
implementing ``mteb.models.search_encoder_index.IndexEncoderSearchProtocol`` (``add_documents``, ``search``,
``clear``). :class:`MethodSearchIndex` is such a backend: it builds the factory index of a spec on the
documents mteb hands it (:func:`qama_rs.eval.prefix.prefix_index`, the same index ``qama eval`` measures) and
answers with its ranking, so the NDCG@10 is computed by mteb's own ``RetrievalEvaluator`` (pytrec_eval
underneath).

:class:`CachedEncoder` is the mteb encoder: it looks each text up in the embeddings that
:func:`qama_rs.data.embed.dataset_embeddings` cached (a text's embedding depends on the text only) and embeds any
text it does not find with the sentence-transformers model, so an evaluation never re-embeds a cached corpus.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qama_rs.data.beir import BeirDataset
from qama_rs.data.embed import dataset_embeddings, default_model_path, embed_texts
from qama_rs.eval.prefix import prefix_index
from qama_rs.index import parse_spec

__all__ = ["CachedEncoder", "MethodSearchIndex", "evaluate_mteb"]


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


class MethodSearchIndex:
    """``IndexEncoderSearchProtocol`` backend ranking with the factory index of ``spec`` at prefix ``dims``
    (``head``: a loaded QAMA model for a ``QAMA(...)`` spec).

    Documents are collected by ``add_documents``; the index is built on all of them (documents only) at the
    first ``search``. Scores returned to mteb are the index's own (``-distance`` for Hamming codes).
    Reranking (``top_ranked``) is not supported: a code index answers for the whole corpus.
    """

    def __init__(self, spec: str, dims: int | None = None, head: Any = None) -> None:
        if not isinstance(spec, str):
            raise TypeError(f"spec must be a factory spec string such as 'LloydMax2', got {type(spec).__name__}")
        parse_spec(spec)
        self.spec = spec
        self.dims = dims
        self.head = head
        self.idxs: list[str] = []
        self._chunks: list[np.ndarray] = []
        self._prefix = None
        #: The spec of the index that answered the last search (``Prefix{m},...`` etc.; kept by ``clear``).
        self.answered_spec: str | None = None

    def add_documents(self, embeddings, idxs: list[str]) -> None:
        chunk = _to_numpy(embeddings)
        if chunk.ndim != 2 or chunk.shape[0] != len(idxs):
            raise ValueError(f"got {chunk.shape} embeddings for {len(idxs)} document ids")
        self._chunks.append(chunk)
        self.idxs.extend(str(i) for i in idxs)
        self._prefix = None

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
        if self._prefix is None:
            self._prefix = prefix_index(self.spec, np.concatenate(self._chunks), self.dims, head=self.head)
            self.answered_spec = self._prefix.spec
        prefix = self._prefix
        scores, ids = prefix.index.search(
            prefix.queries(_to_numpy(embeddings)), min(top_k, len(self.idxs)), dims=prefix.engine_dims
        )
        return np.asarray(scores, dtype=np.float64).tolist(), np.asarray(ids, dtype=np.int64).tolist()

    def clear(self) -> None:
        self.idxs = []
        self._chunks = []
        self._prefix = None


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
    spec: str,
    dims: int | None = None,
    *,
    name: str | None = None,
    head: Any = None,
    model: str | None = None,
    split: str = "test",
    cache_dir=None,
) -> dict:
    """NDCG@10 of the factory ``spec`` on a local BEIR ``dataset`` computed by mteb's retrieval evaluator.

    Returns ``{"dataset", "method" (``name``, default the spec), "spec", "dims", "ndcg@10", "scores" (mteb's
    full score dict), "cache_misses"}``.
    """
    import mteb  # noqa: F401  (registers mteb's task/model machinery)
    from mteb.models.search_wrappers import SearchEncoderWrapper

    from qama_rs.eval.mteb_tasks import beir_task

    backend = MethodSearchIndex(spec, dims=dims, head=head)
    task = beir_task(dataset, split=split)
    encoder = CachedEncoder(model, [task.beir], cache_dir=cache_dir)
    searcher = SearchEncoderWrapper(encoder, index_backend=backend)
    scores = task.evaluate(searcher, split=split, encode_kwargs={"batch_size": 64})
    default = scores["default"]
    return {
        "dataset": task.beir.name,
        "method": name or spec,
        "spec": backend.answered_spec or spec,
        "dims": dims if dims is not None else encoder.mteb_model_meta.embed_dim,
        "ndcg@10": float(default["ndcg_at_10"]),
        "scores": dict(default),
        "cache_misses": encoder.cache_misses,
    }
