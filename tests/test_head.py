"""The QAMA head: shapes, Matryoshka nesting, initialisations and the hybrid pair reducer."""

import math

import numpy as np
import pytest
import torch

from qama_rs.qama.config import HeadConfig
from qama_rs.qama.head import PairReducer, QamaHead

CONFIG = HeadConfig(input_dim=32, expansion=2, levels=(32, 16, 8))


def _data(n=200, d=32, seed=0):
    rng = np.random.default_rng(seed)
    # Anisotropic data so that the principal axes are well separated.
    x = rng.standard_normal((n, d)) * np.linspace(3.0, 0.1, d)
    x = x @ np.linalg.qr(rng.standard_normal((d, d)))[0]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return torch.tensor(x, dtype=torch.float32)


def test_shapes_and_normalized_nested_slices():
    head = QamaHead(HeadConfig(input_dim=32, expansion=2, levels=(32, 16, 8), init="none"))
    x = _data()
    assert head.up.weight.shape == (64, 32) and head.down.weight.shape == (32, 64)
    h = head(x)
    assert h.shape == (200, 32)
    nested = head.nested(x)
    assert list(nested) == [32, 16, 8]
    for level, z in nested.items():
        assert z.shape == (200, level)
        assert torch.allclose(z.norm(dim=1), torch.ones(200), atol=1e-5)
        # Nesting: every level is the renormalized prefix of the full output.
        assert torch.allclose(z, torch.nn.functional.normalize(h[:, :level], dim=1), atol=1e-6)
    assert torch.allclose(torch.nn.functional.normalize(nested[32][:, :8], dim=1), nested[8], atol=1e-5)


def test_identity_init_returns_the_input():
    head = QamaHead(HeadConfig(input_dim=32, expansion=2, levels=(32, 16, 8), init="identity"))
    x = _data()
    head.init_from_data(x)  # no-op for identity
    assert torch.allclose(head(x), x, atol=1e-6)


def test_pca_init_is_a_rotation_onto_the_principal_axes():
    head = QamaHead(CONFIG)
    x = _data()
    head.init_from_data(x)
    h = head(x).detach().double().numpy()
    xd = x.double().numpy()
    _, _, vt = np.linalg.svd(xd - xd.mean(0), full_matrices=False)
    # Projections of the (uncentred) input on numpy's principal axes, up to each axis' sign.
    np.testing.assert_allclose(np.abs(h), np.abs(xd @ vt.T), atol=1e-4)
    assert np.all(np.diff(h.var(0)) <= 1e-9)  # variance in decreasing order
    # A rotation: every cosine of the input is kept at full width.
    np.testing.assert_allclose(h @ h.T, xd @ xd.T, atol=1e-5)
    # The 8-d slice spans the top-8 principal subspace: its Gram matrix matches that projection's.
    top = xd @ vt[:8].T
    np.testing.assert_allclose(h[:, :8] @ h[:, :8].T, top @ top.T, atol=1e-4)


def test_pca_rotated_keeps_every_level_subspace_and_spreads_variance():
    x = _data()
    pca, rotated = (
        QamaHead(CONFIG),
        QamaHead(HeadConfig(input_dim=32, expansion=2, levels=(32, 16, 8), init="pca_rotated")),
    )
    pca.init_from_data(x)
    rotated.init_from_data(x)
    hp, hr = pca(x).detach(), rotated(x).detach()
    for level in (32, 16, 8):  # same prefix subspaces -> same truncated cosines
        assert torch.allclose(
            pca.slice(hp, level) @ pca.slice(hp, level).T,
            rotated.slice(hr, level) @ rotated.slice(hr, level).T,
            atol=1e-5,
        )
    assert not torch.allclose(hp, hr)
    # Inside the first band the variances are closer to each other than PCA's decreasing spectrum.
    spread = lambda h: (h[:, :8].var(0).max() / h[:, :8].var(0).min()).item()  # noqa: E731
    assert spread(hr) < spread(hp)


def test_pca_init_is_deterministic():
    x = _data()
    a, b = QamaHead(CONFIG), QamaHead(CONFIG)
    a.init_from_data(x)
    b.init_from_data(x)
    assert torch.equal(a.skip.weight, b.skip.weight)


def test_hybrid_features_reduce_the_last_quarter_pairwise():
    head = QamaHead(CONFIG)
    z = head.slice(head(_data()), 16)
    features = head.features(z, "hybrid")
    assert features.shape == (200, 14)  # 12 kept + the last 4 dims reduced to 2 (16 * 7 / 8)
    assert torch.equal(features[:, :12], z[:, :12])
    # Untrained reducer = (a + b) / sqrt(2).
    expected = (z[:, 12::2] + z[:, 13::2]) / math.sqrt(2.0)
    assert torch.allclose(features[:, 12:], expected, atol=1e-6)
    assert torch.equal(head.features(z, "2bit"), z)


def test_pair_reducer_is_trainable_and_checks_its_input():
    reducer = PairReducer(pairs=3, hidden=4, input_scale=4.0)
    x = torch.randn(10, 6)
    reducer(x).sum().backward()
    assert reducer.w2.grad.abs().sum() > 0 and reducer.mix.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        reducer(torch.randn(10, 5))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"levels": (32, 16, 8), "input_dim": 16},
        {"levels": (16, 32)},
        {"levels": (32, 12)},
        {"init": "random"},
        {"expansion": -1},
        {"expansion": 0, "init": "none"},
    ],
)
def test_bad_config_raises(kwargs):
    base = {"input_dim": 32, "expansion": 2, "levels": (32, 16, 8)}
    with pytest.raises(ValueError):
        QamaHead(HeadConfig(**(base | kwargs)))


def test_bad_input_raises():
    head = QamaHead(CONFIG)
    with pytest.raises(ValueError):
        head(torch.zeros(4, 31))
    with pytest.raises(TypeError):
        head(np.zeros((4, 32), dtype=np.float32))
    with pytest.raises(ValueError):
        head.slice(torch.zeros(4, 32), 12)
