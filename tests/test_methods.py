"""Training-free quantizers on generated Gaussian data: tables, codes, reconstruction, scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

import _oracles
from _quantizers import PER_DIM
from qama_rs import QamaError, _core, index_factory
from qama_rs.index.codecs import recon_table
from qama_rs.quantizers import (
    AdaptiveBits,
    CalibrationFree2Bit,
    GrayTwoBit,
    Int8,
    LloydMax4Bit,
    LloydMaxEmpirical,
    LloydMaxGauss,
    MedianBinary,
    Quaternary,
    RandomizedHadamard,
    RandomOrthogonal,
    SignBinary,
    gaussian_lloyd_max,
)

DIM = 96  # >= 64 so adaptive_bits' default split applies


def _gaussian(n: int, dim: int = DIM, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-0.05, 0.05, dim)
    sigma = rng.uniform(0.02, 0.08, dim)
    x = (mu + sigma * rng.standard_normal((n, dim))).astype(np.float32)
    return x, mu, sigma


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _gaussian(20_000)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((7, DIM)).astype(np.float32)


#: Quantizers also see rotated vectors (the index's ``Orthogonal`` / ``Hadamard`` stages, 96 -> 128 padded).
ROTATION_CLASSES = [None, RandomOrthogonal, RandomizedHadamard]


def _name(value) -> str:
    return "none" if value is None else value.name


def _rotated(rotation, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """``x`` as the quantizer behind a rotation stage sees it."""
    return x if rotation is None else rotation(seed=seed).fit(x.shape[1]).apply(x)


def _engine_scores(q, prepared: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The engine's scores (``TableCodec.recon``, the index's per-dimension kernel) of every row of ``codes``."""
    table, bits, _ = recon_table(q.reconstruction_values)
    rows = _core.pack_codes(codes, bits)
    store = _core.Store([rows, np.zeros(0, np.uint8)], np.array([[0, len(rows), 0, 0]], np.uint64))
    return _core.TableCodec.recon(table, "rows").score(prepared, store, np.arange(len(rows), dtype=np.int64))


# ------------------------------------------------------------------ Gaussian tables
def test_gaussian_lloyd_max_four_levels_matches_published_table():
    bounds, levels = gaussian_lloyd_max(4)
    np.testing.assert_allclose(bounds, [-0.9816, 0.0, 0.9816], atol=1e-4)
    np.testing.assert_allclose(levels, [-1.5104, -0.4528, 0.4528, 1.5104], atol=1e-4)
    assert bounds[1] == 0.0 and levels[0] == -levels[3]


@pytest.mark.parametrize("n_levels", [2, 4, 8, 16])
def test_gaussian_lloyd_max_is_a_fixed_point(n_levels):
    bounds, levels = gaussian_lloyd_max(n_levels)
    edges = np.concatenate(([-np.inf], bounds, [np.inf]))
    phi = np.exp(-0.5 * edges**2) / math.sqrt(2 * math.pi)
    centroids = (phi[:-1] - phi[1:]) / (ndtr(edges[1:]) - ndtr(edges[:-1]))
    np.testing.assert_allclose(levels, centroids, atol=1e-9)
    np.testing.assert_allclose(bounds, 0.5 * (levels[:-1] + levels[1:]), atol=1e-12)
    if n_levels == 2:
        np.testing.assert_allclose(levels, [-math.sqrt(2 / math.pi), math.sqrt(2 / math.pi)])
    if n_levels == 16:
        assert levels[-1] == pytest.approx(2.7326, abs=1e-4)  # Max (1960), 16-level table


@pytest.mark.parametrize("bad", [1, 0, 257, 4.0])
def test_gaussian_lloyd_max_rejects_bad_level_counts(bad):
    with pytest.raises(ValueError, match="n_levels"):
        gaussian_lloyd_max(bad)


# ------------------------------------------------------- fitted statistics on Gaussians
def _tol(sigma: np.ndarray, n: int) -> np.ndarray:
    return 6 * sigma / math.sqrt(n)  # several standard errors of a quantile / mean estimate


def _assert_within(actual: np.ndarray, expected: np.ndarray, tol: np.ndarray) -> None:
    """Per-dimension absolute tolerance ``tol`` (shape (d,)) on (d, k) tables."""
    err = np.abs(actual - expected)
    assert (err < tol[:, None]).all(), f"max error/tol {np.max(err / tol[:, None]):.2f}"


def test_lloyd_max_gauss_thresholds_and_levels(data):
    x, mu, sigma = data
    q = LloydMaxGauss().fit(x)
    t, lv = np.stack(q.thresholds), np.stack(q.reconstruction_values)
    _assert_within(t, (mu[:, None] + sigma[:, None] * [-0.9816, 0, 0.9816]), _tol(sigma, len(x)))
    expected = mu[:, None] + sigma[:, None] * [-1.5104, -0.4528, 0.4528, 1.5104]
    _assert_within(lv, expected, _tol(sigma, len(x)))
    # the thresholds are exactly median + std * table
    np.testing.assert_allclose(t[:, 1], np.median(x, axis=0), rtol=1e-6)


