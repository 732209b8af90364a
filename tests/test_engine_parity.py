"""The Rust engine (qama_rs._core) against the pure-NumPy reference (qama_rs._reference), and every
SIMD backend against every other, over random shapes: dimensions and bit counts that are not
multiples of 8 or 64, n < k, heavy ties, single rows, Matryoshka prefixes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import _reference as ref
from qama_rs import _core

BACKENDS = _core.available_backends()

# Values and thresholds come from one coarse grid, so values equal to a threshold (the tie rule:
# strictly exceeds) happen often.
GRID = np.linspace(-1.5, 1.5, 13, dtype=np.float32)

level_lists = st.lists(st.integers(2, 5) | st.sampled_from([8, 256]), min_size=1, max_size=80)
seeds = st.integers(0, 2**32 - 1)


def random_thresholds(rng: np.random.Generator, levels: list[int]) -> np.ndarray:
    per_dim = [np.sort(rng.choice(GRID, size=level - 1)) for level in levels]
    return np.concatenate(per_dim).astype(np.float32)


def random_x(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    on_grid = rng.choice(GRID, size=(n, d))
    off_grid = rng.normal(size=(n, d)).astype(np.float32)
    return np.where(rng.random((n, d)) < 0.5, on_grid, off_grid).astype(np.float32)


def random_codes(rng: np.random.Generator, n: int, words: int, alphabet: int) -> np.ndarray:
    """Rows drawn from a few distinct codes, so equal distances (ties) are common."""
    distinct = rng.integers(0, 2**64, size=(alphabet, words), dtype=np.uint64)
    return np.ascontiguousarray(distinct[rng.integers(0, alphabet, size=n)])


def u16(levels: list[int]) -> np.ndarray:
    return np.asarray(levels, dtype=np.uint16)


# ------------------------------------------------------------------------------ quantize / expand
@given(levels=level_lists, n=st.integers(0, 9), seed=seeds)
def test_quantize_matches_reference(levels, n, seed):
    rng = np.random.default_rng(seed)
    thresholds = random_thresholds(rng, levels)
    x = random_x(rng, n, len(levels))
    got = _core.quantize(x, thresholds, u16(levels))
    assert got.dtype == np.uint8 and got.shape == (n, len(levels))
    np.testing.assert_array_equal(got, ref.quantize(x, thresholds, u16(levels)))


@given(levels=level_lists, n=st.integers(0, 9), seed=seeds)
def test_encode_matches_reference_and_quantize_then_expand(levels, n, seed):
    rng = np.random.default_rng(seed)
    thresholds = random_thresholds(rng, levels)
    x = random_x(rng, n, len(levels))
    got = _core.encode(x, thresholds, u16(levels))
    words = -(-sum(level - 1 for level in levels) // 64)
    assert got.dtype == np.uint64 and got.shape == (n, words)
    np.testing.assert_array_equal(got, ref.encode(x, thresholds, u16(levels)))
    np.testing.assert_array_equal(got, _core.expand(_core.quantize(x, thresholds, u16(levels)), u16(levels)))


@given(levels=level_lists, n=st.integers(0, 9), seed=seeds)
def test_expand_matches_reference_and_collapse_inverts_it(levels, n, seed):
    rng = np.random.default_rng(seed)
    codes = (rng.random((n, len(levels))) * np.asarray(levels)).astype(np.uint8)
    packed = _core.expand(codes, u16(levels))
    np.testing.assert_array_equal(packed, ref.expand(codes, u16(levels)))
    np.testing.assert_array_equal(_core.collapse(packed, u16(levels)), codes)


@given(levels=level_lists, seed=seeds)
def test_hamming_of_thermometer_codes_is_l1_between_levels(levels, seed):
    rng = np.random.default_rng(seed)
    codes = (rng.random((6, len(levels))) * np.asarray(levels)).astype(np.uint8)
    packed = _core.expand(codes, u16(levels))
    l1 = np.abs(codes[:, None, :].astype(np.int32) - codes[None, :, :]).sum(axis=2)
    np.testing.assert_array_equal(_core.hamming_distances(packed, packed), l1)


def test_code_equal_to_threshold_falls_in_the_lower_level():
    thresholds = np.array([-0.5, 0.0, 0.5], dtype=np.float32)
    x = np.array([[-0.5], [-0.49], [0.0], [0.5], [0.51], [-9.0]], dtype=np.float32)
    codes = _core.quantize(x, thresholds, u16([4]))
    np.testing.assert_array_equal(codes[:, 0], [0, 1, 1, 2, 3, 0])


# ------------------------------------------------------------------------------------ packing
@given(n=st.integers(0, 7), nbits=st.integers(1, 300), seed=seeds)
def test_pack_and_unpack_match_numpy_packbits(n, nbits, seed):
    bits = np.random.default_rng(seed).integers(0, 2, size=(n, nbits), dtype=np.uint8)
    packed = _core.pack_bits(bits)
    assert packed.shape == (n, -(-nbits // 64))
    np.testing.assert_array_equal(packed, ref.pack_bits(bits))
    np.testing.assert_array_equal(_core.unpack_bits(packed, nbits), bits)
    np.testing.assert_array_equal(ref.unpack_bits(packed, nbits), bits)


def test_stream_bit_order_is_little_endian_within_words():
    bits = np.zeros((1, 130), dtype=np.uint8)
    bits[0, [0, 63, 64, 129]] = 1
    np.testing.assert_array_equal(_core.pack_bits(bits), [[1 | (1 << 63), 1, 2]])


# ----------------------------------------------------------------------------- hamming / top-k
@given(
    nq=st.integers(1, 5),
    n=st.integers(1, 40),
    words=st.integers(1, 20),
    alphabet=st.integers(1, 6),
    nbits_frac=st.floats(0.0, 1.0),
    seed=seeds,
)
def test_hamming_distances_match_reference_on_every_backend(nq, n, words, alphabet, nbits_frac, seed):
    rng = np.random.default_rng(seed)
    q = random_codes(rng, nq, words, alphabet)
    db = random_codes(rng, n, words, alphabet)
    nbits = max(1, round(nbits_frac * 64 * words))
    expected = ref.hamming_distances(q, db, nbits)
    for backend in BACKENDS:
        got = _core.hamming_distances(q, db, nbits, backend)
        assert got.dtype == np.int32 and got.shape == (nq, n)
        np.testing.assert_array_equal(got, expected, err_msg=backend)


@given(
    nq=st.integers(1, 6),
    n=st.integers(1, 60),
    k=st.integers(1, 70),
    words=st.integers(1, 20),
    alphabet=st.integers(1, 8),
    prefix=st.booleans(),
    seed=seeds,
)
def test_search_matches_reference_on_every_backend(nq, n, k, words, alphabet, prefix, seed):
    rng = np.random.default_rng(seed)
    q = random_codes(rng, nq, words, alphabet)
    db = random_codes(rng, n, words, alphabet)
    nbits = int(rng.integers(1, 64 * words + 1)) if prefix else None
    expected_d, expected_i = ref.search(q, db, k, nbits)
    for backend in BACKENDS:
        d, i = _core.search(q, db, k, nbits, backend)
        assert d.dtype == np.int32 and i.dtype == np.int64
        assert d.shape == i.shape == (nq, min(k, n))
        np.testing.assert_array_equal(d, expected_d, err_msg=backend)
        np.testing.assert_array_equal(i, expected_i, err_msg=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nq", [1, 3, 257])
def test_search_large_database_with_ties_keeps_lowest_ids(backend, nq):
    """Big enough to take the parallel paths (database blocks / query batches); ties everywhere."""
    rng = np.random.default_rng(7)
    db = random_codes(rng, 20_011, 6, alphabet=5)
    q = random_codes(rng, nq, 6, alphabet=9)
    d, i = _core.search(q, db, 25, None, backend)
    expected_d, expected_i = ref.search(q, db, 25)
    np.testing.assert_array_equal(d, expected_d)
    np.testing.assert_array_equal(i, expected_i)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("words", [1, 6, 7, 8, 15, 16, 18, 33])
def test_all_bits_differ(backend, words):
    q = np.full((2, words), np.iinfo(np.uint64).max, dtype=np.uint64)
    db = np.zeros((3, words), dtype=np.uint64)
    np.testing.assert_array_equal(_core.hamming_distances(q, db, None, backend), 64 * words)
    d, i = _core.search(q, db, 2, 64 * words - 5, backend)
    np.testing.assert_array_equal(d, 64 * words - 5)
    np.testing.assert_array_equal(i, [[0, 1], [0, 1]])


def test_backends_are_named_and_best_is_first():
    assert BACKENDS[-1] == "scalar"
    assert _core.best_backend() == BACKENDS[0]
    assert set(BACKENDS) <= {"scalar", "avx2", "avx512vpopcntdq"}


def test_search_with_no_queries_returns_empty_results():
    db = np.zeros((4, 2), dtype=np.uint64)
    d, i = _core.search(np.zeros((0, 2), dtype=np.uint64), db, 3)
    assert d.shape == i.shape == (0, 3)


# --------------------------------------------------------------------------------- bad input
def test_wrong_dtype_layout_and_rank_are_rejected_with_the_argument_name():
    db = np.zeros((4, 2), dtype=np.uint64)
    with pytest.raises(TypeError, match="queries"):
        _core.search(np.zeros((1, 2), dtype=np.int64), db, 1)
    with pytest.raises(TypeError, match="database"):
        _core.search(db, [[0, 0]], 1)
    with pytest.raises(TypeError, match="database.*C-contiguous"):
        _core.search(db, np.asfortranarray(np.zeros((4, 2), dtype=np.uint64)), 1)
    with pytest.raises(TypeError, match="database.*C-contiguous"):
        _core.search(db, np.zeros((4, 4), dtype=np.uint64)[:, ::2], 1)
    with pytest.raises(TypeError, match="x"):
        _core.encode(np.zeros((1, 2), dtype=np.float64), np.zeros(2, np.float32), u16([2, 2]))
    with pytest.raises(TypeError, match="x"):
        _core.encode(np.zeros((1, 2), dtype=">f4"), np.zeros(2, np.float32), u16([2, 2]))
    with pytest.raises(ValueError, match="queries.*2-D"):
        _core.search(np.zeros(2, dtype=np.uint64), db, 1)
    with pytest.raises(TypeError, match="levels"):
        _core.expand(np.zeros((1, 2), np.uint8), np.array([2, 2]))


def test_search_argument_errors():
    db = np.zeros((4, 2), dtype=np.uint64)
    with pytest.raises(ValueError, match="k"):
        _core.search(db, db, 0)
    with pytest.raises(ValueError, match="k"):
        _core.search(db, db, -3)
    with pytest.raises(ValueError, match="words per row"):
        _core.search(np.zeros((1, 3), dtype=np.uint64), db, 1)
    with pytest.raises(ValueError, match="empty"):
        _core.search(db, np.zeros((0, 2), dtype=np.uint64), 1)
    with pytest.raises(ValueError, match="nbits"):
        _core.search(db, db, 1, 129)
    with pytest.raises(ValueError, match="nbits"):
        _core.hamming_distances(db, db, 0)
    with pytest.raises(ValueError, match="backend"):
        _core.search(db, db, 1, None, "sse9")


def test_value_errors_of_quantization():
    levels = u16([3, 2])
    good = np.array([-0.1, 0.1, 0.0], dtype=np.float32)
    with pytest.raises(ValueError, match="non-finite|NaN|finite"):
        _core.encode(np.array([[0.0, np.nan]], dtype=np.float32), good, levels)
    with pytest.raises(ValueError, match="finite|inf"):
        _core.quantize(np.array([[np.inf, 0.0]], dtype=np.float32), good, levels)
    with pytest.raises(ValueError, match="thresholds"):
        _core.encode(np.zeros((1, 2), np.float32), np.array([0.1, -0.1, 0.0], np.float32), levels)
    with pytest.raises(ValueError, match="thresholds"):
        _core.encode(np.zeros((1, 2), np.float32), good[:2], levels)
    with pytest.raises(ValueError, match="columns"):
        _core.encode(np.zeros((1, 3), np.float32), good, levels)
    with pytest.raises(ValueError, match="levels"):
        _core.encode(np.zeros((1, 2), np.float32), good, u16([1, 2]))
    with pytest.raises(ValueError):
        _core.expand(np.array([[3, 0]], dtype=np.uint8), levels)  # code 3 >= 3 levels
    with pytest.raises(ValueError):
        _core.collapse(np.array([[0b10]], dtype=np.uint64), levels)  # not a thermometer prefix
    with pytest.raises(ValueError):
        _core.pack_bits(np.array([[0, 2]], dtype=np.uint8))
    with pytest.raises(ValueError, match="nbits"):
        _core.unpack_bits(np.zeros((1, 2), np.uint64), 64)


def test_non_writeable_input_is_read_in_place():
    db = np.zeros((4, 2), dtype=np.uint64)
    db.flags.writeable = False
    d, _ = _core.search(db, db, 2)
    assert (d == 0).all()


def test_avx512_backend_runs_where_the_cpu_has_it():
    """The parity tests above cover every available backend; on a CPU with AVX-512 VPOPCNTDQ that
    must include the AVX-512 kernel (a detection bug would silently test only the others)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        pytest.skip("no /proc/cpuinfo to read CPU flags from")
    if "avx512_vpopcntdq" in flags and "avx512f" in flags:
        assert "avx512vpopcntdq" in BACKENDS
        assert _core.best_backend() == "avx512vpopcntdq"
    if "avx2" in flags:
        assert "avx2" in BACKENDS
