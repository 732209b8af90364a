"""The one registry of spec stages, and the pipeline a spec builds.

A spec reads left to right (faiss style): transforms, an optional partition, one codec, an optional
refinement::

    [Prefix{m} | Hadamard[(seed)] | Orthogonal[(seed)] | QAMA(path[,level])]*
    [IVF[{nlist}][(residual|vector)]]  CODEC  [Rescore(CODEC,k') | RFlat(k')]

``IVF{nlist}`` partitions the vectors with a k-means coarse quantizer (``IVF`` alone: about
``sqrt(n)`` lists); the codec then codes the vectors or their residuals to the list's centroid (each
codec family's default was measured; ``(residual)`` / ``(vector)`` choose).

Codec stages (case-insensitive; ``b`` a number of bits):

=====================  ===========================================================================
``Flat`` / ``Flat16``  float32 / float16 vectors, exact inner product
``Sign``               1 bit, threshold 0, symmetric Hamming
``Thermo1``,           per-dimension quantile thresholds (2 / 3 / 4 levels), symmetric Hamming
``Thermo1.5``,         between thermometer codes (= L1 between levels)
``Thermo2``
``Hybrid``             the QAMA paper's 2 / 1.5 / 1 / 0.5-bit quarters, symmetric Hamming
``ThermoLloydMax{b}``  thermometer codes at the Gaussian Lloyd-Max boundaries, symmetric Hamming
``Binary``,            sign bits, median-centred sign bits, float query (asymmetric)
``BinaryMedian``
``LloydMax{b}``        Gaussian Lloyd-Max levels on median/std-standardized values, asymmetric
``LloydMaxEmp{b}``     empirical (1-D Lloyd iterations) levels, asymmetric
``Int8``,              256 uniform levels; further training-free quantizers of
``Quaternary``,        :mod:`qama_rs.quantizers`, asymmetric
``CalFree2``,
``Adaptive``, ``Gray2``
``QamaAsym{b}``        a QAMA head's learned codes, float query (after ``QAMA(...)``)
``pca_alloc``,         byte-table codecs of :mod:`qama_rs.quantizers` by their registry names, with
``pca_nibble_scaled``, keyword arguments: ``pca_nibble_scaled(budget_bytes=48)``, ``pca_pq(m=24)``,
``pca_pq``, ...        ``Adaptive(high_dims=64,low_dims=192,order=variance)``, ``LloydMaxEmp2(iterations=50)``
=====================  ===========================================================================

:func:`register_codec` adds a codec: ``builder(*args) -> codec`` returns an unfitted object implementing
protocol (A) (``fit``/``encode``/``reconstruction_values``/``prepare_query``, optional ``row_scale``),
(B) (``fit``/``encode``/``query_luts``), an engine :class:`~qama_rs.engine.Quantizer` (C), or a ready
:class:`~qama_rs.index.codecs.Codec` adapter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qama_rs.engine.quantizer import Quantizer
from qama_rs.errors import QamaError
from qama_rs.index.codecs import Codec, FlatCodec, LloydMaxThermoCodec, LutCodec, PerDimCodec, ThermoCodec
from qama_rs.index.spec import Stage, parse_spec
from qama_rs.index.transforms import PrefixTransform, QamaTransform, RotationTransform, Transform

__all__ = ["Pipeline", "available_codecs", "build_pipeline", "register_codec"]

MAX_K_PRIME = 2**31 - 1

CodecBuilder = Callable[..., Any]

_THERMO = {"sign": "sign", "thermo1": "1bit", "thermo1.5": "1.5bit", "thermo2": "2bit", "hybrid": "hybrid"}


def _quantizer_classes() -> dict[str, type]:
    """Training-free codec classes by stage name: CamelCase names and the classes' own registry names."""
    from qama_rs import quantizers as q

    named = {
        "binary": q.SignBinary,
        "binarymedian": q.MedianBinary,
        "int8": q.Int8,
        "quaternary": q.Quaternary,
        "calfree2": q.CalibrationFree2Bit,
        "adaptive": q.AdaptiveBits,
        "gray2": q.GrayTwoBit,
    }
    classes = (
        q.SignBinary, q.MedianBinary, q.Quaternary, q.LloydMaxGauss, q.LloydMaxEmpirical, q.LloydMax4Bit,
        q.CalibrationFree2Bit, q.Int8, q.AdaptiveBits, q.GrayTwoBit,
        q.Allocated, q.AllocatedScaled, q.AllocatedNibble, q.AllocatedNibbleScaled, q.TritRotation, q.PcaProduct,
    )  # fmt: skip
    return {**named, **{cls.name.lower(): cls for cls in classes}}


