"""Fuzzing every function, constructor and method of the Rust binding ``qama_rs._core`` (the codecs,
``Store``, ``Filter``, ``Plan``, ``Coarse``) with Hypothesis.

Arguments of every kind the Python boundary can meet: wrong and right dtypes, ranks and shapes
(empty, sizes near the limits with a zero-length axis, shapes that agree across arguments so the
calls get past the shape checks), non-contiguous, Fortran-ordered, byte-swapped and read-only arrays,
NaN / inf / huge values, non-arrays, integers from -2^70 to 2^100 (huge ``k`` included), stores that
do not fit the codec (another dtype, rows past the arrays, other lists), plans of other queries or
lists, and objects of the wrong type where a ``Store``, ``Plan`` or ``Filter`` belongs.

The contract checked for every call: it returns, or raises ``QamaError`` / ``QamaTypeError`` (whose
message names one of the call's arguments) or ``MemoryError``. Anything else fails the test: a
``PanicException`` (a Rust panic that escaped), ``RuntimeError`` (a caught core panic), a plain
``TypeError`` / ``OverflowError`` from argument extraction, a crash. Examples are bounded
(``FUZZ_EXAMPLES`` per target, default 120), so the file runs in seconds.

The signatures live in ``_fuzz_signatures``, the argument strategies in ``_fuzz_args``; hand-written
cases of the same contract are in ``test_binding_errors.py``.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _fuzz_args import argument, corrupt, valid_args
from _fuzz_signatures import ALIASES, QUERY_KINDS, SIGNATURES, STATICS
from qama_rs import _core
from qama_rs.errors import QamaError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))


def target(name):
    """The callable of a signature name: a function, a constructor (static ones included), or a method
    of an object drawn with the arguments (a codec, a plan, a coarse quantizer: see ``valid_args``)."""
    if name in STATICS:
        cls, method = name.split(".")
        return getattr(getattr(_core, cls), method)
    if "." in name:
        method = name.split(".")[1]
        return lambda obj, *args: getattr(obj, method)(*args)
    return getattr(_core, name)


def test_every_binding_function_constructor_and_method_is_fuzzed():
    public = {n for n in dir(_core) if callable(getattr(_core, n)) and not n.startswith("__")}
    public -= {"QamaError", "QamaTypeError"}
    named = {n.split(".")[0] for n in SIGNATURES}
    assert public == named, public ^ named
    classes = [v for v in vars(_core).values() if isinstance(v, type) and not issubclass(v, BaseException)]
    assert {c.__name__ for c in classes} == {"HammingCodec", "TableCodec", "FloatCodec", "Float16Codec", "Affine8Codec"} | {
        "Store",
        "Filter",
        "Plan",
        "Coarse",
        "Thresholds",
    }
    for cls in classes:
        members = vars(cls).items()
        methods = {n for n, v in members if type(v).__name__ == "method_descriptor"}
        statics = {n for n, v in members if type(v).__name__ in ("staticmethod", "classmethod")}
        assert {f"{cls.__name__}.{m}" for m in methods | statics} <= set(SIGNATURES), cls
        assert {f"{cls.__name__}.{m}" for m in statics} <= STATICS, cls
    assert set(QUERY_KINDS) == {"HammingCodec", "TableCodec", "FloatCodec", "Float16Codec", "Affine8Codec"}


def check_call(name, args, codec=None):
    """Calls ``name`` with ``args`` (on ``codec``, the drawn object of a method), checks the error
    contract and says how the call ended."""
    params = [p for p, _ in SIGNATURES[name]]
    words = params + [a for p in params for a in ALIASES.get(p, ())]
    try:
        if codec is None:
            target(name)(*args)
        else:
            target(name)(codec, *args)
        return "ok"
    except MemoryError:
        return "memory"
    except QamaError as e:  # QamaTypeError included
        message = str(e)
        named = any(re.search(rf"\b{re.escape(w)}\b", message) for w in words)
        assert named, f"{name}: {type(e).__name__} {message!r} names none of {params}"
        return "error"
    except BaseException as e:  # noqa: BLE001 - a PanicException derives from BaseException
        if isinstance(e, KeyboardInterrupt):
            raise
        pytest.fail(
            f"{name}{tuple(type(a).__name__ for a in args)} raised {type(e).__module__}.{type(e).__name__}: {e}"
        )


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_fuzz(name):
    kinds = [kind for _, kind in SIGNATURES[name]]
    on_object = "." in name and name not in STATICS  # a method of a drawn object
    endings: dict[str, int] = {}

    @st.composite
    def calls(draw):
        args, obj = valid_args(name, draw)
        args = list(args)
        fault = draw(st.sampled_from(["none", "none", "replace", "corrupt", "corrupt"]))
        if fault != "none" and args:
            i = draw(st.integers(0, len(args) - 1))
            args[i] = draw(argument(kinds[i])) if fault == "replace" else corrupt(draw, args[i])
        return tuple(args), obj

    @settings(max_examples=EXAMPLES if kinds or on_object else 1, database=None)
    @given(calls())
    def run(call):
        args, obj = call
        ending = check_call(name, args, obj)
        endings[ending] = endings.get(ending, 0) + 1

    run()
    # The generator must reach the kernels, not only the argument checks.
    assert endings.get("ok", 0) > 0, endings
    assert not kinds or endings.get("error", 0) > 0, endings
