"""``TableCodec`` over byte tables: ``TableCodec.given`` (tables the caller passes, rows and blocks) bit
for bit with the NumPy reference and on a real product quantizer, and ``TableCodec.projected`` (tables
built in Rust from float queries) against ``TableCodec.given`` fed the reference's tables, with the
errors both raise naming the argument."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import _reference as ref
import qama_rs
from _strategies import sizes_and_seed
from _table_helpers import ISAS, LAYOUTS, bits_equal, split_store, store
from qama_rs import _core


def same_arrays(got, want):
    """Two results (an array or a tuple of arrays) equal in dtype, shape and every bit."""
    got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
    return len(got) == len(want) and all(
        a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))
        for a, b in zip(got, want, strict=True)
    )


# ------------------------------------------------------------------------------ given tables
@given(**sizes_and_seed(n=300, m=40, nq=4, k=50), scaled=st.booleans())
def test_given_tables_in_rows_equal_the_reference_bit_for_bit(n, m, nq, k, scaled, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, m), dtype=np.uint8)
    luts = rng.normal(size=(nq, m, 256)).astype(np.float32)
    scale = rng.uniform(-1.0, 2.0, n).astype(np.float32) if scaled else None
    full = ref.lut_scores(luts, codes, scale)
    want_s, want_i = ref.top_scores_canonical(full, k)
    rows = store(codes, scale=scale)
    cands = np.stack([rng.permutation(n)[: min(n, 17)] for _ in range(nq)]).astype(np.int64)
    sorted_cands = np.sort(cands, axis=1)
    want_rs, pos = ref.top_scores_canonical(np.take_along_axis(full, sorted_cands, axis=1), k)
    for isa in ISAS:
        codec = _core.TableCodec.given(m, "rows", isa)
        s, i = codec.search(luts, rows, k)
        assert s.shape == (nq, min(k, n)) and i.dtype == np.int64
        assert bits_equal(s, want_s), isa
        np.testing.assert_array_equal(i, want_i)
        # Tables flattened to (nq, m * 256) are the same queries.
        s, i = codec.search(luts.reshape(nq, m * 256), rows, k)
        assert bits_equal(s, want_s), isa
        got = codec.score(luts, rows, cands)
        assert bits_equal(
            ref.canonical_zero(got), ref.canonical_zero(np.take_along_axis(full, cands, axis=1))
        )
        s, i = codec.rescore(luts, rows, cands, k)
        assert bits_equal(s, want_rs), isa
        np.testing.assert_array_equal(i, np.take_along_axis(sorted_cands, pos, axis=1))


@given(
    **sizes_and_seed(n=300, m=40, nq=4, k=50),
    scaled=st.sampled_from([None, "any", "positive"]),
    separable=st.booleans(),
)
def test_given_tables_in_blocks_equal_the_reference_bit_for_bit(n, m, nq, k, scaled, separable, seed):
    """The quantized block kernels prune with bounds, then score exactly: the same top-k as the
    NumPy reference for any tables (nibble-separable ones are the fast case)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, m), dtype=np.uint8)
    if separable:
        lo, hi = rng.normal(size=(nq, m, 1, 16)), rng.normal(size=(nq, m, 16, 1))
        luts = (lo + hi).reshape(nq, m, 256).astype(np.float32)
    else:
        luts = rng.normal(size=(nq, m, 256)).astype(np.float32)
    low = {None: None, "any": -1.0, "positive": 0.5}[scaled]
    scale = None if low is None else rng.uniform(low, 2.0, n).astype(np.float32)
    full = ref.lut_scores(luts, codes, scale)
    want_s, want_i = ref.top_scores_canonical(full, k)
    rows = store(codes, "blocks", scale=scale)
    cands = rng.permutation(n)[: min(n, 9)].astype(np.int64)
    want_rs, pos = ref.top_scores_canonical(full[:, np.sort(cands)], k)
    for isa in ISAS:
        codec = _core.TableCodec.given(m, "blocks", isa)
        s, i = codec.search(luts, rows, k)
        assert bits_equal(s, want_s), isa
        np.testing.assert_array_equal(i, want_i)
        s, i = codec.rescore(luts, rows, cands, k)
        assert bits_equal(s, want_rs), isa
        np.testing.assert_array_equal(i, np.sort(cands)[pos])


