"""Spec stages -> transform and codec objects, and the pluggable codec registry.

Codec names (case-insensitive; ``b`` a number of bits):

=====================  ===========================================================================
``Flat`` / ``Flat16``  float32 / float16-rounded vectors, exact inner product
``Sign``               1 bit, threshold 0, symmetric Hamming (thermometer, protocol C)
``Thermo1``,           per-dimension quantile thresholds (1, 1.5, 2 bits; 2 / 3 / 4 levels), symmetric
``Thermo1.5``,         Hamming between thermometer codes (= L1 between levels)
``Thermo2``
``Hybrid``             the QAMA paper's 2 / 1.5 / 1 / 0.5-bit quarters, symmetric Hamming
``ThermoLloydMax{b}``  thermometer codes at the Gaussian Lloyd-Max boundaries, symmetric Hamming
``Binary``             sign bits, float query scored against ±1 (asymmetric, protocol A)
``BinaryMedian``       median-centred sign bits, asymmetric
``LloydMax{b}``        Gaussian Lloyd-Max levels on median/std-standardized values, asymmetric
``LloydMaxEmp{b}``     empirical (1-D Lloyd iterations) levels, asymmetric
``Int8``               256 uniform levels between each dimension's min and max, asymmetric
``Quaternary``,        further training-free quantizers of :mod:`qama_rs.quantizers`
``CalFree2``,
``Adaptive``,
``Gray2``
=====================  ===========================================================================

Training-free codec stages take their quantizer's constructor keywords as arguments, e.g.
``Adaptive(high_dims=64,low_dims=192,order=variance)`` or ``LloydMaxEmp2(iterations=50)``.

Any name of ``qama_rs.quantizers.METHODS`` or ``qama_rs.quantizers.CODECS`` (``lloyd_max_gauss``,
``pca_alloc(budget_bytes=48)``, ``pca_nibble_scaled(budget_bytes=48)`` — nibble-packed, scanned by the
quantized block kernel —, a codec added later) is a codec too,
and :func:`register_codec` adds more: a builder ``builder(*args) -> codec`` returns an unfitted object
implementing protocol (A) (``fit``/``encode``/``reconstruction_values``/``prepare_query``, optional
``row_scale``), (B) (``fit``/``encode``/``query_luts``) or an engine :class:`~qama_rs.engine.Quantizer` (C),
or a ready :class:`~qama_rs.index.codecs.Codec` adapter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qama_rs.engine.quantizer import Quantizer
from qama_rs.index._errors import QamaError
from qama_rs.index.codecs import Codec, FlatCodec, LutCodec, PerDimCodec, ThermoCodec
from qama_rs.index.spec import Stage, parse_spec
from qama_rs.index.transforms import PrefixTransform, QamaTransform, RotationTransform, Transform
from qama_rs.qama.learned_codes import LearnedAsymmetric

__all__ = ["Pipeline", "available_codecs", "build_pipeline", "register_codec"]

MAX_K_PRIME = 2**31 - 1

CodecBuilder = Callable[..., Any]
_CODECS: dict[str, CodecBuilder] = {}
_THERMO = {
    "sign": "sign",
    "thermo1": "1bit",
    "thermo1.5": "1.5bit",
    "thermo2": "2bit",
    "hybrid": "hybrid",
    "thermohybrid": "hybrid",
}


def register_codec(name: str, builder: CodecBuilder, *, overwrite: bool = False) -> None:
    """Makes ``name`` (matched case-insensitively) a codec stage: ``builder(*args)`` gets the stage's
    arguments as strings and returns an unfitted codec (see the module docs)."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.@-]*", name):
        raise QamaError(f"codec name must be an identifier-like string, got {name!r}")
    if not callable(builder):
        raise QamaError("builder must be callable as builder(*args) -> codec")
    key = name.lower()
    if (key in _CODECS or key in _THERMO or key in ("flat", "flat16")) and not overwrite:
        raise QamaError(f"codec {name!r} is already registered (pass overwrite=True to replace it)")
    _CODECS[key] = builder


def _no_args(stage: Stage) -> None:
    if stage.args:
        raise QamaError(f"spec stage {stage.text!r} takes no arguments")


