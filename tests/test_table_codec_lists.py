"""``TableCodec`` scans restricted to some rows: ``Filter`` objects (a bitmap or sorted labels) applied
inside ``search`` and ``rescore``, and ``search_lists`` over a ``Plan`` (lists in order, ``nprobe``,
per-list bias) against the NumPy reference, with the errors both raise naming the argument."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import _reference as ref
import qama_rs
from _table_helpers import ISAS, LAYOUTS, bits_equal, layouts_for, random_case, split_store, store
from qama_rs import _core


# ------------------------------------------------------------------------------ filters
@given(
    bits=st.sampled_from([2, 4, 8]),
    n=st.integers(1, 200),
    k=st.integers(1, 30),
    density=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    labelled=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_filters_of_bits_and_labels_filter_inside_the_scan(bits, n, k, density, labelled, seed):
    """Only allowed labels come back: ``k`` of them whenever ``k`` are stored, the rest of the row
    ``-1`` / ``-inf``; the bitmap and the sorted list are the same filter, for ``search`` and
    ``rescore``, on every isa and layout."""
    rng = np.random.default_rng(seed)
    codes, recon, queries = random_case(rng, n, 12, bits, nq=3)
    packed = ref.asym_pack(codes, bits)
    labels = rng.permutation(3 * n)[:n].astype(np.uint64) if labelled else np.arange(n, dtype=np.uint64)
    allowed = np.sort(labels[rng.random(n) < density])
    words = np.zeros(-(-int(labels.max() + 1) // 64), dtype=np.uint64)
    for label in allowed.tolist():
        words[label // 64] |= np.uint64(1 << (label % 64))
    full = ref.asym_scores(queries, recon, packed)
    want = ref.top_labelled(full, labels, k, allowed.astype(np.int64))
    cands = rng.permutation(n)[: max(1, n // 2)].astype(np.int64)
    want_r = ref.top_labelled(full[:, cands], labels[cands], k, allowed.astype(np.int64))
    filters = (_core.Filter.bits(words), _core.Filter.labels(allowed))
    for layout in layouts_for(bits):
        rows = store(packed, layout, labels if labelled else None)
        for isa in ISAS:
            codec = _core.TableCodec.recon(recon, layout, isa)
            for kind, only in zip(("bits", "labels"), filters, strict=True):
                s, i = codec.search(queries, rows, k, filter=only)
                assert bits_equal(s, want[0]), (layout, isa, kind)
                np.testing.assert_array_equal(i, want[1])
                s, i = codec.rescore(queries, rows, cands, k, only)
                assert bits_equal(s, want_r[0]), (layout, isa, kind)
                np.testing.assert_array_equal(i, want_r[1])
            # filter=None is no filter.
            s, i = codec.search(queries, rows, k, None)
            assert bits_equal(s, ref.top_labelled(full, labels, k)[0]), (layout, isa)


def test_filter_errors_name_the_argument():
    codec = _core.TableCodec.given(1, "rows")
    rows = store(np.zeros((3, 1), np.uint8))
    luts = np.zeros((1, 1, 256), np.float32)
    with pytest.raises(qama_rs.QamaError, match="labels must be sorted ascending"):
        _core.Filter.labels(np.array([2, 1], np.uint64))
    with pytest.raises(qama_rs.QamaTypeError, match="words must have dtype uint64"):
        _core.Filter.bits(np.zeros(1, np.int64))
    with pytest.raises(qama_rs.QamaError, match="labels must be a 1-D array"):
        _core.Filter.labels(np.zeros((1, 1), np.uint64))
    with pytest.raises(qama_rs.QamaTypeError, match="labels must be a NumPy array of dtype uint64, got list"):
        _core.Filter.labels([1, 2])
    for wrong in (np.zeros(1, np.uint64), [0], "labels"):
        with pytest.raises(qama_rs.QamaTypeError, match=r"filter must be a qama_rs\._core\.Filter, got"):
            codec.search(luts, rows, 1, filter=wrong)
        with pytest.raises(qama_rs.QamaTypeError, match=r"filter must be a qama_rs\._core\.Filter, got"):
            codec.rescore(luts, rows, np.zeros(1, np.int64), 1, wrong)
    # Labels past the bitmap's words are not allowed; repeated sorted labels are one label.
    s, i = codec.search(luts, rows, 3, filter=_core.Filter.bits(np.zeros(0, np.uint64)))
    assert i.tolist() == [[-1, -1, -1]] and np.isneginf(s).all()
    s, i = codec.search(luts, rows, 3, filter=_core.Filter.labels(np.array([1, 1, 2, 9], np.uint64)))
    assert i.tolist() == [[1, 2, -1]] and s[0, 2] == -np.inf


# ------------------------------------------------------------------------------ lists
def list_case(rng, sizes, bits, nq):
    n = sum(sizes)
    codes, recon, queries = random_case(rng, n, 10, bits, nq)
    packed = ref.asym_pack(codes, bits)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    lists = [np.arange(starts[i], starts[i + 1]) for i in range(len(sizes))]
    return packed, recon, queries, lists


@given(
    sizes=st.lists(st.integers(0, 60), min_size=1, max_size=6).filter(lambda s: sum(s) > 0),
    bits=st.sampled_from([2, 8]),
    k=st.integers(1, 50),
    nprobe=st.integers(0, 7),
    biased=st.booleans(),
    filtered=st.booleans(),
    nq=st.sampled_from([1, 3, 20]),
    seed=st.integers(0, 2**32 - 1),
)
def test_search_lists_matches_the_reference(sizes, bits, k, nprobe, biased, filtered, nq, seed):
    """Each query scans the lists of its ``Plan`` in order: ``nprobe`` of them, then more while fewer
    than ``k`` results were found; a list's bias is added to its scores. 20 queries are scanned in chunks of
    several that share lists (list-major); calls this small run on the calling thread, and one query alone there
    is joined by the pool's threads where they are free (``rust/core/src/share.rs``; both paths on pools of 1, 2
    and 4 threads in the cargo tests)."""
    rng = np.random.default_rng(seed)
    packed, recon, queries, lists = list_case(rng, sizes, bits, nq)
    n = len(packed)
    labels = rng.permutation(5 * n)[:n].astype(np.uint64)
    width = int(rng.integers(1, len(sizes) + 1))
    order = np.stack([rng.permutation(len(sizes))[:width] for _ in range(nq)]).astype(np.int64)
    bias = rng.normal(scale=3.0, size=(nq, width)).astype(np.float32) if biased else None
    allowed = np.sort(labels[rng.random(n) < 0.5]) if filtered else None
    only = None if allowed is None else _core.Filter.labels(allowed)
    full = ref.asym_scores(queries, recon, packed)
    want = ref.search_lists(
        full, lists, order, nprobe, k, labels, bias, None if allowed is None else allowed.astype(np.int64)
    )
    plan = _core.Plan(order, nprobe, bias)
    got_order, got_bias = plan.arrays()
    np.testing.assert_array_equal(got_order, order)
    assert bits_equal(got_bias, np.zeros(order.shape, np.float32) if bias is None else bias)
    for layout in layouts_for(bits):
        rows = split_store(packed, layout, sizes, labels)
        for isa in ISAS:
            codec = _core.TableCodec.recon(recon, layout, isa)
            s, i = codec.search_lists(queries, rows, k, plan, filter=only)
            assert bits_equal(s, want[0]), (layout, isa)
            np.testing.assert_array_equal(i, want[1], err_msg=f"{layout} {isa}")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_search_lists_without_labels_returns_store_positions(layout):
    """Positions number the rows lists in order, each list's base rows then its tail rows, whatever
    the plan's order: the same ids as a store labelled with those positions."""
    rng = np.random.default_rng(40)
    sizes = [5, 7, 4]
    packed, recon, queries, lists = list_case(rng, sizes, 2, 2)
    plan = _core.Plan(np.array([[2, 0, 1], [1, 2, 0]], dtype=np.int64), 3)
    positions = np.arange(16, dtype=np.uint64)
    codec = _core.TableCodec.recon(recon, layout)
    want = ref.search_lists(
        ref.asym_scores(queries, recon, packed), lists, plan.arrays()[0], 3, 16, positions
    )
    for gap in (0, 1):
        labelled = split_store(packed, layout, sizes, positions, gap=gap)
        unlabelled = split_store(packed, layout, sizes, gap=gap)
        for rows in (labelled, unlabelled):
            s, i = codec.search_lists(queries, rows, 16, plan)
            assert bits_equal(s, want[0]), gap
            np.testing.assert_array_equal(i, want[1], err_msg=f"gap {gap}")
            assert sorted(i[0].tolist()) == list(range(16))
    # A plain search numbers them the same way.
    s, i = codec.search(queries, split_store(packed, layout, sizes, gap=1), 16)
    np.testing.assert_array_equal(
        i, ref.top_labelled(ref.asym_scores(queries, recon, packed), positions, 16)[1]
    )


