"""What a factory index holds: faiss-shaped results with padding (an empty index included), integer ids
given at ``add`` and ``remove`` by id, string names (kept by ``save`` and a mapped load), and searches
running concurrently with adds, each answer that of some prefix of the adds."""

from __future__ import annotations

import numpy as np
import pytest

from _factory_helpers import DIMS, built, sample_data
from qama_rs import Index, QamaError
from qama_rs.index import index_factory


@pytest.fixture(scope="module")
def data():
    return sample_data()


# ----------------------------------------------------------------------------------- contents and ids


def test_faiss_shapes_padding_and_empty_index(data):
    docs, queries = data
    for spec in ("Flat", "Thermo2", "LloydMax2", "Sign,Rescore(LloydMax2,4)"):
        index = index_factory(DIMS, spec)
        if not index.is_trained:
            index.train(docs)
        D, labels = index.search(queries, 5)
        assert D.shape == labels.shape == (9, 5) and (labels == -1).all() and np.isneginf(D).all()
        index.add(docs[:6])
        D, labels = index.search(queries, 10)
        assert D.shape == (9, 10)
        # Every stored vector comes back (a rescoring depth k' = 4 below k rises to k), then the padding.
        assert (labels[:, :6] >= 0).all() and (labels[:, 6:] == -1).all() and np.isneginf(D[:, 6:]).all()
        assert (np.sort(labels[:, :6], axis=1) == np.arange(6)).all()
        D, labels = index.search(queries[:0], 3)
        assert D.shape == labels.shape == (0, 3)


def test_add_with_ids_remove_and_names(data):
    docs, queries = data
    index = index_factory(DIMS, "LloydMax2")
    index.train(docs)
    ids = np.arange(1000, 1600, dtype=np.int64)[::-1].copy()
    index.add(docs, ids=ids)
    D, labels = index.search(queries, 10)
    reference = built("LloydMax2", docs)
    D_ref, rows = reference.search(queries, 10)
    np.testing.assert_array_equal(labels, ids[rows])
    removed = index.remove(labels[:, 0])
    assert removed == len(set(labels[:, 0].tolist())) and len(index) == 600 - removed
    assert index.remove([123456]) == 0
    D2, labels2 = index.search(queries, 10)
    assert not np.isin(labels2, labels[:, 0]).any()
    keep = ~np.isin(ids, labels[:, 0])
    fresh = index_factory(DIMS, "LloydMax2")
    fresh.train(docs)  # same training data: same codes
    fresh.add(docs[keep], ids=ids[keep])
    np.testing.assert_array_equal(fresh.search(queries, 10)[1], labels2)
    with pytest.raises(QamaError, match="already in the index"):
        index.add(docs[:1], ids=[int(ids[keep][0])])
    with pytest.raises(QamaError, match="duplicates"):
        index.add(docs[:2], ids=[7, 7])
    # Default ids continue after the largest so far.
    index.add(docs[:1])
    assert index.ids[-1] == 1600

    named = index_factory(DIMS, "Thermo2")
    named.train(docs)
    names = [f"doc-{i}" for i in range(600)]
    named.add(docs, ids=names)
    D, labels = named.search(queries[:2], 3)
    assert named.names_of(labels).tolist() == [[names[i] for i in row] for row in labels]
    assert named.remove(["doc-5", "doc-6"]) == 2 and "doc-5" not in named.names
    with pytest.raises(QamaError, match="appears twice"):
        named.add(docs[:1], ids=["doc-7"])
    with pytest.raises(QamaError, match="string id per row"):
        named.add(docs[:1])
    padded = named.names_of(np.array([[-1, int(named.ids[0])]]))
    assert padded.tolist() == [["", named.names[0]]]


def test_names_survive_save_and_mapped_load(data, tmp_path):
    docs, queries = data
    index = index_factory(DIMS, "Binary")
    index.train(docs)
    names = [f"d{i}-ü" for i in range(600)]
    index.add(docs, ids=names)
    index.metadata = {"model": None, "source": "test"}
    index.save(tmp_path / "n.qidx")
    loaded = Index.load(tmp_path / "n.qidx", mmap=True)
    assert loaded.names == names and loaded.metadata == {"model": None, "source": "test"}
    np.testing.assert_array_equal(loaded.names_of(loaded.search(queries, 4)[1]), index.names_of(index.search(queries, 4)[1]))


def test_concurrent_searches_and_adds_agree_with_a_serial_run(data):
    import threading

    docs, queries = data
    index = index_factory(DIMS, "LloydMax2")
    index.train(docs)
    index.add(docs[:300])
    before = index.search(queries, 10)
    results, errors = [], []

    def searcher():
        try:
            for _ in range(20):
                results.append(index.search(queries, 10))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=searcher) for _ in range(8)]
    for t in threads:
        t.start()
    for start in range(300, 600, 50):
        index.add(docs[start : start + 50])
    for t in threads:
        t.join()
    after = index.search(queries, 10)
    assert not errors
    serial = {before[1].tobytes(): before, after[1].tobytes(): after}
    # Every concurrent answer is the answer of some prefix of the adds, computed serially.
    for n in range(350, 600, 50):
        ref = index_factory(DIMS, "LloydMax2")
        ref.train(docs)  # the same training data as the shared index
        ref.add(docs[:n])
        r = ref.search(queries, 10)
        serial[r[1].tobytes()] = r
    for D, labels in results:
        assert labels.tobytes() in serial
        np.testing.assert_array_equal(D, serial[labels.tobytes()][0])
