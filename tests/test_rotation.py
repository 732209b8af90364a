"""Code rotations (qama_rs.qama.rotation), the label-free validation signal and their place in the head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qama_rs.qama.config import HeadConfig, QamaConfig
from qama_rs.qama.head import QamaHead, feature_width
from qama_rs.qama.rotation import equal_mass_codebook, gaussian_levels, quantization_rotation, random_rotation
from qama_rs.qama.train import TrainingData, train
from qama_rs.qama.validation import float_neighbours, holdout_rows, label_free_recall


def _quantization_error(v, rotation, count, cells="lloyd_max"):
    z = (v - v.mean(0)) @ rotation
    spread = z.std(0)
    if cells == "lloyd_max":
        codebook = gaussian_levels(count)
        cell = np.abs((z / spread)[:, :, None] - codebook).argmin(-1)  # nearest level
    else:
        codebook, bounds = equal_mass_codebook(count)
        cell = ((z / spread)[:, :, None] > bounds).sum(-1)  # the equal-mass bin
    return float(((z - codebook[cell] * spread) ** 2).sum())


def _correlated(n=600, d=16, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) * np.linspace(2.0, 0.2, d)[:, None]
    return rng.standard_normal((n, d)) @ mix


def test_gaussian_levels_are_the_lloyd_max_codebooks():
    for count in (2, 3, 4):
        levels = gaussian_levels(count)
        assert len(levels) == count and np.all(np.diff(levels) > 0)
        np.testing.assert_allclose(levels, -levels[::-1])
    # The 1-bit codebook is E|X| = sqrt(2/pi) for a standard normal.
    assert gaussian_levels(2)[1] == pytest.approx(np.sqrt(2 / np.pi), abs=1e-4)
    with pytest.raises(ValueError, match="levels"):
        gaussian_levels(5)


@pytest.mark.parametrize("cells", ["quantile", "lloyd_max"])
@pytest.mark.parametrize("count", [2, 3, 4])
def test_learned_rotation_is_orthogonal_and_beats_its_random_start(count, cells):
    v = _correlated()
    start = quantization_rotation(v, [count] * v.shape[1], iterations=0, seed=3, cells=cells)
    learned = quantization_rotation(v, [count] * v.shape[1], iterations=20, seed=3, cells=cells)
    np.testing.assert_allclose(start, random_rotation(v.shape[1], 3))
    np.testing.assert_allclose(learned.T @ learned, np.eye(v.shape[1]), atol=1e-5)
    assert _quantization_error(v, learned, count, cells) < 0.97 * _quantization_error(v, start, count, cells)
    with pytest.raises(ValueError, match="cells must be one of"):
        quantization_rotation(v, [count] * v.shape[1], cells="kmeans")


def test_rotation_starts_from_the_given_matrix():
    v = _correlated(d=8)
    start = random_rotation(8, 7)
    np.testing.assert_allclose(quantization_rotation(v, [3] * 8, iterations=0, start=start), start, atol=1e-6)
    learned = quantization_rotation(v, [3] * 8, iterations=20, start=start)
    assert _quantization_error(v, learned, 3, "quantile") < _quantization_error(v, start, 3, "quantile")
    with pytest.raises(ValueError, match="start must be an orthogonal"):
        quantization_rotation(v, [3] * 8, start=2 * np.eye(8))
    with pytest.raises(ValueError, match="start must be an orthogonal"):
        quantization_rotation(v, [3] * 8, start=np.eye(7))


def test_equal_mass_codebook_is_the_gaussian_mean_of_each_quantile_bin():
    values, bounds = equal_mass_codebook(3)
    np.testing.assert_allclose(bounds, [-0.430727, 0.430727], atol=1e-6)  # Phi^-1(1/3), Phi^-1(2/3)
    np.testing.assert_allclose(values, [-1.090799, 0.0, 1.090799], atol=1e-6)  # 3 * pdf(0.4307)
    values, bounds = equal_mass_codebook(2)
    np.testing.assert_allclose(values, gaussian_levels(2), atol=1e-4)  # one threshold: both cells agree
    # Against a sample: the mean of N(0, 1) draws inside each quartile bin.
    draws = np.random.default_rng(0).standard_normal(400_000)
    values, bounds = equal_mass_codebook(4)
    bins = np.searchsorted(bounds, draws)
    np.testing.assert_allclose([draws[bins == b].mean() for b in range(4)], values, atol=0.01)
    with pytest.raises(ValueError, match="levels must be >= 2"):
        equal_mass_codebook(1)


def test_rotation_rejects_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        quantization_rotation(np.array([[0.0, np.nan], [1.0, 2.0]]), [2, 2])
    with pytest.raises(ValueError, match="one entry per feature"):
        quantization_rotation(np.ones((4, 3)), [2, 2])
    with pytest.raises(ValueError, match="n >= 2"):
        quantization_rotation(np.ones((1, 3)), [2, 2, 2])


def test_head_applies_its_code_rotation_and_checks_it():
    head = QamaHead(HeadConfig(input_dim=16, expansion=0, levels=(16, 8)))
    z = torch.nn.functional.normalize(torch.randn(5, 16), dim=1)
    np.testing.assert_allclose(head.features(z, "2bit").numpy(), z.numpy())  # identity until fitted
    rotation = torch.from_numpy(random_rotation(16, 1)).float()
    head.set_code_rotation(16, "2bit", rotation)
    np.testing.assert_allclose(head.features(z, "2bit").numpy(), (z @ rotation).numpy(), atol=1e-6)
    assert head.code_rotation(16, "hybrid").shape == (feature_width(16, "hybrid"),) * 2 == (14, 14)
    with pytest.raises(ValueError, match="not orthogonal"):
        head.set_code_rotation(16, "2bit", 2 * rotation)
    with pytest.raises(ValueError, match="must be"):
        head.set_code_rotation(8, "2bit", rotation)


def test_float_neighbours_exclude_the_query_itself():
    docs = np.eye(6, dtype=np.float32) + 0.1
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    rows = np.array([0, 3])
    top = float_neighbours(docs, rows, k=3)
    assert top.shape == (2, 3) and 0 not in top[0] and 3 not in top[1]
    assert holdout_rows(10, 3, seed=1).tolist() == sorted(set(holdout_rows(10, 3, seed=1).tolist()))


def test_label_free_recall_is_high_for_fine_codes_and_drops_for_coarse_ones():
    from qama_rs.engine import Quantizer

    rng = np.random.default_rng(0)
    docs = rng.standard_normal((400, 8)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    rows = holdout_rows(400, 40)
    target = float_neighbours(docs, rows)
    fine = Quantizer.fit(docs, levels=64)
    coarse = Quantizer.fit(docs, "1bit")
    # 64 quantile levels: L1 distance on rank-transformed values, close to but not the cosine order (0.72).
    assert label_free_recall(docs, fine, rows, target) > 0.65
    assert label_free_recall(docs, coarse, rows, target) < label_free_recall(docs, fine, rows, target)


def test_documents_only_training_fits_rotations_that_raise_the_validation_recall(tmp_path):
    """A short documents-only run: the chosen code rotation's label-free recall beats the identity's."""
    from qama_rs.qama.model import QamaModel

    docs = _correlated(n=1500, d=32, seed=4).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    config = QamaConfig()
    config.head = HeadConfig(input_dim=32, expansion=0, levels=(32, 16))
    config.thresholds.schemes = ("1bit", "2bit")
    out = train(config.validate(), TrainingData(docs=docs), tmp_path / "run", labelled=False, progress=False)
    model = QamaModel.load(out)
    validation = model.training["validation"]
    for level in ("32", "16"):
        for scheme in ("1bit", "2bit"):
            scores = validation[level][scheme]
            assert set(scores) == {"none", "random", "itq"}
            assert max(scores.values()) > scores["none"]
    # The saved model reproduces the chosen rotation: features are the rotated slices.
    rotation = model.head.code_rotation(32, "1bit")
    np.testing.assert_allclose(rotation.T @ rotation, torch.eye(32), atol=1e-4)
    assert not torch.allclose(rotation, torch.eye(32))


def test_select_code_rotation_keeps_the_best_scoring_candidate_and_rejects_unknown_modes():
    from qama_rs.engine import Quantizer
    from qama_rs.qama.validation import select_code_rotation, validation_split

    rng = np.random.default_rng(4)
    # Variance piled on a few axes: a rotation that spreads it should code better than the raw frame.
    docs = (rng.standard_normal((500, 24)) * np.r_[np.full(4, 4.0), np.full(20, 0.3)]).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    split = validation_split(docs)

    def fit(features):
        return Quantizer.fit(features, levels=2)

    rotation, scores = select_code_rotation(docs, [2] * 24, split, fit)
    assert set(scores) == {"none", "random", "itq"}
    rows, _, target = split
    kept = label_free_recall((docs @ rotation).astype(np.float32), fit((docs @ rotation).astype(np.float32)), rows, target)
    assert kept == pytest.approx(max(scores.values())) and max(scores.values()) > scores["none"]
    identity, only = select_code_rotation(docs, [2] * 24, split, fit, modes=("none",))
    np.testing.assert_array_equal(identity, np.eye(24))
    assert only == {"none": scores["none"]}
    with pytest.raises(ValueError, match="unknown rotation mode"):
        select_code_rotation(docs, [2] * 24, split, fit, modes=("learned",))


def test_float_neighbours_in_small_chunks_equal_the_brute_force(monkeypatch):
    import qama_rs.index.tune as tuning

    rng = np.random.default_rng(6)
    docs = rng.standard_normal((400, 12)).astype(np.float32)
    rows = holdout_rows(400, 40)
    whole = float_neighbours(docs, rows)
    monkeypatch.setattr(tuning, "TRUTH_CHUNK", 64)  # seven chunks of documents
    np.testing.assert_array_equal(float_neighbours(docs, rows), whole)
    sims = docs[rows] @ docs.T
    sims[np.arange(40), rows] = -np.inf
    np.testing.assert_array_equal(whole, np.argsort(-sims, axis=1, kind="stable")[:, :10])


def test_config_checks_the_rotation_cells_and_old_configs_get_the_quantile_default():
    config = QamaConfig()
    assert config.thresholds.rotation_cells == "quantile"
    config.thresholds.rotation_cells = "nearest"
    with pytest.raises(ValueError, match="rotation_cells"):
        config.validate()
    old = QamaConfig().to_dict()
    del old["thresholds"]["rotation_cells"]  # a head saved before the option existed
    assert QamaConfig.from_dict(old).thresholds.rotation_cells == "quantile"
