"""Per-dimension quantization thresholds of the QAMA head, and the thermometer codes they define.

A feature with ``L`` levels has ``L - 1`` ascending thresholds; its code is the number of thresholds the
value strictly exceeds (the engine's contract). Its thermometer expansion is ``L - 1`` bits, bit ``p`` set
iff the code is ``> p``, so the Hamming distance between two expanded codes is the L1 distance between the
codes — the distance the Rust engine searches with.

Thresholds are kept per Matryoshka level *and* per scheme ("level set"), because each level's slice is
L2-normalized on its own and the hybrid scheme quantizes pair-reduced features. They are buffers, not
parameters (paper, Methodology "Threshold-based Discretization"): initialised from per-feature quantiles
of the transformed training embeddings, moved by an exponential moving average of batch quantiles during
training, and recalibrated on all training embeddings at the end.

Ragged threshold sets (the hybrid scheme mixes 4-, 3- and 2-level features) are stored padded to
``(features, max_levels - 1)`` with ``+inf``: a value never exceeds ``+inf``, so padding adds neither code
levels nor bits.

Gradient path (the paper's straight-through estimator gave the head zero gradient from every loss on
quantized outputs; see ANCHORS.md): `thermometer_bits` offers three modes —

- ``"ste"`` (default): the forward value is the exact 0/1 bits, the backward pass is the gradient of the
  sigmoid relaxation ``sigmoid((x - t) / tau)``; losses see the true codes, the head gets a gradient that is
  largest for values near a threshold (the ones whose bits can flip);
- ``"soft"``: the sigmoid relaxation both ways (values are soft bits in (0, 1));
- ``"identity"``: exact bits forward, the identity gradient ``d bit / d x = 1`` for every real bit.
"""

from __future__ import annotations

import torch
from torch import nn

from qama_rs.qama.config import SCHEMES

__all__ = [
    "ThresholdBank",
    "feature_count",
    "hamming_distance_matrix",
    "hamming_similarity",
    "quantile_thresholds",
    "scheme_levels",
    "thermometer_bits",
    "thermometer_codes",
    "threshold_count",
    "to_flat",
]

_SCHEME_LEVELS = {"1bit": 2, "1.5bit": 3, "2bit": 4}


