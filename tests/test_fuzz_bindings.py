"""Fuzzing every function of the Rust binding ``qama_rs._core`` with Hypothesis.

Arguments of every kind the Python boundary can meet: wrong and right dtypes, ranks and shapes
(empty, sizes near the limits with a zero-length axis, shapes that agree across arguments so the
calls get past the shape checks), non-contiguous, Fortran-ordered, byte-swapped and read-only arrays,
NaN / inf / huge values, non-arrays, and integers from -2^70 to 2^100 (huge ``k`` included).

The contract checked for every call: it returns, or raises ``QamaError`` / ``QamaTypeError`` (whose
message names one of the function's arguments) or ``MemoryError``. Anything else fails the test:
a ``PanicException`` (a Rust panic that escaped), ``RuntimeError`` (a caught core panic), a plain
``TypeError`` / ``OverflowError`` from argument extraction, a crash. Examples are bounded
(``FUZZ_EXAMPLES`` per function, default 120), so the file runs in a few seconds.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qama_rs import _core
from qama_rs.errors import QamaError, QamaTypeError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))

# Argument kinds: ("array", dtype, ndim), ("int",), ("opt_int",), ("opt_str", names),
# ("opt_array", dtype, ndim).
U8, U16, U64, I64, F32 = np.uint8, np.uint16, np.uint64, np.int64, np.float32
KERNELS = ("scalar", "interleaved", "avx2")
BACKENDS = ("scalar", "avx2", "avx512vpopcntdq")
SIGNATURES: dict[str, list[tuple[str, tuple]]] = {
    "quantize": [("x", ("array", F32, 2)), ("thresholds", ("array", F32, 1)), ("levels", ("array", U16, 1))],
    "expand": [("codes", ("array", U8, 2)), ("levels", ("array", U16, 1))],
    "collapse": [("packed", ("array", U64, 2)), ("levels", ("array", U16, 1))],
    "encode": [("x", ("array", F32, 2)), ("thresholds", ("array", F32, 1)), ("levels", ("array", U16, 1))],
    "pack_bits": [("bits", ("array", U8, 2))],
    "unpack_bits": [("words", ("array", U64, 2)), ("nbits", ("int",))],
    "hamming_distances": [
        ("queries", ("array", U64, 2)),
        ("database", ("array", U64, 2)),
        ("nbits", ("opt_int",)),
        ("backend", ("opt_str", BACKENDS)),
    ],
    "search": [
        ("queries", ("array", U64, 2)),
        ("database", ("array", U64, 2)),
        ("k", ("int",)),
        ("nbits", ("opt_int",)),
        ("backend", ("opt_str", BACKENDS)),
    ],
    "available_backends": [],
    "best_backend": [],
    "cpu_features": [],
    "num_threads": [],
    "asym_pack": [("codes", ("array", U8, 2)), ("bits", ("int",))],
    "asym_unpack": [("packed", ("array", U8, 2)), ("dims", ("int",)), ("bits", ("int",))],
    "asym_to_blocks": [("codes", ("array", U8, 2))],
    "asym_from_blocks": [("blocks", ("array", U8, 1)), ("n", ("int",)), ("row_bytes", ("int",))],
    "asym_search": [
        ("queries", ("array", F32, 2)),
        ("recon", ("array", F32, 2)),
        ("codes", ("array", U8, 2)),
        ("k", ("int",)),
        ("kernel", ("opt_str", KERNELS)),
        ("row_scale", ("opt_array", F32, 1)),
    ],
    "asym_search_blocked": [
        ("queries", ("array", F32, 2)),
        ("recon", ("array", F32, 2)),
        ("blocks", ("array", U8, 1)),
        ("n", ("int",)),
        ("k", ("int",)),
        ("kernel", ("opt_str", KERNELS)),
        ("row_scale", ("opt_array", F32, 1)),
    ],
    "asym_score_candidates": [
        ("queries", ("array", F32, 2)),
        ("recon", ("array", F32, 2)),
        ("codes", ("array", U8, 2)),
        ("candidates", ("array", I64, 2)),
        ("row_scale", ("opt_array", F32, 1)),
    ],
    "asym_rescore": [
        ("queries", ("array", F32, 2)),
        ("recon", ("array", F32, 2)),
        ("codes", ("array", U8, 2)),
        ("candidates", ("array", I64, 2)),
        ("k", ("int",)),
        ("row_scale", ("opt_array", F32, 1)),
    ],
    "float_rescore": [
        ("queries", ("array", F32, 2)),
        ("vectors", ("array", F32, 2)),
        ("candidates", ("array", I64, 2)),
        ("k", ("int",)),
    ],
    "lut_search": [
        ("luts", ("array", F32, 3)),
        ("codes", ("array", U8, 2)),
        ("k", ("int",)),
        ("row_scale", ("opt_array", F32, 1)),
        ("kernel", ("opt_str", KERNELS)),
    ],
    "lut_search_blocked": [
        ("luts", ("array", F32, 3)),
        ("blocks", ("array", U8, 1)),
        ("n", ("int",)),
        ("k", ("int",)),
        ("row_scale", ("opt_array", F32, 1)),
        ("kernel", ("opt_str", KERNELS)),
    ],
    "lut_score_candidates": [
        ("luts", ("array", F32, 3)),
        ("codes", ("array", U8, 2)),
        ("candidates", ("array", I64, 2)),
        ("row_scale", ("opt_array", F32, 1)),
    ],
    "lut_rescore": [
        ("luts", ("array", F32, 3)),
        ("codes", ("array", U8, 2)),
        ("candidates", ("array", I64, 2)),
        ("k", ("int",)),
        ("row_scale", ("opt_array", F32, 1)),
    ],
    "asym_kernels": [],
    "_gil_checks": [],
}

# Axis lengths: small ones shared across arguments (so shapes often agree and calls get deep), the
# table widths the kernels care about, and huge lengths used only beside a zero-length axis.
SMALL = (0, 1, 2, 3, 4, 5, 8, 16, 64, 256)
HUGE = (2**31, 2**40, 2**50)  # NumPy refuses empty shapes whose other axes overflow bytes
INTS = (-(2**70), -(2**63), -1, 0, 1, 2, 3, 4, 7, 8, 9, 16, 63, 64, 65, 256, 2**31, 2**63 - 1, 2**64, 2**100)
DTYPES = (np.uint8, np.uint16, np.uint64, np.int64, np.float32, np.float64, np.int32, np.bool_)


def test_every_binding_function_is_fuzzed():
    public = {
        n for n in dir(_core) if callable(getattr(_core, n)) and not isinstance(getattr(_core, n), type)
    }
    public -= {n for n in public if n.startswith("__")}
    assert public == set(SIGNATURES), public ^ set(SIGNATURES)


@st.composite
def arrays(draw, dtype, ndim):
    """An array meant to be ``dtype`` of rank ``ndim``, sometimes wrong in one way."""
    fault = draw(
        st.sampled_from(
            ["none"] * 6
            + ["dtype", "rank", "strided", "fortran", "swapped", "readonly", "huge", "list", "scalar"]
        )
    )
    rank = draw(st.integers(0, 4)) if fault == "rank" else ndim
    shape = [draw(st.sampled_from(SMALL)) for _ in range(rank)]
    if fault == "huge" and rank >= 2:
        # Near the size limits without memory: one axis huge, another empty.
        at = draw(st.integers(0, rank - 1))
        shape[at] = draw(st.sampled_from(HUGE))
        shape[(at + 1) % rank] = 0
    else:
        shape = [min(s, 64) if i < rank - 1 else s for i, s in enumerate(shape)]
    kind = draw(st.sampled_from(DTYPES)) if fault == "dtype" else dtype
    if fault == "huge" and rank >= 2:
        array = np.zeros(shape, dtype=kind)
    else:
        array = values(draw, kind, shape, draw(st.integers(0, 2**32 - 1)))
    if fault == "strided" and array.ndim and array.size:
        array = np.repeat(array, 2, axis=-1)[..., ::2]
    elif fault == "fortran" and array.ndim >= 2:
        array = np.asfortranarray(array)
    elif fault == "swapped" and array.dtype.itemsize > 1:
        array = array.astype(array.dtype.newbyteorder())
    elif fault == "readonly":
        array.flags.writeable = False
    elif fault == "list":
        return array.tolist()
    elif fault == "scalar":
        return draw(st.sampled_from([None, 3, "x", 2.5]))
    return array


def values(draw, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape)) if shape else 1
    mode = draw(st.sampled_from(["small", "full", "special"]))
    if np.issubdtype(dtype, np.floating):
        if mode == "special":
            pool = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 0.0, -0.0, 1e-45, 1.0], dtype=dtype)
            out = rng.choice(pool, size=size)
        else:
            out = rng.normal(scale=1.0 if mode == "small" else 1e4, size=size)
        return np.asarray(out, dtype=dtype).reshape(shape)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=size).astype(bool).reshape(shape)
    info = np.iinfo(dtype)
    if mode == "small":
        out = rng.integers(0, 4, size=size)
    elif mode == "special":
        out = rng.choice(np.array([info.min, info.max, 0, 1, 2, min(255, info.max)], dtype=dtype), size=size)
    else:
        out = rng.integers(info.min, info.max, size=size, endpoint=True, dtype=dtype)
    return np.asarray(out).astype(dtype).reshape(shape)


@st.composite
def argument(draw, kind):
    tag = kind[0]
    if tag == "array":
        return draw(arrays(kind[1], kind[2]))
    if tag == "opt_array":
        return draw(st.one_of(st.none(), arrays(kind[1], kind[2])))
    if tag in ("int", "opt_int"):
        pool = [*INTS, np.int64(5), np.uint8(3), True, 2.5, "4", [1]]
        if tag == "opt_int":
            pool.append(None)
        return draw(st.sampled_from(pool))
    return draw(st.sampled_from([None, *kind[1], "avx9", "", 7, b"scalar"]))


def check_call(name, args):
    """Calls ``_core.<name>(*args)``, checks the error contract and says how the call ended."""
    params = [p for p, _ in SIGNATURES[name]]
    try:
        getattr(_core, name)(*args)
        return "ok"
    except MemoryError:
        return "memory"
    except QamaError as e:  # QamaTypeError included
        message = str(e)
        named = any(re.search(rf"\b{re.escape(p)}\b", message) for p in params)
        assert named, f"{name}: {type(e).__name__} {message!r} names none of {params}"
        return "error"
    except BaseException as e:  # noqa: BLE001 - a PanicException derives from BaseException
        if isinstance(e, KeyboardInterrupt):
            raise
        pytest.fail(
            f"{name}{tuple(type(a).__name__ for a in args)} raised {type(e).__module__}.{type(e).__name__}: {e}"
        )


def _distinct_rows(rng, nq, n, kc):
    rows = [rng.permutation(n)[:kc] for _ in range(nq)]
    return np.array(rows, dtype=np.int64).reshape(nq, kc)


def _thresholds(rng, levels):
    return np.concatenate([np.sort(rng.normal(size=int(count) - 1)) for count in levels]).astype(np.float32)


def valid_args(name, draw):
    """Arguments the function accepts, from a few drawn sizes (so the fuzzer reaches the kernels);
    ``test_fuzz`` then breaks one of them, or none."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, nq, d = draw(st.integers(1, 40)), draw(st.integers(0, 4)), draw(st.integers(1, 20))
    bits = draw(st.sampled_from([1, 2, 4, 8]))
    k = draw(st.sampled_from([1, 2, 5, 40, 2**31, 2**63 - 1, 2**70]))
    words = draw(st.integers(1, 3))
    kc = draw(st.integers(0, n))
    scale = None if draw(st.booleans()) else rng.uniform(-2, 2, n).astype(np.float32)
    levels = rng.integers(2, 6, d).astype(np.uint16)
    codes = (rng.integers(0, 1 << 16, (n, d)) % levels).astype(np.uint8)
    recon = rng.normal(size=(d, 1 << bits)).astype(np.float32)
    packed = _core.asym_pack(rng.integers(0, 1 << bits, (n, d), dtype=np.uint8), bits)
    queries = rng.normal(size=(nq, d)).astype(np.float32)
    cands = _distinct_rows(rng, nq, n, kc)
    words_q = rng.integers(0, 2**63, (nq, words), dtype=np.uint64)
    words_db = rng.integers(0, 2**63, (n, words), dtype=np.uint64)
    nbits = draw(st.sampled_from([None, 1, 64 * words, 64 * words - 5]))
    backend = draw(st.sampled_from([None, *_core.available_backends()]))
    m = draw(st.integers(1, 10))
    luts = rng.normal(size=(nq, m, 256)).astype(np.float32)
    lut_codes = rng.integers(0, 256, (n, m), dtype=np.uint8)
    row_kernel = draw(st.sampled_from([None, "scalar", "interleaved"]))
    block_kernel = draw(
        st.sampled_from([None, *[k for k in ("scalar", "avx2") if k in _core.asym_kernels()]])
    )
    nbits_raw = draw(st.integers(1, 130))
    return {
        "quantize": (rng.normal(size=(n, d)).astype(np.float32), _thresholds(rng, levels), levels),
        "encode": (rng.normal(size=(n, d)).astype(np.float32), _thresholds(rng, levels), levels),
        "expand": (codes, levels),
        "collapse": (_core.expand(codes, levels), levels),
        "pack_bits": (rng.integers(0, 2, (n, nbits_raw), dtype=np.uint8),),
        "unpack_bits": (rng.integers(0, 2**63, (n, -(-nbits_raw // 64)), dtype=np.uint64), nbits_raw),
        "hamming_distances": (words_q, words_db, nbits, backend),
        "search": (words_q, words_db, k, nbits, backend),
        "asym_pack": (rng.integers(0, 1 << bits, (n, d), dtype=np.uint8), bits),
        "asym_unpack": (packed, d, bits),
        "asym_to_blocks": (packed,),
        "asym_from_blocks": (_core.asym_to_blocks(packed), n, packed.shape[1]),
        "asym_search": (queries, recon, packed, k, row_kernel, scale),
        "asym_search_blocked": (queries, recon, _core.asym_to_blocks(packed), n, k, block_kernel, scale),
        "asym_score_candidates": (queries, recon, packed, cands, scale),
        "asym_rescore": (queries, recon, packed, cands, k, scale),
        "float_rescore": (queries, rng.normal(size=(n, d)).astype(np.float32), cands, k),
        "lut_search": (luts, lut_codes, k, scale, row_kernel),
        "lut_search_blocked": (luts, _core.asym_to_blocks(lut_codes), n, k, scale, block_kernel),
        "lut_score_candidates": (luts, lut_codes, cands, scale),
        "lut_rescore": (luts, lut_codes, cands, k, scale),
    }[name]


def corrupt(draw, value):
    """A value-level fault in an argument of the right type: NaN / inf / huge floats, out-of-range
    integers, a non-contiguous or read-only view."""
    if not isinstance(value, np.ndarray) or value.size == 0:
        return value
    array = value.copy()
    flat = array.reshape(-1)
    at = draw(st.integers(0, flat.size - 1))
    how = draw(st.sampled_from(["special", "strided", "readonly"]))
    if how == "special":
        if array.dtype.kind == "f":
            flat[at] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 3e38, -3e38]))
        else:
            flat[at] = draw(
                st.sampled_from(
                    [
                        np.iinfo(array.dtype).max,
                        np.iinfo(array.dtype).min,
                        2,
                        255 % (np.iinfo(array.dtype).max + 1),
                    ]
                )
            )
        return array
    if how == "strided" and array.ndim:
        return np.repeat(array, 2, axis=-1)[..., ::2]
    array.flags.writeable = False
    return array


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_fuzz(name):
    kinds = [kind for _, kind in SIGNATURES[name]]
    endings: dict[str, int] = {}

    @st.composite
    def calls(draw):
        if not kinds:
            return ()
        args = list(valid_args(name, draw))
        fault = draw(st.sampled_from(["none", "none", "replace", "corrupt", "corrupt"]))
        if fault != "none":
            i = draw(st.integers(0, len(args) - 1))
            args[i] = draw(argument(kinds[i])) if fault == "replace" else corrupt(draw, args[i])
        return tuple(args)

    @settings(max_examples=EXAMPLES if kinds else 1, database=None)
    @given(calls())
    def run(args):
        ending = check_call(name, args)
        endings[ending] = endings.get(ending, 0) + 1

    run()
    # The generator must reach the kernels, not only the argument checks.
    assert not kinds or endings.get("ok", 0) > 0, endings
    assert not kinds or endings.get("error", 0) > 0, endings


def test_type_errors_are_qama_type_errors_and_type_errors():
    for call in (
        lambda: _core.search(np.zeros((1, 1)), np.zeros((1, 1), np.uint64), 1),
        lambda: _core.search(np.zeros((1, 1), np.uint64), np.zeros((1, 1), np.uint64), 1.5),
        lambda: _core.asym_search(
            np.zeros((1, 2), np.float32),
            np.zeros((2, 2), np.float32),
            np.zeros((3, 1), np.uint8),
            1,
            kernel=3,
        ),
        lambda: _core.pack_bits(np.zeros((4, 4), np.uint8)[:, ::2]),
    ):
        with pytest.raises(QamaTypeError) as info:
            call()
        assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_huge_k_returns_every_row():
    db = np.arange(6, dtype=np.uint64).reshape(3, 2)
    for k in (2**31, 2**31 + 1, 2**63 - 1, 2**64, 2**100, np.uint64(2**64 - 1)):
        d, i = _core.search(db, db, k)
        assert d.shape == (3, 3) and sorted(i[0].tolist()) == [0, 1, 2]
    with pytest.raises(QamaError, match="k = "):
        _core.search(db, db, -(2**80))


def test_non_contiguous_and_nan_inputs_name_the_argument():
    q = np.zeros((2, 8), dtype=np.float32)
    recon = np.zeros((8, 4), dtype=np.float32)
    codes = np.zeros((5, 2), dtype=np.uint8)
    with pytest.raises(QamaTypeError, match="codes must be C-contiguous"):
        _core.asym_search(q, recon, np.zeros((5, 4), np.uint8)[:, ::2], 1)
    with pytest.raises(QamaError, match=r"queries\[1, 3\] = NaN"):
        bad = q.copy()
        bad[1, 3] = np.nan
        _core.asym_search(bad, recon, codes, 1)
    with pytest.raises(QamaError, match=r"x\[0, 1\] = inf"):
        _core.encode(
            np.array([[0, np.inf]], np.float32), np.zeros(2, np.float32), np.array([2, 2], np.uint16)
        )


def test_error_classes_pickle_and_live_in_qama_rs_errors():
    import pickle

    for cls in (QamaError, QamaTypeError):
        assert cls.__module__ == "qama_rs.errors"
        again = pickle.loads(pickle.dumps(cls("k = 0; must be positive")))
        assert type(again) is cls and str(again) == "k = 0; must be positive"
    assert issubclass(QamaTypeError, QamaError) and issubclass(QamaTypeError, TypeError)
    assert issubclass(QamaError, ValueError) and not issubclass(QamaError, TypeError)
