"""The collection both vector stores share: when codecs are fitted, the filter language, persistence (snapshot +
replayed SQLite rows) and crash safety (a child process SIGKILLed while it adds and saves)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import qama_rs
from qama_rs import QamaError, QamaTypeError
from qama_rs.integrations.collection import Collection
from qama_rs.integrations.docstore import DocStore, compile_filter


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _add(c: Collection, x: np.ndarray, start: int = 0, metas=None) -> list[str]:
    n = len(x)
    return c.add(x, [f"t{start + i}" for i in range(n)], metas, [f"d{start + i}" for i in range(n)])


# ------------------------------------------------------------------------------------------------- fitting


def test_exact_below_min_train_then_fitted_on_everything_at_the_first_search():
    x = _unit(700, 24)
    c = Collection("LloydMax2", min_train=100)
    for start in range(0, 700, 50):  # batches, as LlamaIndex inserts them
        _add(c, x[start : start + 50], start)
    assert c.active_spec == "Flat" and c.trained_on == 0  # 700 < 8 * 100: no add has fitted
    hits = c.search(x[3], 5)[0]
    assert c.active_spec == "LloydMax2" and c.trained_on == 700
    # Same codec, same scores as an index fitted directly on the 700 vectors (what `qama eval` does).
    ref = qama_rs.index_factory(24, "LloydMax2")
    ref.train(x)
    ref.add(x)
    D, I = ref.search(x[3:4], 5)  # noqa: E741 - faiss's names
    assert [h.row.doc_id for h in hits] == [f"d{i}" for i in I[0]]
    np.testing.assert_allclose([h.score for h in hits], D[0], rtol=1e-6)


def test_refits_when_the_store_doubles_and_stops_at_max_train():
    x = _unit(900, 16, seed=1)
    c = Collection("Thermo1", min_train=100, max_train=400)
    _add(c, x[:150])
    c.search(x[0], 1)
    assert c.trained_on == 150
    _add(c, x[150:299], 150)
    c.search(x[0], 1)
    assert c.trained_on == 150  # 299 < 2 * 150
    _add(c, x[299:300], 299)
    c.search(x[0], 1)
    assert c.trained_on == 300
    _add(c, x[300:900], 300)
    c.search(x[0], 1)
    assert c.trained_on == 400 and len(c) == 900 and c.index.ntotal == 900  # a sample of max_train
    _add(c, _unit(1000, 16, seed=2), 900)
    c.search(x[0], 1)
    assert c.trained_on == 400  # no refit past max_train


def test_an_add_fits_only_after_eightfold_growth_and_learning_free_codecs_start_at_once():
    x = _unit(900, 8, seed=3)
    c = Collection("Thermo1", min_train=100)
    _add(c, x[:799])
    assert c.active_spec == "Flat"
    _add(c, x[799:800], 799)
    assert c.active_spec == "Thermo1" and c.trained_on == 800
    flat = Collection("Flat")
    _add(flat, x[:1])
    assert flat.active_spec == "Flat" and flat.index.ntotal == 1
    sign = Collection("Sign", min_train=100)
    _add(sign, x[:3])
    assert sign.active_spec == "Sign"


def test_refit_on_demand_and_update_replaces_the_document():
    x = _unit(60, 8, seed=4)
    c = Collection("LloydMax2")
    _add(c, x)
    c.refit()
    assert c.active_spec == "LloydMax2" and c.trained_on == 60
    c.add(x[:1] * -1, ["changed"], [{"v": 2}], ["d5"])
    assert len(c) == 60 and c.index.ntotal == 60
    assert c.get(["d5"])[0].text == "changed" and c.get(["d5"])[0].metadata == {"v": 2}
    assert c.delete(["d5", "nope"]) == 1 and len(c) == 59 and c.index.ntotal == 59


def test_a_failed_batch_stores_nothing():
    c = Collection("Flat")
    _add(c, _unit(3, 4))
    with pytest.raises(QamaError, match="non-finite"):
        c.add(np.array([[0.0, 1, 0, 0], [np.nan, 0, 0, 0]]), ["a", "b"], None, ["x", "y"])
    with pytest.raises(QamaError, match="5 dimensions; this store holds 4"):
        c.add(np.ones((1, 5)), ["a"], None, ["x"])
    db = DocStore(None)
    with pytest.raises(ValueError):  # the vectors run out mid-batch: the rows inserted so far are rolled back
        db.upsert(["a", "b", "c"], ["a", "b", "c"], ["{}"] * 3, np.ones((2, 4), dtype=np.float32))
    assert db.count() == 0 and len(c) == 3 and c.index.ntotal == 3


# -------------------------------------------------------------------------------------------------- filters


def test_filter_semantics_and_errors():
    x = _unit(8, 4)
    metas = [
        {"n": 1},
        {"n": 1.0},
        {"n": "1"},
        {"n": True},
        {"n": None},
        {},
        {"n": [1, 2]},
        {"n": "a.b", "a.b": 7},
    ]
    c = Collection("Flat")
    _add(c, x, metas=metas)

    def keys(flt):
        return [r.doc_id for r in c.match(flt)]

    assert keys({"n": 1}) == ["d0", "d1"]  # numbers by value, not "1" or true
    assert keys({"n": True}) == ["d3"]
    assert keys({"n": None}) == ["d4", "d5"]  # null or absent
    assert keys({"n": {"$exists": True}}) == ["d0", "d1", "d2", "d3", "d4", "d6", "d7"]
    assert keys({"n": {"$ne": 1}}) == ["d2", "d3", "d4", "d5", "d6", "d7"]
    assert keys({"n": {"$nin": [1, "1"]}}) == ["d3", "d4", "d5", "d6", "d7"]
    assert keys({"n": {"$contains": 2}}) == ["d6"]
    assert keys({"n": {"$contains": "."}}) == ["d7"]
    assert keys({"a.b": {"$gt": 6}}) == ["d7"]  # dotted keys are keys, not paths
    assert keys({"n": {"$gte": 0.5, "$lt": 2}}) == ["d0", "d1"]
    assert keys({"n": {"$empty": True}}) == ["d4", "d5"]
    assert keys({}) == [f"d{i}" for i in range(8)]
    for bad, err in [
        ({"n": {"$near": 1}}, QamaError),
        ({"$xor": []}, QamaError),
        ({"$and": []}, QamaError),
        ({"n": {"$gt": None}}, QamaTypeError),
        ({"n": {"$in": 3}}, QamaTypeError),
        ({"n": {"$eq": float("nan")}}, QamaError),
        ({'q"': 1}, QamaError),
        ([("n", 1)], QamaTypeError),
    ]:
        with pytest.raises(err, match="filter"):
            compile_filter(bad)


# ---------------------------------------------------------------------------------------------- persistence


def test_load_replays_rows_after_the_snapshot_and_rebuilds_a_foreign_or_corrupt_one(tmp_path):
    x = _unit(400, 16, seed=6)
    c = Collection("LloydMax2", min_train=100)
    _add(c, x[:200], metas=[{"i": i} for i in range(200)])
    c.save(tmp_path / "a")  # fits (200 >= 100) and snapshots
    _add(c, x[200:300], 200)
    c.delete([f"d{i}" for i in range(0, 50)])
    loaded = Collection.load(tmp_path / "a")
    assert len(loaded) == 250 and loaded.index.ntotal == 250 and loaded.trained_on == 200
    assert sorted(loaded.index.ids.tolist()) == sorted(r.key for r in loaded.match())
    q = x[120:125]
    assert [[h.row.doc_id for h in row] for row in loaded.search(q, 7)] == [
        [h.row.doc_id for h in row] for row in c.search(q, 7)
    ]
    loaded.close()

    # A snapshot from another store in the folder is not used: the documents rebuild the index.
    other = Collection("LloydMax2", min_train=100)
    _add(other, x[:150])
    other.save(tmp_path / "b")
    os.replace(tmp_path / "b" / "index.qidx", tmp_path / "a" / "index.qidx")
    with pytest.warns(UserWarning, match="another document store"):
        rebuilt = Collection.load(tmp_path / "a")
    assert len(rebuilt) == 250 and rebuilt.index.ntotal == 250 and rebuilt.trained_on == 250
    rebuilt.close()
    (tmp_path / "a" / "index.qidx").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="not used"):
        assert Collection.load(tmp_path / "a").index.ntotal == 250
    with pytest.raises(QamaError, match="no such document store"):
        Collection.load(tmp_path / "missing")
    with pytest.raises(QamaError, match="plain file name"):
        c.save(tmp_path, "../x")


_CHILD = r"""
import sys
import numpy as np
from qama_rs.integrations.collection import Collection

