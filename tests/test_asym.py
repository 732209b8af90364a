"""Asymmetric scoring: the compact code layout, bit-for-bit parity of every kernel with the NumPy
reference, tolerance parity with float reconstruction, exactness of the quantized block kernel, and
qama_rs.AsymmetricIndex (search, rescoring, ids, file format, input errors)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import _reference as ref
import qama_rs
import qama_rs.engine.asym as asym_module
from qama_rs import AsymmetricIndex, Quantizer, _core

BITS = [1, 2, 4, 8]
BLOCK_KERNELS = [k for k in ("scalar", "avx2") if k in _core.asym_kernels()]
ROW_KERNELS = ["scalar", "interleaved"]


def random_case(rng, n, dims, bits, nq=3):
    codes = rng.integers(0, 1 << bits, size=(n, dims), dtype=np.uint8)
    recon = rng.normal(size=(dims, 1 << bits)).astype(np.float32)
    queries = rng.normal(size=(nq, dims)).astype(np.float32)
    return codes, recon, queries


def bits_equal(a, b):
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


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
    packed = qama_rs.asym_pack(codes, bits)
    assert packed.shape == (n, -(-dims * bits // 8)) and packed.dtype == np.uint8
    np.testing.assert_array_equal(packed, ref.asym_pack(codes, bits))
    np.testing.assert_array_equal(qama_rs.asym_unpack(packed, dims, bits), codes)


def test_field_j_sits_at_bit_j_times_bits():
    # Five 2-bit fields 3, 0, 1, 2 | 1: byte 0 = 0b10_01_00_11, byte 1 = 0b01, padding zero.
    packed = qama_rs.asym_pack(np.array([[3, 0, 1, 2, 1]], dtype=np.uint8), 2)
    np.testing.assert_array_equal(packed, [[0b1001_0011, 0b01]])
    bits = np.unpackbits(packed, axis=1, bitorder="little")[0]
    assert list(bits[:10]) == [1, 1, 0, 0, 1, 0, 0, 1, 1, 0]


def test_block_layout_round_trips():
    rng = np.random.default_rng(0)
    packed = rng.integers(0, 256, size=(77, 13), dtype=np.uint8)
    blocks = _core.asym_to_blocks(packed)
    np.testing.assert_array_equal(blocks, ref.asym_to_blocks(packed))
    np.testing.assert_array_equal(_core.asym_from_blocks(blocks, 77, 13), packed)


# ------------------------------------------------------------------------ scoring parity
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("dims", [1, 5, 13, 64, 384])
def test_every_kernel_equals_the_reference_bit_for_bit(bits, dims):
    rng = np.random.default_rng(bits * 1000 + dims)
    codes, recon, queries = random_case(rng, 301, dims, bits)
    packed = ref.asym_pack(codes, bits)
    want_s, want_i = ref.asym_search(queries, recon, packed, 20)
    for kernel in ROW_KERNELS:
        s, i = _core.asym_search(queries, recon, packed, 20, kernel)
        assert bits_equal(s, want_s), kernel
        np.testing.assert_array_equal(i, want_i)
    if bits <= 4:
        blocks = _core.asym_to_blocks(packed)
        for kernel in BLOCK_KERNELS:
            s, i = _core.asym_search_blocked(queries, recon, blocks, len(packed), 20, kernel)
            assert bits_equal(s, want_s), kernel
            np.testing.assert_array_equal(i, want_i)


@pytest.mark.parametrize("bits", BITS)
def test_scores_match_float_reconstruction_within_tolerance(bits):
    rng = np.random.default_rng(bits)
    codes, recon, queries = random_case(rng, 500, 100, bits, nq=5)
    exact = queries.astype(np.float64) @ ref.asym_reconstruct(codes, recon).astype(np.float64).T
    scores = ref.asym_scores(queries, recon, ref.asym_pack(codes, bits))
    np.testing.assert_allclose(scores, exact, rtol=0, atol=2e-4)
    # The engine's top-k is the float top-k wherever the float scores are not within rounding.
    s, i = _core.asym_search(queries, recon, ref.asym_pack(codes, bits), 500)
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
    blocks = _core.asym_to_blocks(packed)
    for kernel in BLOCK_KERNELS:
        s, i = _core.asym_search_blocked(query, recon, blocks, 2, 1, kernel)
        assert i.tolist() == [[1]] and bits_equal(s, [[want[1]]]), kernel
        s, i = _core.asym_search_blocked(query, recon, blocks, 2, 2, kernel)
        assert i.tolist() == [[1, 0]], kernel


def test_ties_go_to_the_lower_row_and_k_above_n_returns_n():
    recon = np.array([[-1, 1], [-1, 1]], dtype=np.float32)
    codes = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [1, 0]], dtype=np.uint8)
    packed = qama_rs.asym_pack(codes, 1)
    query = np.array([[1, 2]], dtype=np.float32)
    s, i = _core.asym_search(query, recon, packed, 10)
    assert i.tolist() == [[3, 2, 1, 4, 0]] and s.tolist() == [[3, 1, -1, -1, -3]]
    for kernel in BLOCK_KERNELS:
        s2, i2 = _core.asym_search_blocked(query, recon, _core.asym_to_blocks(packed), 5, 10, kernel)
        np.testing.assert_array_equal(i2, i)


def test_candidate_scores_equal_full_search_scores():
    rng = np.random.default_rng(5)
    codes, recon, queries = random_case(rng, 400, 40, 2, nq=4)
    packed = qama_rs.asym_pack(codes, 2)
    cands = np.stack([rng.permutation(400)[:50] for _ in range(4)]).astype(np.int64)
    scores = _core.asym_score_candidates(queries, recon, packed, cands)
    full = ref.asym_scores(queries, recon, packed)
    assert bits_equal(scores, np.take_along_axis(full, cands, axis=1))
    s, i = _core.asym_rescore(queries, recon, packed, cands, 7)
    order = np.argsort(cands, axis=1)  # ties by lower row: sort candidates first, then stably by score
    sorted_cands = np.take_along_axis(cands, order, axis=1)
    want_s, pos = ref.top_scores(np.take_along_axis(full, sorted_cands, axis=1), 7)
    assert bits_equal(s, want_s)
    np.testing.assert_array_equal(i, np.take_along_axis(sorted_cands, pos, axis=1))


def test_float_rescore_matches_numpy():
    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(300, 37)).astype(np.float32)
    queries = rng.normal(size=(3, 37)).astype(np.float32)
    cands = np.stack([rng.permutation(300)[:40] for _ in range(3)]).astype(np.int64)
    s, i = _core.float_rescore(queries, vectors, cands, 5)
    dots = np.einsum("qd,qkd->qk", queries.astype(np.float64), vectors[cands].astype(np.float64))
    want = np.take_along_axis(cands, np.argsort(-dots, axis=1)[:, :5], axis=1)
    np.testing.assert_array_equal(i, want)
    np.testing.assert_allclose(s, -np.sort(-dots, axis=1)[:, :5], atol=1e-5)


def test_engine_argument_errors_name_the_argument():
    recon = np.zeros((4, 4), dtype=np.float32)
    packed = np.zeros((3, 1), dtype=np.uint8)
    q = np.zeros((1, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="recon has 3 columns"):
        _core.asym_search(q, np.zeros((4, 3), dtype=np.float32), packed, 1)
    with pytest.raises(ValueError, match="codes has 2 bytes per row"):
        _core.asym_search(q, recon, np.zeros((3, 2), dtype=np.uint8), 1)
    with pytest.raises(ValueError, match="queries has 5 columns"):
        _core.asym_search(np.zeros((1, 5), dtype=np.float32), recon, packed, 1)
    with pytest.raises(TypeError, match="queries"):
        _core.asym_search(q.astype(np.float64), recon, packed, 1)
    with pytest.raises(ValueError, match="k = 0"):
        _core.asym_search(q, recon, packed, 0)
    with pytest.raises(ValueError, match="empty"):
        _core.asym_search(q, recon, packed[:0], 1)
    with pytest.raises(ValueError, match="not finite"):
        _core.asym_search(np.full((1, 4), np.nan, dtype=np.float32), recon, packed, 1)
    with pytest.raises(ValueError, match="not finite"):
        _core.asym_search(q, np.full((4, 4), np.inf, dtype=np.float32), packed, 1)
    with pytest.raises(ValueError, match="overflow"):
        _core.asym_search(
            np.full((1, 4), 1e30, dtype=np.float32), np.full((4, 4), 1e30, np.float32), packed, 1
        )
    with pytest.raises(ValueError, match="does not scan"):
        _core.asym_search(q, recon, packed, 1, "avx2")
    with pytest.raises(ValueError, match="bits <= 4"):
        wide = np.zeros((4, 256), dtype=np.float32)
        _core.asym_search_blocked(q, wide, _core.asym_to_blocks(np.zeros((3, 4), np.uint8)), 3, 1)
    with pytest.raises(ValueError, match="blocks has 5 bytes"):
        _core.asym_search_blocked(q, recon, np.zeros(5, dtype=np.uint8), 3, 1)
    with pytest.raises(ValueError, match="does not fit 2 bits"):
        qama_rs.asym_pack(np.full((1, 3), 4, dtype=np.uint8), 2)
    with pytest.raises(ValueError, match="bits = 3"):
        qama_rs.asym_pack(np.zeros((1, 3), dtype=np.uint8), 3)
    with pytest.raises(ValueError, match="twice"):
        _core.asym_rescore(q, recon, packed, np.array([[1, 1]], dtype=np.int64), 1)
    with pytest.raises(ValueError, match="not a row"):
        _core.asym_rescore(q, recon, packed, np.array([[0, 3]], dtype=np.int64), 1)
    with pytest.raises(ValueError, match="candidates has 2 rows"):
        _core.asym_rescore(q, recon, packed, np.zeros((2, 1), dtype=np.int64), 1)


# ---------------------------------------------------------------------------- AsymmetricIndex
@pytest.fixture(scope="module")
def lloyd_max_case():
    """2-bit codes from per-dimension quantile thresholds, levels at the bucket means."""
    rng = np.random.default_rng(11)
    docs = rng.normal(size=(2000, 48)).astype(np.float32)
    quantizer = Quantizer.fit(docs, "2bit")
    codes = quantizer.quantize(docs)
    recon = np.stack([[docs[codes[:, j] == c, j].mean() for c in range(4)] for j in range(48)]).astype(
        np.float32
    )
    queries = rng.normal(size=(9, 48)).astype(np.float32)
    return docs, queries, quantizer, codes, recon


def test_index_search_matches_reference_and_reconstruction(lloyd_max_case):
    docs, queries, quantizer, codes, recon = lloyd_max_case
    index = AsymmetricIndex(recon, quantizer=quantizer)
    index.add(docs)
    assert (len(index), index.bits, index.levels, index.bytes_per_vector) == (2000, 2, 4, 12)
    np.testing.assert_array_equal(index.codes, ref.asym_pack(codes, 2))
    want_s, want_i = ref.asym_search(queries, recon, index.codes, 10)
    for kernel in (None, "scalar", "interleaved", *(["avx2"] if "avx2" in BLOCK_KERNELS else [])):
        s, i = index.search(queries, 10, kernel=kernel)
        assert s.dtype == np.float32 and i.dtype == np.int64 and s.shape == (9, 10)
        assert bits_equal(s, want_s), kernel
        np.testing.assert_array_equal(i, want_i)
    np.testing.assert_allclose(index.reconstruct(), ref.asym_reconstruct(codes, recon))
    # Asymmetric scores approximate the float inner products.
    exact = queries @ docs.T
    top_exact = np.argsort(-exact, axis=1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i, top_exact, strict=True)])
    assert overlap > 0.5


def test_index_ids_rescore_and_score(lloyd_max_case):
    docs, queries, quantizer, codes, recon = lloyd_max_case
    ids = np.arange(2000, dtype=np.int64)[::-1] * 10 + 7
    index = AsymmetricIndex(recon)
    index.add_codes(codes[:1500], ids[:1500])
    index.add_codes(codes[1500:], ids[1500:])
    s, i = index.search(queries, 5)
    want_s, want_rows = ref.asym_search(queries, recon, ref.asym_pack(codes, 2), 5)
    np.testing.assert_array_equal(i, ids[want_rows])
    cand = ids[want_rows[:, ::-1]]  # reversed order: rescore sorts
    s2, i2 = index.rescore(queries, cand, 3)
    np.testing.assert_array_equal(i2, i[:, :3])
    assert bits_equal(s2, s[:, :3])
    assert bits_equal(index.score(queries, cand), s[:, ::-1])
    with pytest.raises(ValueError, match="not in the index"):
        index.rescore(queries, np.full((9, 2), 8, dtype=np.int64), 1)


def test_index_accepts_per_dimension_levels_and_pads_to_bits():
    rng = np.random.default_rng(3)
    recon = [rng.normal(size=3).astype(np.float32) for _ in range(10)]  # 3 levels -> 2 bits
    index = AsymmetricIndex(recon)
    assert (index.bits, index.levels, index.recon.shape) == (2, 3, (10, 4))
    codes = rng.integers(0, 3, size=(50, 10), dtype=np.uint8)
    index.add_codes(codes)
    with pytest.raises(ValueError, match="not below levels"):
        index.add_codes(np.full((1, 10), 3, dtype=np.uint8))
    with pytest.raises(ValueError, match="not below levels"):
        index.add_packed(qama_rs.asym_pack(np.full((1, 10), 3, dtype=np.uint8), 2))
    wide = AsymmetricIndex(rng.normal(size=(6, 200)))
    assert wide.bits == 8
    wide.add_codes(rng.integers(0, 200, size=(40, 6), dtype=np.uint8))
    q = rng.normal(size=(2, 6)).astype(np.float32)
    s, i = wide.search(q, 4)
    want_s, want_i = ref.asym_search(q, wide.recon, wide.codes, 4)
    assert bits_equal(s, want_s)
    np.testing.assert_array_equal(i, want_i)


def test_index_input_errors():
    index = AsymmetricIndex(np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="empty"):
        index.search(np.zeros((1, 4), dtype=np.float32), 1)
    with pytest.raises(ValueError, match="no quantizer"):
        index.add(np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="uint8"):
        index.add_codes(np.zeros((1, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="shape"):
        index.add_codes(np.zeros((1, 5), dtype=np.uint8))
    index.add_codes(np.zeros((2, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="already in the index"):
        index.add_codes(np.zeros((1, 4), dtype=np.uint8), ids=[1])
    with pytest.raises(ValueError, match="columns"):
        index.search(np.zeros((1, 3), dtype=np.float32), 1)
    with pytest.raises(TypeError, match="floating"):
        index.search(np.zeros((1, 4), dtype=np.int32), 1)
    with pytest.raises(ValueError, match="k = 0"):
        index.search(np.zeros((1, 4), dtype=np.float32), 0)
    with pytest.raises(ValueError, match="at most 256"):
        AsymmetricIndex(np.zeros((2, 300)))
    with pytest.raises(ValueError, match="not finite"):
        AsymmetricIndex(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="quantized values"):
        AsymmetricIndex(np.zeros((3, 4)), quantizer=Quantizer.fit(np.random.rand(50, 4), "2bit"))


# ------------------------------------------------------------------------------ persistence
def test_save_load_round_trip(tmp_path, lloyd_max_case):
    docs, queries, quantizer, codes, recon = lloyd_max_case
    index = AsymmetricIndex(recon, quantizer=quantizer)
    index.add(docs[:300], ids=np.arange(300) * 3)
    path = tmp_path / "a.qasym"
    index.save(path)
    loaded = AsymmetricIndex.load(path)
    assert loaded.quantizer == quantizer and len(loaded) == 300
    np.testing.assert_array_equal(loaded.codes, index.codes)
    np.testing.assert_array_equal(loaded.ids, index.ids)
    np.testing.assert_array_equal(loaded.recon, index.recon)
    for a, b in zip(loaded.search(queries, 7), index.search(queries, 7), strict=True):
        np.testing.assert_array_equal(a, b)
    bare = AsymmetricIndex([np.array([0.0, 1.0, 2.0])] * 5)  # 3 levels, no quantizer
    bare.add_codes(np.ones((4, 5), dtype=np.uint8))
    bare.save(path)
    again = AsymmetricIndex.load(path)
    assert again.quantizer is None and again.levels == 3 and len(again) == 4


def test_load_rejects_damaged_files(tmp_path, lloyd_max_case):
    docs, _, quantizer, _, recon = lloyd_max_case
    index = AsymmetricIndex(recon, quantizer=quantizer)
    index.add(docs[:50])
    path = tmp_path / "a.qasym"
    index.save(path)
    data = path.read_bytes()
    cases = {
        "truncated": data[:-10],
        "checksum": data[:100] + bytes([data[100] ^ 1]) + data[101:],
        "bad magic": b"NOTQAMA\0" + data[8:],
        "version 99": data[:8] + struct.pack("<I", 99) + data[12:],
        "trailing": data + b"\0",
    }
    for expected, blob in cases.items():
        path.write_bytes(blob)
        with pytest.raises(ValueError, match=expected.split()[0] if expected != "trailing" else "trailing"):
            AsymmetricIndex.load(path)


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    index = AsymmetricIndex(np.zeros((4, 2), dtype=np.float32))
    index.add_codes(np.zeros((3, 4), dtype=np.uint8))
    path = tmp_path / "a.qasym"
    index.save(path)
    before = path.read_bytes()
    index.add_codes(np.ones((3, 4), dtype=np.uint8))

    def boom(self):
        yield b"partial"
        raise OSError("disk full")

    monkeypatch.setattr(asym_module.AsymmetricIndex, "_file_chunks", boom)
    with pytest.raises(OSError, match="disk full"):
        index.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.qasym"]


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
def test_row_scale_every_kernel_equals_the_reference_bit_for_bit(bits, n, dims, nq, k, kind, seed):
    """Scaled scores are ``fl(row_scale_i * raw_i)`` on every kernel, and the block kernel's scaled
    bounds keep the top-k exact for scales of any sign (zeros tie at +0.0, lower row first)."""
    rng = np.random.default_rng(seed)
    codes, recon, queries = random_case(rng, n, dims, bits, nq)
    packed = ref.asym_pack(codes, bits)
    scale = make_scale(rng, n, kind)
    want_s, want_i = ref.top_scores_canonical(ref.asym_scores_scaled(queries, recon, packed, scale), k)
    for kernel in ROW_KERNELS:
        s, i = _core.asym_search(queries, recon, packed, k, kernel, scale)
        assert bits_equal(s, want_s), kernel
        np.testing.assert_array_equal(i, want_i)
    if bits <= 4:
        blocks = _core.asym_to_blocks(packed)
        for kernel in BLOCK_KERNELS:
            s, i = _core.asym_search_blocked(queries, recon, blocks, n, k, kernel, scale)
            assert bits_equal(s, want_s), kernel
            np.testing.assert_array_equal(i, want_i)


def test_row_scale_block_kernel_is_exact_at_scale_on_many_rows():
    """Many rows, positive scales near 1 (so the group thresholds prune) and a batch: the same
    results as the scaled float scan."""
    rng = np.random.default_rng(31)
    codes, recon, queries = random_case(rng, 5000, 96, 2, nq=40)
    packed = ref.asym_pack(codes, 2)
    scale = rng.uniform(0.9, 1.1, 5000).astype(np.float32)
    want = ref.top_scores_canonical(ref.asym_scores_scaled(queries, recon, packed, scale), 10)
    blocks = _core.asym_to_blocks(packed)
    for kernel in BLOCK_KERNELS:
        s, i = _core.asym_search_blocked(queries, recon, blocks, 5000, 10, kernel, scale)
        assert bits_equal(s, want[0]), kernel
        np.testing.assert_array_equal(i, want[1])


def test_row_scale_candidates_and_rescore():
    rng = np.random.default_rng(32)
    codes, recon, queries = random_case(rng, 400, 40, 2, nq=4)
    packed = qama_rs.asym_pack(codes, 2)
    scale = rng.uniform(-1.0, 3.0, 400).astype(np.float32)
    cands = np.stack([rng.permutation(400)[:50] for _ in range(4)]).astype(np.int64)
    full = ref.asym_scores_scaled(queries, recon, packed, scale)
    got = _core.asym_score_candidates(queries, recon, packed, cands, scale)
    assert bits_equal(got, np.take_along_axis(full, cands, axis=1))
    s, i = _core.asym_rescore(queries, recon, packed, cands, 7, scale)
    sorted_cands = np.sort(cands, axis=1)
    want_s, pos = ref.top_scores_canonical(np.take_along_axis(full, sorted_cands, axis=1), 7)
    assert bits_equal(s, want_s)
    np.testing.assert_array_equal(i, np.take_along_axis(sorted_cands, pos, axis=1))


def test_row_scale_errors_name_the_argument():
    recon = np.zeros((4, 4), dtype=np.float32)
    packed = np.zeros((3, 1), dtype=np.uint8)
    q = np.zeros((1, 4), dtype=np.float32)
    with pytest.raises(qama_rs.QamaError, match="row_scale has 2 values"):
        _core.asym_search(q, recon, packed, 1, None, np.ones(2, np.float32))
    with pytest.raises(qama_rs.QamaError, match=r"row_scale\[1\] = NaN"):
        _core.asym_search(q, recon, packed, 1, None, np.array([1, np.nan, 1], np.float32))
    with pytest.raises(qama_rs.QamaTypeError, match="row_scale must have dtype float32"):
        _core.asym_rescore(q, recon, packed, np.zeros((1, 1), np.int64), 1, np.ones(3))
    big = np.ones((4, 4), dtype=np.float32)
    with pytest.raises(qama_rs.QamaError, match="overflow"):
        _core.asym_score_candidates(
            q + 1, big, packed, np.zeros((1, 1), np.int64), np.full(3, 3e38, np.float32)
        )


def test_index_with_row_scale(tmp_path, lloyd_max_case):
    docs, queries, quantizer, codes, recon = lloyd_max_case
    scale = np.linalg.norm(docs, axis=1).astype(np.float32)
    index = AsymmetricIndex(recon, quantizer=quantizer)
    index.add(docs[:1000])  # before any scale: these rows scale by 1
    index.add(docs[1000:], row_scale=scale[1000:])
    assert index.bytes_per_vector == 12 + 4
    full_scale = np.concatenate([np.ones(1000, np.float32), scale[1000:]])
    np.testing.assert_array_equal(index.row_scale, full_scale)
    packed = ref.asym_pack(codes, 2)
    want_s, want_i = ref.top_scores_canonical(ref.asym_scores_scaled(queries, recon, packed, full_scale), 10)
    for kernel in (None, "scalar", "interleaved", *(["avx2"] if "avx2" in BLOCK_KERNELS else [])):
        s, i = index.search(queries, 10, kernel=kernel)
        assert bits_equal(s, want_s), kernel
        np.testing.assert_array_equal(i, want_i)
    s2, i2 = index.rescore(queries, want_i[:, ::-1], 4)
    np.testing.assert_array_equal(i2, want_i[:, :4])
    np.testing.assert_allclose(
        index.reconstruct([1500])[0], ref.asym_reconstruct(codes[1500:1501], recon)[0] * scale[1500]
    )
    path = tmp_path / "scaled.qasym"
    index.save(path)
    loaded = AsymmetricIndex.load(path)
    np.testing.assert_array_equal(loaded.row_scale, full_scale)
    for a, b in zip(loaded.search(queries, 7), index.search(queries, 7), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(qama_rs.QamaError, match="row_scale must have shape"):
        index.add(docs[:2], row_scale=np.ones(3))
    with pytest.raises(qama_rs.QamaError, match="not finite"):
        index.add(docs[:2], row_scale=[1.0, np.inf])


def test_version_1_files_still_load(tmp_path, lloyd_max_case):
    """A file in the version-1 layout (no flags word, no scales), written by hand."""
    docs, queries, quantizer, codes, recon = lloyd_max_case
    import hashlib

    packed = ref.asym_pack(codes[:20], 2)
    ids = np.arange(20, dtype="<i8") * 2
    body = struct.pack("<8sIIQQQQ", b"QAMAASY\0", 1, 2, 20, 48, 4, 0)
    body += recon.astype("<f4").tobytes() + packed.tobytes() + b"\0" * (-packed.size % 8) + ids.tobytes()
    path = tmp_path / "v1.qasym"
    path.write_bytes(body + hashlib.sha256(body).digest())
    loaded = AsymmetricIndex.load(path)
    assert len(loaded) == 20 and loaded.row_scale is None
    np.testing.assert_array_equal(loaded.codes, packed)
    np.testing.assert_array_equal(loaded.ids, ids)


# ------------------------------------------------------------------------------ byte-LUT (ADC)
@given(
    n=st.integers(1, 300),
    m=st.integers(1, 40),
    nq=st.integers(1, 4),
    k=st.integers(1, 50),
    scaled=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_lut_search_equals_the_reference_bit_for_bit(n, m, nq, k, scaled, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, m), dtype=np.uint8)
    luts = rng.normal(size=(nq, m, 256)).astype(np.float32)
    scale = rng.uniform(-1.0, 2.0, n).astype(np.float32) if scaled else None
    full = ref.lut_scores(luts, codes, scale)
    want_s, want_i = ref.top_scores_canonical(full, k)
    for kernel in ROW_KERNELS:
        s, i = _core.lut_search(luts, codes, k, scale, kernel)
        assert s.shape == (nq, min(k, n)) and i.dtype == np.int64
        assert bits_equal(s, want_s), kernel
        np.testing.assert_array_equal(i, want_i)
    cands = np.stack([rng.permutation(n)[: min(n, 17)] for _ in range(nq)]).astype(np.int64)
    got = _core.lut_score_candidates(luts, codes, cands, scale)
    assert bits_equal(ref.canonical_zero(got), ref.canonical_zero(np.take_along_axis(full, cands, axis=1)))
    s, i = _core.lut_rescore(luts, codes, cands, k, scale)
    sorted_cands = np.sort(cands, axis=1)
    want_s, pos = ref.top_scores_canonical(np.take_along_axis(full, sorted_cands, axis=1), k)
    assert bits_equal(s, want_s)
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
def test_lut_search_blocked_equals_the_reference_bit_for_bit(n, m, nq, k, scaled, separable, seed):
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
    want_s, want_i = ref.top_scores_canonical(ref.lut_scores(luts, codes, scale), k)
    blocks = _core.asym_to_blocks(codes)
    for kernel in BLOCK_KERNELS:
        s, i = _core.lut_search_blocked(luts, blocks, n, k, scale, kernel)
        assert bits_equal(s, want_s), kernel
        np.testing.assert_array_equal(i, want_i)


def test_lut_search_matches_product_quantization():
    """A real PQ: 4 sub-spaces of 8 dims, 256 centroids each; the LUT score of a code equals the inner
    product of the query with the reconstructed vector (float32 rounding aside)."""
    rng = np.random.default_rng(33)
    m, sub, n = 4, 8, 2000
    centroids = rng.normal(size=(m, 256, sub)).astype(np.float32)
    codes = rng.integers(0, 256, size=(n, m), dtype=np.uint8)
    recon = np.concatenate([centroids[b][codes[:, b]] for b in range(m)], axis=1)
    queries = rng.normal(size=(3, m * sub)).astype(np.float32)
    luts = np.einsum("qbd,bcd->qbc", queries.reshape(3, m, sub), centroids).astype(np.float32)
    s, i = _core.lut_search(luts, codes, 10)
    exact = queries.astype(np.float64) @ recon.astype(np.float64).T
    np.testing.assert_allclose(s, np.take_along_axis(exact, i, axis=1), atol=1e-4)
    np.testing.assert_array_equal(i, np.argsort(-exact, axis=1, kind="stable")[:, :10])


def test_lut_errors_name_the_argument():
    codes = np.zeros((3, 2), dtype=np.uint8)
    luts = np.zeros((1, 2, 256), dtype=np.float32)
    with pytest.raises(qama_rs.QamaError, match=r"luts must have shape \(nq, m, 256\)"):
        _core.lut_search(np.zeros((1, 2, 16), np.float32), codes, 1)
    with pytest.raises(qama_rs.QamaError, match="codes has 3 bytes per row"):
        _core.lut_search(luts, np.zeros((3, 3), np.uint8), 1)
    with pytest.raises(qama_rs.QamaError, match=r"luts\[0, 1, 5\] = inf"):
        bad = luts.copy()
        bad[0, 1, 5] = np.inf
        _core.lut_search(bad, codes, 1)
    with pytest.raises(qama_rs.QamaTypeError, match="luts must have dtype float32"):
        _core.lut_search(luts.astype(np.float64), codes, 1)
    with pytest.raises(qama_rs.QamaError, match="k = 0"):
        _core.lut_search(luts, codes, 0)
    with pytest.raises(qama_rs.QamaError, match="empty"):
        _core.lut_search(luts, codes[:0], 1)
    with pytest.raises(qama_rs.QamaError, match="m = 0"):
        _core.lut_search(np.zeros((1, 0, 256), np.float32), np.zeros((3, 0), np.uint8), 1)
    with pytest.raises(qama_rs.QamaError, match="not a row"):
        _core.lut_rescore(luts, codes, np.array([[3]], np.int64), 1)
    s, i = _core.lut_search(luts, codes, 2**40)
    assert s.shape == (1, 3) and i.tolist() == [[0, 1, 2]]
    blocks = _core.asym_to_blocks(codes)
    with pytest.raises(qama_rs.QamaError, match="blocks has"):
        _core.lut_search_blocked(luts, blocks[:-1], 3, 1)
    with pytest.raises(qama_rs.QamaError, match="does not scan the block layout"):
        _core.lut_search_blocked(luts, blocks, 3, 1, None, "interleaved")
    with pytest.raises(qama_rs.QamaError, match="k = 0"):
        _core.lut_search_blocked(luts, blocks, 3, 0)
    s, i = _core.lut_search_blocked(luts, blocks, 3, 2**40)
    assert s.shape == (1, 3) and i.tolist() == [[0, 1, 2]]


def test_lut_index_with_nibble_tables_scans_blocks_and_keeps_the_flag(tmp_path):
    rng = np.random.default_rng(35)
    codes = rng.integers(0, 256, size=(700, 9), dtype=np.uint8)
    lo, hi = rng.normal(size=(4, 9, 1, 16)), rng.normal(size=(4, 9, 16, 1))
    luts = (lo + hi).reshape(4, 9, 256).astype(np.float32)
    scale = rng.uniform(0.5, 1.5, 700).astype(np.float32)
    plain, nibble = qama_rs.engine.LutIndex(), qama_rs.engine.LutIndex(nibble_tables=True)
    for index in (plain, nibble):
        index.add_codes(codes[:300], row_scale=scale[:300])
    assert "nibble_tables=True" in repr(nibble) and "nibble" not in repr(plain)
    for index in (plain, nibble):  # a search, then more rows: the block copy must follow
        index.search(luts, 5)
        index.add_codes(codes[300:], row_scale=scale[300:])
    want_s, want_rows = ref.top_scores_canonical(ref.lut_scores(luts, codes, scale), 10)
    for index, kernel in ((plain, None), (nibble, None), (plain, "avx2"), (nibble, "scalar")):
        if kernel == "avx2" and "avx2" not in _core.asym_kernels():
            continue
        s, i = index.search(luts, 10, kernel)
        assert bits_equal(s, want_s), kernel
        np.testing.assert_array_equal(i, want_rows)
    path = tmp_path / "n.qlut"
    nibble.save(path)
    loaded = qama_rs.engine.LutIndex.load(path)
    assert loaded.nibble_tables and not qama_rs.engine.LutIndex.load(_saved(plain, tmp_path)).nibble_tables
    np.testing.assert_array_equal(loaded.search(luts, 10)[1], want_rows)


def _saved(index, tmp_path):
    path = tmp_path / "plain.qlut"
    index.save(path)
    return path


def test_lut_index_search_ids_save_and_mmap_load(tmp_path):
    rng = np.random.default_rng(34)
    codes = rng.integers(0, 256, size=(500, 12), dtype=np.uint8)
    luts = rng.normal(size=(5, 12, 256)).astype(np.float32)
    scale = rng.uniform(0.5, 1.5, 500).astype(np.float32)
    ids = np.arange(500, dtype=np.int64) * 7 + 3
    index = qama_rs.engine.LutIndex()
    index.add_codes(codes[:200], ids[:200], row_scale=scale[:200])
    index.add(codes[200:], ids[200:], row_scale=scale[200:])
    assert (len(index), index.m, index.bytes_per_vector) == (500, 12, 16)
    want_s, want_rows = ref.top_scores_canonical(ref.lut_scores(luts, codes, scale), 10)
    s, i = index.search(luts, 10)
    assert bits_equal(s, want_s)
    np.testing.assert_array_equal(i, ids[want_rows])
    s2, i2 = index.rescore(luts, i[:, ::-1], 3)
    np.testing.assert_array_equal(i2, i[:, :3])
    assert bits_equal(index.score(luts, i), s)
    path = tmp_path / "a.qlut"
    index.save(path)
    for mmap in (False, True):
        loaded = qama_rs.engine.LutIndex.load(path, mmap=mmap)
        assert loaded.codes.flags.writeable is False
        for a, b in zip(loaded.search(luts, 10), (s, i), strict=True):
            np.testing.assert_array_equal(a, b)
        loaded.add_codes(codes[:1], ids=[10**9], row_scale=[2.0])  # grows out of the mapping
        assert len(loaded) == 501 and loaded.row_scale[-1] == 2.0
    data = path.read_bytes()
    for expected, blob in {
        "truncated": data[:-3],
        "checksum": data[:40] + bytes([data[40] ^ 1]) + data[41:],
        "bad magic": b"NOTQAMA\0" + data[8:],
        "version 7": data[:8] + struct.pack("<I", 7) + data[12:],
        "trailing": data + b"\0",
    }.items():
        path.write_bytes(blob)
        with pytest.raises(qama_rs.QamaError, match=expected.split()[0]):
            qama_rs.engine.LutIndex.load(path)
    with pytest.raises(qama_rs.QamaError, match="empty"):
        qama_rs.engine.LutIndex().search(luts, 1)
    with pytest.raises(qama_rs.QamaError, match=r"shape \(n, 12\)"):
        index.add_codes(codes[:, :5])
    with pytest.raises(qama_rs.QamaError, match=r"luts must have shape \(nq, 12, 256\)"):
        index.search(luts[:, :5], 1)
