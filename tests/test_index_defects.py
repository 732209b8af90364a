"""Reproducers of defects that lived in the seams between the two 0.1 index stacks; each test failed on
qama-rs 0.1 (the docstring says how) and guards the fix."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import qama_rs
from qama_rs import Index, index_factory


@pytest.fixture(scope="module")
def docs():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 48)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def built(spec: str, x: np.ndarray) -> Index:
    index = index_factory(x.shape[1], spec)
    if not index.is_trained:
        index.train(x)
    index.add(x)
    return index


@pytest.mark.parametrize("spec", ["LloydMax2", "pca_nibble_scaled(budget_bytes=16)", "Thermo1", "Flat"])
def test_an_add_appends_in_place(spec, docs):
    """0.1 kept a second, blocked copy of the codes for byte-table codecs, dropped on every add: the first
    search after adding one vector to 200k rebuilt it (24.7 ms instead of 2.4 ms). Now rows are stored in
    the kernel's layout and an add writes only the new rows: the arrays holding the old rows stay."""
    index = built(spec, docs)
    index.search(docs[:1], 5)
    store = index._stores[0]
    tail, before = store._tail, store.list_rows(0)[0]
    index.add(docs[:1])
    assert store._tail is tail, "the stored rows were reallocated by a one-row add"
    assert np.array_equal(store.list_rows(0)[0][:2000], before)
    _, i = index.search(docs[:1], 2)
    assert set(i[0]) == {0, 2000}


@pytest.mark.parametrize("spec", ["LloydMax2", "Binary", "Thermo1", "Flat16", "pca_nibble_scaled(budget_bytes=16)"])
def test_a_mapped_index_searches_its_file_in_place(tmp_path, spec, docs):
    """0.1 mapped only some codecs' rows: byte-table codecs built a private blocked copy at the first search
    and ``Flat16`` widened to float32 in RAM (1,545 B/vector for a stated 768)."""
    path = tmp_path / "i.qidx"
    built(spec, docs).save(path)
    mapped = Index.load(path, mmap=True)
    mapped.search(docs[:3], 5)
    base = mapped._stores[0]._base
    assert not base.flags.writeable and not base.flags.owndata and base.base is not None
    assert mapped._stores[0]._tail.nbytes == 0
    assert base.nbytes <= mapped.bytes_per_vector * (len(mapped) + 32)


def test_named_adds_do_not_rescan_the_stored_names(monkeypatch, docs):
    """0.1 rebuilt a set of every name on each named add (4.9 ms per add at 100k names) and sorted every id
    on each ``names_of`` call (4.6 ms at 200k)."""
    index = index_factory(48, "Sign")
    index.add(docs[:500], ids=[f"d{i}" for i in range(500)])
    index.add(docs[500:501], ids=["d500"])  # builds the name lookup once
    lookup = index._ids._name_slot
    monkeypatch.setattr(np, "argsort", lambda *a, **k: pytest.fail("names_of or add sorted the ids"))
    for i in range(501, 700):
        index.add(docs[i % 2000 : i % 2000 + 1], ids=[f"d{i}"])
    _, found = index.search(docs[600:601], 1)
    assert index.names_of(found).tolist() == [["d600"]]
    assert index._ids._name_slot is lookup and len(lookup) == 700  # updated in place, never rebuilt


def test_ids_and_names_messages():
    """0.1: ``OverflowError`` for default ids past 2^63-1; ``add(empty, ids=[])`` refused as 'dtype float64';
    ``np.array(["a", "b"])`` refused as dtype ``<U1``; an empty name accepted and then ending ``qama search``'s
    output early."""
    index = index_factory(4, "Flat")
    index.add(np.zeros((0, 4), np.float32), ids=[])  # fine: nothing to add
    index.add(np.eye(4, dtype=np.float32)[:2], ids=np.array(["a", "b"]))
    assert index.names == ["a", "b"]
    with pytest.raises(qama_rs.QamaError, match="empty string"):
        index.add(np.eye(4, dtype=np.float32)[:1], ids=[""])
    big = index_factory(4, "Flat")
    big.add(np.eye(4, dtype=np.float32)[:1], ids=[2**63 - 1])
    with pytest.raises(qama_rs.QamaError, match="int64 range"):
        big.add(np.eye(4, dtype=np.float32)[:1])