def test_a_plan_naming_a_list_twice_is_refused():
    rng = np.random.default_rng(41)
    packed, recon, queries, _ = list_case(rng, [3, 3, 3], 2, 2)
    with pytest.raises(qama_rs.QamaError, match=r"lists\[1\] names list 0 twice"):
        _core.Plan(np.array([[2, 1, 0], [0, 2, 0]], np.int64), 2)
    with pytest.raises(qama_rs.QamaError, match=r"lists\[0\] names list 2 twice"):
        _core.Plan(np.array([[2, 1, 2]], np.int64), 1)
    # Each list once: every row once.
    rows = split_store(packed, "rows", [3, 3, 3], np.arange(9, dtype=np.uint64))
    plan = _core.Plan(np.array([[2, 1, 0], [0, 2, 1]], np.int64), 3)
    _, ids = _core.TableCodec.recon(recon, "rows").search_lists(queries, rows, 9, plan)
    assert all(sorted(row) == list(range(9)) for row in ids.tolist())


def test_search_lists_bias_errors_name_bias():
    """A bias no float32 score can hold, infinite or not, is refused naming ``bias``."""
    codec = _core.TableCodec.given(1, "rows")
    rows = split_store(
        np.arange(6, dtype=np.uint8).reshape(6, 1), "rows", [3, 3], np.arange(6, dtype=np.uint64)
    )
    luts = np.arange(256, dtype=np.float32).reshape(1, 1, 256)
    lists = np.array([[0, 1]], np.int64)
    with pytest.raises(qama_rs.QamaError, match=r"bias\[0, 1\] = inf is not finite"):
        _core.Plan(lists, 2, np.array([[0, np.inf]], np.float32))
    with pytest.raises(qama_rs.QamaError, match=r"bias\[0, 0\] = NaN is not finite"):
        _core.Plan(lists, 2, np.array([[np.nan, 0]], np.float32))
    with pytest.raises(qama_rs.QamaError, match=r"^bias = 3(\.\d+)?e38; scores would overflow float32"):
        codec.search_lists(luts, rows, 4, _core.Plan(lists, 2, np.array([[0, -3e38]], np.float32)))
    # A huge bias that fits beside the tables' entries is added in float32: list 1's scores round to
    # one value and tie (lower label first).
    s, i = codec.search_lists(luts, rows, 6, _core.Plan(lists, 2, np.array([[0, 1e30]], np.float32)))
    assert i.tolist() == [[3, 4, 5, 2, 1, 0]]
    assert bits_equal(s, [[1e30, 1e30, 1e30, 2, 1, 0]])


