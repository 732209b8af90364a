"""QAMA losses: hand-computed values, zeros where they belong, and gradients through the quantized path."""

import math

import pytest
import torch

from qama_rs.qama import losses as L
from qama_rs.qama.config import HeadConfig
from qama_rs.qama.head import QamaHead
from qama_rs.qama.thresholds import (
    hamming_similarity,
    quantile_thresholds,
    scheme_levels,
    thermometer_bits,
    threshold_count,
)

# Every row's off-diagonal entries are 1, 2, 3 (teacher) and 3, 2, 1 (student): z-scores -a, 0, a.
TEACHER = torch.tensor([[0.0, 1, 2, 3], [1, 0, 2, 3], [1, 2, 0, 3], [1, 2, 3, 0]])
REVERSED = torch.tensor([[0.0, 3, 2, 1], [3, 0, 2, 1], [3, 2, 0, 1], [3, 2, 1, 0]])
A = math.sqrt(1.5)


def test_standardize_rows_ignores_the_diagonal():
    z = L.standardize_rows(TEACHER)
    assert torch.allclose(z[0], torch.tensor([0.0, -A, 0.0, A]), atol=1e-5)
    assert torch.allclose(L.standardize_rows(torch.ones(4, 4)), torch.zeros(4, 4))


def test_similarity_mse_hand_value_and_zero_for_affine_rows():
    # Squared z differences per row: (2a)^2, 0, (2a)^2 = 6, 0, 6 -> mean 4.
    assert L.similarity_mse(TEACHER, REVERSED).item() == pytest.approx(4.0, rel=1e-5)
    assert L.similarity_mse(TEACHER, TEACHER).item() == pytest.approx(0.0, abs=1e-9)
    # A per-row positive affine map keeps every ranking: no loss.
    assert L.similarity_mse(TEACHER, 0.1 * TEACHER - 0.3).item() == pytest.approx(0.0, abs=1e-8)


def test_symmetric_kl_hand_value():
    for tau in (1.0, 0.5):
        p = torch.softmax(torch.tensor([-A, 0.0, A]) / tau, 0)
        # Reversed rows: log(p_last / p_first) = 2a / tau and both directions of KL are equal.
        expected = (p[2] - p[0]) * 2 * A / tau
        assert L.symmetric_kl(TEACHER, REVERSED, tau).item() == pytest.approx(expected.item(), rel=1e-4)
    assert L.symmetric_kl(TEACHER, TEACHER).item() == pytest.approx(0.0, abs=1e-7)


def test_rank_preservation_hand_value():
    # top=1: j is the teacher's best column; k runs over the row: teacher differences 2a, a, 0, student
    # -2a, -a, 0; sigma(x) - sigma(-x) = tanh(x / 2).
    expected = (math.tanh(A) ** 2 + math.tanh(A / 2) ** 2 + 0.0) / 3
    assert L.rank_preservation(TEACHER, REVERSED, sharpness=1.0, top=1).item() == pytest.approx(
        expected, rel=1e-4
    )
    assert L.rank_preservation(TEACHER, TEACHER, top=3).item() == pytest.approx(0.0, abs=1e-9)


def test_similarity_losses_accept_a_stack():
    stack = torch.stack([TEACHER, REVERSED])
    for loss in (L.similarity_mse, L.symmetric_kl, L.rank_preservation):
        values = loss(TEACHER, stack)
        assert values.shape == (2,)
        assert values[0].item() == pytest.approx(0.0, abs=1e-7)
        assert values[1].item() == pytest.approx(loss(TEACHER, REVERSED).item(), rel=1e-6)


def test_contrastive_infonce_hand_value_and_positive_mask():
    sims = torch.eye(2)
    assert L.contrastive_infonce(sims, temperature=1.0).item() == pytest.approx(math.log(1 + math.exp(-1)))
    # Two positives in row 0 pooled: -log(2e / (2e)) = 0 for that row; row 1 has no positive and is skipped.
    sims = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    positives = torch.tensor([[True, True], [False, False]])
    assert L.contrastive_infonce(sims, 1.0, positives).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError):
        L.contrastive_infonce(sims, 1.0, torch.zeros(2, 2, dtype=torch.bool))


def test_matryoshka_loss_sums_weighted_levels():
    per_level = {48: torch.tensor(1.0), 96: torch.tensor(2.0)}
    assert L.matryoshka_loss(per_level).item() == 3.0
    assert L.matryoshka_loss(per_level, {48: 0.5}).item() == 2.5


