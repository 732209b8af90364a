"""The Rust engine (qama_rs._core) against the pure-NumPy reference (tests/_reference.py): the
thermometer functions, and Hamming search (``HammingCodec`` over a ``Store``, ``qama_rs.search``,
``hamming_distances``) on every instruction-set level, over random shapes: dimensions and bit
counts that are not multiples of 8 or 64, n < k, heavy ties, single rows, Matryoshka prefixes, and
query batches large enough for the tiled (interleaved) kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import _reference as ref
import qama_rs
from _strategies import SEEDS, list_sizes, sizes_and_seed
from qama_rs import _core

ISAS = _core.available_isas()

# Values and thresholds come from one coarse grid, so values equal to a threshold (the tie rule:
# strictly exceeds) happen often.
GRID = np.linspace(-1.5, 1.5, 13, dtype=np.float32)

level_lists = st.lists(st.integers(2, 5) | st.sampled_from([8, 256]), min_size=1, max_size=80)


def random_thresholds(rng: np.random.Generator, levels: list[int]) -> np.ndarray:
    per_dim = [np.sort(rng.choice(GRID, size=level - 1)) for level in levels]
    return np.concatenate(per_dim).astype(np.float32)


def random_x(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    on_grid = rng.choice(GRID, size=(n, d))
    off_grid = rng.normal(size=(n, d)).astype(np.float32)
    return np.where(rng.random((n, d)) < 0.5, on_grid, off_grid).astype(np.float32)


def thermometer_case(levels: list[int], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(thresholds, x)``: random thresholds for ``levels`` and ``n`` rows of values to quantize."""
    rng = np.random.default_rng(seed)
    thresholds = random_thresholds(rng, levels)
    return thresholds, random_x(rng, n, len(levels))


def random_codes(rng: np.random.Generator, n: int, words: int, alphabet: int) -> np.ndarray:
    """Rows drawn from a few distinct codes, so equal distances (ties) are common."""
    distinct = rng.integers(0, 2**64, size=(alphabet, words), dtype=np.uint64)
    return np.ascontiguousarray(distinct[rng.integers(0, alphabet, size=n)])


def u16(levels: list[int]) -> np.ndarray:
    return np.asarray(levels, dtype=np.uint16)


# ------------------------------------------------------------------------------ quantize / expand
@given(levels=level_lists, n=st.integers(0, 9), seed=SEEDS)
def test_quantize_matches_reference(levels, n, seed):
    thresholds, x = thermometer_case(levels, n, seed)
    got = _core.quantize(x, thresholds, u16(levels))
    assert got.dtype == np.uint8 and got.shape == (n, len(levels))
    np.testing.assert_array_equal(got, ref.quantize(x, thresholds, u16(levels)))


