"""``qama eval --method`` / ``qama index build --codec`` names (and ``--bits``) as factory specs.

The library (index, eval) takes spec strings only; the names are a command-line convenience, resolved here.

=========================  ================================  ==========================================
method (``--bits``)        spec                              what it is
=========================  ================================  ==========================================
``fp32``                   ``Flat``                          float32, exact inner product
``fp16``                   ``Flat16``                        float16-rounded documents
``int8``                   ``Int8``                          256 min/max levels, asymmetric
``sign``                   ``Sign``                          1 bit at 0, symmetric Hamming
``quantile`` (1/1.5/2)     ``Thermo1`` / ``Thermo1.5`` /     quantile thresholds, symmetric Hamming
                           ``Thermo2``
``quantile`` (hybrid)      ``Hybrid``                        2/1.5/1/0.5-bit quarters, symmetric
``binary``                 ``Binary``                        sign bits, float query (asymmetric)
``binary_median``          ``BinaryMedian``                  median-centred sign bits, asymmetric
``lloyd_max_gauss`` (b)    ``LloydMax2`` (``LloydMax{b}``)   Gaussian Lloyd-Max, asymmetric
``lloyd_max_4bit``         ``LloydMax4``
``lloyd_max_empirical``    ``LloydMaxEmp2``
``quaternary``             ``Quaternary``
``calibration_free_2bit``  ``CalFree2``
``adaptive_bits``          ``Adaptive``
``gray_2bit``              ``Gray2``                         (its codes, scored asymmetrically)
``two_stage``              ``Sign,Rescore(LloydMax2,100)``   Hamming top-100, 2-bit Lloyd-Max rescoring
``qama`` (1/1.5/2/hybrid)  ``QAMA(DIR),Thermo{bits}``        a trained head's learned thresholds
``qama`` (32)              ``QAMA(DIR),Flat``                the head's float output
``NAME@hadamard``          ``Hadamard,<spec of NAME>``       behind a seeded rotation (also
                                                             ``@orthogonal`` -> ``Orthogonal,...``)
=========================  ================================  ==========================================

Any other lowercase codec name of the index registry (``qama_rs.available_codecs()``: ``pca_nibble_scaled``,
``lloyd_max_empirical``, a registered codec, ...) is its own spec (and takes ``@hadamard`` / ``@orthogonal``).
"""

from __future__ import annotations

from typing import Any

from qama_rs.errors import QamaError

__all__ = ["METHOD_NAMES", "METHOD_SPECS", "THERMO_BITS", "method_label", "method_spec", "resolve_method"]

#: Method name -> spec, for methods without a ``--bits`` choice.
METHOD_SPECS: dict[str, str] = {
    "fp32": "Flat",
    "fp16": "Flat16",
    "int8": "Int8",
    "sign": "Sign",
    "binary": "Binary",
    "binary_median": "BinaryMedian",
    "lloyd_max_gauss": "LloydMax2",
    "lloyd_max_4bit": "LloydMax4",
    "lloyd_max_empirical": "LloydMaxEmp2",
    "quaternary": "Quaternary",
    "calibration_free_2bit": "CalFree2",
    "adaptive_bits": "Adaptive",
    "gray_2bit": "Gray2",
    "two_stage": "Sign,Rescore(LloydMax2,100)",
}
#: ``--bits`` of the thermometer methods -> codec stage.
THERMO_BITS: dict[Any, str] = {1: "Thermo1", 1.5: "Thermo1.5", 2: "Thermo2", "hybrid": "Hybrid"}
#: Every name ``--method`` takes besides the index registry's codec names and specs.
METHOD_NAMES = tuple(sorted({*METHOD_SPECS, "quantile", "qama"}))
_ROTATIONS = {"hadamard": "Hadamard", "orthogonal": "Orthogonal"}
_FLOAT_BITS = {"fp32": 32, "fp16": 16, "int8": 8, "sign": 1}


