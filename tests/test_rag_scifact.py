"""Quality through each framework's retriever on scifact: NDCG@10 equals ``qama eval`` of the same spec (±0.001),
and a metadata filter matching 1 % of the corpus returns k documents, all matching.

Marked slow: they read scifact's cached embeddings (the bundled all-MiniLM-L6-v2; minutes to build on first use).
The stores are given an embedding function that looks each text up in those embeddings, so the retrievers see
exactly the vectors ``qama eval`` scores.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("pytrec_eval")

from qama_rs.data.beir import data_root, load_beir  # noqa: E402
from qama_rs.data.embed import dataset_embeddings  # noqa: E402
from qama_rs.eval.metrics import ndcg_at_10  # noqa: E402
from qama_rs.eval.runner import evaluate  # noqa: E402

K = 100  # deep enough that the top 10 never depends on where the list is cut


@pytest.fixture(scope="module")
def scifact():
    if not (data_root() / "beir" / "scifact").is_dir():
        pytest.fail(
            f"shared dataset scifact not found under {data_root()} (CI needs ../shared beside the repo)"
        )
    data = load_beir("scifact")
    emb = dataset_embeddings(data, progress=False)
    lookup = {}
    for text, vector in zip(data.doc_texts, emb.docs, strict=True):
        lookup.setdefault(text, vector)
    for text, vector in zip(data.query_texts, emb.queries, strict=True):
        lookup[text] = vector
    return data, emb, lookup


def _eval(data, emb, spec: str) -> float:
    return evaluate(data, spec, embeddings=emb, n_resamples=10, keep_per_query=False)["ndcg@10"]


def _bucket_metadata(data):
    return [{"doc": doc_id, "bucket": i % 100} for i, doc_id in enumerate(data.doc_ids)]


def _langchain_store(scifact, spec):
    from langchain_core.embeddings import Embeddings

    from qama_rs.integrations.langchain import QamaVectorStore

    data, _, lookup = scifact

    class Cached(Embeddings):
        def embed_documents(self, texts):
            return [lookup[t].tolist() for t in texts]

        def embed_query(self, text):
            return lookup[text].tolist()

    return QamaVectorStore.from_texts(
        data.doc_texts, Cached(), _bucket_metadata(data), ids=list(data.doc_ids), spec=spec
    )


@pytest.mark.parametrize("spec", ["LloydMax2", "pca_nibble_scaled(budget_bytes=48)"])
def test_langchain_retriever_ndcg_equals_qama_eval(scifact, spec):
    data, emb, _ = scifact
    store = _langchain_store(scifact, spec)
    retriever = store.as_retriever(search_kwargs={"k": K})
    # The retriever returns documents in rank order (no scores): the run scores them by rank.
    run = {
        qid: {doc.id: float(K - rank) for rank, doc in enumerate(retriever.invoke(text))}
        for qid, text in zip(data.query_ids, data.query_texts, strict=True)
    }
    assert store.collection.active_spec == spec and store.collection.trained_on == data.n_docs
    assert ndcg_at_10(data.qrels, run)[0] == pytest.approx(_eval(data, emb, spec), abs=0.001)


def test_langchain_retriever_one_percent_filter_returns_k_matching(scifact):
    data, _, _ = scifact
    store = _langchain_store(scifact, "LloydMax2")
    one_percent = store.as_retriever(search_kwargs={"k": 10, "filter": {"bucket": 7}})
    matching = {doc_id for i, doc_id in enumerate(data.doc_ids) if i % 100 == 7}
    assert 50 <= len(matching) <= 53
    for text in data.query_texts[:20]:
        docs = one_percent.invoke(text)
        assert len(docs) == 10 and all(d.id in matching and d.metadata["bucket"] == 7 for d in docs)


def _llamaindex(scifact, spec):
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.schema import TextNode

    from qama_rs.integrations.llamaindex import QamaVectorStore

    data, _, lookup = scifact

    class Cached(BaseEmbedding):
        def _get_query_embedding(self, query):
            return lookup[query].tolist()

        async def _aget_query_embedding(self, query):
            return lookup[query].tolist()

        def _get_text_embedding(self, text):
            return lookup[text].tolist()

    nodes = [
        TextNode(text=text, id_=doc_id, metadata=meta, excluded_embed_metadata_keys=list(meta))
        for doc_id, text, meta in zip(data.doc_ids, data.doc_texts, _bucket_metadata(data), strict=True)
    ]
    storage = StorageContext.from_defaults(vector_store=QamaVectorStore(spec=spec))
    return VectorStoreIndex(nodes, storage_context=storage, embed_model=Cached()), storage.vector_store


@pytest.mark.parametrize("spec", ["Thermo1", "LloydMax2"])
def test_llamaindex_retriever_ndcg_equals_qama_eval(scifact, spec):
    data, emb, _ = scifact
    index, store = _llamaindex(scifact, spec)
    retriever = index.as_retriever(similarity_top_k=K)
    # NodeWithScore carries the index's score: ties are broken as `qama eval`'s run breaks them.
    run = {
        qid: {hit.node.node_id: float(hit.score) for hit in retriever.retrieve(text)}
        for qid, text in zip(data.query_ids, data.query_texts, strict=True)
    }
    assert store.client.trained_on == data.n_docs  # inserted in batches, fitted once on all of them
    assert ndcg_at_10(data.qrels, run)[0] == pytest.approx(_eval(data, emb, spec), abs=0.001)


def test_llamaindex_retriever_one_percent_filter_returns_k_matching(scifact):
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

    data, _, _ = scifact
    index, _ = _llamaindex(scifact, "Thermo1")
    one_percent = index.as_retriever(
        similarity_top_k=10, filters=MetadataFilters(filters=[MetadataFilter(key="bucket", value=7)])
    )
    for text in data.query_texts[:20]:
        hits = one_percent.retrieve(text)
        assert len(hits) == 10 and all(h.node.metadata["bucket"] == 7 for h in hits)
        assert np.all(np.diff([h.score for h in hits]) <= 0)


def test_sentence_transformer_adapters_embed_like_the_bundled_model():
    from qama_rs.data.embed import embed_texts
    from qama_rs.integrations.langchain import SentenceTransformerEmbeddings
    from qama_rs.integrations.llamaindex import SentenceTransformerEmbedding

    texts = ["Salt reduction lowers blood pressure.", "Statins lower LDL cholesterol."]
    ref = embed_texts(texts, progress=False)
    lc = SentenceTransformerEmbeddings()
    np.testing.assert_allclose(lc.embed_documents(texts), ref, atol=1e-6)
    np.testing.assert_allclose(lc.embed_query(texts[1]), ref[1], atol=1e-6)
    li = SentenceTransformerEmbedding()
    np.testing.assert_allclose(li.get_text_embedding_batch(texts), ref, atol=1e-6)
    np.testing.assert_allclose(li.get_query_embedding(texts[0]), ref[0], atol=1e-6)
