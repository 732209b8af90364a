"""A bounded Hypothesis fuzz of index_factory / Index: random specs (valid and broken), dtypes, shapes,
NaN/inf, empty inputs, ids and k up to 2^31. The contract: every call either works (faiss shapes, sorted
scores, valid ids) or raises a QamaError (or MemoryError) with a message — never another exception, a
crash or a wrong-shaped answer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qama_rs import Index, QamaError, index_factory

CODEC_STAGES = ["Flat", "Flat16", "Sign", "Thermo1", "Thermo1.5", "Thermo2", "Hybrid", "Binary", "BinaryMedian",
                "LloydMax2", "LloydMax4", "LloydMaxEmp2", "Int8", "Quaternary", "CalFree2", "Gray2", "ThermoLloydMax2"]
TRANSFORMS = ["", "Hadamard,", "Orthogonal(1),", "Prefix8,", "Prefix200,"]
REFINES = ["", ",Rescore(LloydMax2,5)", ",RFlat(7)", ",Rescore(Int8,1)", ",RFlat(0)", ",Rescore(Nope,3)"]
GARBAGE = ["", ",", "Flat,", "(", "Flat)", "Rescore(LloydMax2,5)", "Thermo3", "LloydMax0", "Prefix0,Flat",
           "Flat,Flat", "Hadamard(x),Flat", "QAMA(),Flat", "Adaptive(high_dims=-1)", "Int8(bogus=1)", "é"]

specs = st.one_of(
    st.builds(lambda t, c, r: t + c + r, st.sampled_from(TRANSFORMS), st.sampled_from(CODEC_STAGES), st.sampled_from(REFINES)),
    st.sampled_from(GARBAGE),
    st.text(max_size=12),
)
dtypes = st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.uint8, np.bool_, np.complex64, object])
ks = st.one_of(st.integers(-3, 40), st.sampled_from([2**31 - 1, 2**31, 2**40, 2**63 - 1]), st.just(2.5), st.none())


def _array(rng, shape, dtype, poison):
    x = rng.standard_normal(shape).astype(np.float64)
    if poison and x.size and np.dtype(dtype).kind in "fc":
        x.flat[rng.integers(x.size)] = poison
    if dtype is object:
        return x.astype(object)
    return x.astype(dtype)


def _check_result(result, nq, k, ntotal):
    D, I = result  # noqa: E741 - faiss names
    assert D.dtype == np.float32 and I.dtype == np.int64
    assert D.shape == I.shape == (nq, k)
    got = min(k, ntotal)
    assert (I[:, got:] == -1).all() and np.isneginf(D[:, got:]).all()
    assert (I[:, :got] >= -1).all()
    live = D[:, :got]
    assert (np.diff(live, axis=1) <= 0).all()


@given(
    spec=specs,
    dims=st.sampled_from([8, 16, 24, 0, -1]),
    n=st.integers(0, 40),
    nq=st.integers(0, 4),
    dtype=dtypes,
    q_dtype=dtypes,
    poison=st.sampled_from([None, np.nan, np.inf, -np.inf]),
    extra_cols=st.sampled_from([0, 0, 0, 1, -1]),
    k=ks,
    search_dims=st.sampled_from([None, None, 4, 0, 99]),
    seed=st.integers(0, 2**16),
)
def test_factory_fuzz_only_raises_clear_errors(spec, dims, n, nq, dtype, q_dtype, poison, extra_cols, k, search_dims, seed):
    rng = np.random.default_rng(seed)
    try:
        index = index_factory(dims, spec)
    except QamaError as err:
        assert str(err)
        return
    cols = dims + extra_cols
    x = _array(rng, (n, max(cols, 0)), dtype, poison if rng.random() < 0.5 else None)
    try:
        if not index.is_trained:
            index.train(x)
        index.add(x)
    except (QamaError, MemoryError) as err:
        assert str(err)
    xq = _array(rng, (nq, max(cols, 0)), q_dtype, poison if rng.random() < 0.3 else None)
    try:
        result = index.search(xq, k, dims=search_dims)
    except (QamaError, MemoryError) as err:
        assert str(err)
        return
    _check_result(result, nq, k, index.ntotal)


@given(
    ids=st.one_of(
        st.lists(st.integers(-5, 2**64), min_size=0, max_size=6),
        st.lists(st.text(max_size=4), min_size=0, max_size=6),
        st.sampled_from([None, "abc", 3, [1.5], [[1]], np.array([1, 1], dtype=np.uint64)]),
    ),
    remove=st.one_of(st.lists(st.integers(-5, 50), max_size=4), st.lists(st.text(max_size=3), max_size=3), st.just([0.5])),
)
def test_ids_fuzz(ids, remove):
    rng = np.random.default_rng(0)
    index = index_factory(8, "LloydMax2")
    index.train(rng.standard_normal((30, 8)).astype(np.float32))
    n = len(ids) if isinstance(ids, list) else 2
    try:
        index.add(rng.standard_normal((n, 8)).astype(np.float32), ids=ids)
    except QamaError as err:
        assert str(err)
    try:
        removed = index.remove(remove)
        assert 0 <= removed <= n
    except QamaError as err:
        assert str(err)
    _check_result(index.search(rng.standard_normal((2, 8)).astype(np.float32), 3), 2, 3, index.ntotal)


@given(cut=st.integers(0, 4000), flip=st.integers(0, 4000), value=st.integers(1, 255))
def test_corrupt_file_fuzz(tmp_path_factory, cut, flip, value):
    path = tmp_path_factory.mktemp("fuzz") / "f.qidx"
    rng = np.random.default_rng(1)
    index = index_factory(8, "Sign,Rescore(LloydMax2,4)")
    index.train(rng.standard_normal((30, 8)).astype(np.float32))
    index.add(rng.standard_normal((30, 8)).astype(np.float32), ids=[f"d{i}" for i in range(30)])
    index.save(path)
    data = bytearray(path.read_bytes())
    if flip < len(data):
        data[flip] ^= value
    if cut % 3 == 0:
        del data[cut % (len(data) + 1) :]
    path.write_bytes(bytes(data))
    for use_mmap in (False, True):
        try:
            loaded = Index.load(path, mmap=use_mmap)
            loaded.verify()
        except QamaError as err:
            assert str(err)
            continue
        _check_result(loaded.search(rng.standard_normal((1, 8)).astype(np.float32), 5), 1, 5, loaded.ntotal)


@pytest.mark.parametrize("k", [2**31 - 1, 2**31])
def test_huge_k_is_a_clear_error_not_an_allocation(k):
    index = index_factory(8, "Flat")
    index.add(np.eye(8, dtype=np.float32))
    with pytest.raises(QamaError, match="k = "):
        index.search(np.ones((1, 8), dtype=np.float32), k)
