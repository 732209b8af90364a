"""QAMA training losses, one function per loss, each named after its equation in the paper's Methodology.

Similarity losses compare a *teacher* similarity matrix (cosine of the base model's embeddings) with a
*student* one: cosine of a head slice (float path) or the Hamming similarity ``1 - 2·hamming/bits`` of its
thermometer codes (quantized path, see `qama_rs.qama.thresholds`). The two live on different scales — MiniLM
cosines sit around +0.1…0.6, median-thresholded Hamming similarities around 0 — so "normalized similarity
matrices" are taken row-wise standardized (z-scores over each row's off-diagonal entries). A retrieval ranking
is per query (per row) and invariant to a per-row affine map, so the standardization keeps exactly what the
search uses and drops an offset the codes cannot (and need not) reproduce.

Weights and switches live in `qama_rs.qama.config.LossConfig`; `qama_rs.qama.train` adds the weighted terms.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "contrastive_infonce",
    "information_bottleneck",
    "matryoshka_loss",
    "orthogonality_loss",
    "quantization_loss",
    "quantization_ramp",
    "rank_preservation",
    "similarity_mse",
    "standardize_rows",
    "symmetric_kl",
    "variance_control",
    "variance_schedule",
]


def _check_sims(teacher: torch.Tensor, student: torch.Tensor) -> None:
    if teacher.ndim != 2 or student.ndim not in (2, 3) or student.shape[-2:] != teacher.shape:
        raise ValueError(
            f"teacher must be (n, m) and student (n, m) or (stack, n, m), got {tuple(teacher.shape)} and "
            f"{tuple(student.shape)}"
        )
    if teacher.shape[1] < 3:
        raise ValueError(f"similarity rows need at least 3 entries, got {teacher.shape[1]}")


def _off_diagonal(sims: torch.Tensor, exclude_diagonal: bool) -> torch.Tensor:
    """Bool mask ``(n, m)`` of the entries that count (all, or all but the diagonal of a square matrix)."""
    n, m = sims.shape[-2:]
    mask = torch.ones((n, m), dtype=torch.bool, device=sims.device)
    if exclude_diagonal:
        if n != m:
            raise ValueError("exclude_diagonal needs a square similarity matrix")
        mask.fill_diagonal_(False)
    return mask


def _mean_over_matrix(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the counted entries of each ``(n, m)`` matrix: a scalar, or one value per stacked matrix."""
    return (values * mask).sum((-2, -1)) / mask.sum()


