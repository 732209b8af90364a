"""Asymmetric scoring of learned codes (qama_rs.qama.learned_codes) and its factory spec QAMA(...),QamaAsym{b}."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import qama_rs
from qama_rs.errors import QamaError
from qama_rs.qama.config import HeadConfig, QamaConfig
from qama_rs.qama.learned_codes import LearnedAsymmetric
from qama_rs.qama.train import TrainingData, train


def _docs(n=800, d=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + 0.3
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("bits", [1, 2])
def test_codes_are_quantile_bins_and_reconstruction_their_means(bits):
    x = _docs()
    codec = LearnedAsymmetric(bits).fit(x)
    codes = codec.encode(x)
    assert codes.dtype == np.uint8 and codes.shape == x.shape and codes.max() == 2**bits - 1
    # Quantile bins: each level holds about 1 / L of the documents in every feature.
    for level in range(2**bits):
        np.testing.assert_allclose((codes == level).mean(0), 1 / 2**bits, atol=0.01)
    j, level = 3, 1
    np.testing.assert_allclose(codec.reconstruction_values[j, level], x[codes[:, j] == level, j].mean(), rtol=1e-5)
    assert codec.bytes_per_vector == 16 * bits // 8


def test_rejects_bad_bits_and_use_before_fit():
    with pytest.raises(ValueError, match="bits"):
        LearnedAsymmetric(3)
    with pytest.raises(ValueError, match="not fitted"):
        LearnedAsymmetric(1).encode(_docs(4))


def test_factory_spec_scores_the_head_features_against_the_codes_in_the_engine(tmp_path):
    docs = _docs(1200, 32, seed=2)
    config = QamaConfig()
    config.head = HeadConfig(input_dim=32, expansion=0, levels=(32, 16))
    config.thresholds.schemes = ("1bit", "2bit")
    head_dir = train(config.validate(), TrainingData(docs=docs), tmp_path / "head", labelled=False, progress=False)
    queries = _docs(20, 32, seed=3)
    index = qama_rs.index_factory(32, f"QAMA({head_dir}),QamaAsym2")
    index.train(docs)
    index.add(docs)
    assert index.bytes_per_vector == 8
    scores, ids = index.search(queries, 5)
    # NumPy oracle: head features (with the 2-bit code rotation), codes, reconstruction, inner products.
    from qama_rs.qama.model import QamaModel

    model = QamaModel.load(head_dir)
    fd, fq = model.features(docs, 32, "2bit"), model.features(queries, 32, "2bit")
    codec = LearnedAsymmetric(2).fit(fd)
    recon = codec.reconstruction_values
    expected = fq @ recon[np.arange(32), codec.encode(fd)].T
    np.testing.assert_array_equal(ids, np.argsort(-expected, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(scores, np.take_along_axis(expected, ids, 1), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(model.head.code_rotation(32, "2bit"), torch.eye(32))
    with pytest.raises(QamaError):
        qama_rs.index_factory(32, "QAMA(pretrained),QamaAsym3")