def test_given_tables_match_product_quantization():
    """A real PQ: 4 sub-spaces of 8 dims, 256 centroids each; the table score of a code equals the
    inner product of the query with the reconstructed vector (float32 rounding aside)."""
    rng = np.random.default_rng(33)
    m, sub, n = 4, 8, 2000
    centroids = rng.normal(size=(m, 256, sub)).astype(np.float32)
    codes = rng.integers(0, 256, size=(n, m), dtype=np.uint8)
    recon = np.concatenate([centroids[b][codes[:, b]] for b in range(m)], axis=1)
    queries = rng.normal(size=(3, m * sub)).astype(np.float32)
    luts = np.einsum("qbd,bcd->qbc", queries.reshape(3, m, sub), centroids).astype(np.float32)
    exact = queries.astype(np.float64) @ recon.astype(np.float64).T
    for layout in LAYOUTS:
        s, i = _core.TableCodec.given(m, layout).search(luts, store(codes, layout), 10)
        np.testing.assert_allclose(s, np.take_along_axis(exact, i, axis=1), atol=1e-4)
        np.testing.assert_array_equal(i, np.argsort(-exact, axis=1, kind="stable")[:, :10])


def test_given_table_errors_name_the_argument():
    codes = np.zeros((3, 2), dtype=np.uint8)
    luts = np.zeros((1, 2, 256), dtype=np.float32)
    codec = _core.TableCodec.given(2, "rows")
    rows = store(codes)
    with pytest.raises(
        qama_rs.QamaError, match=r"queries has shape \[1, 2, 16\]; the codec takes tables \(nq, 2, 256\)"
    ):
        codec.search(np.zeros((1, 2, 16), np.float32), rows, 1)
    bad = luts.copy()
    bad[0, 1, 5] = np.inf
    for call in (
        lambda: codec.search(bad, rows, 1),
        lambda: codec.score(bad, rows, np.zeros(1, np.int64)),
        lambda: codec.search_lists(bad, rows, 1, _core.Plan(np.zeros((1, 1), np.int64), 1)),
    ):
        with pytest.raises(qama_rs.QamaError, match=r"^queries\[0, 1, 5\] = inf is not finite"):
            call()
    with pytest.raises(
        qama_rs.QamaError, match=r"^queries\[0\] entries reach \S+ per row; scores would overflow"
    ):
        codec.search(np.full((1, 2, 256), 3e38, np.float32), rows, 1)
    with pytest.raises(qama_rs.QamaTypeError, match="queries must have dtype float32"):
        codec.search(luts.reshape(1, 512).astype(np.float64), rows, 1)
    with pytest.raises(qama_rs.QamaError, match="k = 0"):
        codec.search(luts, rows, 0)
    with pytest.raises(qama_rs.QamaError, match="m = 0"):
        _core.TableCodec.given(0)
    with pytest.raises(qama_rs.QamaError, match="m = -1"):
        _core.TableCodec.given(-1)
    with pytest.raises(qama_rs.QamaError, match="not a row"):
        codec.rescore(luts, rows, np.array([[3]], np.int64), 1)
    with pytest.raises(qama_rs.QamaError, match="segment 0"):
        _core.TableCodec.given(2, "blocks").search(luts, rows, 1)  # row-major bytes are not blocks
    for layout in LAYOUTS:
        s, i = _core.TableCodec.given(2, layout).search(luts, store(codes, layout), 2**40)
        assert s.shape == (1, 3) and i.tolist() == [[0, 1, 2]]
        s, i = _core.TableCodec.given(2, layout).search(luts, store(codes[:0], layout), 1)
        assert s.shape == i.shape == (1, 0)


# ---------------------------------------------------------------------------- projected tables
def projection_case(rng, dims, width, m, slots, nibbles, empty):
    """A basis ``(dims, width)`` and slots of ``m`` bytes (byte slots ``(m, T, 256)`` or nibble slots
    ``(m, 2, T, 16)``), about ``empty`` of them empty (-1)."""
    basis = rng.normal(size=(dims, width)).astype(np.float32)
    shape = (m, 2, slots) if nibbles else (m, slots)
    slot_dims = rng.integers(0, width, size=shape).astype(np.int64)
    slot_dims[rng.random(shape) < empty] = -1
    slot_values = rng.normal(size=(*shape, 16 if nibbles else 256)).astype(np.float32)
    return basis, slot_dims, slot_values