def standardize_rows(sims: torch.Tensor, exclude_diagonal: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """Row-wise z-scores over the counted entries; excluded (diagonal) entries are set to 0.

    Works on ``(n, m)`` or a stack ``(stack, n, m)``. A constant row (e.g. all codes equal) gives zeros
    rather than a division by zero.
    """
    mask = _off_diagonal(sims, exclude_diagonal)
    count = mask.sum(1, keepdim=True)
    mean = (sims * mask).sum(-1, keepdim=True) / count
    centred = (sims - mean) * mask
    std = (centred.square().sum(-1, keepdim=True) / count).sqrt()
    return centred / (std + eps)


def similarity_mse(
    teacher: torch.Tensor, student: torch.Tensor, exclude_diagonal: bool = True
) -> torch.Tensor:
    """Direct similarity MSE loss, paper's ``L_sim = ||S_X - S_Y||_F^2`` ("Direct Similarity MSE Loss").

    Mean (not sum) of the squared differences of the row-standardized matrices, so the value does not grow
    with the batch size. ``student`` may be a stack ``(stack, n, m)``: one value per matrix.
    """
    _check_sims(teacher, student)
    mask = _off_diagonal(teacher, exclude_diagonal)
    diff = standardize_rows(teacher.detach(), exclude_diagonal) - standardize_rows(student, exclude_diagonal)
    return _mean_over_matrix(diff.square(), mask)


def symmetric_kl(
    teacher: torch.Tensor, student: torch.Tensor, temperature: float = 0.5, exclude_diagonal: bool = True
) -> torch.Tensor:
    """KL divergence loss, paper's ``L_kl = ½[KL(P_X||P_Y) + KL(P_Y||P_X)]`` with
    ``P = softmax(S / τ)`` per row ("KL Divergence Loss"); ``S`` row-standardized, diagonal excluded,
    mean over rows. ``student`` may be a stack: one value per matrix."""
    _check_sims(teacher, student)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    mask = _off_diagonal(teacher, exclude_diagonal)
    neg_inf = torch.finfo(student.dtype).min

    def log_probs(sims: torch.Tensor) -> torch.Tensor:
        logits = standardize_rows(sims, exclude_diagonal) / temperature
        return torch.log_softmax(logits.masked_fill(~mask, neg_inf), dim=-1)

    log_p, log_q = log_probs(teacher.detach()), log_probs(student)
    p, q = log_p.exp(), log_q.exp()
    per_row = ((p - q) * (log_p - log_q) * mask).sum(-1)
    # (p - q)(log p - log q) summed = KL(p||q) + KL(q||p).
    return 0.5 * per_row.mean(-1)


def rank_preservation(
    teacher: torch.Tensor,
    student: torch.Tensor,
    sharpness: float = 2.0,
    top: int = 16,
    exclude_diagonal: bool = True,
) -> torch.Tensor:
    """Rank preservation loss, paper's ``L_rank`` over triplets ``(i, j, k)`` of
    ``σ((s_ij - s_ik)·t)`` ("Rank Preservation Loss").

    The paper multiplies the teacher's and student's soft orderings; we take the mean squared difference
    ``(σ(t·Δ^X) - σ(t·Δ^Y))^2`` instead, which is 0 exactly when the student orders every pair as the teacher
    does (with the same margins) and has no trivial minimum. To keep it O(n·top·n) and focused on what
    top-10 retrieval sees, ``j`` runs over each row's ``top`` teacher neighbours and ``k`` over the whole row.
    Differences are taken on row-standardized similarities, so ``t`` is scale-free. ``student`` may be a
    stack: one value per matrix.
    """
    _check_sims(teacher, student)
    if sharpness <= 0:
        raise ValueError(f"sharpness must be > 0, got {sharpness}")
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    mask = _off_diagonal(teacher, exclude_diagonal)
    t = standardize_rows(teacher.detach(), exclude_diagonal)
    s = standardize_rows(student, exclude_diagonal)
    top = min(top, int(mask.sum(1).min()))
    neighbours = t.masked_fill(~mask, float("-inf")).topk(top, dim=1).indices
    t_diff = t.gather(1, neighbours)[:, :, None] - t[:, None, :]
    s_top = s.gather(-1, neighbours.expand(*s.shape[:-1], top))
    s_diff = s_top[..., :, :, None] - s[..., :, None, :]
    error = (torch.sigmoid(sharpness * t_diff) - torch.sigmoid(sharpness * s_diff)).square()
    counted = mask[:, None, :].expand(t_diff.shape)
    return (error * counted).sum((-3, -2, -1)) / counted.sum()


def contrastive_infonce(
    similarity: torch.Tensor, temperature: float = 0.05, positives: torch.Tensor | None = None
) -> torch.Tensor:
    """Contrastive loss, paper's ``L_contrast = -log exp(s_p/τ) / (exp(s_p/τ) + Σ_n exp(s_n/τ))``
    ("Contrastive Learning").

    ``similarity[i, j]`` scores anchor ``i`` against candidate ``j``; positives are the diagonal unless a
    bool ``positives`` mask says otherwise (several positives per row are pooled in the numerator). Rows
    without any positive are skipped.
    """
    if similarity.ndim != 2:
        raise ValueError(f"similarity must be 2-D, got shape {tuple(similarity.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if positives is None:
        if similarity.shape[0] > similarity.shape[1]:
            raise ValueError("diagonal positives need at least as many columns as rows")
        positives = torch.zeros_like(similarity, dtype=torch.bool)
        positives[torch.arange(similarity.shape[0]), torch.arange(similarity.shape[0])] = True
    elif positives.shape != similarity.shape or positives.dtype != torch.bool:
        raise ValueError("positives must be a bool mask shaped like similarity")
    logits = similarity / temperature
    log_all = torch.logsumexp(logits, dim=1)
    log_pos = torch.logsumexp(logits.masked_fill(~positives, float("-inf")), dim=1)
    has_positive = positives.any(1)
    if not has_positive.any():
        raise ValueError("no row has a positive")
    return (log_all - log_pos)[has_positive].mean()


def matryoshka_loss(
    per_level: dict[int, torch.Tensor], weights: dict[int, float] | None = None
) -> torch.Tensor:
    """Matryoshka loss, paper's ``L_total = Σ_{d∈D} Σ_l w_l^(d) L_l^(d)`` ("Combined Loss Function"):
    a loss evaluated at every nested level, summed with per-level weights (default 1)."""
    if not per_level:
        raise ValueError("per_level must hold at least one level")
    weights = weights or {}
    return sum(weights.get(level, 1.0) * loss for level, loss in per_level.items())


def orthogonality_loss(h: torch.Tensor, levels: tuple[int, ...] | list[int]) -> torch.Tensor:
    """Inter-level orthogonal information encoding, paper's
    ``L_orth = Σ_{l≥2} Σ_{j<l} ||Δ_l^T · normalize(E_j)||_F`` ("Inter-level Orthogonal Information Encoding").

    ``Δ_l`` are the dimensions level ``l`` adds to the previous one, ``E_j`` all dimensions of level ``j``.
    Columns are centred and normalized over the batch, so each term is the Frobenius norm of a
    cross-correlation matrix, divided by ``sqrt`` of its size to stay O(1): 0 when new dimensions are
    uncorrelated with earlier ones.
    """
    if h.ndim != 2 or h.shape[0] < 2:
        raise ValueError(f"h must be (n >= 2, d), got shape {tuple(h.shape)}")
    ascending = sorted(set(int(level) for level in levels))
    if not ascending or ascending[-1] > h.shape[1] or ascending[0] < 1:
        raise ValueError(f"levels {list(levels)} do not fit a {h.shape[1]}-wide h")
    columns = F.normalize(h - h.mean(0, keepdim=True), dim=0)
    total = h.new_zeros(())
    for index in range(1, len(ascending)):
        added = columns[:, ascending[index - 1] : ascending[index]]
        for earlier in ascending[:index]:
            cross = added.T @ columns[:, :earlier]
            total = total + cross.norm() / math.sqrt(cross.numel())
    return total


def information_bottleneck(z: torch.Tensor, x0: float = 0.1, alpha: float = 0.3) -> torch.Tensor:
    """Progressive information bottleneck, paper's ``L_ib = Σ_i w_i (|x_i|²/(x0 + |x_i|))^α`` with
    ``w_i = i/n`` ("Progressive Information Bottleneck").

    Averaged over the batch and divided by ``n`` (so the weight does not scale with the width). ``u^α`` has
    an infinite slope at ``u = 0`` (NaN gradients in autograd); exact zeros get value and gradient 0.
    """
    if z.ndim != 2:
        raise ValueError(f"z must be 2-D, got shape {tuple(z.shape)}")
    if x0 <= 0 or alpha <= 0:
        raise ValueError(f"x0 and alpha must be > 0, got {x0}, {alpha}")
    n = z.shape[1]
    weights = torch.arange(1, n + 1, dtype=z.dtype, device=z.device) / n
    magnitude = z.abs()
    u = magnitude.square() / (x0 + magnitude)
    positive = u > 0
    # Double `where`: the pow never sees a zero, so its backward never produces inf * 0.
    shaped = torch.where(positive, torch.where(positive, u, torch.ones_like(u)) ** alpha, torch.zeros_like(u))
    return (shaped * weights).sum(1).mean() / n


def variance_schedule(step: int, total_steps: int) -> float:
    """``max(0.2, (e^{t/T} - 1)/(e - 1))``: the adaptive variance control's weight at step ``t`` of ``T``."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    progress = min(max(step / total_steps, 0.0), 1.0)
    return max(0.2, (math.exp(progress) - 1.0) / (math.e - 1.0))


def variance_control(z: torch.Tensor, step: int, total_steps: int) -> torch.Tensor:
    """Adaptive variance control, paper's ``L_var(t) = max(0.2, (e^{t/T}-1)/(e-1)) Σ_d exp(-σ_d)``
    ("Adaptive Variance Control"); averaged over dimensions instead of summed (weight independent of width).

    ``σ_d`` is the batch standard deviation of dimension ``d``; the penalty rewards spread, preventing
    collapse, and grows over training.
    """
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"z must be (n >= 2, d), got shape {tuple(z.shape)}")
    return variance_schedule(step, total_steps) * torch.exp(-z.std(dim=0)).mean()


def quantization_ramp(step: int, total_steps: int, start: float = 0.2, end: float = 1.0) -> float:
    """``w(t)``: linear ramp of the quantization loss weight from ``start`` to ``end`` over training."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    progress = min(max(step / total_steps, 0.0), 1.0)
    return start + (end - start) * progress


def quantization_loss(
    x: torch.Tensor,
    thresholds: torch.Tensor,
    step: int,
    total_steps: int,
    range_weight: float = 0.1,
    ramp: tuple[float, float] = (0.2, 1.0),
    margin: float = 3.0,
) -> torch.Tensor:
    """Quantization regularization, paper's
    ``L_quant = w(t)[exp(-min_i |x - θ_i|) + λ L_range(x)]``, ``L_range = ReLU(l - x)² + ReLU(x - u)²``
    ("Quantization Regularization Loss").

    Distances are measured in units of each feature's batch standard deviation ``σ`` (head outputs are
    O(1/√d), where ``exp(-|x - θ|)`` would be flat). The valid range of a feature is
    ``[θ_first - margin·σ, θ_last + margin·σ]``. Padded (``+inf``) thresholds are ignored.
    """
    if x.ndim != 2 or thresholds.ndim != 2 or thresholds.shape[0] != x.shape[1]:
        raise ValueError(
            f"x (n, f) and thresholds (f, width) do not match: {tuple(x.shape)}, {tuple(thresholds.shape)}"
        )
    if x.shape[0] < 2:
        raise ValueError("quantization_loss needs a batch of at least 2 rows")
    sigma = x.detach().std(0).clamp_min(1e-6)
    real = torch.isfinite(thresholds)
    distance = (x[:, :, None] - torch.where(real, thresholds, torch.zeros_like(thresholds))[None]).abs()
    distance = distance.masked_fill(~real[None], float("inf")).min(-1).values / sigma
    repel = torch.exp(-distance).mean()
    lower = thresholds[:, 0] - margin * sigma
    upper = (
        torch.where(real, thresholds, torch.full_like(thresholds, float("-inf"))).max(1).values
        + margin * sigma
    )
    out_of_range = (F.relu(lower - x).square() + F.relu(x - upper).square()) / sigma.square()
    return quantization_ramp(step, total_steps, *ramp) * (repel + range_weight * out_of_range.mean())