def _thermo(bits: Any, method: str) -> str:
    key = bits
    if isinstance(bits, str) and bits != "hybrid":
        key = {"1bit": 1, "1.5bit": 1.5, "2bit": 2}.get(bits, bits)
    if isinstance(key, bool) or key not in THERMO_BITS:
        raise QamaError(f"{method} bits must be one of 1, 1.5, 2 or 'hybrid', got {bits!r}")
    return THERMO_BITS[key]


def method_spec(name: str, bits: Any = None, head: str | None = None) -> str | None:
    """The spec of a ``qama eval`` method name (``None`` when ``name`` is not a method name, e.g. a spec).

    ``head``: the head folder of ``qama`` (as written into the spec)."""
    base, _, rotation = name.partition("@")
    if rotation:
        if rotation not in _ROTATIONS:
            raise QamaError(f"rotation must be one of {sorted(_ROTATIONS)}, got {rotation!r}")
        inner = method_spec(base, bits, head)
        if inner is None:
            return None
        return f"{_ROTATIONS[rotation]},{inner}"
    if name == "quantile":
        return _thermo(bits, "quantile")
    if name == "qama":
        if head is None:
            raise QamaError("method 'qama' needs a trained head (--head DIR, from `qama train`)")
        if bits is not None and not isinstance(bits, str) and float(bits) == 32:
            return f"QAMA({head}),Flat"
        return f"QAMA({head}),{_thermo(bits, 'qama')}"
    if (
        name in _FLOAT_BITS
        and bits is not None
        and not isinstance(bits, str)
        and float(bits) != _FLOAT_BITS[name]
    ):
        raise QamaError(f"{name} stores {_FLOAT_BITS[name]:g} bits per dimension, got bits={bits!r}")
    if name == "lloyd_max_gauss" and bits is not None:
        if isinstance(bits, str) or float(bits) not in (1, 2, 3, 4, 5, 6, 7, 8):
            raise QamaError(f"lloyd_max_gauss bits must be an integer 1..8, got {bits!r}")
        return f"LloydMax{int(bits)}"
    if name in METHOD_SPECS:
        return METHOD_SPECS[name]
    from qama_rs.index import available_codecs

    # The quantizer classes' (and registered codecs') lowercase names; CamelCase stages stay specs.
    if name == name.lower() and name in available_codecs():
        return name
    return None


def resolve_method(name: str, bits: Any = None, head: str | None = None, option: str = "--method") -> str:
    """The factory spec of a ``--method``/``--codec`` value: a method name through :func:`method_spec`, or a
    spec as given (checked for syntax; its stages are checked when the index is built).

    Errors name ``option``, the user's argument: ``--bits`` only selects a method name's variant, and
    ``--head`` only goes with ``qama`` or a spec that starts with a ``QAMA(...)`` stage."""
    from qama_rs.index import parse_spec

    try:
        spec = method_spec(name, bits, head=head)
    except QamaError as err:
        raise QamaError(f"{option} {name}: {err}") from None
    if spec is None:
        if bits is not None:
            raise QamaError(f"--bits applies to method names; {option} {name!r} is a spec (write the bits into it)")
        try:
            stages = parse_spec(name)
        except QamaError as err:
            raise QamaError(
                f"{option} {name!r}: unknown method (one of {', '.join(METHOD_NAMES)}, a quantizer name) "
                f"and not a spec: {err}"
            ) from None
        spec = name
        if head is not None and stages[0].key != "qama":
            raise QamaError(f"--head goes with {option} qama or a spec that starts with QAMA(...), not {name!r}")
    elif head is not None and name != "qama":
        raise QamaError(f"--head goes with {option} qama (a head's learned codes), not {name!r}")
    return spec


def method_label(name: str, spec: str) -> str:
    """What a result calls the method: the name the user gave, ``qama-<codec>`` for the head's variants."""
    if name == "qama":
        return f"qama-{spec.rsplit(',', 1)[1]}"
    return name
