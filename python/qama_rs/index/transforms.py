"""Transform stages of a spec, applied to documents and queries alike before the codec.

* ``Prefix{m}`` — the Matryoshka prefix: the first ``m`` dimensions, each row renormalized to unit
  length (a zero row stays zero), as the evaluation's float methods always did;
* ``Hadamard[(seed)]`` / ``Orthogonal[(seed)]`` — a seeded randomized Walsh-Hadamard transform
  (zero-padded to the next power of two) or random orthogonal matrix (:mod:`qama_rs.quantizers.rotation`);
* ``QAMA(path[,level])`` / ``QAMA(pretrained)`` — a trained QAMA head (:class:`qama_rs.qama.model.QamaModel`):
  its level-``level`` output (default: its first level); before a ``Thermo*``/``Hybrid`` codec the head's
  own features and learned thresholds are used instead of fitting new ones (the pretrained head's code
  rotation and thresholds are refitted on the documents the index is trained on, and the rotation is
  stored in the index file).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from qama_rs.errors import QamaError
from qama_rs.quantizers.rotation import RandomizedHadamard, RandomOrthogonal
from qama_rs.quantizers.state import check_orthonormal, corrupt, state_array

__all__ = ["PrefixTransform", "QamaTransform", "RotationTransform", "Transform", "prefix_normalize"]


def prefix_normalize(x: np.ndarray, dims: int) -> np.ndarray:
    """First ``dims`` columns, each row rescaled to unit L2 norm (a zero row stays zero)."""
    head = np.ascontiguousarray(x[:, :dims], dtype=np.float32)
    norms = np.linalg.norm(head, axis=1, keepdims=True)
    return head / np.maximum(norms, np.float32(1e-12))


class Transform:
    """A stage mapping ``(n, in_dims)`` float32 rows to ``(n, out_dims)``."""

    kind = "transform"
    #: Whether the output keeps the input's coordinates (so a Matryoshka ``dims`` still means something).
    keeps_coordinates = False

    def __init__(self, label: str) -> None:
        self.label = label
        self.in_dims: int | None = None
        self.trained = False

    def train(self, in_dims: int) -> None:
        self.in_dims = in_dims
        self.trained = True

    def calibrate(self, x: np.ndarray) -> None:
        """Fit anything data-dependent to the training rows ``x`` (its input); most stages have nothing."""

    def out_dims(self, in_dims: int) -> int:
        return in_dims

    def apply(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"in_dims": self.in_dims}, {}

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.train(int(meta["in_dims"]))


class PrefixTransform(Transform):
    kind = "prefix"
    keeps_coordinates = True

    def __init__(self, label: str, m: int) -> None:
        super().__init__(label)
        self.m = m

    def out_dims(self, in_dims: int) -> int:
        if self.m > in_dims:
            raise QamaError(
                f"spec stage {self.label!r}: prefix of {self.m} dimensions of {in_dims}-dimensional vectors"
            )
        return self.m

    def apply(self, x):
        return prefix_normalize(x, self.m)


class RotationTransform(Transform):
    kind = "rotation"

    def __init__(self, label: str, rotation: str, seed: int) -> None:
        super().__init__(label)
        self.rotation_kind = rotation
        self.seed = seed
        self._rotation: RandomizedHadamard | RandomOrthogonal | None = None

    def _make(self):
        return (RandomizedHadamard if self.rotation_kind == "hadamard" else RandomOrthogonal)(seed=self.seed)

    def train(self, in_dims):
        super().train(in_dims)
        self._rotation = self._make().fit(in_dims)

    def out_dims(self, in_dims: int) -> int:
        if self.rotation_kind == "hadamard":
            return 1 << (in_dims - 1).bit_length()
        return in_dims

    def apply(self, x):
        return np.ascontiguousarray(self._rotation.apply(x), dtype=np.float32)

    def state(self):
        meta, arrays = super().state()
        if self.rotation_kind == "hadamard":
            arrays["signs"] = np.asarray(self._rotation.signs, dtype=np.float64)
        else:
            arrays["matrix"] = np.asarray(self._rotation.matrix, dtype=np.float32)
        return meta, arrays

    def restore(self, meta, arrays):
        # The stored rotation, not a redraw from the seed: loading never depends on the RNG's version.
        Transform.train(self, int(meta["in_dims"]))
        rotation = self._make()
        rotation.dim = self.in_dims
        owner = f"transform {self.label!r}"
        if self.rotation_kind == "hadamard":
            rotation.padded_dim = self.out_dims(self.in_dims)
            signs = state_array(arrays, "signs", owner, np.float64, shape=(rotation.padded_dim,))
            if not np.isin(signs, (-1.0, 1.0)).all():
                raise corrupt(owner, "'signs' holds values other than -1 and +1")
            rotation.signs = np.array(signs)
        else:
            matrix = state_array(arrays, "matrix", owner, np.float32, shape=(self.in_dims, self.in_dims))
            check_orthonormal(matrix, owner, "matrix")
            rotation.matrix = np.array(matrix)
        self._rotation = rotation


def load_qama_model(source: str):
    """``QamaModel.load(source)``, or ``QamaModel.pretrained()`` for ``"pretrained"``."""
    from qama_rs.qama.model import QamaModel

    if source.lower() == "pretrained":
        pretrained = getattr(QamaModel, "pretrained", None)
        if pretrained is None:
            raise QamaError(
                "QAMA(pretrained): this qama-rs has no pretrained head yet; give a head folder, QAMA(path)"
            )
        return pretrained()
    try:
        return QamaModel.load(source)
    except FileNotFoundError as err:
        raise QamaError(f"QAMA({source}): {err}") from None


class QamaTransform(Transform):
    """A trained head. ``model`` may be given directly (then ``source`` only names it in the spec)."""

    kind = "qama"

    def __init__(self, label: str, source: str, level: int | None, model: Any = None) -> None:
        super().__init__(label)
        self.source = source
        self.level = level
        self._model = model
        self.scheme: str | None = None  # set when a thermometer codec follows: head features

    @property
    def model(self):
        if self._model is None:
            self._model = load_qama_model(self.source)
        return self._model

    def resolved_level(self) -> int:
        levels = tuple(int(m) for m in self.model.levels)
        if self.level is None:
            return levels[0]
        if self.level not in levels:
            raise QamaError(
                f"spec stage {self.label!r}: level {self.level} is not one of the head's levels {levels}"
            )
        return self.level

    def out_dims(self, in_dims: int) -> int:
        model_dim = getattr(self.model, "dim", None)
        if model_dim is not None and int(model_dim) != in_dims:
            raise QamaError(
                f"spec stage {self.label!r}: the head takes {model_dim}-dimensional embeddings, not {in_dims}"
                # Which model made the head's embeddings is the usual fix (e.g. `qama index build --model`).
                + (f" (it was trained on embeddings of {self.model.base_model})" if hasattr(self.model, "base_model") else "")
            )
        level = self.resolved_level()
        if self.scheme == "hybrid":
            return 7 * level // 8
        return level

    def apply(self, x):
        level = self.resolved_level()
        if not x.flags.writeable:
            x = x.copy()  # torch refuses to wrap read-only arrays (e.g. rows of a memory-mapped .npy)
        if self.scheme is not None:
            return np.ascontiguousarray(self.model.features(x, level, self.scheme), dtype=np.float32)
        return np.ascontiguousarray(self.model.transform(x, level), dtype=np.float32)

    @property
    def recalibrates(self) -> bool:
        """The shipped pretrained head learned its codes on Wikipedia: an index refits its code rotation and
        thresholds on its own documents (`QamaModel.recalibrate`; no gradient step, no label)."""
        return self.source.lower() == "pretrained" or bool(getattr(self.model, "recalibrate_on_index", False))

    def calibrate(self, x: np.ndarray) -> None:
        """Refit the head's codes for this level and scheme to the documents ``x`` (base-model embeddings)
        the index is trained on, when it `recalibrates`; the rotation is kept in the index file (`state`)."""
        if self.scheme is None or not self.recalibrates or not len(x):
            return
        level = self.resolved_level()
        # A private copy: a model object handed to several indexes must not change the codes of the others.
        self._model = copy.deepcopy(self.model)
        self._model.recalibrate(x, pairs=[(level, self.scheme)])
        self._code_rotation = self.model.head.code_rotation(level, self.scheme).numpy().copy()

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super().state()
        rotation = getattr(self, "_code_rotation", None)
        if rotation is not None:
            arrays["code_rotation"] = np.asarray(rotation, dtype=np.float32)
        return meta, arrays

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super().restore(meta, arrays)
        if "code_rotation" in arrays:
            if self.scheme is None:
                raise QamaError(f"spec stage {self.label!r}: a stored code rotation needs a thermometer codec")
            try:
                self.model.head.set_code_rotation(
                    self.resolved_level(), self.scheme, np.array(arrays["code_rotation"], dtype=np.float32)
                )
            except ValueError as err:
                raise QamaError(f"spec stage {self.label!r}: stored code rotation: {err}") from None
            self._code_rotation = np.array(arrays["code_rotation"], dtype=np.float32)

    def learned_quantizer(self, features: np.ndarray | None = None):
        """The head's quantizer for this level and scheme; for the pretrained head and given document
        ``features`` (already through `apply`), thresholds refitted to their quantiles instead."""
        level = self.resolved_level()
        if features is not None and len(features) and self.recalibrates:
            from qama_rs.engine import Quantizer
            from qama_rs.qama.thresholds import scheme_levels

            return Quantizer.fit(features, levels=scheme_levels(level, self.scheme))
        return self.model.quantizer(level, self.scheme)