def scheme_levels(dims: int, scheme: str) -> list[int]:
    """Levels of each quantizer input feature of a ``dims``-wide slice under ``scheme``.

    ``hybrid``: first quarter 2-bit (4 levels), second 1.5-bit (3), third 1-bit (2), and the last quarter
    reduced pairwise to ``dims / 8`` features, each 1-bit — 384 dims give 336 features and 624 bits.
    """
    if not isinstance(dims, int) or dims < 1:
        raise ValueError(f"dims must be a positive integer, got {dims!r}")
    if scheme in _SCHEME_LEVELS:
        return [_SCHEME_LEVELS[scheme]] * dims
    if scheme == "hybrid":
        if dims % 8:
            raise ValueError(f"the hybrid scheme needs dims divisible by 8, got {dims}")
        quarter = dims // 4
        return [4] * quarter + [3] * quarter + [2] * quarter + [2] * (quarter // 2)
    raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")


def feature_count(dims: int, scheme: str) -> int:
    """Number of quantizer input features (``dims`` except for hybrid, where pairs are reduced)."""
    return len(scheme_levels(dims, scheme))


def threshold_count(levels: list[int]) -> int:
    """Total thresholds = total thermometer bits."""
    return sum(level - 1 for level in levels)


def quantile_thresholds(values: torch.Tensor, levels: list[int]) -> torch.Tensor:
    """Equal-frequency thresholds: for ``L`` levels the ``i / L`` quantiles, ``i = 1..L-1``, per feature.

    ``values`` is ``(n, features)``; returns ``(features, max(levels) - 1)`` padded with ``+inf``.
    """
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (n, features), got shape {tuple(values.shape)}")
    if values.shape[1] != len(levels):
        raise ValueError(f"values has {values.shape[1]} features but levels has {len(levels)} entries")
    if values.shape[0] < 1:
        raise ValueError("values must have at least one row")
    values = values.detach().float()
    width = max(levels) - 1
    out = torch.full((len(levels), width), float("inf"), dtype=torch.float32, device=values.device)
    for n_levels in sorted(set(levels)):
        columns = torch.tensor(
            [i for i, level in enumerate(levels) if level == n_levels], device=values.device
        )
        q = torch.arange(1, n_levels, dtype=torch.float32, device=values.device) / n_levels
        # torch.quantile: (len(q), n_rows_of_columns) -> transpose to (features, thresholds)
        out[columns, : n_levels - 1] = torch.quantile(values[:, columns], q, dim=0).T
    return out


def thermometer_codes(x: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Codes ``int64 (n, features)``: how many of each feature's thresholds the value strictly exceeds."""
    _check_pair(x, thresholds)
    return (x.detach()[:, :, None] > thresholds[None]).sum(-1)


def thermometer_bits(
    x: torch.Tensor,
    thresholds: torch.Tensor,
    mode: str = "ste",
    temperature: float = 0.25,
) -> torch.Tensor:
    """Thermometer bits ``(n, features * width)`` with a gradient path to ``x`` (see the module docs).

    ``temperature`` is in units of each feature's batch standard deviation (so it does not depend on the
    scale of the features); padded (``+inf``) thresholds always give 0 bits without gradient.
    """
    _check_pair(x, thresholds)
    if mode not in ("ste", "soft", "identity"):
        raise ValueError(f"mode must be 'ste', 'soft' or 'identity', got {mode!r}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    diff = x[:, :, None] - thresholds[None]
    hard = (diff > 0).to(x.dtype)
    real = torch.isfinite(thresholds)[None].to(x.dtype)
    if mode == "identity":
        bits = hard + (x - x.detach())[:, :, None] * real
    else:
        # A one-row batch has no spread: fall back to the spread over features.
        spread = x.detach().std(dim=0) if x.shape[0] > 1 else x.detach().std().expand(x.shape[1])
        tau = (temperature * spread.clamp_min(1e-6))[None, :, None]
        soft = torch.sigmoid(diff / tau)
        bits = soft if mode == "soft" else soft + (hard - soft).detach()
    return bits.reshape(x.shape[0], -1)


def hamming_distance_matrix(bits_a: torch.Tensor, bits_b: torch.Tensor) -> torch.Tensor:
    """All-pairs Hamming distance ``(n_a, n_b)`` between 0/1 bit rows, as ``|a| + |b| - 2 a·b``.

    Exact for 0/1 bits; for soft bits it is the expected Hamming distance of independent Bernoulli bits,
    which keeps the relaxation smooth.
    """
    if bits_a.ndim != 2 or bits_b.ndim != 2 or bits_a.shape[1] != bits_b.shape[1]:
        raise ValueError(
            f"bit matrices must be 2-D with equal widths, got {tuple(bits_a.shape)}, {tuple(bits_b.shape)}"
        )
    return bits_a.sum(1)[:, None] + bits_b.sum(1)[None, :] - 2.0 * bits_a @ bits_b.T


def hamming_similarity(bits_a: torch.Tensor, bits_b: torch.Tensor, n_bits: int) -> torch.Tensor:
    """``1 - 2 * hamming / n_bits``: the cosine of the ±1 bit vectors, on the same [-1, 1] scale as cosine
    similarity, and ordered exactly as the engine's Hamming search orders (ascending distance)."""
    if n_bits < 1:
        raise ValueError(f"n_bits must be >= 1, got {n_bits}")
    return 1.0 - 2.0 * hamming_distance_matrix(bits_a, bits_b) / n_bits


def to_flat(thresholds: torch.Tensor, levels: list[int]) -> tuple[list[float], list[int]]:
    """Padded ``(features, width)`` thresholds -> the engine's flat ragged list (feature-major) + levels."""
    if thresholds.shape[0] != len(levels):
        raise ValueError(f"thresholds has {thresholds.shape[0]} rows but levels has {len(levels)} entries")
    flat: list[float] = []
    rows = thresholds.detach().cpu().tolist()
    for row, n_levels in zip(rows, levels, strict=True):
        flat.extend(row[: n_levels - 1])
    return flat, list(levels)


def _check_pair(x: torch.Tensor, thresholds: torch.Tensor) -> None:
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (n, features), got shape {tuple(x.shape)}")
    if thresholds.ndim != 2 or thresholds.shape[0] != x.shape[1]:
        raise ValueError(
            f"thresholds must be (features={x.shape[1]}, width), got shape {tuple(thresholds.shape)}"
        )


def _key(level: int, scheme: str) -> str:
    return f"{level}_{scheme.replace('.', '_')}"


class ThresholdBank(nn.Module):
    """Threshold buffers for every (Matryoshka level, scheme) pair the head is trained for."""

    def __init__(self, levels: tuple[int, ...] | list[int], schemes: tuple[str, ...] | list[str]):
        super().__init__()
        self.levels = [int(level) for level in levels]
        self.schemes = list(schemes)
        self._feature_levels: dict[str, list[int]] = {}
        for level in self.levels:
            for scheme in self.schemes:
                feature_levels = scheme_levels(level, scheme)
                key = _key(level, scheme)
                self._feature_levels[key] = feature_levels
                width = max(feature_levels) - 1
                self.register_buffer(
                    f"t_{key}", torch.full((len(feature_levels), width), float("inf")), persistent=True
                )
        self.register_buffer("initialised", torch.tensor(False))

    def pairs(self) -> list[tuple[int, str]]:
        return [(level, scheme) for level in self.levels for scheme in self.schemes]

    def feature_levels(self, level: int, scheme: str) -> list[int]:
        self._check_key(level, scheme)
        return list(self._feature_levels[_key(level, scheme)])

    def get(self, level: int, scheme: str) -> torch.Tensor:
        """Padded thresholds ``(features, width)`` of one level set."""
        self._check_key(level, scheme)
        return getattr(self, f"t_{_key(level, scheme)}")

    def set(self, level: int, scheme: str, thresholds: torch.Tensor) -> None:
        current = self.get(level, scheme)
        if thresholds.shape != current.shape:
            raise ValueError(
                f"thresholds for {level}/{scheme} must have shape {tuple(current.shape)}, got {tuple(thresholds.shape)}"
            )
        current.copy_(thresholds.detach())

    @torch.no_grad()
    def fit(self, level: int, scheme: str, features: torch.Tensor) -> None:
        """Set one level set's thresholds to the quantiles of ``features`` (initialisation and calibration)."""
        self.set(level, scheme, quantile_thresholds(features, self.feature_levels(level, scheme)))

    @torch.no_grad()
    def ema_update(self, level: int, scheme: str, features: torch.Tensor, momentum: float) -> None:
        """``t <- momentum * t + (1 - momentum) * batch_quantiles`` (paper's EMA update)."""
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        batch = quantile_thresholds(features, self.feature_levels(level, scheme))
        current = self.get(level, scheme)
        real = torch.isfinite(current)
        current[real] = momentum * current[real] + (1.0 - momentum) * batch[real]

    def _check_key(self, level: int, scheme: str) -> None:
        if _key(level, scheme) not in self._feature_levels:
            raise ValueError(
                f"no thresholds for level {level!r} / scheme {scheme!r}; have levels {self.levels}, "
                f"schemes {self.schemes}"
            )