def test_quaternary_quartiles_and_centroids(data):
    x, mu, sigma = data
    q = Quaternary().fit(x)
    z = ndtri([0.25, 0.5, 0.75])
    t, lv = np.stack(q.thresholds), np.stack(q.reconstruction_values)
    _assert_within(t, mu[:, None] + sigma[:, None] * z, _tol(sigma, len(x)))
    edges = np.concatenate(([-np.inf], z, [np.inf]))
    phi = np.exp(-0.5 * edges**2) / math.sqrt(2 * math.pi)
    centroid = (phi[:-1] - phi[1:]) / 0.25
    _assert_within(lv, (mu[:, None] + sigma[:, None] * centroid), _tol(sigma, len(x)))
    # levels are the exact bucket means of the corpus
    codes = q.encode(x)
    for j in (0, 17, DIM - 1):
        means = [x[codes[:, j] == c, j].mean() for c in range(4)]
        np.testing.assert_allclose(lv[j], means, rtol=1e-5)


def test_lloyd_max_empirical_converges_to_gaussian_table(data):
    x, mu, sigma = data
    q = LloydMaxEmpirical().fit(x)
    lv = np.stack(q.reconstruction_values)
    _assert_within(
        lv, (mu[:, None] + sigma[:, None] * [-1.5104, -0.4528, 0.4528, 1.5104]), 3 * _tol(sigma, len(x))
    )
    # it is a fixed point on the data: each level is the mean of its bucket
    codes = q.encode(x)
    j = 5
    np.testing.assert_allclose(lv[j], [x[codes[:, j] == c, j].mean() for c in range(4)], rtol=1e-4)


def test_calibration_free_uses_only_the_dimension(data):
    x, _, _ = data
    q = CalibrationFree2Bit().fit(x[:3])
    s = 1 / math.sqrt(DIM)
    for t, lv in zip(q.thresholds, q.reconstruction_values, strict=True):
        np.testing.assert_allclose(t, np.array([-0.9816, 0, 0.9816]) * s, atol=1e-5)
        np.testing.assert_allclose(lv, np.array([-1.5104, -0.4528, 0.4528, 1.5104]) * s, atol=1e-5)


def test_int8_spans_the_corpus_range(data):
    x, _, _ = data
    q = Int8().fit(x)
    codes = q.encode(x)
    assert (codes.min(axis=0) == 0).all() and (codes.max(axis=0) == 255).all()
    step = (x.max(axis=0) - x.min(axis=0)) / 256
    assert np.all(np.abs(q.reconstruct(codes) - x) <= step[None, :] * 0.5 + 1e-6)
    # outside the calibration range: clipped to the end codes
    far = np.vstack([x.min(axis=0) - 1, x.max(axis=0) + 1])
    assert (q.encode(far) == [[0], [255]]).all()


def test_median_binary_centres_on_the_median(data, queries):
    x, mu, sigma = data
    q = MedianBinary().fit(x)
    np.testing.assert_allclose(q.center, np.median(x, axis=0))
    codes = q.encode(x[:50])
    np.testing.assert_array_equal(codes, (x[:50] > q.center).astype(np.uint8))
    expected = (queries - q.center) @ np.where(x[:50] > q.center, 1.0, -1.0).T
    np.testing.assert_allclose(_oracles.quantizer_scores(q, queries, codes), expected, rtol=1e-5, atol=1e-5)


def test_sign_binary_scores_query_against_signs(data, queries):
    x, _, _ = data
    q = SignBinary().fit(x)
    codes = q.encode(x[:50])
    np.testing.assert_array_equal(codes, (x[:50] > 0).astype(np.uint8))
    np.testing.assert_allclose(_oracles.quantizer_scores(q, queries, codes), queries @ np.sign(x[:50]).T, rtol=1e-5, atol=1e-5)


def test_adaptive_bits_allocation_and_size(data):
    x, _, sigma = data
    q = AdaptiveBits().fit(x)
    assert list(q.levels[:64]) == [16] * 64 and list(q.levels[64:]) == [4] * (DIM - 64)
    assert q.bytes_per_vector == (64 * 4 + (DIM - 64) * 2) // 8
    by_variance = AdaptiveBits(high_dims=8, order="variance").fit(x)
    top = set(np.argsort(-x.var(axis=0))[:8])
    assert set(np.flatnonzero(by_variance.levels == 16)) == top
    equal_bytes = AdaptiveBits(high_dims=16, low_dims=48).fit(x)  # 16*4 + 48*2 + 32*1 = 192 bits
    assert equal_bytes.bytes_per_vector == LloydMaxGauss().fit(x).bytes_per_vector
    with pytest.raises(ValueError, match="high_dims"):
        AdaptiveBits(high_dims=DIM + 1).fit(x)
    with pytest.raises(ValueError, match="order"):
        AdaptiveBits(order="random")


