"""Thresholds of the QAMA head: scheme layouts, quantile init, EMA, thermometer bits and their gradients."""

import numpy as np
import pytest
import torch

from qama_rs.qama.thresholds import (
    ThresholdBank,
    feature_count,
    hamming_distance_matrix,
    hamming_similarity,
    quantile_thresholds,
    scheme_levels,
    thermometer_bits,
    thermometer_codes,
    threshold_count,
    to_flat,
)


def test_scheme_levels_match_the_engine_layout():
    assert scheme_levels(8, "1bit") == [2] * 8
    assert scheme_levels(8, "1.5bit") == [3] * 8
    assert scheme_levels(8, "2bit") == [4] * 8
    assert scheme_levels(16, "hybrid") == [4] * 4 + [3] * 4 + [2] * 4 + [2] * 2
    hybrid = scheme_levels(384, "hybrid")
    assert feature_count(384, "hybrid") == len(hybrid) == 336
    assert threshold_count(hybrid) == 624  # the paper's 1.625 bits per dimension


@pytest.mark.parametrize("dims, scheme", [(12, "hybrid"), (0, "1bit"), (8, "3bit")])
def test_scheme_levels_rejects_bad_input(dims, scheme):
    with pytest.raises(ValueError):
        scheme_levels(dims, scheme)


def test_quantile_thresholds_are_equal_frequency_and_padded():
    values = torch.arange(101, dtype=torch.float32)[:, None].repeat(1, 3)  # 0..100 in every column
    thresholds = quantile_thresholds(values, [4, 3, 2])
    assert thresholds.shape == (3, 3)
    np.testing.assert_allclose(thresholds[0].numpy(), [25.0, 50.0, 75.0])
    np.testing.assert_allclose(thresholds[1, :2].numpy(), [100 / 3, 200 / 3], rtol=1e-6)
    np.testing.assert_allclose(thresholds[2, :1].numpy(), [50.0])
    assert torch.isinf(thresholds[1, 2]) and torch.isinf(thresholds[2, 1:]).all()


def test_codes_count_strictly_exceeded_thresholds_and_padding_adds_nothing():
    thresholds = torch.tensor([[0.0, 1.0, 2.0], [0.0, float("inf"), float("inf")]])
    x = torch.tensor([[1.0, 0.0], [2.5, 0.5], [-1.0, -1.0]])
    assert thermometer_codes(x, thresholds).tolist() == [[1, 0], [3, 1], [0, 0]]
    bits = thermometer_bits(x, thresholds)
    assert bits.shape == (3, 6)
    assert bits.sum(1).tolist() == [1.0, 4.0, 0.0]


def test_hamming_of_thermometer_bits_is_l1_between_codes():
    torch.manual_seed(0)
    x = torch.randn(20, 6)
    levels = [4, 4, 3, 3, 2, 2]
    thresholds = quantile_thresholds(x, levels)
    codes = thermometer_codes(x, thresholds).float()
    bits = thermometer_bits(x, thresholds)
    l1 = (codes[:, None, :] - codes[None, :, :]).abs().sum(-1)
    assert torch.equal(hamming_distance_matrix(bits, bits), l1)
    n_bits = threshold_count(levels)
    assert torch.allclose(hamming_similarity(bits, bits, n_bits), 1 - 2 * l1 / n_bits)


def test_ste_is_exact_forward_with_the_sigmoid_gradient_backward():
    torch.manual_seed(1)
    x = torch.randn(16, 4, requires_grad=True)
    thresholds = quantile_thresholds(x.detach(), [4, 4, 2, 2])
    ste = thermometer_bits(x, thresholds, mode="ste")
    assert torch.equal(ste.detach(), thermometer_bits(x.detach(), thresholds, mode="identity"))
    (ste * torch.arange(ste.shape[1])).sum().backward()
    grad_ste = x.grad.clone()
    x.grad = None
    soft = thermometer_bits(x, thresholds, mode="soft")
    (soft * torch.arange(soft.shape[1])).sum().backward()
    assert grad_ste.abs().sum() > 0
    assert torch.allclose(grad_ste, x.grad)
    assert (soft.detach() >= 0).all() and (soft.detach() <= 1).all()


def test_identity_mode_gives_one_per_real_bit():
    x = torch.zeros(3, 2, requires_grad=True)
    thresholds = torch.tensor([[-1.0, 0.5, 1.0], [0.0, float("inf"), float("inf")]])
    thermometer_bits(x, thresholds, mode="identity").sum().backward()
    assert x.grad.tolist() == [[3.0, 1.0]] * 3


def test_threshold_bank_init_ema_and_calibration():
    bank = ThresholdBank((16, 8), ("1bit", "hybrid"))
    assert bank.get(16, "hybrid").shape == (14, 3)
    assert bool(bank.initialised) is False
    first = torch.arange(100, dtype=torch.float32)[:, None].repeat(1, 16)
    bank.fit(16, "1bit", first)
    np.testing.assert_allclose(bank.get(16, "1bit")[:, 0].numpy(), 49.5)
    shifted = first + 10.0
    bank.ema_update(16, "1bit", shifted, momentum=0.75)
    # 0.75 * 49.5 + 0.25 * 59.5
    np.testing.assert_allclose(bank.get(16, "1bit")[:, 0].numpy(), 52.0)
    bank.ema_update(16, "1bit", shifted, momentum=0.0)
    np.testing.assert_allclose(bank.get(16, "1bit")[:, 0].numpy(), 59.5)
    bank.fit(16, "hybrid", torch.randn(50, 14))
    before = bank.get(16, "hybrid").clone()
    bank.ema_update(16, "hybrid", torch.randn(50, 14), momentum=0.9)
    after = bank.get(16, "hybrid")
    assert torch.equal(torch.isinf(before), torch.isinf(after))  # padding stays padding
    assert not torch.equal(before, after)


def test_threshold_bank_rejects_unknown_keys_and_shapes():
    bank = ThresholdBank((16,), ("2bit",))
    with pytest.raises(ValueError, match="no thresholds"):
        bank.get(8, "2bit")
    with pytest.raises(ValueError, match="shape"):
        bank.set(16, "2bit", torch.zeros(16, 2))
    with pytest.raises(ValueError, match="momentum"):
        bank.ema_update(16, "2bit", torch.randn(10, 16), momentum=1.0)


def test_to_flat_drops_padding():
    thresholds = torch.tensor([[0.0, 1.0, 2.0], [5.0, float("inf"), float("inf")]])
    flat, levels = to_flat(thresholds, [4, 2])
    assert flat == [0.0, 1.0, 2.0, 5.0] and levels == [4, 2]


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        thermometer_codes(torch.zeros(3), torch.zeros(3, 1))
    with pytest.raises(ValueError):
        thermometer_bits(torch.zeros(3, 2), torch.zeros(3, 1))
    with pytest.raises(ValueError):
        thermometer_bits(torch.zeros(3, 2), torch.zeros(2, 1), mode="cosine")
    with pytest.raises(ValueError):
        quantile_thresholds(torch.zeros(4, 2), [2, 2, 2])
