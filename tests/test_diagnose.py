import numpy as np
import pytest

from qama_rs.eval.diagnose import embedding_stats, method_distortion


def test_embedding_stats_on_gaussian_with_known_structure():
    rng = np.random.default_rng(0)
    # Independent Gaussian dims with decreasing variance and a known median shift.
    scales = np.linspace(2.0, 0.5, 16)
    x = rng.standard_normal((4000, 16)) * scales + 0.3
    s = embedding_stats(x, prefix_dims=(4, 8, 16))
    assert abs(s["kurtosis_excess"]["mean"]) < 0.2  # Gaussian: excess kurtosis ~ 0
    assert s["median_offset"] == pytest.approx(0.09, abs=0.02)  # ‖m‖²/d = 0.3²
    assert s["mean_abs_correlation"] < 0.05
    assert s["variance_kept"]["16"]["pca"] == pytest.approx(1.0)
    # Dims are already in decreasing-variance order, so the raw prefix is (close to) PCA-optimal.
    assert s["variance_kept"]["4"]["prefix"] == pytest.approx(s["variance_kept"]["4"]["pca"], abs=0.02)


def test_method_distortion_orders_by_rate():
    rng = np.random.default_rng(1)
    docs = rng.standard_normal((2000, 32)).astype(np.float32)
    queries = rng.standard_normal((50, 32)).astype(np.float32)
    methods = {"binary": "Binary", "lloyd_max_gauss": "LloydMax2", "int8": "Int8"}
    rows = {r["method"]: r for r in method_distortion(docs, queries, methods=methods)}
    assert [r["bits_per_dim"] for r in rows.values()] == [1, 2, 8]
    assert rows["binary"]["relative_score_mse"] > rows["lloyd_max_gauss"]["relative_score_mse"]
    assert rows["lloyd_max_gauss"]["relative_score_mse"] > rows["int8"]["relative_score_mse"]
    assert rows["int8"]["kendall_tau"] > 0.99
    # A 1-bit quantizer cannot beat the Gaussian rate-distortion bound at 1 bit/dim.
    assert rows["binary"]["relative_score_mse"] >= rows["binary"]["gaussian_bound"]


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="docs"):
        embedding_stats(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        embedding_stats(np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match="dims"):
        method_distortion(np.zeros((10, 4), np.float32), np.zeros((3, 5), np.float32))