def test_spec_errors_name_the_stage_once():
    """0.1 doubled the prefix: "spec stage 'LloydMax0': spec stage 'LloydMax0': ..."."""
    for spec in ("LloydMax0", "pca_nibble_scaled(budget_bytes=0)", "Adaptive(nope=1)"):
        with pytest.raises(qama_rs.QamaError) as err:
            index_factory(32, spec)
        assert str(err.value).count("spec stage") == 1, str(err.value)


def test_saving_into_a_missing_folder_names_the_folder(tmp_path, docs):
    """0.1 named its temporary file ('.x.qidx.abc.tmp: no such file')."""
    with pytest.raises(qama_rs.QamaError, match=f"folder {tmp_path / 'nope'} does not exist"):
        built("Sign", docs).save(tmp_path / "nope" / "x.qidx")


def test_a_save_killed_midway_leaves_nothing_the_next_save_keeps(tmp_path, docs):
    """0.1 left the hidden temporary file of a killed save (84 MB) forever."""
    path = tmp_path / "i.qidx"
    script = textwrap.dedent(
        f"""
        import os, numpy as np, qama_rs
        from qama_rs.engine import files
        x = np.random.default_rng(0).normal(size=(20000, 48)).astype(np.float32)
        index = qama_rs.index_factory(48, "Flat"); index.add(x)
        def stop(f):  # write some bytes, then die without cleanup
            f.write(b"x" * 1_000_000); f.flush(); os._exit(9)
        files.atomic_write({str(path)!r}, stop)
        """
    )
    subprocess.run([sys.executable, "-c", script], env={**os.environ}, check=False)
    stale = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(stale) == 1 and stale[0].stat().st_size == 1_000_000
    built("Sign", docs).save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.qidx"]


MEMORY_SCRIPT = """
import resource, sys, numpy as np, qama_rs
x = np.random.default_rng(0).normal(size=(150_000, 384)).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
index = qama_rs.index_factory(384, sys.argv[1])
index.train(x)
index.add(x)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(peak - before, x.nbytes)
"""


@pytest.mark.parametrize("spec", ["Thermo1", "LloydMax2"])
def test_training_and_adding_costs_at_most_the_input_again(spec):
    """0.1: train + add of 200k x 384 float32 raised the peak RSS by 3x (Thermo1) to 6x
    (pca_nibble_scaled) the input's size. The bar: at most the input's size again."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, spec], capture_output=True, text=True, check=True,
        env={**os.environ, "RAYON_NUM_THREADS": "2"},
    )
    extra, size = (int(v) for v in out.stdout.split())
    assert extra <= size, f"{spec}: {extra / 2**20:.0f} MiB above a {size / 2**20:.0f} MiB input"


_FORKED: list[Index] = []


def _child_search(rows: int) -> np.ndarray:
    return _FORKED[0].search(_FORKED[0]._transform(np.eye(48, dtype=np.float32)[:rows]), 5)[1]


def test_a_forked_child_searches(docs):
    """0.1 hung forever in a forked child whose parent had searched once (rayon's global pool)."""
    import multiprocessing as mp

    _FORKED[:] = [built("LloydMax2", docs)]
    want = _child_search(4)  # the parent searches first
    with mp.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_child_search, (4,)).get(timeout=60)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("spec, key", [("Hadamard(2),LloydMax2", "signs"), ("Orthogonal(3),LloydMax2", "matrix")])
def test_a_corrupt_stored_rotation_is_refused(spec, key):
    """A rotation read back from a file is checked (signs of +-1, an orthonormal matrix of the right shape),
    not trusted: a corrupt one would score every query wrongly without a word."""
    x = np.random.default_rng(0).normal(size=(300, 40)).astype(np.float32)
    index = index_factory(40, spec)
    index.train(x)
    rotation = index._pipe.transforms[0]
    meta, arrays = rotation.state()
    rotation.restore(meta, arrays)  # the saved state itself loads
    for bad in (arrays[key] * 2, arrays[key][:-1]):
        with pytest.raises(qama_rs.QamaError, match=f"corrupt saved state.*{key}"):
            rotation.restore(meta, {**arrays, key: bad.astype(arrays[key].dtype)})
