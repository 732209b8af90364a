"""LangChain's own standard vector-store tests (``langchain-tests``, unmodified) for a Hamming, a float-query and a
byte-table spec, each with the default fitting policy (exact search below ``min_train``) and with ``min_train=2``
(the codec fitted on the handful of test documents); then what the standard suite does not cover: filters,
relevance scores, maximal marginal relevance, the retriever, save/load.

The async standard tests run under anyio's pytest plugin (``pytest.mark.anyio`` on the classes); the project's
pytest configuration sets no asyncio mode.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("langchain_core")
langchain_tests = pytest.importorskip("langchain_tests.integration_tests")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings  # noqa: E402

from qama_rs import QamaError, QamaTypeError  # noqa: E402
from qama_rs.integrations.langchain import QamaVectorStore  # noqa: E402

HAMMING, FLOAT_QUERY, BYTE_TABLE = "Thermo1", "LloydMax2", "pca_nibble_scaled(budget_bytes=48)"
SPECS = (HAMMING, FLOAT_QUERY, BYTE_TABLE)


@pytest.fixture
def anyio_backend():
    return "asyncio"


class _Standard(langchain_tests.VectorStoreIntegrationTests):
    spec: str
    min_train: int | None = None

    @pytest.fixture
    def vectorstore(self):
        kwargs = {} if self.min_train is None else {"min_train": self.min_train}
        store = QamaVectorStore(self.get_embeddings(), self.spec, **kwargs)
        try:
            yield store
        finally:
            store.collection.close()


def _standard(name: str, spec: str, min_train: int | None = None) -> type:
    """The standard tests over a store of ``spec`` (given ``min_train`` when not None), as the test class
    ``name``."""
    return pytest.mark.anyio(type(name, (_Standard,), {"spec": spec, "min_train": min_train}))


TestStandardHamming = _standard("TestStandardHamming", HAMMING)
TestStandardFloatQuery = _standard("TestStandardFloatQuery", FLOAT_QUERY)
TestStandardByteTable = _standard("TestStandardByteTable", BYTE_TABLE)
TestStandardHammingFitted = _standard("TestStandardHammingFitted", HAMMING, min_train=2)
TestStandardFloatQueryFitted = _standard("TestStandardFloatQueryFitted", FLOAT_QUERY, min_train=2)
TestStandardByteTableFitted = _standard("TestStandardByteTableFitted", BYTE_TABLE, min_train=2)


# ------------------------------------------------------------------------------------------- beyond the suite


class TableEmbeddings(Embeddings):
    """Texts ``"doc <i>"`` map to row ``i`` of a fixed matrix; any other text is embedded by a seeded hash."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def _one(self, text: str) -> list[float]:
        if text.startswith("doc "):
            return self.vectors[int(text.split()[1])].tolist()
        rng = np.random.default_rng(abs(hash(text)) % (2**32))
        v = rng.standard_normal(self.vectors.shape[1])
        return (v / np.linalg.norm(v)).tolist()

    def embed_documents(self, texts):
        return [self._one(t) for t in texts]

    def embed_query(self, text):
        return self._one(text)


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _corpus(n: int = 400, d: int = 32):
    vectors = _unit(n, d)
    texts = [f"doc {i}" for i in range(n)]
    metas = [
        {
            "i": i,
            "group": ["a", "b", "c", "d"][i % 4],
            "year": 2000 + i % 25,
            "tags": ["x"] if i % 10 == 0 else [],
        }
        for i in range(n)
    ]
    return vectors, texts, metas