#: Codecs added by :func:`register_codec` (the built-in names are resolved by :func:`build_codec`).
_REGISTERED: dict[str, CodecBuilder] = {}


def _is_builtin(key: str) -> bool:
    return (
        key in ("flat", "flat16")
        or key in _THERMO
        or key in _quantizer_classes()
        or re.fullmatch(r"(thermolloydmax|lloydmax|lloydmaxemp|qamaasym)\d+", key) is not None
    )


def register_codec(name: str, builder: CodecBuilder, *, overwrite: bool = False) -> None:
    """Makes ``name`` (matched case-insensitively) a codec stage: ``builder(*args)`` gets the stage's
    arguments as strings and returns an unfitted codec (see the module docs)."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.@-]*", name):
        raise QamaError(f"codec name must be an identifier-like string, got {name!r}")
    if not callable(builder):
        raise QamaError("builder must be callable as builder(*args) -> codec")
    key = name.lower()
    if (key in _REGISTERED or _is_builtin(key)) and not overwrite:
        raise QamaError(f"codec {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTERED[key] = builder


def available_codecs() -> list[str]:
    """Codec stage names: the built-ins, the registered ones, then the training-free classes' names."""
    names = ["Flat", "Flat16", "Sign", "Thermo1", "Thermo1.5", "Thermo2", "Hybrid", "ThermoLloydMax{b}", "Binary",
             "BinaryMedian", "LloydMax{b}", "LloydMaxEmp{b}", "Int8", "Quaternary", "CalFree2", "Adaptive", "Gray2",
             "QamaAsym{b}"]  # fmt: skip
    names += sorted(_REGISTERED)
    return names + sorted(set(_quantizer_classes()) - {n.lower() for n in names})


def _no_args(stage: Stage) -> None:
    if stage.args:
        raise QamaError(f"spec stage {stage.text!r} takes no arguments")


