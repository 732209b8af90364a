"""Training the QAMA head: data, the optimisation loop and checkpoints (the ``qama train`` command is
`qama_rs.cli.train_cmd`).

The head learns from **document** embeddings of one or more corpora (never test queries or test qrels);
labelled query–document pairs are added only from a ``train`` qrels split when a dataset has one. Each step
draws a batch of documents and adds, with the weights of `LossConfig`:

- similarity preservation (MSE, symmetric KL, rank, self-contrastive) between the base model's cosine matrix
  and the head's — on the float slices and, per trained scheme, on the Hamming similarity of the thermometer
  codes (straight-through gradient, see `qama_rs.qama.thresholds`); at every Matryoshka level when
  ``matryoshka`` is on, else at full width only;
- the regularizers: inter-level orthogonality, information bottleneck, adaptive variance control, and the
  quantization loss;
- with a ``train`` split: InfoNCE over labelled pairs, float and Hamming.

Thresholds start at the quantiles of the untrained head's outputs, follow batch quantiles by EMA, and are
recalibrated on all training documents at the end. The result is written by `qama_rs.qama.model.QamaModel.save`.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from qama_rs.qama import losses as L
from qama_rs.qama.config import QamaConfig
from qama_rs.qama.head import QamaHead
from qama_rs.qama.thresholds import ThresholdBank, hamming_similarity, thermometer_bits, threshold_count
from qama_rs.qama.validation import ROTATION_MODES_TRIED, select_code_rotation, validation_split

__all__ = [
    "TrainingData",
    "load_training_data",
    "neighbour_recall",
    "train",
]

CHECKPOINT = "checkpoint.pt"
ROTATION_FIT_ROWS = 16384


@dataclass
class TrainingData:
    """Base-model embeddings to train on: documents, plus optional labelled (query, document) pairs.

    ``pair_queries[i]`` is relevant to ``pair_docs[i]``; ``pair_query_keys``/``pair_doc_keys`` identify
    queries and documents so that in-batch duplicates and other known positives are not used as negatives.
    """

    docs: np.ndarray
    pair_queries: np.ndarray | None = None
    pair_docs: np.ndarray | None = None
    pair_query_keys: list[str] = field(default_factory=list)
    pair_doc_keys: list[str] = field(default_factory=list)
    description: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        docs = np.asarray(self.docs)
        if docs.ndim != 2 or docs.shape[0] < 2 or docs.dtype.kind != "f":
            raise ValueError(f"docs must be a float array (n >= 2, d), got {docs.dtype} {docs.shape}")
        if not np.isfinite(docs).all():
            raise ValueError("docs contain a non-finite value")
        self.docs = np.ascontiguousarray(docs, dtype=np.float32)
        if (self.pair_queries is None) != (self.pair_docs is None):
            raise ValueError("pair_queries and pair_docs must be given together")
        if self.pair_queries is not None:
            self.pair_queries = np.ascontiguousarray(self.pair_queries, dtype=np.float32)
            self.pair_docs = np.ascontiguousarray(self.pair_docs, dtype=np.float32)
            n = len(self.pair_queries)
            if (
                self.pair_docs.shape != self.pair_queries.shape
                or self.pair_queries.shape[1:] != self.docs.shape[1:]
            ):
                raise ValueError("pair_queries and pair_docs must both be (n_pairs, d) with the docs' d")
            if not self.pair_query_keys:
                self.pair_query_keys = [str(i) for i in range(n)]
            if not self.pair_doc_keys:
                self.pair_doc_keys = [str(i) for i in range(n)]
            if len(self.pair_query_keys) != n or len(self.pair_doc_keys) != n:
                raise ValueError("pair key lists must have one entry per pair")

    @property
    def n_pairs(self) -> int:
        return 0 if self.pair_queries is None else len(self.pair_queries)


def load_training_data(
    datasets: Sequence[str | Path], model: str | None = None, labelled: bool = True, progress: bool = True
) -> TrainingData:
    """Document embeddings of every dataset (`qama_rs.data.embed.dataset_embeddings`, cached), plus labelled
    pairs from each dataset's ``qrels/train.tsv`` when ``labelled`` and the file exists.

    Only the documents are read from a dataset without a train split; test queries and test qrels are never
    used.
    """
    from qama_rs.data.beir import load_beir, resolve_dataset
    from qama_rs.data.embed import dataset_embeddings

    if isinstance(datasets, (str, Path)):
        raise TypeError("datasets must be a sequence of dataset names or paths, not a single one")
    if not datasets:
        raise ValueError("datasets must name at least one dataset")
    docs, pair_q, pair_d, q_keys, d_keys, description = [], [], [], [], [], []
    for item in datasets:
        path = resolve_dataset(item)
        has_train = (Path(path) / "qrels" / "train.tsv").is_file()
        # Documents do not depend on the split; read them through the train split when there is one so
        # that nothing of the test split is touched.
        dataset = load_beir(path, split="train") if has_train else load_beir(path)
        emb = dataset_embeddings(dataset, model=model)
        docs.append(emb.docs)
        entry: dict[str, Any] = {
            "name": dataset.name,
            "path": str(item),
            "docs": int(emb.docs.shape[0]),
            "pairs": 0,
        }
        if labelled and has_train:
            row_of_query = {qid: i for i, qid in enumerate(emb.query_ids)}
            row_of_doc = {did: i for i, did in enumerate(emb.doc_ids)}
            n_before = len(pair_q)
            for qid, judged in dataset.qrels.items():
                for did, relevance in judged.items():
                    if relevance > 0 and qid in row_of_query and did in row_of_doc:
                        pair_q.append(emb.queries[row_of_query[qid]])
                        pair_d.append(emb.docs[row_of_doc[did]])
                        q_keys.append(f"{dataset.name}/{qid}")
                        d_keys.append(f"{dataset.name}/{did}")
            entry["pairs"] = len(pair_q) - n_before
            entry["pairs_split"] = "train"
        description.append(entry)
    return TrainingData(
        docs=np.concatenate(docs),
        pair_queries=np.stack(pair_q) if pair_q else None,
        pair_docs=np.stack(pair_d) if pair_d else None,
        pair_query_keys=q_keys,
        pair_doc_keys=d_keys,
        description=description,
    )


def neighbour_recall(reference: np.ndarray, candidate_similarity: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each row's top-``k`` cosine neighbours under ``reference`` embeddings that the
    ``candidate_similarity`` matrix also ranks in its top ``k`` (self excluded; ties in the candidate broken
    by lower index, as the engine does). A held-out similarity-preservation metric."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate_similarity, dtype=np.float64)
    n = reference.shape[0]
    if candidate.shape != (n, n):
        raise ValueError(f"candidate_similarity must be ({n}, {n}), got {candidate.shape}")
    if not 1 <= k < n:
        raise ValueError(f"k must be in 1..{n - 1}, got {k}")
    truth = reference @ reference.T
    np.fill_diagonal(truth, -np.inf)
    candidate = candidate.copy()
    np.fill_diagonal(candidate, -np.inf)
    true_top = np.argsort(-truth, axis=1, kind="stable")[:, :k]
    cand_top = np.argsort(-candidate, axis=1, kind="stable")[:, :k]
    hits = [len(set(a) & set(b)) for a, b in zip(true_top.tolist(), cand_top.tolist(), strict=True)]
    return float(np.mean(hits) / k)


# ----------------------------------------------------------------------------------------- training


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class _Trainer:
    """One training run's state: head, thresholds, frozen base frame, optimiser, schedule."""

    def __init__(self, config: QamaConfig, data: TrainingData):
        self.config = config
        self.data = data
        self.docs = torch.from_numpy(data.docs)
        self.head = QamaHead(copy.deepcopy(config.head))
        self.head.init_from_data(self.docs)
        self.bank = ThresholdBank(self.head.levels, config.thresholds.schemes)
        # "The item's own original embedding" for the self-contrastive loss, in the head's initial frame
        # (identity: the input itself; PCA: the input's PCA coordinates), frozen.
        self.base = (
            copy.deepcopy(self.head.skip).requires_grad_(False) if self.head.skip is not None else None
        )
        self.calibrate()
        batches_per_epoch = math.ceil(len(self.docs) / config.optim.batch_size)
        self.total_steps = max(1, batches_per_epoch * config.optim.epochs)
        self.warmup = int(config.optim.warmup_fraction * self.total_steps)
        self.optimizer = torch.optim.AdamW(
            self.head.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: _lr_factor(s, self.total_steps, self.warmup)
        )
        self.step = 0
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self._pair_positive = self._pair_positive_sets()

    # --------------------------------------------------------------------------- thresholds
    @torch.no_grad()
    def calibrate(self) -> None:
        """Thresholds = quantiles of the current head's features over all training documents."""
        self.head.eval()
        # Chunked: the hidden layer of all documents at once would need n * e * d floats.
        h = torch.cat([self.head(chunk) for chunk in self.docs.split(2048)])
        for level in self.head.levels:
            z = self.head.slice(h, level)
            for scheme in self.bank.schemes:
                self.bank.fit(level, scheme, self.head.features(z, scheme))
        self.bank.initialised.fill_(True)

    @torch.no_grad()
    def fit_code_rotations(self, progress: bool = True) -> dict[str, dict[str, dict[str, float]]]:
        """Fit every (level, scheme)'s code rotation on the training documents (``thresholds.rotation``),
        calibrating its thresholds; returns the label-free validation recall@10 of each candidate tried
        (``{level: {scheme: {mode: recall}}}``, empty when the mode is ``"none"``).

        Held-out documents (10 %, at most 1,000) are the validation queries and are left out of the fit.
        ``"auto"`` keeps, per (level, scheme), the candidate with the best validation recall.
        """
        mode = self.config.thresholds.rotation
        if mode == "none":
            return {}
        from tqdm.auto import tqdm

        self.head.eval()
        split = validation_split(self.docs.numpy(), self.config.optim.seed, ROTATION_FIT_ROWS)
        h = torch.cat([self.head(chunk) for chunk in self.docs.split(2048)])
        modes = ROTATION_MODES_TRIED if mode == "auto" else (mode,)
        report: dict[str, dict[str, dict[str, float]]] = {}
        pairs = [(level, scheme) for level in self.head.levels for scheme in self.bank.schemes]
        for level, scheme in tqdm(pairs, desc="code rotations", disable=not progress, leave=False):
            z = self.head.slice(h, level)
            width = self.head.code_rotation(level, scheme).shape[0]
            self.head.set_code_rotation(level, scheme, torch.eye(width))

            def quantizer_for(features: np.ndarray, level: int = level, scheme: str = scheme):
                self.bank.fit(level, scheme, torch.from_numpy(features))
                return self._quantizer(level, scheme)

            rotation, scores = select_code_rotation(
                self.head.features(z, scheme).double().numpy(),
                self.bank.feature_levels(level, scheme),
                split,
                quantizer_for,
                modes,
                self.config.thresholds.rotation_iterations,
                self.config.optim.seed,
                self.config.thresholds.rotation_cells,
            )
            self.head.set_code_rotation(level, scheme, torch.from_numpy(rotation).float())
            report.setdefault(str(level), {})[scheme] = scores
        self.calibrate()
        return report

    def _quantizer(self, level: int, scheme: str):
        from qama_rs.engine import Quantizer

        levels = self.bank.feature_levels(level, scheme)
        return Quantizer(self.bank.get(level, scheme).numpy().astype(np.float32), np.asarray(levels))

    # -------------------------------------------------------------------------------- losses
    def _base_slice(self, x: torch.Tensor, level: int) -> torch.Tensor:
        frame = self.base(x) if self.base is not None else x
        return F.normalize(frame[:, :level], dim=1)

    def _similarity_terms(self, teacher: torch.Tensor, student: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.config.losses
        terms = {}
        if cfg.similarity:
            terms["sim"] = L.similarity_mse(teacher, student)
        if cfg.kl:
            terms["kl"] = L.symmetric_kl(teacher, student, cfg.kl_temperature)
        if cfg.rank:
            terms["rank"] = L.rank_preservation(teacher, student, cfg.rank_sharpness, cfg.rank_top)
        return terms

    def _bits(self, features: torch.Tensor, level: int, scheme: str) -> tuple[torch.Tensor, int]:
        thresholds = self.bank.get(level, scheme)
        bits = thermometer_bits(
            features, thresholds, self.config.losses.quantized_path, self.config.losses.soft_temperature
        )
        return bits, threshold_count(self.bank.feature_levels(level, scheme))

    @torch.no_grad()
    def evaluate_loss(self, x: torch.Tensor) -> float:
        """Total loss of ``x`` at schedule step 0, without touching the thresholds (before/after report)."""
        was_training = self.head.training
        self.head.eval()
        step = self.step
        self.step = 0
        try:
            return float(self.losses(x, None, update_thresholds=False)[0])
        finally:
            self.step = step
            self.head.train(was_training)

    def losses(
        self,
        x: torch.Tensor,
        pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
        update_thresholds: bool = True,
    ):
        """Weighted total and the unweighted terms of one batch; moves the thresholds by EMA unless told not to."""
        cfg = self.config.losses
        weights = {
            "sim": cfg.similarity,
            "kl": cfg.kl,
            "rank": cfg.rank,
            "contrast": cfg.contrastive,
            "q_sim": cfg.similarity,
            "q_kl": cfg.kl,
            "q_rank": cfg.rank,
            "labelled": cfg.labelled,
            "q_labelled": cfg.labelled,
            "orth": cfg.orthogonality,
            "ib": cfg.bottleneck,
            "var": cfg.variance,
            "quant": cfg.quantization,
        }
        teacher = x @ x.T
        h = self.head(x)
        levels = self.head.levels if cfg.matryoshka else self.head.levels[:1]
        schemes = self.bank.schemes
        per_level: dict[str, dict[int, torch.Tensor]] = defaultdict(dict)
        slices = {level: self.head.slice(h, level) for level in levels}
        # All levels' (and schemes') similarity matrices go through each loss as one stack.
        float_terms = self._similarity_terms(teacher, torch.stack([z @ z.T for z in slices.values()]))
        for name, values in float_terms.items():
            per_level[name] = dict(zip(levels, values, strict=True))
        quantized_sims, quant_terms = [], []
        for level, z in slices.items():
            if cfg.contrastive:
                per_level["contrast"][level] = L.contrastive_infonce(
                    z @ self._base_slice(x, level).T, cfg.contrastive_temperature
                )
            for scheme in schemes:
                features = self.head.features(z, scheme)
                if cfg.quantized:
                    bits, n_bits = self._bits(features, level, scheme)
                    quantized_sims.append(hamming_similarity(bits, bits, n_bits))
                if cfg.quantization:
                    quant_terms.append(
                        L.quantization_loss(
                            features,
                            self.bank.get(level, scheme),
                            self.step,
                            self.total_steps,
                            cfg.quantization_range_weight,
                            tuple(cfg.quantization_ramp),
                        )
                    )
                if update_thresholds:
                    self.bank.ema_update(level, scheme, features.detach(), self.config.thresholds.momentum)
        if pairs is not None and cfg.labelled:
            queries, docs, positives = pairs
            hq, hd = self.head(queries), self.head(docs)
            for level in levels:
                for name, value in self._labelled_terms(hq, hd, positives, level).items():
                    per_level[name][level] = value
        if quantized_sims:
            for name, values in self._similarity_terms(teacher, torch.stack(quantized_sims)).items():
                per_level["q_" + name] = dict(
                    zip(levels, values.reshape(len(levels), len(schemes)).mean(1), strict=True)
                )
        if quant_terms:
            per_level["quant"] = dict(
                zip(levels, torch.stack(quant_terms).reshape(len(levels), len(schemes)).mean(1), strict=True)
            )
        terms = {name: L.matryoshka_loss(values) for name, values in per_level.items()}
        z_full = F.normalize(h, dim=1)
        if cfg.orthogonality:
            terms["orth"] = L.orthogonality_loss(h, self.head.levels)
        if cfg.bottleneck:
            terms["ib"] = L.information_bottleneck(z_full, cfg.bottleneck_x0, cfg.bottleneck_alpha)
        if cfg.variance:
            terms["var"] = L.variance_control(z_full, self.step, self.total_steps)
        total = sum(weights[name] * value for name, value in terms.items())
        return total, terms

    def _labelled_terms(
        self, hq: torch.Tensor, hd: torch.Tensor, positives: torch.Tensor, level: int
    ) -> dict[str, torch.Tensor]:
        """InfoNCE of labelled query -> document pairs at one level: float cosine and Hamming similarity."""
        cfg = self.config.losses
        zq, zd = self.head.slice(hq, level), self.head.slice(hd, level)
        terms = {"labelled": L.contrastive_infonce(zq @ zd.T, cfg.contrastive_temperature, positives)}
        if cfg.quantized:
            values = []
            for scheme in self.bank.schemes:
                bits_q, n_bits = self._bits(self.head.features(zq, scheme), level, scheme)
                bits_d, _ = self._bits(self.head.features(zd, scheme), level, scheme)
                values.append(
                    L.contrastive_infonce(
                        hamming_similarity(bits_q, bits_d, n_bits), cfg.contrastive_temperature, positives
                    )
                )
            terms["q_labelled"] = torch.stack(values).mean()
        return terms

    def _pair_positive_sets(self) -> dict[str, set[str]] | None:
        if not self.data.n_pairs:
            return None
        positive: dict[str, set[str]] = defaultdict(set)
        for q, d in zip(self.data.pair_query_keys, self.data.pair_doc_keys, strict=True):
            positive[q].add(d)
        return positive

    def _pair_batch(self, generator: torch.Generator):
        if self._pair_positive is None:
            return None
        n = self.data.n_pairs
        size = min(self.config.optim.labelled_batch_size, n)
        rows = torch.randperm(n, generator=generator)[:size].tolist()
        q_keys = [self.data.pair_query_keys[i] for i in rows]
        d_keys = [self.data.pair_doc_keys[i] for i in rows]
        positives = torch.tensor([[d in self._pair_positive[q] for d in d_keys] for q in q_keys])
        queries = torch.from_numpy(self.data.pair_queries[rows])
        docs = torch.from_numpy(self.data.pair_docs[rows])
        return queries, docs, positives

    # ------------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "head": self.head.state_dict(),
            "bank": self.bank.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "history": self.history,
            "config": self.config.to_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("config") != self.config.to_dict():
            raise ValueError("checkpoint was written with a different config; refuse to resume")
        self.head.load_state_dict(state["head"])
        self.bank.load_state_dict(state["bank"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch, self.history = state["step"], state["epoch"], state["history"]
        torch.set_rng_state(state["torch_rng"])

    # ------------------------------------------------------------------------------------ loop
    def run(self, out_dir: Path, progress: bool = True) -> None:
        from tqdm.auto import tqdm

        optim = self.config.optim
        if not optim.train_head:
            return
        n = len(self.docs)
        while self.epoch < optim.epochs:
            generator = torch.Generator().manual_seed(optim.seed * 1000 + self.epoch)
            order = torch.randperm(n, generator=generator)
            running: dict[str, float] = defaultdict(float)
            batches = [order[i : i + optim.batch_size] for i in range(0, n, optim.batch_size)]
            # A last batch too small for batch statistics is folded into the previous one.
            if len(batches) > 1 and len(batches[-1]) < 4:
                batches[-2] = torch.cat([batches[-2], batches.pop()])
            bar = tqdm(
                batches, desc=f"epoch {self.epoch + 1}/{optim.epochs}", disable=not progress, leave=False
            )
            self.head.train()
            for count, rows in enumerate(bar, start=1):
                total, terms = self.losses(self.docs[rows], self._pair_batch(generator))
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
                torch.nn.utils.clip_grad_norm_(self.head.parameters(), optim.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                running["total"] += float(total.detach())
                for name, value in terms.items():
                    running[name] += float(value.detach())
                bar.set_postfix({k: f"{v / count:.3f}" for k, v in running.items()}, refresh=False)
            self.history.append({k: v / len(batches) for k, v in running.items()} | {"epoch": self.epoch + 1})
            self.epoch += 1
            torch.save(self.state_dict(), out_dir / CHECKPOINT)


def train(
    config: QamaConfig,
    datasets: Sequence[str | Path] | TrainingData,
    out_dir: str | Path,
    *,
    model: str | None = None,
    labelled: bool = True,
    resume: bool = False,
    progress: bool = True,
    fit_width: bool = False,
) -> Path:
    """Train a QAMA head and write ``head.safetensors`` + ``config.json`` (+ ``checkpoint.pt``) to ``out_dir``.

    ``datasets``: BEIR dataset names/paths (their documents, and ``train`` qrels pairs if ``labelled``), or a
    ready `TrainingData`. ``model``: base embedding model (default: the bundled all-MiniLM-L6-v2).
    ``resume``: continue from ``out_dir/checkpoint.pt`` (written after every epoch) — the config must match.
    ``fit_width``: when the embeddings are not ``config.head.input_dim`` wide, train a head sized to them
    (`HeadConfig.resized`: the levels scale with the width) instead of raising; ``qama train`` without
    ``--config`` does this. Returns ``out_dir``.
    """
    from qama_rs.qama.model import QamaModel

    if not isinstance(config, QamaConfig):
        raise TypeError(f"config must be a QamaConfig, got {type(config).__name__}")
    config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _seed_everything(config.optim.seed)
    data = (
        datasets
        if isinstance(datasets, TrainingData)
        else load_training_data(datasets, model, labelled, progress)
    )
    if data.docs.shape[1] != config.head.input_dim:
        if not fit_width:
            raise ValueError(
                f"embeddings are {data.docs.shape[1]}-d but head.input_dim is {config.head.input_dim}"
            )
        config = replace(config, head=config.head.resized(int(data.docs.shape[1]))).validate()
    from qama_rs.data.embed import is_embeddings_file

    if model is not None and not is_embeddings_file(model):
        # The head belongs to the model that embedded its training documents: QamaModel.embed uses this one.
        # (A folder is recorded as an absolute path; a model name as given.)
        folder = Path(model).expanduser()
        config = replace(config, base_model=str(folder.resolve()) if folder.is_dir() else str(model))
    if not labelled:
        data = TrainingData(docs=data.docs, description=data.description)
    started = time.perf_counter()
    trainer = _Trainer(config, data)
    checkpoint = out / CHECKPOINT
    if resume:
        if not checkpoint.is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {checkpoint}")
        trainer.load_state_dict(torch.load(checkpoint, weights_only=False))
    probe = trainer.docs[: min(len(trainer.docs), 512)]
    loss_before = trainer.evaluate_loss(probe) if not resume else None
    trainer.run(out, progress=progress)
    if config.thresholds.calibrate or not config.optim.train_head:
        trainer.calibrate()
    validation = trainer.fit_code_rotations(progress=progress)
    loss_after = trainer.evaluate_loss(probe)
    elapsed = time.perf_counter() - started
    training = {
        "data": data.description,
        "documents": int(data.docs.shape[0]),
        "labelled_pairs": data.n_pairs,
        "steps": trainer.step,
        # Total loss on the first 512 documents (schedules at step 0) before and after training.
        "loss_before": loss_before,
        "loss_after": loss_after,
        "seconds": round(elapsed, 2),
        "history": trainer.history,
        # Label-free validation recall@10 (held-out documents as queries) of each code rotation tried.
        "validation": validation,
    }
    QamaModel(trainer.head, trainer.bank, config, training=training).save(out)
    return out