# Distortion (MSE / variance) of each scalar quantizer on a Gaussian, with a little slack.
MSE_BOUND = {
    LloydMaxGauss: 0.1175,
    LloydMaxEmpirical: 0.1175,
    GrayTwoBit: 0.1175,
    Quaternary: 0.1394,
    LloydMax4Bit: 0.009497,
}


@pytest.mark.parametrize("cls", MSE_BOUND, ids=_name)
def test_reconstruction_error_matches_theory(cls, data):
    x, _, sigma = data
    bound = MSE_BOUND[cls]
    q = cls().fit(x)
    mse = ((q.reconstruct(q.encode(x)) - x) ** 2).mean(axis=0) / sigma**2
    assert mse.mean() < bound * 1.03
    assert mse.max() < bound * 1.15


def test_calibration_free_is_lloyd_max_for_isotropic_unit_vectors():
    # Coordinates of uniformly random unit vectors are close to N(0, 1/d): the fixed table fits.
    x = np.random.default_rng(4).standard_normal((20_000, DIM))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    q = CalibrationFree2Bit().fit(x)
    mse = ((q.reconstruct(q.encode(x)) - x) ** 2).mean() * DIM
    assert mse < 0.1175 * 1.05
    # while on data with another scale it is far off: it really ignores the corpus
    assert (((q.reconstruct(q.encode(3 * x)) - 3 * x) ** 2).mean() * DIM) > 1.0


# ------------------------------------------------------------ the common interface
@pytest.mark.parametrize("rotation", ROTATION_CLASSES, ids=_name)
@pytest.mark.parametrize("cls", PER_DIM, ids=_name)
def test_interface_contract(cls, rotation, data, queries):
    x = _rotated(rotation, data[0][:3000], seed=3)
    queries = _rotated(rotation, queries, seed=3)
    q = cls().fit(x)
    codes = q.encode(x[:200])
    assert codes.dtype == np.uint8 and codes.shape == (200, q.code_dim)
    assert (codes < q.levels[None, :]).all()
    for t, lv in zip(q.thresholds, q.reconstruction_values, strict=True):
        assert t.dtype == np.float32 and lv.shape == (t.shape[0] + 1,)
        assert (np.diff(t) >= 0).all() and (np.diff(lv) >= 0).all()
    recon = q.reconstruct(codes)
    assert recon.dtype == np.float32 and recon.shape == codes.shape
    # The engine scores the codes through the reconstruction table: prepared query . reconstruction.
    scores = _engine_scores(q, q.prepare_query(queries), codes)
    assert scores.dtype == np.float32 and scores.shape == (len(queries), 200)
    np.testing.assert_allclose(scores, q.prepare_query(queries) @ recon.T, rtol=1e-5, atol=1e-5)
    assert q.bytes_per_vector == math.ceil(q.bits_per_code.sum() / 8)
    assert q.name == cls.name and q.code_dim == x.shape[1]


EXPECTED_SIZE = {  # bits per dimension, bytes per 96-d vector (no rotation)
    SignBinary: (1, 12),
    MedianBinary: (1, 12),
    Quaternary: (2, 24),
    LloydMaxGauss: (2, 24),
    LloydMaxEmpirical: (2, 24),
    LloydMax4Bit: (4, 48),
    CalibrationFree2Bit: (2, 24),
    Int8: (8, 96),
    AdaptiveBits: ((64 * 4 + 32 * 2) / 96, 40),
    GrayTwoBit: (2, 24),
}


@pytest.mark.parametrize("cls", PER_DIM, ids=_name)
def test_sizes(cls, data):
    q = cls().fit(data[0][:500])
    assert (q.bits_per_dim, q.bytes_per_vector) == pytest.approx(EXPECTED_SIZE[cls])
    # Behind the index's Hadamard stage 96 dimensions pad to 128 coded ones, and the bytes say so.
    padded = cls().fit(_rotated(RandomizedHadamard, data[0][:500]))
    assert padded.code_dim == padded.input_dim == 128
    index = index_factory(DIM, f"Hadamard,{cls.name}")
    index.train(data[0][:500])
    assert index.dims == DIM and index.codec.code_dims == 128
    if cls is not AdaptiveBits:  # the index stores every dimension at its widest code
        assert padded.bytes_per_vector == index.bytes_per_vector == EXPECTED_SIZE[cls][1] * 128 // 96