def int_arg(stage: Stage, text: str, what: str, low: int = 1, high: int = MAX_K_PRIME) -> int:
    try:
        value = int(text)
    except ValueError:
        raise QamaError(f"spec stage {stage.text!r}: {what} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise QamaError(f"spec stage {stage.text!r}: {what} = {value}; must be in {low}..{high}")
    return value


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
    """The unfitted codec of a codec stage."""
    key = stage.key
    try:
        if key in ("flat", "flat16"):
            _no_args(stage)
            return FlatCodec(stage.text, half=key == "flat16")
        if key in _THERMO:
            _no_args(stage)
            return ThermoCodec(stage.text, _THERMO[key])
        match = re.fullmatch(r"(thermolloydmax|lloydmax|lloydmaxemp|qamaasym)(\d+)", key)
        if match and match.group(1) == "thermolloydmax":
            _no_args(stage)
            return LloydMaxThermoCodec(stage.text, int_arg(stage, match.group(2), "bits", 1, 8))
        if key in _REGISTERED:
            return as_codec(_REGISTERED[key](*stage.args), stage.text)
        if match and match.group(1) == "qamaasym":
            from qama_rs.qama.learned_codes import LearnedAsymmetric

            _no_args(stage)
            return as_codec(LearnedAsymmetric(int(match.group(2))), stage.text)
        if match:
            from qama_rs import quantizers as q

            bits = int_arg(stage, match.group(2), "bits", 1, 8)
            cls = q.LloydMaxEmpirical if match.group(1) == "lloydmaxemp" else q.LloydMaxGauss
            return as_codec(cls(bits=bits, **_keyword_args(stage)), stage.text)
        classes = _quantizer_classes()
        if key in classes:
            return as_codec(classes[key](**_keyword_args(stage)), stage.text)
    except QamaError as err:
        if str(err).startswith("spec stage"):
            raise
        raise QamaError(f"spec stage {stage.text!r}: {err}") from None
    except (TypeError, ValueError) as err:
        raise QamaError(f"spec stage {stage.text!r}: {err}") from None
    raise QamaError(f"unknown codec {stage.name!r} in spec; known: {', '.join(available_codecs())}")


def build_transform(stage: Stage, head: Any) -> Transform | None:
    """The transform of a transform stage, or None when the stage is not one."""
    key = stage.key
    match = re.fullmatch(r"prefix(\d+)", key)
    if match:
        _no_args(stage)
        return PrefixTransform(stage.text, int_arg(stage, match.group(1), "prefix dimensions"))
    if key in ("hadamard", "orthogonal"):
        if len(stage.args) > 1:
            raise QamaError(f"spec stage {stage.text!r} takes at most one argument (the seed)")
        seed = int_arg(stage, stage.args[0], "seed", 0, 2**63 - 1) if stage.args else 0
        return RotationTransform(stage.text, key, seed)
    if key == "qama":
        if not stage.args or len(stage.args) > 2:
            raise QamaError(f"spec stage {stage.text!r}: write QAMA(path), QAMA(path,level) or QAMA(pretrained)")
        level = int_arg(stage, stage.args[1], "level") if len(stage.args) == 2 else None
        return QamaTransform(stage.text, stage.args[0], level, model=head)
    return None


def partition(stage: Stage) -> tuple[int, bool | None] | None:
    """``(nlist, residual)`` of an ``IVF{nlist}[(residual|vector)]`` stage (nlist 0: chosen from the corpus
    size; residual None: the codec's default), or None when the stage is not one."""
    match = re.fullmatch(r"ivf(\d*)", stage.key)
    if not match:
        return None
    if len(stage.args) > 1 or (stage.args and stage.args[0].lower() not in ("residual", "vector")):
        raise QamaError(f"spec stage {stage.text!r}: write IVF{{nlist}}, IVF{{nlist}}(residual) or IVF{{nlist}}(vector)")
    residual = None if not stage.args else stage.args[0].lower() == "residual"
    return (int_arg(stage, match.group(1), "nlist", 1, 1 << 24) if match.group(1) else 0), residual


@dataclass
class Pipeline:
    transforms: list[Transform]
    codec: Codec
    refine: Codec | None = None
    k_prime: int | None = None
    #: ``IVF`` lists (0: chosen at training from the corpus size), None for a flat index.
    nlist: int | None = None
    #: Whether codes hold residuals to their list's centroid (None: the codec's default).
    residual: bool | None = None


def build_pipeline(spec: str, head: Any = None) -> Pipeline:
    """Transforms, partition, codec and refinement of ``spec`` (unfitted). ``head``: a loaded QAMA model
    that a ``QAMA(...)`` stage uses instead of loading its path."""
    stages = parse_spec(spec)
    transforms: list[Transform] = []
    codec: Codec | None = None
    refine: Codec | None = None
    k_prime = nlist = residual = None
    for stage in stages:
        if refine is not None:
            raise QamaError(f"spec {spec!r}: nothing may follow the refinement stage ({stage.text!r})")
        if codec is None:
            lists = partition(stage)
            if lists is not None:
                if nlist is not None:
                    raise QamaError(f"spec {spec!r}: one partition stage at most ({stage.text!r})")
                nlist, residual = lists
                continue
            transform = build_transform(stage, head)
            if transform is not None:
                if nlist is not None:
                    raise QamaError(f"spec {spec!r}: transforms come before the partition ({stage.text!r})")
                transforms.append(transform)
                continue
            if stage.key in ("rescore", "rflat"):
                raise QamaError(f"spec {spec!r}: {stage.name} refines a codec; put a codec before it")
            codec = build_codec(stage)
            continue
        if stage.key == "rflat":
            if len(stage.args) != 1:
                raise QamaError(f"spec stage {stage.text!r}: write RFlat(k'), e.g. RFlat(100)")
            k_prime = int_arg(stage, stage.args[0], "k'")
            refine = FlatCodec(stage.text)
        elif stage.key == "rescore":
            if len(stage.args) != 2:
                raise QamaError(f"spec stage {stage.text!r}: write Rescore(codec,k'), e.g. Rescore(LloydMax2,100)")
            inner = parse_spec(stage.args[0])
            if len(inner) != 1:
                raise QamaError(f"spec stage {stage.text!r}: the rescoring codec must be one stage")
            refine = build_codec(inner[0])
            k_prime = int_arg(stage, stage.args[1], "k'")
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
    if qama and type(impl).__name__ == "LearnedAsymmetric" and transforms[-1] is qama[-1]:
        # QamaAsym{b}: the head's code-rotated features of the same levels, scored asymmetrically.
        qama[-1].scheme = impl.scheme
    if residual and not codec.residual_capable:
        raise QamaError(f"spec {spec!r}: {codec.label!r} cannot code residuals (its queries are codes)")
    return Pipeline(transforms, codec, refine, k_prime, nlist, residual)