def _int_arg(stage: Stage, text: str, what: str, low: int = 1, high: int = MAX_K_PRIME) -> int:
    try:
        value = int(text)
    except ValueError:
        raise QamaError(f"spec stage {stage.text!r}: {what} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise QamaError(f"spec stage {stage.text!r}: {what} = {value}; must be in {low}..{high}")
    return value


def _training_free_methods() -> dict[str, type]:
    """Codec classes by registry name: ``quantizers.METHODS`` (per-dimension, protocol A) and
    ``quantizers.CODECS`` (byte-LUT codecs, protocol B)."""
    from qama_rs import quantizers

    registry = {**quantizers.METHODS, **getattr(quantizers, "CODECS", {})}
    return {name.lower(): cls for name, cls in registry.items()}


def _keyword_args(stage: Stage) -> dict[str, Any]:
    """``key=value`` stage arguments as constructor keywords (ints, floats or words)."""
    kwargs: dict[str, Any] = {}
    for arg in stage.args:
        key, eq, value = arg.partition("=")
        if not eq or not key.strip().isidentifier():
            raise QamaError(f"spec stage {stage.text!r}: arguments are key=value, got {arg!r}")
        value = value.strip()
        for convert in (int, float):
            try:
                kwargs[key.strip()] = convert(value)
                break
            except ValueError:
                continue
        else:
            kwargs[key.strip()] = value
    return kwargs


class _LloydMaxThermo(ThermoCodec):
    """Thermometer codes at the Gaussian Lloyd-Max boundaries (symmetric Hamming = L1 between levels)."""

    def __init__(self, label: str, bits: int) -> None:
        super().__init__(label, "lloydmax")
        self.bits = bits

    def _train(self, x):
        from qama_rs.quantizers import LloydMaxGauss

        lloyd = LloydMaxGauss(bits=self.bits).fit(x)
        self.quantizer = Quantizer(**lloyd.engine_arguments())
        super()._train(x)


def _builtin_quantizer(key: str, stage: Stage):
    """The training-free quantizer named by a CamelCase stage, or None. Stage arguments are keywords of
    the quantizer's constructor: ``Adaptive(high_dims=64,low_dims=192,order=variance)``."""
    from qama_rs import quantizers as q

    simple = {
        "binary": q.SignBinary,
        "binarymedian": q.MedianBinary,
        "int8": q.Int8,
        "quaternary": q.Quaternary,
        "calfree2": q.CalibrationFree2Bit,
        "adaptive": q.AdaptiveBits,
        "gray2": q.GrayTwoBit,
    }
    kwargs = _keyword_args(stage)
    try:
        if key in simple:
            return simple[key](**kwargs)
        match = re.fullmatch(r"lloydmax(emp)?(\d+)", key)
        if match:
            bits = _int_arg(stage, match.group(2), "bits", 1, 8)
            return q.LloydMaxEmpirical(bits=bits, **kwargs) if match.group(1) else q.LloydMaxGauss(bits=bits, **kwargs)
    except (TypeError, ValueError) as err:
        raise QamaError(f"spec stage {stage.text!r}: {err}") from None
    return None


def as_codec(obj: Any, label: str) -> Codec:
    """Wraps what a builder returned in the adapter of its protocol."""
    if isinstance(obj, Codec):
        return obj
    if isinstance(obj, Quantizer):
        return ThermoCodec(label, "given", quantizer=obj)
    # Look on the class: an unfitted codec's properties may refuse to answer yet.
    cls = type(obj)
    if all(hasattr(cls, a) for a in ("fit", "encode", "query_luts")):
        return LutCodec(label, obj)
    if all(hasattr(cls, a) for a in ("fit", "encode", "reconstruction_values", "prepare_query")):
        return PerDimCodec(label, obj)
    raise QamaError(
        f"codec {label!r}: {type(obj).__name__} implements none of the codec protocols "
        "(A: fit/encode/reconstruction_values/prepare_query, B: fit/encode/query_luts, C: a Quantizer)"
    )


def build_codec(stage: Stage) -> Codec:
    key = stage.key
    if key in ("flat", "flat16"):
        _no_args(stage)
        return FlatCodec(stage.text, half=key == "flat16")
    if key in _THERMO:
        _no_args(stage)
        return ThermoCodec(stage.text, _THERMO[key])
    match = re.fullmatch(r"thermolloydmax(\d+)", key)
    if match:
        _no_args(stage)
        return _LloydMaxThermo(stage.text, _int_arg(stage, match.group(1), "bits", 1, 8))
    if key in _CODECS:
        try:
            obj = _CODECS[key](*stage.args)
        except QamaError:
            raise
        except (TypeError, ValueError) as err:
            raise QamaError(f"spec stage {stage.text!r}: {err}") from None
        return as_codec(obj, stage.text)
    match = re.fullmatch(r"qamaasym(\d+)", key)
    if match:
        _no_args(stage)
        try:
            return as_codec(LearnedAsymmetric(int(match.group(1))), stage.text)
        except ValueError as err:
            raise QamaError(f"spec stage {stage.text!r}: {err}") from None
    builtin = _builtin_quantizer(key, stage)
    if builtin is not None:
        return as_codec(builtin, stage.text)
    methods = _training_free_methods()
    if key in methods:
        try:
            return as_codec(methods[key](**_keyword_args(stage)), stage.text)
        except (TypeError, ValueError) as err:
            if isinstance(err, QamaError):
                raise
            raise QamaError(f"spec stage {stage.text!r}: {err}") from None
    raise QamaError(f"unknown codec {stage.name!r} in spec; known: {', '.join(available_codecs())}")


def available_codecs() -> list[str]:
    """Codec stage names: the built-ins, the registered ones, then the training-free registry."""
    names = [
        "Flat",
        "Flat16",
        "Sign",
        "Thermo1",
        "Thermo1.5",
        "Thermo2",
        "Hybrid",
        "Binary",
        "BinaryMedian",
        "LloydMax{b}",
        "LloydMaxEmp{b}",
        "Int8",
        "Quaternary",
        "CalFree2",
        "Adaptive",
        "Gray2",
    ]
    names += sorted(_CODECS)
    names += sorted(set(_training_free_methods()) - {n.lower() for n in names})
    return names


def build_transform(stage: Stage, head: Any) -> Transform | None:
    key = stage.key
    match = re.fullmatch(r"prefix(\d+)", key)
    if match:
        _no_args(stage)
        return PrefixTransform(stage.text, _int_arg(stage, match.group(1), "prefix dimensions"))
    if key in ("hadamard", "orthogonal"):
        if len(stage.args) > 1:
            raise QamaError(f"spec stage {stage.text!r} takes at most one argument (the seed)")
        seed = _int_arg(stage, stage.args[0], "seed", 0, 2**63 - 1) if stage.args else 0
        return RotationTransform(stage.text, key, seed)
    if key == "qama":
        if not stage.args or len(stage.args) > 2:
            raise QamaError(
                f"spec stage {stage.text!r}: write QAMA(path), QAMA(path,level) or QAMA(pretrained)"
            )
        level = _int_arg(stage, stage.args[1], "level") if len(stage.args) == 2 else None
        return QamaTransform(stage.text, stage.args[0], level, model=head)
    return None


@dataclass
class Pipeline:
    transforms: list[Transform]
    codec: Codec
    refine: Codec | None = None
    k_prime: int | None = None


def build_pipeline(spec: str, head: Any = None) -> Pipeline:
    """Transforms, codec and refinement of ``spec`` (unfitted). ``head``: a loaded QAMA model that a
    ``QAMA(...)`` stage uses instead of loading its path."""
    stages = parse_spec(spec)
    transforms: list[Transform] = []
    codec: Codec | None = None
    refine: Codec | None = None
    k_prime = None
    for stage in stages:
        if refine is not None:
            raise QamaError(f"spec {spec!r}: nothing may follow the refinement stage ({stage.text!r})")
        if codec is None:
            transform = build_transform(stage, head)
            if transform is not None:
                transforms.append(transform)
                continue
            if stage.key in ("rescore", "rflat"):
                raise QamaError(f"spec {spec!r}: {stage.name} refines a codec; put a codec before it")
            codec = build_codec(stage)
            continue
        if stage.key == "rflat":
            if len(stage.args) != 1:
                raise QamaError(f"spec stage {stage.text!r}: write RFlat(k'), e.g. RFlat(100)")
            k_prime = _int_arg(stage, stage.args[0], "k'")
            refine = FlatCodec(stage.text)
        elif stage.key == "rescore":
            if len(stage.args) != 2:
                raise QamaError(
                    f"spec stage {stage.text!r}: write Rescore(codec,k'), e.g. Rescore(LloydMax2,100)"
                )
            inner = parse_spec(stage.args[0])
            if len(inner) != 1:
                raise QamaError(f"spec stage {stage.text!r}: the rescoring codec must be one stage")
            refine = build_codec(inner[0])
            k_prime = _int_arg(stage, stage.args[1], "k'")
        else:
            kind = "transform" if build_transform(stage, head) is not None else "codec"
            raise QamaError(
                f"spec {spec!r}: a {kind} ({stage.text!r}) after the codec {codec.label!r}; transforms come first, "
                "one codec, then optionally Rescore(codec,k') or RFlat(k')"
            )
    if codec is None:
        raise QamaError(f"spec {spec!r} names no codec (e.g. 'Flat', 'Thermo2', 'LloydMax2')")
    qama = [t for t in transforms if isinstance(t, QamaTransform)]
    if qama and isinstance(codec, ThermoCodec) and codec.scheme != "sign":
        # A head before a thermometer codec: the head's own features and learned thresholds.
        if transforms[-1] is not qama[-1]:
            raise QamaError(f"spec {spec!r}: a QAMA head before {codec.label!r} must be the last transform")
        qama[-1].scheme = codec.scheme
    impl = getattr(codec, "impl", None)
    if qama and isinstance(impl, LearnedAsymmetric) and transforms[-1] is qama[-1]:
        # QamaAsym{b}: the head's code-rotated features of the same levels, scored asymmetrically.
        qama[-1].scheme = impl.scheme
    return Pipeline(transforms, codec, refine, k_prime)