@pytest.mark.parametrize("cls", [c for c in PER_DIM if c not in (SignBinary, MedianBinary)], ids=_name)
def test_reconstruction_falls_in_its_own_bucket(cls, data):
    x = data[0][:3000]
    q = cls().fit(x)
    codes = q.encode(x)
    np.testing.assert_array_equal(q.encode(q.reconstruct(codes)), codes)


@pytest.mark.parametrize("rotation", ROTATION_CLASSES, ids=_name)
@pytest.mark.parametrize("cls", PER_DIM, ids=_name)
def test_engine_arguments_reproduce_the_codes(cls, rotation, data):
    """The NumPy reference of the Rust engine encodes exactly our codes from our export."""
    import _reference as reference
    x = _rotated(rotation, data[0][:300])
    q = cls().fit(x)
    args = q.engine_arguments()
    assert args["thresholds"].dtype == np.float32 and len(args["thresholds"]) == int((q.levels - 1).sum())
    codes = reference.quantize(q.to_code_space(x), args["thresholds"], args["levels"])
    np.testing.assert_array_equal(codes, q.encode(x))


@pytest.mark.parametrize("cls", [MedianBinary, LloydMaxGauss, Int8, AdaptiveBits], ids=_name)
def test_rust_engine_encodes_the_same_codes(cls, data):
    import qama_rs

    x = _rotated(RandomizedHadamard, data[0][:300])
    q = cls().fit(x)
    engine = qama_rs.Quantizer(**q.engine_arguments())
    np.testing.assert_array_equal(engine.quantize(q.to_code_space(x)), q.encode(x))
    # the per-dimension list form is accepted as well
    np.testing.assert_array_equal(qama_rs.Quantizer(q.thresholds).levels, q.levels)


def test_value_equal_to_threshold_falls_in_lower_bucket():
    x = np.array([[-1.0, 0.0], [0.0, 1.0], [1.0, 0.5]], dtype=np.float32)
    q = SignBinary().fit(x)
    np.testing.assert_array_equal(q.encode(x), [[0, 0], [0, 1], [1, 1]])


def test_lloyd_max_4bit_has_sixteen_levels(data):
    q = LloydMax4Bit().fit(data[0][:1000])
    assert set(q.levels) == {16} and q.bits == 4


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("cls", PER_DIM, ids=_name)
def test_bad_input_is_rejected_with_clear_errors(cls, data):
    x = data[0][:500]
    q = cls()
    with pytest.raises(RuntimeError, match="fit"):
        q.encode(x)
    bad = x.copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match=r"doc_emb.*non-finite.*row 3, column 7"):
        q.fit(bad)
    with pytest.raises(ValueError, match="doc_emb is empty"):
        q.fit(np.zeros((0, DIM), dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        q.fit(x[0])
    with pytest.raises(TypeError, match="dtype"):
        q.fit(x.astype(str))
    q.fit(x)
    with pytest.raises(ValueError, match="x has 95 dimensions"):
        q.encode(x[:, :95])
    with pytest.raises(ValueError, match="query_emb.*non-finite"):
        q.prepare_query(np.full((1, DIM), np.inf, dtype=np.float32))
    with pytest.raises(ValueError, match="query_emb has 97 dimensions"):
        q.prepare_query(np.zeros((1, DIM + 1), dtype=np.float32))
    with pytest.raises(TypeError, match="uint8"):
        q.reconstruct(q.encode(x[:2]).astype(np.int64))
    with pytest.raises(ValueError, match="shape"):
        q.reconstruct(q.encode(x[:2])[:, :-1])
    if q.levels[0] < 256:  # int8 uses every uint8 value
        too_big = q.encode(x[:2])
        too_big[0, 0] = q.levels[0]
        with pytest.raises(ValueError, match="level range"):
            q.reconstruct(too_big)


def test_unknown_names_and_bad_parameters_are_rejected():
    with pytest.raises(QamaError, match="unknown codec 'ternary'"):
        index_factory(DIM, "ternary")
    with pytest.raises(QamaError, match=r"spec stage 'lloyd_max_gauss\(bits=0\)'.*bits"):
        index_factory(DIM, "lloyd_max_gauss(bits=0)")
    with pytest.raises(TypeError, match="seed"):
        RandomOrthogonal(seed="random")
    with pytest.raises(ValueError, match="bits"):
        LloydMaxGauss(bits=0)
    with pytest.raises(ValueError, match="iterations"):
        LloydMaxEmpirical(iterations=0)


def test_methods_without_hamming_say_so(data):
    q = Int8().fit(data[0][:100])
    assert not q.supports_hamming
    with pytest.raises(NotImplementedError, match="Hamming"):
        q.pack_hamming(q.encode(data[0][:3]))