@given(
    # Widths to 150: the projection sums blocks of 64 outputs in registers, then the rest.
    **sizes_and_seed(dims=24, width=150, m=12, slots=4, n=150, nq=4, k=40),
    nibbles=st.booleans(),
    empty=st.sampled_from([0.0, 0.3, 1.0]),
    scaled=st.booleans(),
)
def test_projected_tables_equal_given_reference_tables_bit_for_bit(
    dims, width, m, slots, nibbles, empty, n, nq, k, scaled, seed
):
    """``TableCodec.projected`` builds in Rust the tables the NumPy reference builds (the same sums in
    the same order), so it answers every call bit for bit as ``TableCodec.given`` fed those tables,
    and as the reference's scores: rows and blocks, byte and nibble slots, every isa."""
    rng = np.random.default_rng(seed)
    basis, slot_dims, slot_values = projection_case(rng, dims, width, m, slots, nibbles, empty)
    queries = rng.normal(size=(nq, dims)).astype(np.float32)
    luts = ref.projected_tables(queries, basis, slot_dims, slot_values)
    codes = rng.integers(0, 256, size=(n, m), dtype=np.uint8)
    scale = rng.uniform(-1.0, 2.0, n).astype(np.float32) if scaled else None
    full = ref.lut_scores(luts, codes, scale)
    want = ref.top_scores_canonical(full, k)
    cands = np.stack([rng.permutation(n)[: min(n, 11)] for _ in range(nq)]).astype(np.int64)
    sizes = [n // 3, n - n // 3]
    plan = _core.Plan(
        np.tile([[1, 0]], (nq, 1)).astype(np.int64), 1, rng.normal(size=(nq, 2)).astype(np.float32)
    )
    for layout in LAYOUTS:
        rows = store(codes, layout, scale=scale)
        lists = split_store(codes, layout, sizes, scale=scale)
        for isa in ISAS:
            projected = _core.TableCodec.projected(basis, slot_dims, slot_values, layout, isa)
            given_ = _core.TableCodec.given(m, layout, isa)
            assert (projected.layout, projected.isa, projected.row_units) == (layout, isa, m)
            assert projected.block_rows == given_.block_rows
            s, i = projected.search(queries, rows, k)
            assert bits_equal(s, want[0]), (layout, isa)
            np.testing.assert_array_equal(i, want[1], err_msg=f"{layout} {isa}")
            for call in (
                lambda c, q, r=rows: c.score(q, r, cands),
                lambda c, q, r=rows: c.rescore(q, r, cands, k),
                lambda c, q, r=lists: c.search(q, r, k),
                lambda c, q, r=lists: c.search_lists(q, r, k, plan),
            ):
                got, expected = call(projected, queries), call(given_, luts)
                assert same_arrays(got, expected), (layout, isa)


@pytest.mark.parametrize("nibbles", [False, True])
def test_projected_slots_of_no_dimension_give_zero_tables(nibbles):
    """No slots (``T = 0``), or only empty ones: every table is zero, so every row scores 0 (ties by the
    lower row), on every layout and isa."""
    basis = np.ones((3, 4), np.float32)
    rows = np.arange(12, dtype=np.uint8).reshape(6, 2)
    queries = np.ones((2, 3), np.float32)
    for slots in (0, 2):
        shape = (2, 2, slots) if nibbles else (2, slots)
        slot_values = np.ones((*shape, 16 if nibbles else 256), np.float32)
        for layout in LAYOUTS:
            for isa in ISAS:
                codec = _core.TableCodec.projected(
                    basis, np.full(shape, -1, np.int64), slot_values, layout, isa
                )
                s, i = codec.search(queries, store(rows, layout), 6)
                assert i.tolist() == [list(range(6))] * 2 and bits_equal(s, np.zeros((2, 6))), (slots, layout)


def test_projected_nibble_slots_score_a_rotated_reconstruction():
    """A real use: 4-bit codes of a rotation of the vectors, two dimensions a byte (low nibble dimension
    ``2b``, high ``2b + 1``), each with its own 16 levels: the score of a code is the inner product of
    the rotated query with the reconstructed rotated vector (float32 rounding aside)."""
    rng = np.random.default_rng(35)
    dims, n = 16, 500
    rotation, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
    basis = rotation.astype(np.float32)
    levels = np.sort(rng.normal(size=(dims, 16)), axis=1).astype(np.float32)
    codes4 = rng.integers(0, 16, size=(n, dims), dtype=np.uint8)
    codes = qama_rs.pack_codes(codes4, 4)  # dimension 2b in the low nibble of byte b
    m = codes.shape[1]
    slot_dims = np.arange(dims, dtype=np.int64).reshape(m, 2, 1)
    slot_values = levels.reshape(m, 2, 1, 16)
    queries = rng.normal(size=(3, dims)).astype(np.float32)
    recon = levels[np.arange(dims), codes4].astype(np.float64)
    exact = (queries.astype(np.float64) @ basis.astype(np.float64)) @ recon.T
    for layout in LAYOUTS:
        codec = _core.TableCodec.projected(basis, slot_dims, slot_values, layout)
        s, i = codec.search(queries, store(codes, layout), 20)
        np.testing.assert_allclose(s, np.take_along_axis(exact, i, axis=1), atol=1e-4)
        np.testing.assert_array_equal(i, np.argsort(-exact, axis=1, kind="stable")[:, :20])
        # The same codes as per-dimension reconstruction values of the rotated queries.
        s_recon, i_recon = _core.TableCodec.recon(levels, layout).search(
            queries @ basis, store(codes, layout), 20
        )
        np.testing.assert_array_equal(i, i_recon)
        np.testing.assert_allclose(s, s_recon, atol=1e-4)


def test_projected_argument_errors_name_the_argument():
    basis = np.ones((3, 4), np.float32)
    slot_dims = np.zeros((2, 1), np.int64)
    slot_values = np.ones((2, 1, 256), np.float32)
    projected = _core.TableCodec.projected
    with pytest.raises(qama_rs.QamaTypeError, match="basis must have dtype float32"):
        projected(basis.astype(np.float64), slot_dims, slot_values)
    with pytest.raises(qama_rs.QamaError, match="basis must be a 2-D array"):
        projected(basis.reshape(-1), slot_dims, slot_values)
    with pytest.raises(qama_rs.QamaTypeError, match="basis must be C-contiguous"):
        projected(np.ones((3, 8), np.float32)[:, ::2], slot_dims, slot_values)
    for empty in (np.zeros((0, 4), np.float32), np.zeros((3, 0), np.float32)):
        with pytest.raises(qama_rs.QamaError, match="basis has 0 values"):
            projected(empty, slot_dims, slot_values)
    with pytest.raises(qama_rs.QamaTypeError, match="slot_dims must have dtype int64"):
        projected(basis, slot_dims.astype(np.int32), slot_values)
    with pytest.raises(qama_rs.QamaTypeError, match="slot_values must have dtype float32"):
        projected(basis, slot_dims, slot_values.astype(np.float16))
    for shape in ((2, 1, 16), (2, 256), (2, 3, 1, 16), (2, 1, 1, 256)):
        with pytest.raises(
            qama_rs.QamaError,
            match=r"slot_values has shape \[.*\]; expected \(m, T, 256\) or \(m, 2, T, 16\)",
        ):
            projected(basis, slot_dims, np.ones(shape, np.float32))
    with pytest.raises(qama_rs.QamaError, match=r"slot_dims has shape \[2, 2\]; slot_values needs \[2, 1\]"):
        projected(basis, np.zeros((2, 2), np.int64), slot_values)
    with pytest.raises(
        qama_rs.QamaError, match=r"slot_dims has shape \[2, 1\]; slot_values needs \[2, 2, 1\]"
    ):
        projected(basis, slot_dims, np.ones((2, 2, 1, 16), np.float32))
    with pytest.raises(qama_rs.QamaError, match="slot_dims value 1099511627776 is too large"):
        projected(basis, np.full((2, 1), 2**40, np.int64), slot_values)
    with pytest.raises(qama_rs.QamaError, match="layout"):
        projected(basis, slot_dims, slot_values, "columns")
    with pytest.raises(qama_rs.QamaError, match="isa"):
        projected(basis, slot_dims, slot_values, "rows", "sse9")
    # Queries: float32 (nq, dims), finite; tables that overflow float32 are refused.
    codec = projected(basis, slot_dims, slot_values, "rows")
    rows = store(np.zeros((3, 2), np.uint8))
    with pytest.raises(qama_rs.QamaError, match="queries has 4 columns; the codec projects 3 dimensions"):
        codec.search(np.ones((1, 4), np.float32), rows, 1)
    with pytest.raises(qama_rs.QamaTypeError, match="queries must have dtype float32"):
        codec.search(np.ones((1, 3)), rows, 1)
    with pytest.raises(qama_rs.QamaError, match=r"queries\[0, 1\] = NaN is not finite"):
        codec.search(np.array([[0, np.nan, 0]], np.float32), rows, 1)
    with pytest.raises(
        qama_rs.QamaError, match=r"^queries\[0\] entries reach \S+ per row; scores would overflow"
    ):
        codec.search(np.full((1, 3), 1e38, np.float32), rows, 1)


def test_projected_value_errors_name_the_argument():
    """Values the projection cannot use are refused naming the argument that holds them."""
    basis = np.ones((3, 4), np.float32)
    slot_dims = np.zeros((2, 1), np.int64)
    slot_values = np.ones((2, 1, 256), np.float32)
    projected = _core.TableCodec.projected
    with pytest.raises(qama_rs.QamaError, match=r"\bslot_dims\b.*not below the width 4"):
        projected(basis, np.array([[0], [4]], np.int64), slot_values)
    bad = slot_values.copy()
    bad[1, 0, 7] = np.nan
    with pytest.raises(qama_rs.QamaError, match=r"\bslot_values\b.*not finite"):
        projected(basis, slot_dims, bad)
    with pytest.raises(qama_rs.QamaError, match=r"\bbasis\b.*not finite"):
        projected(np.full((3, 4), np.inf, np.float32), slot_dims, slot_values)
    with pytest.raises(qama_rs.QamaError, match=r"\b(slot_values|slot_dims)\b"):
        projected(basis, np.zeros((0, 1), np.int64), np.zeros((0, 1, 256), np.float32))
