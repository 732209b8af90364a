"""A trained QAMA head as a ready-to-use model: load, embed, transform, quantize, index.

Artifact layout (a folder):

- ``head.safetensors`` — the head's parameters (FFN, skip, hybrid pair reducers);
- ``config.json`` — ``format``/``version``, base model id, input width, Matryoshka levels, schemes, the
  thresholds of every (level, scheme) as per-feature lists, the full training config, and a description of
  the training data and run.

``dims`` below is always a Matryoshka level of the head (e.g. 384/192/128/96/48): a level's slice is
L2-normalized on its own and has its own thresholds. Inputs ``emb`` are *base-model* embeddings
(``qama_rs.data.embed.embed_texts``); the head is applied here.

Searching: ``index = model.index(doc_texts_or_emb, dims, scheme)``, then ``D, I = index.search(query_emb, k)``
(base-model embeddings in; symmetric Hamming search on the head's codes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qama_rs.qama.config import DEFAULT_BASE_MODEL, QamaConfig
from qama_rs.qama.head import QamaHead
from qama_rs.qama.thresholds import ThresholdBank, scheme_levels

__all__ = ["QamaModel"]

FORMAT = "qama-rs/head"
FORMAT_VERSION = 2  # 2: code rotations per (level, scheme) in head.safetensors
WEIGHTS = "head.safetensors"
CONFIG = "config.json"
CHECKSUMS = "checksums.json"
PRETRAINED_ROOT = Path(__file__).resolve().parent / "pretrained"
PRETRAINED_DEFAULT = "all-MiniLM-L6-v2"
# Recalibrating the code rotations: documents sampled for the choice (its float32 top-10 targets cost
# 1,000 x rows inner products), and the fewest documents worth choosing on (below that only thresholds move).
RECALIBRATION_ROWS = 20_000
RECALIBRATION_MIN_ROWS = 100


class QamaModel:
    """A trained head, its thresholds and the config it was trained with."""

    def __init__(
        self,
        head: QamaHead,
        thresholds: ThresholdBank,
        config: QamaConfig,
        training: dict[str, Any] | None = None,
    ):
        if not isinstance(head, QamaHead):
            raise TypeError(f"head must be a QamaHead, got {type(head).__name__}")
        if not isinstance(thresholds, ThresholdBank):
            raise TypeError(f"thresholds must be a ThresholdBank, got {type(thresholds).__name__}")
        self.head = head.eval()
        self.thresholds = thresholds
        self.config = config
        self.training = training or {}
        #: Set by `pretrained`: an index built over this head refits its codes (code rotation, thresholds)
        #: on its own documents.
        self.recalibrate_on_index = False

    # ------------------------------------------------------------------------------- properties
    @property
    def base_model(self) -> str:
        return self.config.base_model

    @property
    def dim(self) -> int:
        return self.head.dim

    @property
    def levels(self) -> tuple[int, ...]:
        return self.head.levels

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(self.thresholds.schemes)

    # ------------------------------------------------------------------------------ persistence
    def save(self, path: str | Path, dtype: torch.dtype = torch.float32) -> Path:
        """Write ``head.safetensors``, ``config.json`` and ``checksums.json`` (their SHA-256) into the folder
        ``path`` (created if needed). Each file is written atomically (a failure leaves the old one whole).
        ``dtype=torch.float16`` halves the weights file (loading casts back to float32)."""
        from safetensors.torch import save as safetensors_bytes

        from qama_rs.engine import atomic_write

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to(dtype).contiguous() for k, v in self.head.state_dict().items()}
        weights = safetensors_bytes(state, metadata={"format": FORMAT, "version": str(FORMAT_VERSION)})
        thresholds: dict[str, dict[str, Any]] = {}
        for level, scheme in self.thresholds.pairs():
            levels = self.thresholds.feature_levels(level, scheme)
            rows = self.thresholds.get(level, scheme).tolist()
            thresholds.setdefault(str(level), {})[scheme] = {
                "levels": levels,
                # float32 -> Python float is exact and JSON round-trips doubles exactly.
                "thresholds": [row[: n - 1] for row, n in zip(rows, levels, strict=True)],
            }
        document = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "base_model": self.config.base_model,
            "input_dim": self.dim,
            "levels": list(self.levels),
            "schemes": list(self.schemes),
            "thresholds": thresholds,
            "config": self.config.to_dict(),
            "training": self.training,
        }
        config = (json.dumps(document, indent=1) + "\n").encode()
        sums = {WEIGHTS: hashlib.sha256(weights).hexdigest(), CONFIG: hashlib.sha256(config).hexdigest()}
        atomic_write(folder / WEIGHTS, lambda f: f.write(weights))
        atomic_write(folder / CONFIG, lambda f: f.write(config))
        atomic_write(folder / CHECKSUMS, lambda f: f.write((json.dumps(sums, indent=1) + "\n").encode()))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> QamaModel:
        """Read a folder written by `save` (or by `qama_rs.qama.train.train`)."""
        from safetensors.torch import load_file

        folder = Path(path)
        if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
            raise FileNotFoundError(f"{folder} does not hold a QAMA model ({CONFIG} + {WEIGHTS})")
        document = json.loads((folder / CONFIG).read_text())
        if document.get("format") != FORMAT:
            raise ValueError(f"{folder / CONFIG}: not a QAMA head (format {document.get('format')!r})")
        if document.get("version") != FORMAT_VERSION:
            raise ValueError(f"{folder / CONFIG}: unsupported version {document.get('version')!r}")
        config = QamaConfig.from_dict(document["config"])
        head = QamaHead(config.head)
        head.load_state_dict(load_file(str(folder / WEIGHTS)))
        bank = ThresholdBank(head.levels, document["schemes"])
        for level, scheme in bank.pairs():
            entry = document["thresholds"][str(level)][scheme]
            if entry["levels"] != bank.feature_levels(level, scheme):
                raise ValueError(f"{folder / CONFIG}: levels of {level}/{scheme} do not match the scheme")
            padded = bank.get(level, scheme).clone()
            for row, values in enumerate(entry["thresholds"]):
                padded[row, : len(values)] = torch.tensor(values, dtype=torch.float32)
            bank.set(level, scheme, padded)
        bank.initialised.fill_(True)
        return cls(head, bank, config, training=document.get("training"))

    @classmethod
    def pretrained(cls, name: str = PRETRAINED_DEFAULT) -> QamaModel:
        """The head shipped with the package for a stock base model (default: all-MiniLM-L6-v2), trained on
        documents only (50,000 Wikipedia passages; see train/pretrain.py), loaded offline.

        Its files' SHA-256 are checked against ``checksums.json`` first. Its code rotations and thresholds fit
        Wikipedia: call `recalibrate` with your own documents (``Index`` and ``qama index build`` do, for the
        level and scheme they store) before searching.
        """
        folder = PRETRAINED_ROOT / name
        if not folder.is_dir():
            known = sorted(p.name for p in PRETRAINED_ROOT.iterdir() if p.is_dir()) if PRETRAINED_ROOT.is_dir() else []
            raise ValueError(f"no pretrained head {name!r}; shipped: {known}")
        sums = json.loads((folder / CHECKSUMS).read_text())
        for file in (WEIGHTS, CONFIG):
            digest = hashlib.sha256((folder / file).read_bytes()).hexdigest()
            if sums.get(file) != digest:
                raise ValueError(f"pretrained head {name!r}: {file} is corrupt (sha256 {digest} != {sums.get(file)})")
        model = cls.load(folder)
        # Its codes fit Wikipedia: a factory index refits them on the documents it is trained on.
        model.recalibrate_on_index = True
        return model

    @torch.no_grad()
    def recalibrate(
        self,
        emb,
        rotations: bool = True,
        pairs: Sequence[tuple[int, str]] | None = None,
        progress: bool = False,
    ) -> QamaModel:
        """Refit the codes to ``emb`` (base-model embeddings of the documents to index); the head stays.

        For every (level, scheme) (or only ``pairs``): with ``rotations``, the code rotation is chosen again
        on these documents as training chose it (the label-free signal picks none / random / the quantization
        rotation, `qama_rs.qama.validation.select_code_rotation`; on at most 20,000 sampled documents, and only
        with at least 100 of them); then the thresholds are set to the quantiles of the features. No gradient
        step and no label: a few seconds per pair on 5,000 documents. The scores land in
        ``training["recalibration"]``. Returns self.
        """
        from tqdm.auto import tqdm

        from qama_rs.engine import Quantizer
        from qama_rs.qama.validation import select_code_rotation, validation_split

        x = self._as_tensor(emb)
        chosen = list(self.thresholds.pairs()) if pairs is None else [(int(lv), str(sc)) for lv, sc in pairs]
        for level, scheme in chosen:
            self._check_dims(level)
            self._check_scheme(scheme)
        h = torch.cat([self.head(chunk) for chunk in x.split(4096)])
        refit = rotations and len(x) >= RECALIBRATION_MIN_ROWS
        if refit:
            rows = np.arange(len(x))
            if len(rows) > RECALIBRATION_ROWS:
                rows = np.sort(np.random.default_rng(0).choice(rows, RECALIBRATION_ROWS, replace=False))
            split = validation_split(x[rows].numpy().astype(np.float32))
        report: dict[str, dict[str, dict[str, float]]] = {}
        for level, scheme in tqdm(chosen, desc="recalibrating codes", disable=not progress, leave=False):
            z = self.head.slice(h, level)
            if refit:
                width = self.head.code_rotation(level, scheme).shape[0]
                self.head.set_code_rotation(level, scheme, torch.eye(width))
                levels = self.thresholds.feature_levels(level, scheme)
                rotation, scores = select_code_rotation(
                    self.head.features(z[rows], scheme).double().numpy(),
                    levels,
                    split,
                    lambda f, levels=levels: Quantizer.fit(f, levels=levels),
                    iterations=self.config.thresholds.rotation_iterations,
                    seed=self.config.optim.seed,
                    cells=self.config.thresholds.rotation_cells,
                )
                self.head.set_code_rotation(level, scheme, torch.from_numpy(rotation).float())
                report.setdefault(str(level), {})[scheme] = scores
            self.thresholds.fit(level, scheme, self.head.features(z, scheme))
        if report:
            self.training = {**(self.training or {}), "recalibration": report}
        return self

    # ------------------------------------------------------------------------------- transforms
    def embed(self, texts, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Base-model embeddings of ``texts`` passed through the head: ``float32 (n, dim)``, L2-normalized."""
        return self.transform(self._embed_base(texts, batch_size, progress))

    def transform(self, emb, dims: int | None = None) -> np.ndarray:
        """Head output of base-model embeddings ``emb`` ``(n, input_dim)``: the level-``dims`` slice
        (default: full width), L2-normalized, ``float32``."""
        dims = self._check_dims(dims)
        with torch.no_grad():
            h = self.head(self._as_tensor(emb))
            return self.head.slice(h, dims).numpy().astype(np.float32)

    def features(self, emb, dims: int | None = None, scheme: str = "2bit") -> np.ndarray:
        """What the quantizer of ``(dims, scheme)`` takes: the normalized slice, or for ``"hybrid"`` its
        first three quarters plus the pair-reduced last quarter (``7 * dims / 8`` values)."""
        dims = self._check_dims(dims)
        self._check_scheme(scheme)
        with torch.no_grad():
            z = self.head.slice(self.head(self._as_tensor(emb)), dims)
            return np.ascontiguousarray(self.head.features(z, scheme).numpy(), dtype=np.float32)

    def quantizer(self, dims: int | None = None, scheme: str = "2bit"):
        """A `qama_rs.Quantizer` with this model's thresholds for ``(dims, scheme)``; it takes `features`
        (already pair-reduced for hybrid, so the quantizer does no reduction of its own)."""
        from qama_rs.engine import Quantizer

        dims = self._check_dims(dims)
        self._check_scheme(scheme)
        levels = scheme_levels(dims, scheme)
        thresholds = self.thresholds.get(dims, scheme).numpy().astype(np.float32)
        return Quantizer(thresholds, np.asarray(levels))

    def index(self, texts_or_emb, dims: int | None = None, scheme: str = "2bit", ids=None):
        """A `qama_rs.Index` (spec ``QAMA(<head>,<dims>),Thermo<bits>``) holding the codes of ``texts_or_emb``
        (strings are embedded with the base model first; an array is taken as base-model embeddings).
        Search it with base-model query embeddings: ``index.search(query_emb, k)`` (symmetric Hamming on
        this head's learned codes)."""
        from qama_rs.index import index_factory

        dims = self._check_dims(dims)
        self._check_scheme(scheme)
        codec = {"1bit": "Thermo1", "1.5bit": "Thermo1.5", "2bit": "Thermo2", "hybrid": "Hybrid"}[scheme]
        emb = self._embed_base(texts_or_emb, 64, False) if _is_texts(texts_or_emb) else np.asarray(texts_or_emb)
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        index = index_factory(emb.shape[1], f"QAMA({getattr(self, 'path', None) or 'head'},{dims}),{codec}", head=self)
        if index.needs_training:
            index.train(emb)
        index.add(emb, ids=ids)
        return index

    # ---------------------------------------------------------------------------------- helpers
    def _embed_base(self, texts, batch_size: int, progress: bool) -> np.ndarray:
        from qama_rs.data.embed import embed_texts

        model = None if self.config.base_model == DEFAULT_BASE_MODEL else self.config.base_model
        return embed_texts(texts, model=model, batch_size=batch_size, progress=progress)

    def _as_tensor(self, emb) -> torch.Tensor:
        array = np.asarray(emb)
        if array.dtype.kind != "f":
            raise TypeError(f"emb must be a floating-point array, got dtype {array.dtype}")
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise ValueError(f"emb must have shape (n, {self.dim}), got {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("emb contains a non-finite value")
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def _check_dims(self, dims: int | None) -> int:
        if dims is None:
            return self.levels[0]
        if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)):
            raise TypeError(f"dims must be an int, got {type(dims).__name__}")
        if int(dims) not in self.levels:
            raise ValueError(f"dims must be one of the head's levels {self.levels}, got {dims}")
        return int(dims)

    def _check_scheme(self, scheme: str) -> None:
        if scheme not in self.schemes:
            raise ValueError(f"scheme must be one of {self.schemes}, got {scheme!r}")

    def __repr__(self) -> str:
        return f"QamaModel(base_model={self.base_model!r}, levels={self.levels}, schemes={self.schemes})"


def _is_texts(value: Any) -> bool:
    if isinstance(value, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(t, str) for t in value)
