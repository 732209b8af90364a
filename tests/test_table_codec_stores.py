"""``Store`` as ``TableCodec`` reads it: construction errors naming the argument, row widths the codec
refuses, a caller's ``max_scale`` bound, and per-row scales (``row_scale``) on every instruction-set
level and layout, for ``search``, ``score`` and ``rescore``, bit for bit with the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import _reference as ref
import qama_rs
from _table_helpers import BITS, ISAS, LAYOUTS, bits_equal, layouts_for, random_case, store
from qama_rs import _core


# ------------------------------------------------------------------------------ stores
def test_store_errors_name_the_argument():
    codes = np.zeros((3, 2), np.uint8)
    table = np.array([[0, 3, 0, 0]], np.uint64)
    empty = np.zeros(0, np.uint8)
    with pytest.raises(qama_rs.QamaError, match="segments is empty"):
        _core.Store([], table)
    with pytest.raises(qama_rs.QamaError, match="table has 4 columns; 1 segments need 2"):
        _core.Store([codes], table)
    with pytest.raises(qama_rs.QamaTypeError, match="segments must be uint8, uint64, float32 or uint16"):
        _core.Store([codes.astype(np.int32), empty], table)
    with pytest.raises(qama_rs.QamaTypeError, match=r"segments\[1\] must have dtype uint8"):
        _core.Store([codes, np.zeros(0, np.uint16)], table)
    with pytest.raises(qama_rs.QamaTypeError, match=r"segments\[0\] must be C-contiguous"):
        _core.Store([np.zeros((3, 4), np.uint8)[:, ::2], empty], table)
    with pytest.raises(qama_rs.QamaTypeError, match="table must have dtype uint64"):
        _core.Store([codes, empty], table.astype(np.int64))
    with pytest.raises(qama_rs.QamaTypeError, match="segments must be a list of NumPy arrays"):
        _core.Store(3, table)
    with pytest.raises(qama_rs.QamaError, match=r"table\[0\] runs past labels\[0\]"):
        _core.Store([codes, empty], table, [np.zeros(2, np.uint64), np.zeros(0, np.uint64)])
    with pytest.raises(qama_rs.QamaError, match="labels has 1 arrays; expected one per segment"):
        _core.Store([codes, empty], table, [np.zeros(3, np.uint64)])
    with pytest.raises(qama_rs.QamaError, match=r"table\[0\] runs past row_scale\[0\]"):
        _core.Store([codes, empty], table, None, [np.ones(2, np.float32), np.zeros(0, np.float32)])
    with pytest.raises(qama_rs.QamaTypeError, match=r"row_scale\[0\] must have dtype float32"):
        _core.Store([codes, empty], table, None, [np.ones(3), np.zeros(0, np.float32)])
    scales = [np.ones(3, np.float32), np.zeros(0, np.float32)]
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(qama_rs.QamaError, match="max_scale = .*; must be finite and >= 0"):
            _core.Store([codes, empty], table, None, scales, max_scale=bad)
    with pytest.raises(qama_rs.QamaTypeError, match="max_scale must be a float, got str"):
        _core.Store([codes, empty], table, None, scales, max_scale="1")


def test_a_store_of_rows_of_another_width_is_refused():
    """2-D segments record the row width; a codec reading rows of another width refuses the store
    (1-D segments say nothing of it, and an empty 1-D tail beside 2-D rows keeps the base's width)."""
    rows = np.zeros((4, 3), np.uint8)
    table = np.array([[0, 4, 0, 0]], np.uint64)
    codec = _core.TableCodec.given(2, "rows")
    luts = np.zeros((1, 2, 256), np.float32)
    for other in (_core.Store([rows, np.zeros(0, np.uint8)], table), _core.Store([rows, rows], table)):
        for call in (
            lambda r=other: codec.search(luts, r, 1),
            lambda r=other: codec.score(luts, r, np.zeros(1, np.int64)),
            lambda r=other: codec.rescore(luts, r, np.zeros(1, np.int64), 1),
            lambda r=other: codec.search_lists(luts, r, 1, _core.Plan(np.zeros((1, 1), np.int64), 1)),
        ):
            with pytest.raises(
                qama_rs.QamaError, match="the store's rows have 3 values; this codec reads rows of 2"
            ):
                call()
    # A flat segment of the same bytes is read as rows of the codec's width.
    flat = _core.Store([rows.reshape(-1), np.zeros(0, np.uint8)], np.array([[0, 6, 0, 0]], np.uint64))
    s, i = codec.search(luts, flat, 6)
    assert i.tolist() == [[0, 1, 2, 3, 4, 5]] and not s.any()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_given_max_scale_bounds_the_scales_in_place_of_reading_them(layout):
    """``max_scale`` is the caller's bound of ``|row_scale|``: with an honest bound the results are the
    reference's (the block kernel's pruning bounds use it), and a bound too large for the tables'
    scores is refused as an overflow, naming row_scale, before any row is read."""
    rng = np.random.default_rng(34)
    codes, recon, queries = random_case(rng, 300, 24, 2, nq=3)
    packed = ref.asym_pack(codes, 2)
    scale = rng.uniform(-1.5, 1.5, 300).astype(np.float32)
    want = ref.top_scores_canonical(ref.asym_scores_scaled(queries, recon, packed, scale), 10)
    data = _core.to_blocks(packed) if layout == "blocks" else packed
    table = np.array([[0, 300, 0, 0]], np.uint64)
    scales = [scale, np.zeros(0, np.float32)]
    for bound in (None, float(np.abs(scale).max()), 2.0, 1e6):
        rows = _core.Store([data, np.zeros(0, np.uint8)], table, None, scales, max_scale=bound)
        for isa in ISAS:
            s, i = _core.TableCodec.recon(recon, layout, isa).search(queries, rows, 10)
            assert bits_equal(s, want[0]), (bound, isa)
            np.testing.assert_array_equal(i, want[1])
    huge = _core.Store([data, np.zeros(0, np.uint8)], table, None, scales, max_scale=1e38)
    with pytest.raises(qama_rs.QamaError, match="row_scale x scores reach .*; scores would overflow float32"):
        _core.TableCodec.recon(recon, layout).search(queries, huge, 10)


# ------------------------------------------------------------------------------ per-row scales
SCALE_KINDS = ["positive", "mixed", "zeros", "negative", "spread"]


def make_scale(rng, n, kind):
    if kind == "positive":
        return rng.uniform(0.5, 2.0, n).astype(np.float32)
    if kind == "mixed":
        return rng.uniform(-2.0, 2.0, n).astype(np.float32)
    if kind == "zeros":
        return np.where(np.arange(n) % 3 == 0, 0.0, 1.0).astype(np.float32)
    if kind == "negative":
        return rng.uniform(-3.0, -0.1, n).astype(np.float32)
    return np.where(np.arange(n) % 2 == 0, 1e-6, 1e4).astype(np.float32)


@given(
    bits=st.sampled_from(BITS),
    n=st.integers(1, 300),
    dims=st.integers(1, 70),
    nq=st.integers(1, 4),
    k=st.integers(1, 40),
    kind=st.sampled_from(SCALE_KINDS),
    seed=st.integers(0, 2**32 - 1),
)
def test_row_scale_every_isa_and_layout_equals_the_reference_bit_for_bit(bits, n, dims, nq, k, kind, seed):
    """Scaled scores are ``fl(row_scale_i * raw_i)`` on every kernel, and the block kernel's scaled
    bounds keep the top-k exact for scales of any sign (zeros tie at +0.0, lower row first)."""
    rng = np.random.default_rng(seed)
    codes, recon, queries = random_case(rng, n, dims, bits, nq)
    packed = ref.asym_pack(codes, bits)
    scale = make_scale(rng, n, kind)
    want_s, want_i = ref.top_scores_canonical(ref.asym_scores_scaled(queries, recon, packed, scale), k)
    for layout in layouts_for(bits):
        rows = store(packed, layout, scale=scale)
        for isa in ISAS:
            s, i = _core.TableCodec.recon(recon, layout, isa).search(queries, rows, k)
            assert bits_equal(s, want_s), (layout, isa)
            np.testing.assert_array_equal(i, want_i, err_msg=f"{layout} {isa}")


def test_row_scale_block_kernel_is_exact_at_scale_on_many_rows():
    """Many rows, positive scales near 1 (so the group thresholds prune) and a batch: the same
    results as the scaled float scan."""
    rng = np.random.default_rng(31)
    codes, recon, queries = random_case(rng, 5000, 96, 2, nq=40)
    packed = ref.asym_pack(codes, 2)
    scale = rng.uniform(0.9, 1.1, 5000).astype(np.float32)
    want = ref.top_scores_canonical(ref.asym_scores_scaled(queries, recon, packed, scale), 10)
    rows = store(packed, "blocks", scale=scale)
    for isa in ISAS:
        s, i = _core.TableCodec.recon(recon, "blocks", isa).search(queries, rows, 10)
        assert bits_equal(s, want[0]), isa
        np.testing.assert_array_equal(i, want[1])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_row_scale_candidates_and_rescore(layout):
    rng = np.random.default_rng(32)
    codes, recon, queries = random_case(rng, 400, 40, 2, nq=4)
    packed = qama_rs.pack_codes(codes, 2)
    scale = rng.uniform(-1.0, 3.0, 400).astype(np.float32)
    rows = store(packed, layout, scale=scale)
    cands = np.stack([rng.permutation(400)[:50] for _ in range(4)]).astype(np.int64)
    full = ref.asym_scores_scaled(queries, recon, packed, scale)
    sorted_cands = np.sort(cands, axis=1)
    want_s, pos = ref.top_scores_canonical(np.take_along_axis(full, sorted_cands, axis=1), 7)
    for isa in ISAS:
        codec = _core.TableCodec.recon(recon, layout, isa)
        assert bits_equal(codec.score(queries, rows, cands), np.take_along_axis(full, cands, axis=1)), isa
        s, i = codec.rescore(queries, rows, cands, 7)
        assert bits_equal(s, want_s), isa
        np.testing.assert_array_equal(i, np.take_along_axis(sorted_cands, pos, axis=1))


def test_row_scale_errors_name_the_argument():
    packed = np.zeros((3, 1), dtype=np.uint8)
    q = np.zeros((1, 4), dtype=np.float32)
    # Without max_scale the store reads its scales (for their bound) and refuses a non-finite one.
    with pytest.raises(qama_rs.QamaError, match=r"row_scale\[0\]\[1\] = NaN is not finite"):
        store(packed, scale=np.array([1, np.nan, 1], np.float32))
    with pytest.raises(qama_rs.QamaError, match=r"row_scale\[0\]\[2\] = inf is not finite"):
        store(packed, scale=np.array([1, 1, np.inf], np.float32))
    big = _core.TableCodec.recon(np.ones((4, 4), dtype=np.float32), "blocks")
    with pytest.raises(qama_rs.QamaError, match="row_scale .* overflow"):
        big.score(
            q + 1, store(packed, "blocks", scale=np.full(3, 3e38, np.float32)), np.zeros((1, 1), np.int64)
        )
