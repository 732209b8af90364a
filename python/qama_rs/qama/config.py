"""Training configuration for the QAMA head: dataclasses, JSON round trip and the ablation ladder.

Everything a training run depends on lives in one `QamaConfig`, so a run is reproducible from its
`config.json` alone. The ablation ladder (`ABLATION_STEPS`) follows the paper's order: each step switches on
one more component on top of the previous one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qama_rs.qama.rotation import ROTATION_CELLS

SCHEMES = ("1bit", "1.5bit", "2bit", "hybrid")
ROTATION_MODES = ("auto", "itq", "random", "none")
DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class HeadConfig:
    """Shape and initialisation of the transformation head (see `qama_rs.qama.head`)."""

    input_dim: int = 384
    # hidden width = expansion * input_dim (the paper uses 32); 0 = no FFN, the head is its linear skip
    # (the documents-only default: an untrained FFN adds nothing; `supervised_config()` sets 32).
    expansion: int = 0
    # Matryoshka levels: nested prefixes, largest first; the largest is the output width.
    levels: tuple[int, ...] = (384, 192, 128, 96, 48)
    # "pca": the linear skip starts as the corpus PCA rotation (untrained head == PCA);
    # "pca_rotated": the same, then a random rotation inside each Matryoshka band (same float truncations,
    # variance spread evenly for the quantizer);
    # "identity": the skip starts as the identity (untrained head == input);
    # "none": no skip, the paper's plain W2·GELU(W1·x) with default init.
    init: str = "pca"
    # Hidden width of each per-pair reduction FFN of the hybrid scheme's 0.5-bit segment.
    pair_hidden: int = 8

    def validate(self) -> None:
        if self.input_dim < 8:
            raise ValueError(f"head.input_dim must be >= 8, got {self.input_dim}")
        if self.expansion < 0:
            raise ValueError(f"head.expansion must be >= 0, got {self.expansion}")
        if self.expansion == 0 and self.init == "none":
            raise ValueError("head.expansion = 0 (no FFN) needs a linear skip; head.init must not be 'none'")
        if self.init not in ("pca", "pca_rotated", "identity", "none"):
            raise ValueError(
                f"head.init must be 'pca', 'pca_rotated', 'identity' or 'none', got {self.init!r}"
            )
        if not self.levels:
            raise ValueError("head.levels must not be empty")
        if list(self.levels) != sorted(set(self.levels), reverse=True):
            raise ValueError(f"head.levels must be strictly decreasing, got {list(self.levels)}")
        if self.levels[0] != self.input_dim:
            raise ValueError(
                f"head.levels[0] must equal head.input_dim ({self.input_dim}), got {self.levels[0]}"
            )
        for level in self.levels:
            # The hybrid scheme splits a level in quarters and pairs up the last quarter.
            if level % 8:
                raise ValueError(f"every head.levels entry must be a multiple of 8, got {level}")
        if self.pair_hidden < 1:
            raise ValueError(f"head.pair_hidden must be >= 1, got {self.pair_hidden}")

    def resized(self, input_dim: int) -> HeadConfig:
        """A copy for ``input_dim``-wide embeddings: every level scaled by ``input_dim / self.input_dim`` and
        rounded down to a multiple of 8 (the hybrid scheme's quarters and pairs), duplicates and levels under 8
        dropped. The default levels (384, 192, 128, 96, 48) become (768, 384, 256, 192, 96) for a 768-d model."""
        if not isinstance(input_dim, int) or input_dim < 8 or input_dim % 8:
            raise ValueError(f"input_dim must be a multiple of 8 and >= 8, got {input_dim!r}")
        scaled = [input_dim] + [level * input_dim // self.input_dim // 8 * 8 for level in self.levels[1:]]
        levels = tuple(sorted({level for level in scaled if level >= 8}, reverse=True))
        resized = dataclasses.replace(self, input_dim=input_dim, levels=levels)
        resized.validate()
        return resized


@dataclass
class ThresholdConfig:
    """Quantization schemes trained and the threshold statistics (see `qama_rs.qama.thresholds`)."""

    schemes: tuple[str, ...] = SCHEMES
    # EMA momentum of the batch-quantile threshold update.
    momentum: float = 0.995
    # Recompute thresholds from all training embeddings after the last step.
    calibrate: bool = True
    # Code rotation per (level, scheme), fitted on the training documents after the head is trained
    # (qama_rs.qama.rotation): "itq" (quantization-error minimising), "random", "none" (identity), or "auto"
    # (each of the three, keeping per (level, scheme) the best label-free validation recall).
    rotation: str = "auto"
    rotation_iterations: int = 20
    # The cells the quantization rotation fits to: "quantile" (the equal-mass bins the thresholds make) or
    # "lloyd_max" (Gaussian Lloyd-Max cells, which the quantile thresholds do not match; the earlier default).
    rotation_cells: str = "quantile"

    def validate(self) -> None:
        if not self.schemes:
            raise ValueError("thresholds.schemes must not be empty")
        for scheme in self.schemes:
            if scheme not in SCHEMES:
                raise ValueError(f"thresholds.schemes: unknown scheme {scheme!r}; expected one of {SCHEMES}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"thresholds.momentum must be in [0, 1), got {self.momentum}")
        if self.rotation not in ROTATION_MODES:
            raise ValueError(f"thresholds.rotation must be one of {ROTATION_MODES}, got {self.rotation!r}")
        if self.rotation_iterations < 0:
            raise ValueError(f"thresholds.rotation_iterations must be >= 0, got {self.rotation_iterations}")
        if self.rotation_cells not in ROTATION_CELLS:
            raise ValueError(f"thresholds.rotation_cells must be one of {ROTATION_CELLS}, got {self.rotation_cells!r}")


@dataclass
class LossConfig:
    """Weights (0 switches a loss off) and hyper-parameters of every loss (see `qama_rs.qama.losses`).

    The defaults are the full QAMA objective (the last ablation step)."""

    similarity: float = 1.0
    kl: float = 1.0
    rank: float = 1.0
    contrastive: float = 0.1
    # Labelled query–document pairs from a `train` qrels split (used only when such pairs are given).
    labelled: float = 1.0
    orthogonality: float = 0.1
    bottleneck: float = 0.01
    variance: float = 0.01
    quantization: float = 1.0
    # Apply the similarity-preservation losses at every Matryoshka level (summed) instead of only the
    # full width.
    matryoshka: bool = True
    # Also apply them to the quantized codes (Hamming similarity), per trained scheme.
    quantized: bool = True
    # Gradient path through the thermometer quantizer: "ste" (exact codes forward, sigmoid-relaxation
    # gradient backward), "soft" (sigmoid relaxation both ways) or "identity" (exact codes forward,
    # identity gradient per bit backward).
    quantized_path: str = "ste"
    # Sigmoid temperature of the soft thermometer, in units of each feature's batch standard deviation.
    soft_temperature: float = 0.25
    kl_temperature: float = 0.5
    contrastive_temperature: float = 0.05
    rank_sharpness: float = 2.0
    rank_top: int = 16
    bottleneck_x0: float = 0.1
    bottleneck_alpha: float = 0.3
    quantization_range_weight: float = 0.1
    quantization_ramp: tuple[float, float] = (0.2, 1.0)

    def validate(self) -> None:
        for name in (
            "similarity",
            "kl",
            "rank",
            "contrastive",
            "labelled",
            "orthogonality",
            "bottleneck",
            "variance",
            "quantization",
        ):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"losses.{name} weight must be >= 0, got {value}")
        if self.quantized_path not in ("ste", "soft", "identity"):
            raise ValueError(
                f"losses.quantized_path must be 'ste', 'soft' or 'identity', got {self.quantized_path!r}"
            )
        for name in ("soft_temperature", "kl_temperature", "contrastive_temperature", "rank_sharpness"):
            if getattr(self, name) <= 0:
                raise ValueError(f"losses.{name} must be > 0, got {getattr(self, name)}")
        if self.rank_top < 1:
            raise ValueError(f"losses.rank_top must be >= 1, got {self.rank_top}")


@dataclass
class OptimConfig:
    """Optimiser, schedule and run length."""

    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-4
    weight_decay: float = 0.01
    # Fraction of all steps spent in the linear warm-up (then cosine decay to 10 % of lr).
    warmup_fraction: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    # False freezes the head at its (PCA) initialisation: only code rotations and thresholds are fitted.
    # That is the default because it measured best documents-only (train/README.md): training the FFN on
    # documents alone lowered both the float output and the codes. `supervised_config()` trains it.
    train_head: bool = False
    # Labelled pairs per step when a train split is given.
    labelled_batch_size: int = 64

    def validate(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"optim.epochs must be >= 0, got {self.epochs}")
        if self.batch_size < 4:
            raise ValueError(f"optim.batch_size must be >= 4, got {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"optim.warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.grad_clip <= 0:
            raise ValueError(f"optim.grad_clip must be > 0, got {self.grad_clip}")
        if self.labelled_batch_size < 2:
            raise ValueError(f"optim.labelled_batch_size must be >= 2, got {self.labelled_batch_size}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"optim.seed must be an int >= 0, got {self.seed!r}")


@dataclass
class QamaConfig:
    """The whole training configuration; `to_dict`/`from_dict` round-trip through JSON."""

    base_model: str = DEFAULT_BASE_MODEL
    head: HeadConfig = field(default_factory=HeadConfig)
    thresholds: ThresholdConfig = field(default_factory=ThresholdConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    # Name of the ablation step this config was built from, if any (recorded in config.json).
    ablation: str | None = None

    def validate(self) -> QamaConfig:
        self.head.validate()
        self.thresholds.validate()
        self.losses.validate()
        self.optim.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QamaConfig:
        if not isinstance(data, dict):
            raise TypeError(f"config must be a dict, got {type(data).__name__}")
        sections = {
            "head": HeadConfig,
            "thresholds": ThresholdConfig,
            "losses": LossConfig,
            "optim": OptimConfig,
        }
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                kwargs[key] = _section_from_dict(sections[key], value, key)
            elif key in ("base_model", "ablation"):
                kwargs[key] = value
            else:
                raise ValueError(f"config: unknown key {key!r}")
        return cls(**kwargs).validate()

    @classmethod
    def load(cls, path: str | Path) -> QamaConfig:
        """Read a config JSON file (a full `config.json` of a trained model works too: extra keys of
        the artifact are ignored only under `"config"`)."""
        data = json.loads(Path(path).read_text())
        if "config" in data and isinstance(data["config"], dict):
            data = data["config"]
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _section_from_dict(section_cls: type, value: Any, key: str) -> Any:
    if not isinstance(value, dict):
        raise TypeError(f"config.{key} must be a dict, got {type(value).__name__}")
    names = {f.name: f for f in dataclasses.fields(section_cls)}
    kwargs = {}
    for name, item in value.items():
        if name not in names:
            raise ValueError(f"config.{key}: unknown key {name!r}")
        # JSON has no tuples: restore them where the dataclass default is one.
        default = names[name].default
        if names[name].default_factory is not dataclasses.MISSING:  # pragma: no cover - none today
            default = names[name].default_factory()
        kwargs[name] = tuple(item) if isinstance(default, tuple) and isinstance(item, list) else item
    return section_cls(**kwargs)


def supervised_config() -> QamaConfig:
    """The full QAMA objective with the head trained (FFN + skip): for corpora with labelled train pairs.

    Results with it are supervised adaptation; report them against the head's own float output."""
    config = QamaConfig()
    config.head.expansion = 32
    config.optim.train_head = True
    # The quantized losses train against unrotated thresholds, and a rotation chosen on documents-as-queries
    # measured worse for the labelled queries (scifact 1-bit 0.6239 with "auto" vs 0.7131 without).
    config.thresholds.rotation = "none"
    return config.validate()


# The paper's ablation order; each step adds one component to the previous one.
ABLATION_STEPS = (
    "thresholds",
    "ffn",
    "quantization",
    "matryoshka",
    "orthogonality",
    "bottleneck",
    "variance",
)


def ablation_config(step: str, base: QamaConfig | None = None) -> QamaConfig:
    """The config of one ablation step: ``base`` (default `supervised_config()`, the full objective) with the
    components after ``step`` switched off.

    - thresholds: head frozen at its initialisation, thresholds fitted only;
    - ffn: head trained with the similarity-preservation losses (float and quantized, full width only);
    - quantization: + quantization regularizer (repel from thresholds, range penalty);
    - matryoshka: + the same losses summed over every Matryoshka level;
    - orthogonality: + inter-level orthogonality;
    - bottleneck: + progressive information bottleneck;
    - variance: + adaptive variance control (the full QAMA objective).

    A component that ``base`` has switched off (weight 0) stays off. The default base is
    `supervised_config()` (the head trained), so that the ladder's steps differ.
    """
    if step not in ABLATION_STEPS:
        raise ValueError(f"ablation step must be one of {ABLATION_STEPS}, got {step!r}")
    config = QamaConfig.from_dict(base.to_dict()) if base is not None else supervised_config()
    rank = ABLATION_STEPS.index(step)

    def enabled(component: str) -> bool:
        return rank >= ABLATION_STEPS.index(component)

    losses = config.losses
    config.optim.train_head = config.optim.train_head and enabled("ffn")
    losses.matryoshka = losses.matryoshka and enabled("matryoshka")
    for component, name in (
        ("quantization", "quantization"),
        ("orthogonality", "orthogonality"),
        ("bottleneck", "bottleneck"),
        ("variance", "variance"),
    ):
        if not enabled(component):
            setattr(losses, name, 0.0)
    config.ablation = step
    return config.validate()