folder = sys.argv[1]

def batch(b):
    x = np.random.default_rng(b).standard_normal((5, 16)).astype(np.float32)
    ids = [f"b{b}-{j}" for j in range(5)]
    return x, [f"text {i}" for i in ids], [{"batch": b, "j": j} for j in range(5)], ids

c = Collection("LloydMax2", min_train=40)
c.add(*batch(0))
c.save(folder)
print(0, flush=True)
b = 1
while True:
    c.add(*batch(b))
    print(b, flush=True)
    if b % 7 == 0:
        c.save(folder)  # fits when due, then snapshots: the kill may land inside it too
    b += 1
"""


@pytest.mark.parametrize("acks", [9, 23, 41])
def test_kill_mid_add_keeps_every_added_document_exactly_once(tmp_path, acks):
    folder = tmp_path / "kb"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(folder)], stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    acked = -1
    try:
        while acked < acks:
            line = child.stdout.readline()
            assert line, "the child exited before it was killed"
            acked = int(line)
        time.sleep(0.004 * (acks % 7))  # land somewhere inside a later add (or save)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
        # The child may have run ahead of what was read: every line it printed is an acknowledged batch.
        acked = max([acked, *(int(line) for line in child.stdout.read().split())])
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    c = Collection.load(folder)
    rows = c.match()
    ids = [r.doc_id for r in rows]
    assert len(ids) == len(set(ids))  # nothing twice
    batches = {}
    for r in rows:
        batches.setdefault(r.metadata["batch"], []).append(r)
    assert set(range(acked + 1)) <= set(batches)  # every acknowledged batch is there
    assert max(batches) <= acked + 1 and sorted(batches) == list(range(max(batches) + 1))
    for b, found in batches.items():  # each one whole, with its text, metadata and vector
        assert sorted(r.metadata["j"] for r in found) == list(range(5)), b
        x = np.random.default_rng(b).standard_normal((5, 16)).astype(np.float32)
        for r in found:
            assert r.text == f"text {r.doc_id}"
            np.testing.assert_array_equal(c.vectors_of([r.key])[0], x[r.metadata["j"]])
    assert sorted(c.index.ids.tolist()) == sorted(r.key for r in rows)  # the index holds exactly them
    # And the store works on: search, add, save, load.
    hits = c.search(np.random.default_rng(3).standard_normal(16).astype(np.float32), 5)[0]
    assert len(hits) == 5 and {h.row.doc_id for h in hits} <= set(ids)
    c.add(np.ones((1, 16), dtype=np.float32), ["late"], None, ["late"])
    c.save(folder)
    assert len(Collection.load(folder)) == len(rows) + 1


def test_an_unknown_codec_stores_nothing_and_clear_starts_afresh():
    c = Collection("Thermo9")
    with pytest.raises(QamaError, match="Thermo9"):
        _add(c, _unit(3, 4))
    assert len(c) == 0 and c.dims is None and c.index is None
    c = Collection("LloydMax2", min_train=10)
    _add(c, _unit(40, 4))
    c.refit()
    assert c.trained_on == 40
    c.clear()
    assert len(c) == 0 and c.active_spec == "Flat" and c.trained_on == 0 and c.search(_unit(1, 4), 3) == [[]]
    _add(c, _unit(12, 4, seed=9))
    assert c.search(_unit(1, 4), 3)[0][0].row.doc_id.startswith("d") and c.trained_on == 12


def test_the_core_install_imports_no_rag_framework():
    code = (
        "import sys, qama_rs, qama_rs.integrations, qama_rs.integrations.collection\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'llama_index'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