@pytest.mark.parametrize("spec", SPECS)
def test_filtered_search_returns_k_matching_documents_and_the_exact_filtered_ranking(spec):
    vectors, texts, metas = _corpus()
    store = QamaVectorStore.from_texts(
        texts, TableEmbeddings(vectors), metas, ids=[f"id{i}" for i in range(400)], spec=spec, min_train=100
    )
    rare = {"$and": [{"group": "a"}, {"year": {"$lt": 2004}}]}  # 16 of 400
    matching = {i for i in range(400) if i % 4 == 0 and 2000 + i % 25 < 2004}
    assert len(matching) == 16
    for q in range(5):
        docs = store.similarity_search_by_vector(vectors[q * 7].tolist(), k=10, filter=rare)
        assert len(docs) == 10 and all(d.metadata["i"] in matching for d in docs)
        # The filtered top-10 is the top-10 of an index holding only the matching documents.
        unfiltered = [
            d.metadata["i"] for d in store.similarity_search_by_vector(vectors[q * 7].tolist(), k=400)
        ]
        assert [d.metadata["i"] for d in docs] == [i for i in unfiltered if i in matching][:10]
    # Asking for more than match: all of them, no padding.
    assert len(store.similarity_search("doc 3", k=50, filter=rare)) == 16
    # A callable filter is the same allowed set.
    docs = store.similarity_search("doc 8", k=10, filter=lambda d: d.metadata["i"] in matching)
    assert {d.metadata["i"] for d in docs} <= matching and len(docs) == 10


def test_filter_operators_through_the_store():
    vectors, texts, metas = _corpus(200)
    store = QamaVectorStore.from_texts(texts, TableEmbeddings(vectors), metas, spec=FLOAT_QUERY, min_train=50)

    def found(flt):
        return sorted(d.metadata["i"] for d in store.similarity_search("doc 0", k=200, filter=flt))

    assert found({"group": {"$in": ["b", "c"]}, "year": {"$gte": 2020}}) == [
        i for i in range(200) if i % 4 in (1, 2) and 2000 + i % 25 >= 2020
    ]
    assert found({"tags": {"$contains": "x"}}) == list(range(0, 200, 10))
    assert found({"$or": [{"i": 5}, {"i": {"$gt": 197}}]}) == [5, 198, 199]
    assert found({"$not": {"group": {"$ne": "d"}}}) == list(range(3, 200, 4))
    assert found({"missing": {"$exists": False}, "i": {"$lte": 2}}) == [0, 1, 2]
    assert found({"i": "5"}) == []  # JSON types: the string "5" is not the number 5


def test_relevance_scores_per_codec():
    vectors, texts, _ = _corpus(300)
    emb = TableEmbeddings(vectors)
    ham = QamaVectorStore.from_texts(texts, emb, spec=HAMMING, min_train=100)
    pairs = ham.similarity_search_with_score("doc 4", k=5)
    rel = ham.similarity_search_with_relevance_scores("doc 4", k=5)
    assert ham.collection.score_kind() == ("hamming", 32)  # Thermo1: one bit per dimension
    assert pairs[0][1] == 0.0 and rel[0][1] == 1.0  # the document's own code
    for (doc, score), (doc2, r) in zip(pairs, rel, strict=True):
        assert doc == doc2 and float(score).is_integer() and r == pytest.approx(1 + score / 32)
    flt = QamaVectorStore.from_texts(texts, emb, spec="Flat")
    (doc, score), *_ = flt.similarity_search_with_score("doc 4", k=3)
    assert score == pytest.approx(1.0, abs=1e-5)  # cosine of unit vectors
    fn = flt._select_relevance_score_fn()
    assert fn(1.0) == 1.0 and fn(-1.0) == 0.0 and fn(0.0) == 0.5
    above = flt.similarity_search_with_relevance_scores("doc 4", k=10, score_threshold=0.99)
    assert [d.page_content for d, _ in above] == ["doc 4"]


def test_mmr_and_retrievers():
    vectors, texts, metas = _corpus(200)
    base = vectors[0]
    near = base + 0.05 * _unit(5, 32, seed=3)  # five near-duplicates of doc 0
    all_vectors = np.vstack([vectors, near / np.linalg.norm(near, axis=1, keepdims=True)])
    texts = texts + [f"doc {200 + j}" for j in range(5)]
    metas = metas + [{"i": 200 + j, "group": "dup"} for j in range(5)]
    store = QamaVectorStore.from_texts(
        texts, TableEmbeddings(all_vectors), metas, spec=FLOAT_QUERY, min_train=50
    )
    plain = store.similarity_search("doc 0", k=4)
    assert sum(d.metadata["group"] == "dup" for d in plain) == 3  # doc 0 and three of its copies
    mmr = store.max_marginal_relevance_search("doc 0", k=4, fetch_k=20, lambda_mult=0.3)
    assert len(mmr) == 4 and mmr[0].metadata["i"] == 0
    assert sum(d.metadata["group"] == "dup" for d in mmr) <= 1  # diversity pushes the copies out
    mmr_f = store.max_marginal_relevance_search("doc 0", k=3, filter={"group": "b"})
    assert len(mmr_f) == 3 and all(d.metadata["group"] == "b" for d in mmr_f)

    retriever = store.as_retriever(search_kwargs={"k": 6, "filter": {"group": "c"}})
    got = retriever.invoke("doc 2")
    assert len(got) == 6 and all(d.metadata["group"] == "c" for d in got) and got[0].page_content == "doc 2"
    mmr_retriever = store.as_retriever(search_type="mmr", search_kwargs={"k": 3, "fetch_k": 10})
    assert len(mmr_retriever.invoke("doc 9")) == 3


