"""The QAMA transformation head: an FFN with a linear skip, Matryoshka slicing, and the hybrid pair reducer.

``h = S·x + W2·GELU(W1·x)`` with ``W1 ∈ R^{(e·d)×d}`` (expansion ``e``, 32 in the paper) and ``W2`` zero at
initialisation. The paper's head is the FFN alone; we add the linear skip ``S`` so that the *untrained* head is
already a good embedding and training only has to improve on it:

- ``init="pca"`` (default): ``S`` starts as the PCA rotation of the training embeddings (axes of the
  centred covariance by decreasing variance, applied to the *uncentred* input, no bias). A rotation keeps
  every cosine, so the untrained head's full width equals the input exactly, and its nested slices are PCA
  truncations — the strongest training-free Matryoshka baseline. Skipping the centring keeps the common
  component every embedding shares, which helps truncated cosine search (scifact NDCG@10, 192/96/48 d:
  uncentred .6417/.6044/.5223, centred PCA .6274/.5935/.5096, plain truncation .6143/.5533/.4405);
- ``init="pca_rotated"``: the PCA rotation followed by a random rotation *inside* each Matryoshka band
  (dims between consecutive levels). Every level's prefix spans the same subspace as with ``"pca"``, so
  float truncation is unchanged, but variance is spread evenly over the dims of a band, so per-dimension
  quantile codes waste fewer bits on the weak tail of the PCA spectrum;
- ``init="identity"``: ``S`` starts as the identity, the untrained head returns its input;
- ``init="none"``: no skip, the paper's ``W2·GELU(W1·x)`` with PyTorch's default initialisation.

``S`` is trained with the rest. Matryoshka levels are prefixes of ``h``: level ``k`` is ``h[:k]``
L2-normalized on its own (paper, Methodology "Progressive Dimension Slicing").

The hybrid scheme's "0.5-bit" quarter is reduced pairwise by `PairReducer` before 1-bit quantization; each
level has its own reducer because each level's last quarter is a different set of dimensions.

Each (level, scheme) also has a *code rotation*: an orthogonal matrix applied to the quantizer input just
before quantization (buffer ``code_rotation_<level>_<scheme>``, identity until fitted by
`qama_rs.qama.rotation.quantization_rotation`). It keeps every cosine of the features, so the float Matryoshka
slices stay PCA-ordered while the codes see evenly spread, decorrelated features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from qama_rs.qama.config import SCHEMES, HeadConfig

__all__ = ["PairReducer", "QamaHead", "feature_width"]


class PairReducer(nn.Module):
    """Maps each pair ``(a, b)`` of dimensions to one value: a per-pair FFN ``2 → hidden → 1`` plus a
    per-pair linear mix that starts at ``(a + b) / √2``; the FFN's output layer starts at zero, so the
    untrained reducer is that plain sum."""

    def __init__(self, pairs: int, hidden: int = 8, input_scale: float = 1.0):
        super().__init__()
        if pairs < 1 or hidden < 1:
            raise ValueError(f"pairs and hidden must be >= 1, got {pairs}, {hidden}")
        self.pairs = pairs
        self.mix = nn.Parameter(torch.full((pairs, 2), 1.0 / math.sqrt(2.0)))
        self.w1 = nn.Parameter(torch.randn(pairs, 2, hidden) / math.sqrt(2.0))
        self.b1 = nn.Parameter(torch.zeros(pairs, hidden))
        self.w2 = nn.Parameter(torch.zeros(pairs, hidden))
        # Slice values are O(1/sqrt(level)); scaling them to O(1) puts the GELU in its non-linear range.
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != 2 * self.pairs:
            raise ValueError(f"PairReducer expects (n, {2 * self.pairs}), got {tuple(x.shape)}")
        pairs = x.reshape(x.shape[0], self.pairs, 2)
        linear = (pairs * self.mix).sum(-1)
        hidden = F.gelu(torch.einsum("npi,pih->nph", pairs * self.input_scale, self.w1) + self.b1)
        return linear + (hidden * self.w2).sum(-1) / self.input_scale


class QamaHead(nn.Module):
    """Transformation head ``d → d`` with nested Matryoshka levels and hybrid pair reducers."""

    def __init__(self, config: HeadConfig | None = None):
        super().__init__()
        config = config or HeadConfig()
        config.validate()
        self.config = config
        d = config.input_dim
        # expansion 0: no FFN at all, the head is its linear skip (what documents-only training keeps; the
        # shipped pretrained head is that, so it carries no untrained weights).
        self.up = nn.Linear(d, config.expansion * d) if config.expansion else None
        self.down = nn.Linear(config.expansion * d, d) if config.expansion else None
        self.skip = nn.Linear(d, d) if config.init != "none" else None
        if self.skip is not None:
            if self.down is not None:
                nn.init.zeros_(self.down.weight)
                nn.init.zeros_(self.down.bias)
            with torch.no_grad():
                self.skip.weight.copy_(torch.eye(d))
                self.skip.bias.zero_()
        self.reducers = nn.ModuleDict(
            {
                str(level): PairReducer(level // 8, config.pair_hidden, input_scale=math.sqrt(level))
                for level in config.levels
            }
        )
        for level in config.levels:
            for scheme in SCHEMES:
                width = feature_width(level, scheme)
                self.register_buffer(_rotation_name(level, scheme), torch.eye(width))

    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(self.config.levels)

    @property
    def dim(self) -> int:
        return self.config.input_dim

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation of the skip: the PCA rotation of ``x`` for ``init="pca"``.

        Rows of ``S`` are the principal axes (of the centred covariance) by decreasing variance; the bias
        stays 0, so ``S`` is a rotation and ``S·x`` keeps all cosines. No-op for the other initialisations.
        """
        if self.config.init not in ("pca", "pca_rotated") or self.skip is None:
            return
        self._check_input(x)
        if x.shape[0] < 2:
            raise ValueError("PCA initialisation needs at least two training embeddings")
        x = x.detach().double()
        mean = x.mean(0)
        cov = (x - mean).T @ (x - mean) / (x.shape[0] - 1)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        axes = eigenvectors[:, torch.argsort(eigenvalues, descending=True)].T
        # Fix each axis' sign (positive largest loading) so the initialisation is deterministic.
        signs = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
        axes = axes * signs
        if self.config.init == "pca_rotated":
            generator = torch.Generator().manual_seed(0)
            bounds = [0, *sorted(self.levels)]
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                q, r = torch.linalg.qr(
                    torch.randn(hi - lo, hi - lo, generator=generator, dtype=torch.float64)
                )
                q = q * torch.sign(torch.diagonal(r))  # Haar-distributed rotation
                axes[lo:hi] = q @ axes[lo:hi]
        self.skip.weight.copy_(axes.float())
        self.skip.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalized head output ``(n, d)``; use `nested` for the normalized Matryoshka slices."""
        self._check_input(x)
        if self.up is None or self.down is None:
            assert self.skip is not None  # HeadConfig.validate: expansion 0 needs the skip
            return self.skip(x)
        out = self.down(F.gelu(self.up(x)))
        if self.skip is not None:
            out = out + self.skip(x)
        return out

    def slice(self, h: torch.Tensor, level: int) -> torch.Tensor:
        """Level ``level``'s slice of a head output, L2-normalized."""
        if level not in self.levels:
            raise ValueError(f"level must be one of {self.levels}, got {level!r}")
        return F.normalize(h[:, :level], dim=1)

    def nested(self, x: torch.Tensor, levels: tuple[int, ...] | None = None) -> dict[int, torch.Tensor]:
        """``{level: normalized slice}`` for every level (or the ones asked for)."""
        h = self.forward(x)
        return {level: self.slice(h, level) for level in (levels or self.levels)}

    def features(self, z: torch.Tensor, scheme: str) -> torch.Tensor:
        """Quantizer input for a normalized level slice ``z``: the slice itself, or for ``"hybrid"`` the
        first three quarters followed by the pair-reduced last quarter."""
        level = z.shape[1]
        if scheme != "hybrid":
            return z @ self.code_rotation(level, scheme)
        if str(level) not in self.reducers:
            raise ValueError(f"no pair reducer for a {level}-wide slice; levels are {self.levels}")
        kept = 3 * level // 4
        reduced = torch.cat([z[:, :kept], self.reducers[str(level)](z[:, kept:])], dim=1)
        return reduced @ self.code_rotation(level, scheme)

    def code_rotation(self, level: int, scheme: str) -> torch.Tensor:
        """The orthogonal matrix applied to the quantizer input of ``(level, scheme)`` (see the module docs)."""
        if level not in self.levels or scheme not in SCHEMES:
            raise ValueError(f"no code rotation for level {level!r}, scheme {scheme!r}")
        return getattr(self, _rotation_name(level, scheme))

    @torch.no_grad()
    def set_code_rotation(self, level: int, scheme: str, rotation: torch.Tensor) -> None:
        current = self.code_rotation(level, scheme)
        rotation = torch.as_tensor(rotation, dtype=current.dtype)
        if rotation.shape != current.shape:
            raise ValueError(f"rotation for {level}/{scheme} must be {tuple(current.shape)}, got {tuple(rotation.shape)}")
        error = (rotation.T @ rotation - torch.eye(len(rotation))).abs().max()
        if not bool(torch.isfinite(error)) or float(error) > 1e-3:
            raise ValueError(f"rotation for {level}/{scheme} is not orthogonal (max |R^T R - I| = {float(error):.2e})")
        current.copy_(rotation)

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")


def feature_width(level: int, scheme: str) -> int:
    """Quantizer inputs of a ``level``-wide slice: ``level``, or ``7 * level / 8`` for the hybrid scheme."""
    return 7 * level // 8 if scheme == "hybrid" else level


def _rotation_name(level: int, scheme: str) -> str:
    return f"code_rotation_{level}_{scheme.replace('.', '_')}"
