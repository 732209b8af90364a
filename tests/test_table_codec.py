"""``TableCodec``: the compact code layout (``pack_codes``, the 32-row block layout and its in-place
writes), bit-for-bit parity of every instruction-set level and layout with the NumPy reference
(``TableCodec.recon`` per-dimension reconstruction values and ``TableCodec.given`` byte tables), the
quantized block kernel's exactness, per-row scales, candidates (``score`` / ``rescore``), stores of
several segments and lists with labels, ``Filter`` objects (a bitmap or sorted labels),
``search_lists`` over a ``Plan``, ``TableCodec.projected`` (tables built from float queries in Rust)
against ``TableCodec.given`` fed the reference's tables, and input errors naming the argument."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import _reference as ref
import qama_rs
from qama_rs import _core
from qama_rs.index.codecs import recon_table

BITS = [1, 2, 4, 8]
ISAS = _core.available_isas()
LAYOUTS = ["rows", "blocks"]


def random_case(rng, n, dims, bits, nq=3):
    codes = rng.integers(0, 1 << bits, size=(n, dims), dtype=np.uint8)
    recon = rng.normal(size=(dims, 1 << bits)).astype(np.float32)
    queries = rng.normal(size=(nq, dims)).astype(np.float32)
    return codes, recon, queries


def bits_equal(a, b):
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def same_arrays(got, want):
    """Two results (an array or a tuple of arrays) equal in dtype, shape and every bit."""
    got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
    return len(got) == len(want) and all(
        a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))
        for a, b in zip(got, want, strict=True)
    )


def layouts_for(bits):
    """The block layout holds codes of at most 4 bits (nibble tables)."""
    return LAYOUTS if bits <= 4 else ["rows"]


def store(rows, layout="rows", labels=None, scale=None):
    """One list of ``rows`` (row-major ``uint8 (n, row_bytes)``) in ``layout``: a base segment and an
    empty tail, the shape the index builds."""
    n = len(rows)
    data = _core.to_blocks(rows) if layout == "blocks" else rows
    return _core.Store(
        [data, np.zeros(0, dtype=np.uint8)],
        np.array([[0, n, 0, 0]], dtype=np.uint64),
        None if labels is None else [np.asarray(labels, dtype=np.uint64), np.zeros(0, dtype=np.uint64)],
        None if scale is None else [np.asarray(scale, dtype=np.float32), np.zeros(0, dtype=np.float32)],
    )


def split_store(rows, layout, lists, labels=None, scale=None, gap=1):
    """``rows`` in lists of the given sizes (in order), each list's first half in a base segment and
    the rest in a tail segment after ``gap`` blocks of unrelated rows, so offsets are not zero:
    positions, labels and scales must follow the table, not the arrays."""
    n, row_bytes = rows.shape
    assert sum(lists) == n
    pad = 32 * gap
    segments = {"base": [], "tail": [np.full((pad, row_bytes), 0xA5, dtype=np.uint8)]}
    label_parts = {"base": [], "tail": [np.full(pad, 999_999, np.uint64)]}
    scale_parts = {"base": [], "tail": [np.full(pad, 7.0, np.float32)]}
    offsets = {"base": 0, "tail": pad}
    table, at = [], 0
    for size in lists:
        entry = []
        for part, lo, hi in (("base", at, at + size // 2), ("tail", at + size // 2, at + size)):
            count = hi - lo
            padded = -(-count // 32) * 32 if layout == "blocks" else count
            block = np.zeros((padded, row_bytes), np.uint8)
            block[:count] = rows[lo:hi]
            segments[part].append(block)
            if labels is not None:
                label_parts[part].append(np.concatenate([labels[lo:hi], np.zeros(padded - count, np.uint64)]))
            if scale is not None:
                scale_parts[part].append(np.concatenate([scale[lo:hi], np.ones(padded - count, np.float32)]))
            entry += [offsets[part], count]
            offsets[part] += padded
        table.append(entry)
        at += size

    def joined(parts, dtype, shape=()):
        return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros((0, *shape), dtype))

    def segment(parts):
        rows_ = joined(parts, np.uint8, (row_bytes,))
        return _core.to_blocks(rows_) if layout == "blocks" else rows_

    return _core.Store(
        [segment(segments["base"]), segment(segments["tail"])],
        np.array(table, dtype=np.uint64),
        None if labels is None else [joined(label_parts[p], np.uint64) for p in ("base", "tail")],
        None if scale is None else [joined(scale_parts[p], np.float32) for p in ("base", "tail")],
    )


# ------------------------------------------------------------------------------ code layout
@given(
    bits=st.sampled_from(BITS),
    n=st.integers(0, 40),
    dims=st.integers(1, 70),
    seed=st.integers(0, 2**32 - 1),
)
def test_pack_unpack_match_reference(bits, n, dims, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 1 << bits, size=(n, dims), dtype=np.uint8)
    packed = qama_rs.pack_codes(codes, bits)
    assert packed.shape == (n, -(-dims * bits // 8)) and packed.dtype == np.uint8
    np.testing.assert_array_equal(packed, ref.asym_pack(codes, bits))
    np.testing.assert_array_equal(qama_rs.unpack_codes(packed, dims, bits), codes)


def test_field_j_sits_at_bit_j_times_bits():
    # Five 2-bit fields 3, 0, 1, 2 | 1: byte 0 = 0b10_01_00_11, byte 1 = 0b01, padding zero.
    packed = qama_rs.pack_codes(np.array([[3, 0, 1, 2, 1]], dtype=np.uint8), 2)
    np.testing.assert_array_equal(packed, [[0b1001_0011, 0b01]])
    bits = np.unpackbits(packed, axis=1, bitorder="little")[0]
    assert list(bits[:10]) == [1, 1, 0, 0, 1, 0, 0, 1, 1, 0]


def test_block_layout_round_trips():
    rng = np.random.default_rng(0)
    packed = rng.integers(0, 256, size=(77, 13), dtype=np.uint8)
    blocks = _core.to_blocks(packed)
    np.testing.assert_array_equal(blocks, ref.asym_to_blocks(packed))
    np.testing.assert_array_equal(_core.from_blocks(blocks, 77, 13), packed)


@given(
    n=st.integers(0, 100),
    row_bytes=st.integers(1, 9),
    pieces=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_in_place_block_writes_and_removals_match_a_rebuild(n, row_bytes, pieces, seed):
    """``write_block_rows`` appends in uneven pieces and ``keep_block_rows`` compacts, in place: the
    array equals ``to_blocks`` of the same rows (zero padding included)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, size=(n, row_bytes), dtype=np.uint8)
    capacity = -(-max(n, 1) // 32) * 32 + 32
    blocks = np.zeros(capacity * row_bytes, dtype=np.uint8)
    at = 0
    for piece in [*pieces, n]:
        piece = min(piece, n - at)
        _core.write_block_rows(blocks, at, np.ascontiguousarray(rows[at : at + piece]))
        at += piece
    want = np.zeros_like(blocks)
    want[: len(ref.asym_to_blocks(rows))] = ref.asym_to_blocks(rows)
    np.testing.assert_array_equal(blocks, want)
    keep = rng.random(n) < 0.6
    assert _core.keep_block_rows(blocks, row_bytes, keep) == keep.sum()
    want = np.zeros_like(blocks)
    survivors = ref.asym_to_blocks(rows[keep])
    want[: len(survivors)] = survivors
    np.testing.assert_array_equal(blocks, want)


def test_block_writes_refuse_what_does_not_fit():
    blocks = np.zeros(32 * 3, dtype=np.uint8)
    with pytest.raises(qama_rs.QamaError, match="blocks has 96 bytes; rows 31..33 need 192"):
        _core.write_block_rows(blocks, 31, np.zeros((2, 3), np.uint8))
    with pytest.raises(qama_rs.QamaError, match="blocks has 96 bytes, too few for 33 rows"):
        _core.keep_block_rows(blocks, 3, np.ones(33, dtype=bool))
    frozen = blocks.copy()
    frozen.flags.writeable = False
    with pytest.raises(qama_rs.QamaError, match="blocks cannot be written"):
        _core.write_block_rows(frozen, 0, np.zeros((1, 3), np.uint8))
    with pytest.raises(qama_rs.QamaTypeError, match="blocks must be a 1-D NumPy array of uint8"):
        _core.keep_block_rows(blocks.reshape(3, 32), 3, np.ones(3, dtype=bool))
    assert not blocks.any()


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


# ------------------------------------------------------------------------------ given tables
@given(
    n=st.integers(1, 300),
    m=st.integers(1, 40),
    nq=st.integers(1, 4),
    k=st.integers(1, 50),
    scaled=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
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
    n=st.integers(1, 300),
    m=st.integers(1, 40),
    nq=st.integers(1, 4),
    k=st.integers(1, 50),
    scaled=st.sampled_from([None, "any", "positive"]),
    separable=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
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
    seed=st.integers(0, 2**32 - 1),
)
def test_search_lists_matches_the_reference(sizes, bits, k, nprobe, biased, filtered, seed):
    """Each query scans the lists of its ``Plan`` in order: ``nprobe`` of them, then more while fewer
    than ``k`` results were found; a list's bias is added to its scores."""
    rng = np.random.default_rng(seed)
    nq = 3
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
    dims=st.integers(1, 24),
    width=st.integers(1, 24),
    m=st.integers(1, 12),
    slots=st.integers(1, 4),
    nibbles=st.booleans(),
    empty=st.sampled_from([0.0, 0.3, 1.0]),
    n=st.integers(1, 150),
    nq=st.integers(1, 4),
    k=st.integers(1, 40),
    scaled=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
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