def test_search_lists_errors_name_the_argument():
    codec = _core.TableCodec.given(1, "rows")
    rows = store(np.zeros((3, 1), np.uint8))
    luts = np.zeros((1, 1, 256), np.float32)
    one = np.zeros((1, 1), np.int64)
    with pytest.raises(qama_rs.QamaError, match="the plan names list 1; the store has 1"):
        codec.search_lists(luts, rows, 1, _core.Plan(np.array([[1]], np.int64), 1))
    with pytest.raises(qama_rs.QamaError, match=r"lists\[0, 1\] = -1 is negative"):
        _core.Plan(np.array([[0, -1]], np.int64), 1)
    with pytest.raises(qama_rs.QamaError, match="the plan has 2 queries; there are 1"):
        codec.search_lists(luts, rows, 1, _core.Plan(np.array([[0], [0]], np.int64), 1))
    with pytest.raises(qama_rs.QamaError, match=r"bias must have the shape of lists \(1, 1\)"):
        _core.Plan(one, 1, np.zeros((1, 2), np.float32))
    with pytest.raises(qama_rs.QamaError, match="nprobe = -1"):
        _core.Plan(one, -1)
    with pytest.raises(qama_rs.QamaTypeError, match="nprobe must be an int"):
        _core.Plan(one, 1.5)
    with pytest.raises(qama_rs.QamaTypeError, match="lists must have dtype int64"):
        _core.Plan(np.zeros((1, 1), np.int32), 1)
    with pytest.raises(qama_rs.QamaError, match="lists must be a 2-D array"):
        _core.Plan(np.zeros(1, np.int64), 1)
    with pytest.raises(qama_rs.QamaTypeError, match="bias must have dtype float32"):
        _core.Plan(one, 1, np.zeros((1, 1)))
    for wrong in (one, None, (one, 1)):
        with pytest.raises(qama_rs.QamaTypeError, match=r"plan must be a qama_rs\._core\.Plan, got"):
            codec.search_lists(luts, rows, 1, wrong)
    # An empty plan scans nothing.
    s, i = codec.search_lists(luts, rows, 2, _core.Plan(np.zeros((1, 0), np.int64), 1))
    assert i.tolist() == [[-1, -1]] and np.isneginf(s).all()