def test_orthogonality_zero_for_uncorrelated_levels_and_one_for_a_copy():
    orthogonal = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    assert L.orthogonality_loss(orthogonal, (2, 1)).item() == pytest.approx(0.0, abs=1e-7)
    copy = torch.tensor([[1.0, 1.0], [2.0, 2.0], [5.0, 5.0], [0.0, 0.0]])
    assert L.orthogonality_loss(copy, (2, 1)).item() == pytest.approx(1.0, rel=1e-6)


def test_information_bottleneck_hand_value_and_zero_input():
    z = torch.tensor([[0.5, 0.0]])
    # weights (1/2, 1); only the first entry is non-zero; divided by n = 2.
    expected = 0.5 * (0.25 / 0.6) ** 0.3 / 2
    assert L.information_bottleneck(z).item() == pytest.approx(expected, rel=1e-6)
    zeros = torch.zeros(3, 4, requires_grad=True)
    value = L.information_bottleneck(zeros)
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(zeros.grad).all()
    # Later dimensions cost more than earlier ones.
    early, late = torch.tensor([[0.3, 0.0]]), torch.tensor([[0.0, 0.3]])
    assert L.information_bottleneck(late) > L.information_bottleneck(early)


def test_variance_schedule_and_value():
    assert L.variance_schedule(0, 100) == 0.2
    assert L.variance_schedule(100, 100) == pytest.approx(1.0)
    assert L.variance_schedule(50, 100) == pytest.approx(max(0.2, (math.exp(0.5) - 1) / (math.e - 1)))
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    expected = 0.2 * (math.exp(-math.sqrt(2.0)) + 1.0) / 2
    assert L.variance_control(z, 0, 10).item() == pytest.approx(expected, rel=1e-6)


def test_quantization_loss_repels_and_ramps():
    thresholds = torch.tensor([[0.0], [0.0]])
    at_threshold = torch.zeros(4, 2)
    # exp(-0) = 1, no range violation, ramp 0.2 at step 0 and 1.0 at the end.
    assert L.quantization_loss(at_threshold, thresholds, 0, 10).item() == pytest.approx(0.2)
    assert L.quantization_loss(at_threshold, thresholds, 10, 10).item() == pytest.approx(1.0)
    # Distances count in units of the batch spread: a value close to its threshold costs more.
    far = torch.tensor([[-1.0], [1.0], [-1.0], [1.0]])
    near = torch.tensor([[-1.0], [1.0], [-0.05], [1.0]])
    assert L.quantization_loss(far, thresholds[:1], 0, 10) < L.quantization_loss(near, thresholds[:1], 0, 10)
    # One outlier beyond threshold + 3 sigma pays the range penalty.
    spread = torch.tensor([[-1.0], [1.0]] * 10 + [[10.0]])  # sigma ~ 2.3: 10 > 0 + 3 sigma
    without_range = L.quantization_loss(spread, thresholds[:1], 0, 10, range_weight=0.0)
    with_range = L.quantization_loss(spread, thresholds[:1], 0, 10, range_weight=1.0)
    assert with_range > without_range


@pytest.mark.parametrize("mode", ["ste", "soft", "identity"])
@pytest.mark.parametrize("scheme", ["1bit", "2bit", "hybrid"])
def test_gradient_reaches_the_head_through_the_quantized_path(mode, scheme):
    torch.manual_seed(0)
    head = QamaHead(HeadConfig(input_dim=32, expansion=2, levels=(32, 16, 8)))
    with torch.no_grad():
        head.down.weight.normal_(0, 0.02)  # so that W1 is reachable too (W2 starts at zero)
    x = torch.nn.functional.normalize(torch.randn(48, 32), dim=1)
    head.init_from_data(x)
    z = head.slice(head(x), 16)
    features = head.features(z, scheme)
    levels = scheme_levels(16, scheme)
    thresholds = quantile_thresholds(features.detach(), levels)
    bits = thermometer_bits(features, thresholds, mode=mode)
    student = hamming_similarity(bits, bits, threshold_count(levels))
    loss = L.similarity_mse(x @ x.T, student) + L.rank_preservation(x @ x.T, student)
    loss.backward()
    for name in ("up.weight", "down.weight", "skip.weight"):
        grad = dict(head.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    if scheme == "hybrid":
        assert head.reducers["16"].mix.grad.abs().sum() > 0
