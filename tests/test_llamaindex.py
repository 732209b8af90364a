"""The LlamaIndex vector store: under ``VectorStoreIndex`` and ``StorageContext`` (build, retrieve with
``MetadataFilters``, delete a source document, persist and load), MMR queries, and every filter operator checked
against LlamaIndex's own in-memory filter function on generated metadata."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.embeddings import BaseEmbedding  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn  # noqa: E402

from qama_rs import QamaError  # noqa: E402
from qama_rs.integrations.llamaindex import QamaVectorStore  # noqa: E402

SPECS = ("Thermo1", "LloydMax2", "pca_nibble_scaled(budget_bytes=48)")


class TableEmbedding(BaseEmbedding):
    """``"doc <i>"`` (or any text starting with it) -> row ``i`` of a fixed unit-length matrix."""

    vectors: list = []

    def _lookup(self, text: str) -> list[float]:
        return list(self.vectors[int(text.split()[1])])

    def _get_query_embedding(self, query):
        return self._lookup(query)

    async def _aget_query_embedding(self, query):
        return self._lookup(query)

    def _get_text_embedding(self, text):
        return self._lookup(text)


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _documents(n: int):
    return [
        Document(
            text=f"doc {i}",
            doc_id=f"src{i}",
            metadata={"i": i, "group": "abcd"[i % 4], "year": 2000 + i % 25},
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("spec", SPECS)
def test_vector_store_index_retrieves_with_filters_and_persists(spec, tmp_path):
    n = 300
    vectors = _unit(n, 32)
    embed = TableEmbedding(vectors=vectors.tolist())
    store = QamaVectorStore(spec=spec, min_train=100)
    storage = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex.from_documents(_documents(n), storage_context=storage, embed_model=embed)
    assert len(store.client) == n
    retriever = index.as_retriever(similarity_top_k=5)
    got = retriever.retrieve("doc 17")
    assert len(got) == 5 and got[0].node.get_content() == "doc 17" and got[0].node.ref_doc_id == "src17"
    assert store.client.active_spec == spec  # fitted at the first search, on all 300 nodes
    assert store.client.trained_on == n

    rare = MetadataFilters(
        filters=[
            MetadataFilter(key="group", value="b"),
            MetadataFilter(key="year", value=2003, operator=FilterOperator.LTE),
        ]
    )
    matching = {i for i in range(n) if i % 4 == 1 and 2000 + i % 25 <= 2003}
    hits = index.as_retriever(similarity_top_k=10, filters=rare).retrieve("doc 40")
    assert len(hits) == 10 and all(h.node.metadata["i"] in matching for h in hits)
    ranked = [h.node.metadata["i"] for h in index.as_retriever(similarity_top_k=n).retrieve("doc 40")]
    assert [h.node.metadata["i"] for h in hits] == [i for i in ranked if i in matching][:10]

    index.delete_ref_doc("src17")
    assert len(store.client) == n - 1
    assert "doc 17" not in [h.node.get_content() for h in retriever.retrieve("doc 17")]

    storage.persist(persist_dir=str(tmp_path / "kb"))
    assert (tmp_path / "kb" / "default__vector_store.sqlite").is_file()
    assert (tmp_path / "kb" / "default__vector_store.qidx").is_file()
    loaded = QamaVectorStore.from_persist_dir(str(tmp_path / "kb"))
    storage2 = StorageContext.from_defaults(vector_store=loaded, persist_dir=str(tmp_path / "kb"))
    from llama_index.core import load_index_from_storage

    index2 = load_index_from_storage(storage2, embed_model=embed)
    again = index2.as_retriever(similarity_top_k=10, filters=rare).retrieve("doc 40")
    assert [(h.node.node_id, h.score) for h in again] == [(h.node.node_id, h.score) for h in hits]
    assert loaded.client.active_spec == spec and len(loaded.client) == n - 1


def test_query_modes_ids_and_errors():
    vectors = _unit(120, 16, seed=1)
    nodes = [
        TextNode(text=f"doc {i}", id_=f"n{i}", embedding=vectors[i].tolist(), metadata={"i": i})
        for i in range(120)
    ]
    store = QamaVectorStore(spec="LloydMax2", min_train=50)
    assert store.add(nodes) == [f"n{i}" for i in range(120)]
    q = vectors[3].tolist()
    res = store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=4))
    assert (
        res.ids[0] == "n3"
        and len(res.nodes) == 4
        and res.similarities == sorted(res.similarities, reverse=True)
    )
    only = store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=4, node_ids=["n7", "n9", "n3"]))
    assert sorted(only.ids) == ["n3", "n7", "n9"]
    mmr = store.query(
        VectorStoreQuery(
            query_embedding=q, similarity_top_k=4, mode=VectorStoreQueryMode.MMR, mmr_threshold=0.5
        )
    )
    assert len(mmr.ids) == 4 and mmr.ids[0] == "n3"
    assert [n.node_id for n in store.get_nodes(node_ids=["n5", "n1"])] == ["n1", "n5"]
    store.delete_nodes(
        filters=MetadataFilters(filters=[MetadataFilter(key="i", value=10, operator=FilterOperator.LT)])
    )
    assert len(store.client) == 110
    with pytest.raises(QamaError, match="no embedding"):
        store.add([TextNode(text="x", id_="e")])
    with pytest.raises(QamaError, match="not supported"):
        store.query(VectorStoreQuery(query_embedding=q, mode=VectorStoreQueryMode.SVM))
    store.clear()
    assert len(store.client) == 0 and store.query(VectorStoreQuery(query_embedding=q)).ids == []


def _metadata(i: int, rng: np.random.Generator) -> dict:
    m: dict = {}
    if rng.random() < 0.85:
        m["n"] = int(rng.integers(0, 6)) if rng.random() < 0.9 else None
    if rng.random() < 0.85:
        m["s"] = str(rng.choice(["alpha", "Beta", "gamma", "", "alphabet"]))
    if rng.random() < 0.85:
        m["tags"] = [str(t) for t in rng.choice(["x", "y", "z"], size=rng.integers(0, 3), replace=False)]
    return m


def _filters():
    yield from (
        MetadataFilter(key="n", value=v, operator=op)
        for op in (
            FilterOperator.EQ,
            FilterOperator.NE,
            FilterOperator.GT,
            FilterOperator.GTE,
            FilterOperator.LT,
            FilterOperator.LTE,
        )
        for v in (0, 3, 2.5)
    )
    yield MetadataFilter(key="n", value=[1, 4], operator=FilterOperator.IN)
    yield MetadataFilter(key="n", value=[1, 4], operator=FilterOperator.NIN)
    yield MetadataFilter(key="s", value=["alpha", "gamma"], operator=FilterOperator.IN)
    yield MetadataFilter(key="s", value="alpha", operator=FilterOperator.TEXT_MATCH)
    yield MetadataFilter(key="s", value="BET", operator=FilterOperator.TEXT_MATCH_INSENSITIVE)
    yield MetadataFilter(key="s", value="gamma", operator=FilterOperator.GTE)
    yield MetadataFilter(key="tags", value="y", operator=FilterOperator.CONTAINS)
    yield MetadataFilter(key="tags", value=["x", "z"], operator=FilterOperator.ANY)
    yield MetadataFilter(key="tags", value=["x", "z"], operator=FilterOperator.ALL)
    for key in ("n", "s", "tags"):
        yield MetadataFilter(key=key, value=None, operator=FilterOperator.IS_EMPTY)


def test_every_filter_operator_agrees_with_llamaindex_in_memory_semantics():
    rng = np.random.default_rng(5)
    n = 400
    metas = [_metadata(i, rng) for i in range(n)]
    vectors = _unit(n, 8)
    nodes = [
        TextNode(text=f"t{i}", id_=f"n{i}", embedding=vectors[i].tolist(), metadata=metas[i])
        for i in range(n)
    ]
    store = QamaVectorStore(spec="Flat")
    store.add(nodes)
    singles = list(_filters())
    combos = [MetadataFilters(filters=[f]) for f in singles]
    for a, b in itertools.islice(itertools.combinations(singles, 2), 0, None, 7):
        for cond in (FilterCondition.AND, FilterCondition.OR, FilterCondition.NOT):
            combos.append(MetadataFilters(filters=[a, b], condition=cond))
    for filters in combos:
        reference = build_metadata_filter_fn(lambda i: metas[int(i[1:])], filters)
        expected = [f"n{i}" for i in range(n) if reference(f"n{i}")]
        got = [node.node_id for node in store.get_nodes(filters=filters)]
        assert got == expected, filters
        top = store.query(
            VectorStoreQuery(query_embedding=vectors[0].tolist(), similarity_top_k=5, filters=filters)
        )
        assert len(top.ids) == min(5, len(expected)) and set(top.ids) <= set(expected), filters