@given(levels=level_lists, n=st.integers(0, 9), seed=SEEDS)
def test_encode_matches_reference_and_quantize_then_expand(levels, n, seed):
    thresholds, x = thermometer_case(levels, n, seed)
    got = _core.encode(x, thresholds, u16(levels))
    words = -(-sum(level - 1 for level in levels) // 64)
    assert got.dtype == np.uint64 and got.shape == (n, words)
    np.testing.assert_array_equal(got, ref.encode(x, thresholds, u16(levels)))
    np.testing.assert_array_equal(got, _core.expand(_core.quantize(x, thresholds, u16(levels)), u16(levels)))


@given(levels=level_lists, n=st.integers(0, 9), seed=SEEDS)
def test_expand_matches_reference_and_collapse_inverts_it(levels, n, seed):
    rng = np.random.default_rng(seed)
    codes = (rng.random((n, len(levels))) * np.asarray(levels)).astype(np.uint8)
    packed = _core.expand(codes, u16(levels))
    np.testing.assert_array_equal(packed, ref.expand(codes, u16(levels)))
    np.testing.assert_array_equal(_core.collapse(packed, u16(levels)), codes)


@given(levels=level_lists, seed=SEEDS)
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
@given(n=st.integers(0, 7), nbits=st.integers(1, 300), seed=SEEDS)
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
def hamming_store(database: np.ndarray) -> _core.Store:
    """``database`` as one list (a base segment and an empty tail: the index's shape)."""
    return _core.Store(
        [database, np.zeros(0, dtype=np.uint64)], np.array([[0, len(database), 0, 0]], dtype=np.uint64)
    )


def codec_search(q, db, k, nbits, isa):
    """``HammingCodec.search`` as ``(distances int32, ids)``: its scores are ``-distance``."""
    codec = _core.HammingCodec(db.shape[1], nbits, isa)
    scores, ids = codec.search(q, hamming_store(db), k)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    distances = -scores
    assert np.array_equal(distances, np.round(distances))
    return distances.astype(np.int32), ids


@given(**sizes_and_seed(nq=5, n=40, words=20, alphabet=6), nbits_frac=st.floats(0.0, 1.0))
def test_hamming_distances_match_reference_on_every_isa(nq, n, words, alphabet, nbits_frac, seed):
    rng = np.random.default_rng(seed)
    q = random_codes(rng, nq, words, alphabet)
    db = random_codes(rng, n, words, alphabet)
    nbits = max(1, round(nbits_frac * 64 * words))
    expected = ref.hamming_distances(q, db, nbits)
    for isa in ISAS:
        got = _core.hamming_distances(q, db, nbits, isa)
        assert got.dtype == np.int32 and got.shape == (nq, n)
        np.testing.assert_array_equal(got, expected, err_msg=isa)
        candidates = np.arange(n, dtype=np.int64)
        scores = _core.HammingCodec(words, nbits, isa).score(q, hamming_store(db), candidates)
        np.testing.assert_array_equal(-scores, expected, err_msg=isa)


@given(**sizes_and_seed(nq=20, n=60, k=70, words=20, alphabet=8), prefix=st.booleans())
def test_search_matches_reference_on_every_isa(nq, n, k, words, alphabet, prefix, seed):
    rng = np.random.default_rng(seed)
    q = random_codes(rng, nq, words, alphabet)
    db = random_codes(rng, n, words, alphabet)
    nbits = int(rng.integers(1, 64 * words + 1)) if prefix else None
    expected_d, expected_i = ref.search(q, db, k, nbits)
    for isa in ISAS:
        for d, i in (codec_search(q, db, k, nbits, isa), qama_rs.search(q, db, k, nbits=nbits, isa=isa)):
            assert d.dtype == np.int32 and i.dtype == np.int64
            assert d.shape == i.shape == (nq, min(k, n))
            np.testing.assert_array_equal(d, expected_d, err_msg=isa)
            np.testing.assert_array_equal(i, expected_i, err_msg=isa)


@given(**sizes_and_seed(nq=12, n=60, k=30, words=9, alphabet=8))
def test_rescore_of_candidates_matches_reference_on_every_isa(nq, n, k, words, alphabet, seed):
    """``rescore`` of distinct candidates: the best of them, ties by the lower row."""
    rng = np.random.default_rng(seed)
    q = random_codes(rng, nq, words, alphabet)
    db = random_codes(rng, n, words, alphabet)
    cands = np.stack([rng.permutation(n)[: max(1, n // 2)] for _ in range(nq)]).astype(np.int64)
    distances = np.take_along_axis(ref.hamming_distances(q, db), cands, axis=1)
    want = ref.top_labelled(-distances.astype(np.float32), cands, k)
    for isa in ISAS:
        s, i = _core.HammingCodec(words, None, isa).rescore(q, hamming_store(db), cands, k)
        np.testing.assert_array_equal(s, want[0], err_msg=isa)
        np.testing.assert_array_equal(i, want[1], err_msg=isa)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("nq", [1, 3, 257])
def test_search_large_database_with_ties_keeps_lowest_ids(isa, nq):
    """Big enough to take the parallel paths (database tiles / query batches); ties everywhere."""
    rng = np.random.default_rng(7)
    db = random_codes(rng, 20_011, 6, alphabet=5)
    q = random_codes(rng, nq, 6, alphabet=9)
    expected_d, expected_i = ref.search(q, db, 25)
    for d, i in (codec_search(q, db, 25, None, isa), qama_rs.search(q, db, 25, isa=isa)):
        np.testing.assert_array_equal(d, expected_d)
        np.testing.assert_array_equal(i, expected_i)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("words", [1, 6, 7, 8, 15, 16, 18, 33])
def test_all_bits_differ(isa, words):
    q = np.full((5, words), np.iinfo(np.uint64).max, dtype=np.uint64)  # 5 queries: the tiled kernels too
    db = np.zeros((3, words), dtype=np.uint64)
    np.testing.assert_array_equal(_core.hamming_distances(q, db, None, isa), 64 * words)
    d, i = codec_search(q, db, 2, 64 * words - 5, isa)
    np.testing.assert_array_equal(d, 64 * words - 5)
    np.testing.assert_array_equal(i, [[0, 1]] * 5)


@given(sizes=list_sizes(30, 5), **sizes_and_seed(k=40, nprobe=(0, 6), words=4))
def test_search_lists_matches_reference_on_every_isa(sizes, k, nprobe, words, seed):
    """Each query scans the lists of its ``Plan`` in order: ``nprobe`` of them, then more while fewer
    than ``k`` results were found (labels: the store's, ties by the lower label; without labels the
    store's positions)."""
    rng = np.random.default_rng(seed)
    n, nq = sum(sizes), 6
    db = random_codes(rng, n, words, alphabet=4)
    q = random_codes(rng, nq, words, alphabet=4)
    labels = rng.permutation(3 * n)[:n].astype(np.uint64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    lists = [np.arange(starts[i], starts[i + 1]) for i in range(len(sizes))]
    width = int(rng.integers(1, len(sizes) + 1))
    order = np.stack([rng.permutation(len(sizes))[:width] for _ in range(nq)]).astype(np.int64)
    table = np.stack([starts[:-1], sizes, np.zeros(len(sizes)), np.zeros(len(sizes))], axis=1).astype(
        np.uint64
    )
    store = _core.Store([db, np.zeros(0, np.uint64)], table, [labels, np.zeros(0, np.uint64)])
    unlabelled = _core.Store([db, np.zeros(0, np.uint64)], table)
    scores = -ref.hamming_distances(q, db).astype(np.float32)
    want = ref.search_lists(scores, lists, order, nprobe, k, labels)
    want_positions = ref.search_lists(scores, lists, order, nprobe, k, np.arange(n))
    plan = _core.Plan(order, nprobe)
    for isa in ISAS:
        codec = _core.HammingCodec(words, None, isa)
        s, i = codec.search_lists(q, store, k, plan)
        np.testing.assert_array_equal(s, want[0], err_msg=isa)
        np.testing.assert_array_equal(i, want[1], err_msg=isa)
        s, i = codec.search_lists(q, unlabelled, k, plan)
        np.testing.assert_array_equal(s, want_positions[0], err_msg=isa)
        np.testing.assert_array_equal(i, want_positions[1], err_msg=isa)


def test_search_lists_bias_is_refused():
    """Hamming distances take no bias (their query is a code, not residuals): a plan with a non-zero
    bias on a list that is scanned is refused naming ``bias``; zero biases are no bias."""
    db = np.arange(6, dtype=np.uint64).reshape(6, 1)
    table = np.array([[0, 3, 0, 0], [3, 3, 0, 0]], np.uint64)
    store = _core.Store([db, np.zeros(0, np.uint64)], table)
    lists = np.array([[0, 1]], np.int64)
    codec = _core.HammingCodec(1)
    for bias in ([[0.0, 0.5]], [[-2.0, 0.0]]):
        with pytest.raises(qama_rs.QamaError, match=r"\bbias = -?\d.*: Hamming distances take no bias"):
            codec.search_lists(db[:1], store, 6, _core.Plan(lists, 2, np.array(bias, np.float32)))
    s, i = codec.search_lists(db[:1], store, 6, _core.Plan(lists, 2, np.zeros((1, 2), np.float32)))
    distances = ref.hamming_distances(db[:1], db)[0]
    np.testing.assert_array_equal(i[0], np.argsort(distances, kind="stable"))
    np.testing.assert_array_equal(-s[0], np.sort(distances))


def test_a_row_scale_is_refused():
    """Hamming codes carry no per-row factor: a store with scales is refused by every call."""
    db = np.arange(6, dtype=np.uint64).reshape(6, 1)
    store = _core.Store(
        [db, np.zeros(0, np.uint64)],
        np.array([[0, 6, 0, 0]], np.uint64),
        None,
        [np.full(6, 2.0, np.float32), np.zeros(0, np.float32)],
    )
    codec, cands = _core.HammingCodec(1), np.arange(6, dtype=np.int64)
    for call in (
        lambda: codec.search(db, store, 2),
        lambda: codec.score(db, store, cands),
        lambda: codec.rescore(db, store, cands, 2),
        lambda: codec.search_lists(db, store, 2, _core.Plan(np.zeros((6, 1), np.int64), 1)),
    ):
        with pytest.raises(qama_rs.QamaError, match="row_scale: Hamming codes carry no per-row factor"):
            call()


def test_matryoshka_prefix_through_the_quantizer_counts_the_first_dims():
    """``qama_rs.search(dims=m, quantizer=...)``: the distance over the first ``m`` quantized values
    (the thermometer L1 between their levels)."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(300, 37)).astype(np.float32)
    quantizer = qama_rs.Quantizer.fit(x, "2bit")
    codes = quantizer.encode(x)
    levels = quantizer.quantize(x).astype(np.int32)
    for m in (1, 10, 37):
        l1 = np.abs(levels[:5, None, :m] - levels[None, :, :m]).sum(axis=2)
        for isa in ISAS:
            d, i = qama_rs.search(codes[:5], codes, 300, m, quantizer=quantizer, isa=isa)
            np.testing.assert_array_equal(d, np.take_along_axis(l1, i, axis=1))
            np.testing.assert_array_equal(i, np.argsort(l1, axis=1, kind="stable"))


def test_isas_are_named_and_best_is_first():
    assert ISAS[-1] == "scalar"
    assert _core.best_isa() == ISAS[0] == qama_rs.best_isa()
    assert qama_rs.available_isas() == ISAS
    assert set(ISAS) <= {"scalar", "avx2", "avx512"}
    for isa in ISAS:
        codec = _core.HammingCodec(3, 100, isa)
        assert (codec.isa, codec.nbits, codec.row_units, codec.block_rows) == (isa, 100, 3, 1)
    assert _core.HammingCodec(2).nbits == 128 and _core.HammingCodec(2).isa == _core.best_isa()


def test_search_with_no_queries_returns_empty_results():
    db = np.zeros((4, 2), dtype=np.uint64)
    d, i = qama_rs.search(np.zeros((0, 2), dtype=np.uint64), db, 3)
    assert d.shape == i.shape == (0, 3)
    s, i = _core.HammingCodec(2).search(np.zeros((0, 2), dtype=np.uint64), hamming_store(db), 3)
    assert s.shape == i.shape == (0, 3)


# --------------------------------------------------------------------------------- bad input
def test_wrong_dtype_layout_and_rank_are_rejected_with_the_argument_name():
    db = np.zeros((4, 2), dtype=np.uint64)
    codec, store = _core.HammingCodec(2), hamming_store(db)
    with pytest.raises(TypeError, match="queries"):
        qama_rs.search(np.zeros((1, 2), dtype=np.int64), db, 1)
    with pytest.raises(TypeError, match="database"):
        qama_rs.search(db, [[0, 0]], 1)
    with pytest.raises(TypeError, match="queries"):
        codec.search(np.zeros((1, 2), dtype=np.int64), store, 1)
    with pytest.raises(TypeError, match="database.*C-contiguous"):
        _core.hamming_distances(db, np.asfortranarray(np.zeros((4, 2), dtype=np.uint64)))
    with pytest.raises(TypeError, match="queries.*C-contiguous"):
        codec.search(np.zeros((4, 4), dtype=np.uint64)[:, ::2], store, 1)
    with pytest.raises(TypeError, match=r"segments\[0\].*C-contiguous"):
        hamming_store(np.zeros((4, 4), dtype=np.uint64)[:, ::2])
    with pytest.raises(TypeError, match="x"):
        _core.encode(np.zeros((1, 2), dtype=np.float64), np.zeros(2, np.float32), u16([2, 2]))
    with pytest.raises(TypeError, match="x"):
        _core.encode(np.zeros((1, 2), dtype=">f4"), np.zeros(2, np.float32), u16([2, 2]))
    with pytest.raises(ValueError, match="queries.*2-D"):
        qama_rs.search(np.zeros(2, dtype=np.uint64), db, 1)
    with pytest.raises(ValueError, match="queries.*2-D"):
        codec.search(np.zeros(2, dtype=np.uint64), store, 1)
    with pytest.raises(TypeError, match="levels"):
        _core.expand(np.zeros((1, 2), np.uint8), np.array([2, 2]))


def test_search_argument_errors():
    db = np.zeros((4, 2), dtype=np.uint64)
    codec, store = _core.HammingCodec(2), hamming_store(db)
    for search in (lambda *a: qama_rs.search(db, db, *a), lambda *a: codec.search(db, store, *a)):
        with pytest.raises(ValueError, match="k = 0"):
            search(0)
        with pytest.raises(ValueError, match="k = -3"):
            search(-3)
    with pytest.raises(ValueError, match="words per row"):
        qama_rs.search(np.zeros((1, 3), dtype=np.uint64), db, 1)
    with pytest.raises(ValueError, match="queries has 3 words per row; the codec reads 2"):
        codec.search(np.zeros((1, 3), dtype=np.uint64), store, 1)
    with pytest.raises(ValueError, match="empty"):
        qama_rs.search(db, np.zeros((0, 2), dtype=np.uint64), 1)
    with pytest.raises(ValueError, match="nbits = 129"):
        qama_rs.search(db, db, 1, nbits=129)
    with pytest.raises(ValueError, match="nbits = 129"):
        _core.HammingCodec(2, 129)
    with pytest.raises(ValueError, match="nbits = 0"):
        _core.hamming_distances(db, db, 0)
    with pytest.raises(ValueError, match="words = 0"):
        _core.HammingCodec(0)
    with pytest.raises(ValueError, match="isa"):
        qama_rs.search(db, db, 1, isa="sse9")
    with pytest.raises(ValueError, match="isa"):
        _core.hamming_distances(db, db, None, "sse9")
    with pytest.raises(ValueError, match="isa"):
        _core.HammingCodec(2, None, "avx9")
    with pytest.raises(ValueError, match="the store holds float32 rows; this codec reads uint64"):
        codec.search(db, _core.Store([np.zeros(8, np.float32)], np.array([[0, 4]], np.uint64)), 1)
    with pytest.raises(ValueError, match="the store's rows have 3 values; this codec reads rows of 2"):
        codec.search(db, hamming_store(np.zeros((4, 3), np.uint64)), 1)
    with pytest.raises(ValueError, match="dims or nbits, not both"):
        qama_rs.search(db, db, 1, 1, nbits=3)
    with pytest.raises(ValueError, match="quantizer"):
        qama_rs.search(db, db, 1, 1)


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
    d, _ = qama_rs.search(db, db, 2)
    assert (d == 0).all()
    assert (_core.hamming_distances(db, db) == 0).all()
    s, _ = _core.HammingCodec(2).search(db, hamming_store(db), 2)
    assert (s == 0).all()


def test_avx512_isa_runs_where_the_cpu_has_it():
    """The parity tests above cover every available level; on a CPU with AVX-512 VPOPCNTDQ and VNNI
    that must include the AVX-512 kernels (a detection bug would silently test only the others)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        pytest.skip("no /proc/cpuinfo to read CPU flags from")
    if {"avx512_vpopcntdq", "avx512_vnni", "avx512f", "avx2"} <= set(flags):
        assert "avx512" in ISAS
        assert _core.best_isa() == "avx512"
    if "avx2" in flags and "popcnt" in flags:
        assert "avx2" in ISAS


@given(n=st.integers(0, 40), d=st.integers(1, 9), bad=st.sampled_from([None, np.nan, np.inf, -np.inf]), seed=SEEDS)
def test_peak_abs_is_the_largest_magnitude_or_nan_where_a_value_is_not_finite(n, d, bad, seed):
    """``peak_abs`` (``float_rows``' one-pass check of small arrays) against NumPy, every rank."""
    x = (np.random.default_rng(seed).normal(size=(n, d)) * 10.0 ** np.random.default_rng(seed).integers(-3, 30)).astype(
        np.float32
    )
    if bad is not None and x.size:
        x.flat[seed % x.size] = bad
    want = float(np.abs(x).max()) if x.size else 0.0
    got = _core.peak_abs(x)
    assert (np.isnan(got) and not np.isfinite(want)) or got == want
    assert _core.peak_abs(x.reshape(-1)) == got or np.isnan(got)


def test_float_rows_fast_check_accepts_and_refuses_what_the_numpy_check_does(monkeypatch):
    """``float_rows`` checks small arrays in one Rust pass: the same arrays pass (an unaligned one too, which
    the Rust pass cannot read and leaves to NumPy) and the same errors name the same place."""
    from qama_rs.engine import args

    rng = np.random.default_rng(5)
    buffer = np.zeros(4 * 2 * 6 + 1, np.uint8)
    unaligned = buffer[1:].view(np.float32).reshape(2, 6)
    unaligned[:] = rng.normal(size=(2, 6))
    assert not unaligned.flags.aligned
    cases = [rng.normal(size=(3, 6)).astype(np.float32), unaligned]
    for bad in (np.nan, np.inf, -np.inf, 1e30):
        x = rng.normal(size=(3, 6)).astype(np.float32)
        x[2, 4] = bad
        cases.append(x)

    def outcome(x):
        try:
            return args.float_rows(x, "xq", 6).tolist()
        except qama_rs.QamaError as err:
            return str(err)

    fast = [outcome(x) for x in cases]
    monkeypatch.setattr(args, "SMALL_CHECK", -1)  # NumPy's reductions only
    assert fast == [outcome(x) for x in cases]
    assert fast[1] == unaligned.tolist()
    assert all(isinstance(f, str) and ("row 2, column 4" in f or "magnitude" in f) for f in fast[2:])
