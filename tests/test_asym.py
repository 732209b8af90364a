"""Asymmetric scoring: the compact code layout, bit-for-bit parity of every kernel with the NumPy
reference, tolerance parity with float reconstruction, exactness of the quantized block kernel, and
qama_rs.AsymmetricIndex (search, rescoring, ids, file format, input errors)."""

from __future__ import annotations

import struct
import threading
import time

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


def test_search_releases_the_gil():
    """The main thread keeps running while another thread searches (the core runs detached)."""
    rng = np.random.default_rng(8)
    packed = rng.integers(0, 256, size=(100_000, 96), dtype=np.uint8)
    recon = rng.normal(size=(384, 4)).astype(np.float32)
    queries = rng.normal(size=(4, 384)).astype(np.float32)
    span: dict[str, float] = {}

    def work():
        span["start"] = time.perf_counter()
        _core.asym_search(queries, recon, packed, 10, "scalar")
        span["end"] = time.perf_counter()

    worker = threading.Thread(target=work)
    stamps = []
    worker.start()
    while worker.is_alive():
        stamps.append(time.perf_counter())
    worker.join()
    quarter = (span["end"] - span["start"]) / 4
    inside = [t for t in stamps if span["start"] + quarter < t < span["end"] - quarter]
    assert inside, "the main thread never ran during the middle half of the search"


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
