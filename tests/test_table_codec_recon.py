"""``TableCodec.recon`` (per-dimension reconstruction values): bit-for-bit parity of every
instruction-set level and layout with the NumPy reference, closeness to the float reconstruction, the
quantized block kernel's exactness, ties, stores of several segments and lists with labels,
candidates (``score`` / ``rescore``), argument errors naming the argument, and ``recon_table``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import _reference as ref
import qama_rs
from _table_helpers import BITS, ISAS, LAYOUTS, bits_equal, layouts_for, random_case, split_store, store
from qama_rs import _core
from qama_rs.index.codecs import recon_table


# ------------------------------------------------------------------------ scoring parity
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("dims", [1, 5, 13, 64, 384])
def test_every_isa_and_layout_equals_the_reference_bit_for_bit(bits, dims):
    rng = np.random.default_rng(bits * 1000 + dims)
    codes, recon, queries = random_case(rng, 301, dims, bits)
    packed = ref.asym_pack(codes, bits)
    want_s, want_i = ref.asym_search(queries, recon, packed, 20)
    for layout in layouts_for(bits):
        rows = store(packed, layout)
        for isa in ISAS:
            codec = _core.TableCodec.recon(recon, layout, isa)
            assert (codec.layout, codec.isa, codec.row_units) == (layout, isa, packed.shape[1])
            assert codec.block_rows == (32 if layout == "blocks" else 1)
            s, i = codec.search(queries, rows, 20)
            assert s.dtype == np.float32 and i.dtype == np.int64
            assert bits_equal(s, want_s), (layout, isa)
            np.testing.assert_array_equal(i, want_i, err_msg=f"{layout} {isa}")


def test_the_default_isa_is_the_best_and_scalar_is_always_there():
    assert ISAS[-1] == "scalar" and ISAS[0] == _core.best_isa() == qama_rs.best_isa()
    assert set(ISAS) <= {"scalar", "avx2", "avx512"}
    assert _core.TableCodec.given(3).isa == _core.best_isa()
    assert _core.TableCodec.recon(np.zeros((3, 4), np.float32)).layout == "blocks"


@pytest.mark.parametrize("bits", BITS)
def test_scores_match_float_reconstruction_within_tolerance(bits):
    rng = np.random.default_rng(bits)
    codes, recon, queries = random_case(rng, 500, 100, bits, nq=5)
    exact = queries.astype(np.float64) @ ref.asym_reconstruct(codes, recon).astype(np.float64).T
    scores = ref.asym_scores(queries, recon, ref.asym_pack(codes, bits))
    np.testing.assert_allclose(scores, exact, rtol=0, atol=2e-4)
    # The engine's top-k is the float top-k wherever the float scores are not within rounding.
    codec = _core.TableCodec.recon(recon, "rows")
    s, i = codec.search(queries, store(ref.asym_pack(codes, bits)), 500)
    np.testing.assert_allclose(s, np.take_along_axis(exact, i, axis=1), atol=2e-4)
    assert (np.diff(s, axis=1) <= 0).all()


def test_block_kernel_is_exact_where_quantized_scores_misrank():
    """Two documents whose scores differ by far less than the quantization step: the 8-bit lookup
    tables give both the same (or reversed) integer score, yet the block search returns the float
    order, with the float scores."""
    dims = 64
    recon = np.tile(np.array([-1.5, -0.5, 0.5, 1.5], dtype=np.float32), (dims, 1))
    query = np.full((1, dims), 0.1, dtype=np.float32)
    query[0, 0] = 0.1 + 1e-4  # a tiny edge for documents with a high code in dimension 0
    base = np.full(dims, 2, dtype=np.uint8)
    better, worse = base.copy(), base.copy()
    better[0], better[1] = 3, 2
    worse[0], worse[1] = 2, 3  # same codes, swapped: the float scores differ by 1e-4
    codes = np.stack([worse, better])
    # Replica of the engine's quantization of byte 0's low nibble (dims 0 and 1): one step is the
    # largest per-byte spread / 254; both documents land on the same integer entry.
    spread = 3.0 * (query[0, 0] + query[0, 1]) + 3.0 * (query[0, 2] + query[0, 3])
    step = spread / 254
    low = -1.5 * (query[0, 0] + query[0, 1])
    entry = [round((query[0, 0] * recon[0, d[0]] + query[0, 1] * recon[1, d[1]] - low) / step) for d in codes]
    assert entry[0] == entry[1]
    packed = ref.asym_pack(codes, 2)
    want = ref.asym_scores(query, recon, packed)[0]
    assert want[1] > want[0] and want[1] - want[0] < 2e-4
    blocks = store(packed, "blocks")
    for isa in ISAS:
        codec = _core.TableCodec.recon(recon, "blocks", isa)
        s, i = codec.search(query, blocks, 1)
        assert i.tolist() == [[1]] and bits_equal(s, [[want[1]]]), isa
        s, i = codec.search(query, blocks, 2)
        assert i.tolist() == [[1, 0]], isa


def test_ties_go_to_the_lower_row_or_label_and_k_above_n_returns_n():
    recon = np.array([[-1, 1], [-1, 1]], dtype=np.float32)
    codes = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [1, 0]], dtype=np.uint8)
    packed = qama_rs.pack_codes(codes, 1)
    query = np.array([[1, 2]], dtype=np.float32)
    labels = np.array([50, 40, 30, 20, 10], dtype=np.uint64)
    for layout in LAYOUTS:
        for isa in ISAS:
            codec = _core.TableCodec.recon(recon, layout, isa)
            s, i = codec.search(query, store(packed, layout), 10)
            assert i.tolist() == [[3, 2, 1, 4, 0]] and s.tolist() == [[3, 1, -1, -1, -3]], (layout, isa)
            # With labels, a tie goes to the lower label (rows 1 and 4 tie: labels 40 and 10).
            s, i = codec.search(query, store(packed, layout, labels=labels), 2**40)
            assert i.tolist() == [[20, 30, 10, 40, 50]] and s.tolist() == [[3, 1, -1, -1, -3]], (layout, isa)


@given(
    bits=st.sampled_from([1, 2, 4, 8]),
    lists=st.lists(st.integers(0, 70), min_size=1, max_size=4).filter(lambda sizes: sum(sizes) > 0),
    dims=st.integers(1, 40),
    k=st.integers(1, 60),
    gap=st.integers(0, 2),
    labelled=st.booleans(),
    scaled=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_stores_of_segments_lists_and_labels_score_like_one_array(
    bits, lists, dims, k, gap, labelled, scaled, seed
):
    """Rows spread over lists, each list over a base and a tail segment at non-zero offsets, with or
    without labels and scales: ``search`` is the reference over the rows in table order, ids the
    labels (or the positions: lists in order, each list's base rows then its tail rows)."""
    rng = np.random.default_rng(seed)
    n = sum(lists)
    codes, recon, queries = random_case(rng, n, dims, bits, nq=2)
    packed = ref.asym_pack(codes, bits)
    labels = rng.permutation(10 * n)[:n].astype(np.uint64) if labelled else None
    scale = rng.uniform(-1.0, 2.0, n).astype(np.float32) if scaled else None
    full = ref.asym_scores_scaled(queries, recon, packed, scale)
    want = ref.top_labelled(full, np.arange(n) if labels is None else labels, k)
    for layout in layouts_for(bits):
        rows = split_store(packed, layout, lists, labels, scale, gap)
        assert (rows.rows, rows.lists) == (n, len(lists))
        for isa in ISAS:
            s, i = _core.TableCodec.recon(recon, layout, isa).search(queries, rows, k)
            assert bits_equal(s, want[0]), (layout, isa)
            np.testing.assert_array_equal(i, want[1], err_msg=f"{layout} {isa}")


# ---------------------------------------------------------------------------- candidates
@pytest.mark.parametrize("layout", LAYOUTS)
def test_candidate_scores_equal_full_search_scores(layout):
    rng = np.random.default_rng(5)
    codes, recon, queries = random_case(rng, 400, 40, 2, nq=4)
    packed = qama_rs.pack_codes(codes, 2)
    rows = store(packed, layout)
    cands = np.stack([rng.permutation(400)[:50] for _ in range(4)]).astype(np.int64)
    shared = rng.permutation(400)[:30].astype(np.int64)
    full = ref.asym_scores(queries, recon, packed)
    sorted_cands = np.sort(cands, axis=1)  # ties by lower row: sort candidates first, then stably by score
    want_s, pos = ref.top_scores(np.take_along_axis(full, sorted_cands, axis=1), 7)
    want_shared = ref.top_scores(full[:, np.sort(shared)], 7)
    for isa in ISAS:
        codec = _core.TableCodec.recon(recon, layout, isa)
        assert bits_equal(codec.score(queries, rows, cands), np.take_along_axis(full, cands, axis=1)), isa
        assert bits_equal(codec.score(queries, rows, shared), full[:, shared]), isa
        s, i = codec.rescore(queries, rows, cands, 7)
        assert bits_equal(s, want_s), isa
        np.testing.assert_array_equal(i, np.take_along_axis(sorted_cands, pos, axis=1))
        s, i = codec.rescore(queries, rows, shared, 7)
        assert bits_equal(s, want_shared[0]), isa
        np.testing.assert_array_equal(i, np.sort(shared)[want_shared[1]])
    # Candidates are positions; results are the store's labels.
    labels = (np.arange(400, dtype=np.uint64)[::-1] * 10 + 7).copy()
    s, i = _core.TableCodec.recon(recon, layout).rescore(queries, store(packed, layout, labels), cands, 7)
    assert bits_equal(s, want_s)
    np.testing.assert_array_equal(i, labels[np.take_along_axis(sorted_cands, pos, axis=1)].astype(np.int64))


def test_candidates_beyond_the_rows_return_what_there_is():
    rng = np.random.default_rng(8)
    codes, recon, queries = random_case(rng, 10, 8, 2, nq=2)
    packed = qama_rs.pack_codes(codes, 2)
    codec = _core.TableCodec.recon(recon, "rows")
    s, i = codec.rescore(queries, store(packed), np.array([[4, 2], [9, 0]], np.int64), 2**40)
    assert (
        s.shape == i.shape == (2, 2) and sorted(i[0].tolist()) == [2, 4] and sorted(i[1].tolist()) == [0, 9]
    )
    assert codec.score(queries, store(packed), np.zeros((2, 0), np.int64)).shape == (2, 0)
    assert [a.shape for a in codec.rescore(queries, store(packed), np.zeros((2, 0), np.int64), 3)] == [
        (2, 0)
    ] * 2


# --------------------------------------------------------------------------------- errors
def test_codec_argument_errors_name_the_argument():
    recon = np.zeros((4, 4), dtype=np.float32)
    packed = np.zeros((3, 1), dtype=np.uint8)
    q = np.zeros((1, 4), dtype=np.float32)
    codec = _core.TableCodec.recon(recon, "rows")
    rows = store(packed)
    with pytest.raises(qama_rs.QamaError, match="recon has 3 columns"):
        _core.TableCodec.recon(np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(qama_rs.QamaError, match="queries has 5 columns"):
        codec.search(np.zeros((1, 5), dtype=np.float32), rows, 1)
    with pytest.raises(qama_rs.QamaTypeError, match="queries must have dtype float32"):
        codec.search(q.astype(np.float64), rows, 1)
    with pytest.raises(qama_rs.QamaError, match="k = 0"):
        codec.search(q, rows, 0)
    with pytest.raises(qama_rs.QamaError, match="k = -9223372036854775808"):
        codec.search(q, rows, -(2**80))
    with pytest.raises(qama_rs.QamaError, match=r"queries\[0, 0\] = NaN is not finite"):
        codec.search(np.full((1, 4), np.nan, dtype=np.float32), rows, 1)
    with pytest.raises(qama_rs.QamaError, match=r"recon\[0, 0\] = inf is not finite"):
        _core.TableCodec.recon(np.full((4, 4), np.inf, dtype=np.float32))
    with pytest.raises(qama_rs.QamaError, match="overflow"):
        _core.TableCodec.recon(np.full((4, 4), 1e30, np.float32), "rows").search(
            np.full((1, 4), 1e30, np.float32), rows, 1
        )
    with pytest.raises(qama_rs.QamaError, match="layout"):
        _core.TableCodec.recon(recon, "columns")
    with pytest.raises(qama_rs.QamaTypeError, match="layout must be a str"):
        _core.TableCodec.recon(recon, 3)
    with pytest.raises(qama_rs.QamaError, match="isa"):
        _core.TableCodec.recon(recon, "rows", "sse9")
    with pytest.raises(qama_rs.QamaError, match="block layout needs codes of at most 4 bits"):
        _core.TableCodec.recon(np.zeros((4, 256), dtype=np.float32), "blocks")
    with pytest.raises(qama_rs.QamaError, match="segment 0"):  # rows past the stored array
        _core.TableCodec.recon(recon, "blocks").search(q, store(np.zeros((3, 1), np.uint8)), 1)
    with pytest.raises(qama_rs.QamaError, match="store holds uint64 rows; this codec reads uint8"):
        codec.search(q, _core.Store([np.zeros(3, np.uint64)], np.array([[0, 3]], np.uint64)), 1)
    with pytest.raises(qama_rs.QamaError, match="does not fit 2 bits"):
        qama_rs.pack_codes(np.full((1, 3), 4, dtype=np.uint8), 2)
    with pytest.raises(qama_rs.QamaError, match="bits = 3"):
        qama_rs.pack_codes(np.zeros((1, 3), dtype=np.uint8), 3)
    with pytest.raises(qama_rs.QamaError, match="twice"):
        codec.rescore(q, rows, np.array([[1, 1]], dtype=np.int64), 1)
    with pytest.raises(qama_rs.QamaError, match=r"candidates\[0, 1\] = 3 is not a row"):
        codec.rescore(q, rows, np.array([[0, 3]], dtype=np.int64), 1)
    with pytest.raises(qama_rs.QamaError, match=r"candidates\[0, 0\] = -1 is not a row"):
        codec.score(q, rows, np.array([[-1]], dtype=np.int64))
    with pytest.raises(qama_rs.QamaError, match="candidates has 2 rows"):
        codec.rescore(q, rows, np.zeros((2, 1), dtype=np.int64), 1)
    with pytest.raises(qama_rs.QamaTypeError, match="candidates must have dtype int64"):
        codec.score(q, rows, np.zeros(1, dtype=np.int32))


def test_a_wrong_dtype_is_a_type_error_whatever_the_rank():
    """Arguments that take two ranks (candidates ``(nq, kc)`` or ``(kc,)``; queries ``(nq, len)`` or
    tables ``(nq, m, 256)``) report a wrong dtype as one at either rank, before the rank."""
    codec = _core.TableCodec.given(2, "rows")
    rows = store(np.zeros((3, 2), np.uint8))
    luts = np.zeros((1, 2, 256), dtype=np.float32)
    for cands in (
        np.zeros((1, 1), dtype=np.int32),
        np.zeros(1, dtype=np.uint64),
        np.zeros((1, 1, 1), np.int32),
    ):
        with pytest.raises(qama_rs.QamaTypeError, match="candidates must have dtype int64"):
            codec.score(luts, rows, cands)
        with pytest.raises(qama_rs.QamaTypeError, match="candidates must have dtype int64"):
            codec.rescore(luts, rows, cands, 1)
    for queries in (luts.astype(np.float64), luts.reshape(1, 512).astype(np.float16), np.zeros(3, np.int8)):
        with pytest.raises(qama_rs.QamaTypeError, match="queries must have dtype float32"):
            codec.search(queries, rows, 1)
    with pytest.raises(qama_rs.QamaError, match="candidates must be a 1-D array"):
        codec.score(luts, rows, np.zeros((1, 1, 1), np.int64))


# ------------------------------------------------------------------------ reconstruction tables
def test_recon_table_pads_per_dimension_levels_to_bits():
    rng = np.random.default_rng(3)
    ragged = [rng.normal(size=3).astype(np.float32) for _ in range(10)]  # 3 levels -> 2 bits
    table, bits, levels = recon_table(ragged)
    assert (bits, levels, table.shape, table.dtype) == (2, 3, (10, 4), np.float32)
    np.testing.assert_array_equal(table[:, :3], np.stack(ragged))
    assert not table[:, 3].any()
    wide, bits, levels = recon_table(rng.normal(size=(6, 200)))
    assert (bits, levels, wide.shape) == (8, 200, (6, 256))
    codes = rng.integers(0, 200, size=(40, 6), dtype=np.uint8)
    q = rng.normal(size=(2, 6)).astype(np.float32)
    packed = qama_rs.pack_codes(codes, 8)
    for isa in ISAS:
        s, i = _core.TableCodec.recon(wide, "rows", isa).search(q, store(packed), 4)
        want_s, want_i = ref.asym_search(q, wide, packed, 4)
        assert bits_equal(s, want_s), isa
        np.testing.assert_array_equal(i, want_i)
    with pytest.raises(qama_rs.QamaError, match="at most 256"):
        recon_table(np.zeros((2, 300)))
    with pytest.raises(qama_rs.QamaError, match="not finite"):
        recon_table(np.array([[0.0, np.nan]]))
    with pytest.raises(qama_rs.QamaError, match="empty"):
        recon_table([])