def test_save_load_round_trip_and_the_folder_is_the_home(tmp_path):
    vectors, texts, metas = _corpus(150)
    emb = TableEmbeddings(vectors)
    store = QamaVectorStore.from_texts(texts[:120], emb, metas[:120], spec=HAMMING, min_train=50)
    store.similarity_search("doc 1", k=1)  # fits the codec (120 >= 50)
    assert store.collection.active_spec == HAMMING and store.collection.trained_on == 120
    before = store.similarity_search_with_score("doc 7", k=10)
    store.save_local(tmp_path / "kb")
    assert sorted(p.name for p in (tmp_path / "kb").iterdir()) == ["index.qidx", "index.sqlite"]
    # After save_local the folder is the store's home: later writes are committed there.
    store.add_texts(texts[120:], metas[120:], ids=[f"late{i}" for i in range(30)])
    store.delete([before[-1][0].id])
    loaded = QamaVectorStore.load_local(tmp_path / "kb", emb)
    assert len(loaded.collection) == 149 and loaded.collection.active_spec == HAMMING
    assert loaded.get_by_ids(["late0"]) == [Document(id="late0", page_content="doc 120", metadata=metas[120])]
    assert loaded.get_by_ids([before[-1][0].id]) == []
    assert loaded.similarity_search_with_score("doc 7", k=9) == store.similarity_search_with_score(
        "doc 7", k=9
    )


def test_default_spec_is_the_budget_choosers_pick():
    vectors, texts, _ = _corpus(300, d=32)
    store = QamaVectorStore.from_texts(texts, TableEmbeddings(vectors), budget_bytes=8, min_train=200)
    assert store.collection.active_spec == "Flat"  # not fitted before the first search
    store.similarity_search("doc 1", k=3)
    chosen = store.collection.active_spec
    assert chosen != "Flat" and store.collection.index.bytes_per_vector <= 8
    from qama_rs.quantizers.budget import choose_codec

    assert chosen == choose_codec(vectors, 8, n_queries=60, seed=0)[0]


def test_bad_input_names_the_argument():
    store = QamaVectorStore(DeterministicFakeEmbedding(size=6), HAMMING)
    store.add_texts(["a", "b"])
    with pytest.raises(QamaError, match="metadatas has 1 entries"):
        store.add_texts(["x", "y"], [{}])
    with pytest.raises(QamaTypeError, match=r"metadatas\[0\].*JSON"):
        store.add_texts(["x"], [{"when": object()}])
    with pytest.raises(QamaError, match="appears twice"):
        store.add_texts(["x", "y"], ids=["same", "same"])
    with pytest.raises(QamaError, match="unknown operator '\\$regex'"):
        store.similarity_search("a", k=1, filter={"t": {"$regex": "a"}})
    with pytest.raises(QamaTypeError, match=r"\$in"):
        store.similarity_search("a", k=1, filter={"t": ["a", "b"]})
    with pytest.raises(QamaTypeError, match="unexpected keyword"):
        store.similarity_search("a", k=1, fliter={"t": 1})
    with pytest.raises(QamaError, match="give ids"):
        store.delete()
    with pytest.raises(QamaError, match="5 dimensions; this store holds 6"):
        store.similarity_search_by_vector([0.0] * 5, k=1)
    with pytest.raises(QamaError, match="spec"):
        QamaVectorStore(DeterministicFakeEmbedding(size=6), "Thermo1,")
    assert len(store.collection) == 2  # nothing half-written by the failed adds
    assert not math.isnan(store.similarity_search_with_score("a", k=1)[0][1])
