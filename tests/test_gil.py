"""Every binding function and method that does work (the codecs' calls, ``Plan.arrays``) releases the
GIL while the core runs.

No timing: each call goes through one helper in the binding (``run_core``) that, inside the
detached closure, asks CPython whether this thread holds the GIL (``PyGILState_Check``) and counts
the answer; ``_core._gil_checks()`` returns ``(released, held)``. A function that stopped detaching
would not move ``released`` (or would move ``held``).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from qama_rs import _core

# The binding cannot ask CPython about the GIL from a Windows abi3 build (see rust/python/src/lib.rs).
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="PyGILState_Check is not in python3.dll")

rng = np.random.default_rng(0)
LEVELS = np.array([3, 2, 4], dtype=np.uint16)
THRESHOLDS = np.array([-0.5, 0.5, 0.0, -1, 0, 1], dtype=np.float32)
X = rng.normal(size=(10, 3)).astype(np.float32)
CODES = np.array([[2, 1, 3], [0, 0, 0]], dtype=np.uint8)
EXPANDED = _core.expand(CODES, LEVELS)
WORDS = rng.integers(0, 2**63, size=(20, 2), dtype=np.uint64)
RECON = rng.normal(size=(8, 4)).astype(np.float32)
PACKED = rng.integers(0, 256, size=(40, 2), dtype=np.uint8)
BLOCKS = _core.to_blocks(PACKED)
QUERIES = rng.normal(size=(3, 8)).astype(np.float32)
CANDS = np.array([[0, 5, 9], [1, 2, 3], [7, 8, 39]], dtype=np.int64)
SCALE = rng.uniform(0.5, 2, 40).astype(np.float32)
LUTS = rng.normal(size=(3, 2, 256)).astype(np.float32)
VECTORS = rng.normal(size=(40, 8)).astype(np.float32)
LISTS = np.array([[1, 0], [0, 1], [1, 0]], dtype=np.int64)
BIAS = rng.normal(size=(3, 2)).astype(np.float32)
PLAN = _core.Plan(LISTS, 1, BIAS)
UNBIASED = _core.Plan(LISTS, 1)  # Hamming distances take no bias
FILTER = _core.Filter.labels(np.arange(0, 64, 3, dtype=np.uint64))
COARSE = _core.Coarse(VECTORS[:5].copy())
BASIS = rng.normal(size=(8, 6)).astype(np.float32)
SLOT_DIMS = rng.integers(-1, 6, size=(2, 3), dtype=np.int64)
SLOT_VALUES = rng.normal(size=(2, 3, 256)).astype(np.float32)
NIBBLE_DIMS = rng.integers(-1, 6, size=(2, 2, 3), dtype=np.int64)
NIBBLE_VALUES = rng.normal(size=(2, 2, 3, 16)).astype(np.float32)


def two_lists(data, unit_dtype, scale=None):
    """40 rows in two lists of 20 (each 32-row aligned in the block layout)."""
    empty = np.zeros(0, unit_dtype)
    table = np.array([[0, 20, 0, 0], [32, 20, 0, 0]], np.uint64)
    return _core.Store(
        [data, empty], table, None, None if scale is None else [scale, np.zeros(0, np.float32)]
    )


PACKED_LISTS = np.zeros((64, 2), np.uint8)
PACKED_LISTS[:20], PACKED_LISTS[32:52] = PACKED[:20], PACKED[20:]
SCALE_LISTS = np.ones(64, np.float32)
SCALE_LISTS[:20], SCALE_LISTS[32:52] = SCALE[:20], SCALE[20:]
VECTORS_LISTS = np.zeros((64, 8), np.float32)
VECTORS_LISTS[:20], VECTORS_LISTS[32:52] = VECTORS[:20], VECTORS[20:]
WORDS_LISTS = np.zeros((64, 2), np.uint64)
WORDS_LISTS[:20], WORDS_LISTS[32:40] = WORDS, WORDS[:8]

# (codec, queries, store) per codec class and store kind: every class's methods on every layout.
CODEC_CASES = {
    "HammingCodec": (_core.HammingCodec(2), WORDS[:3], two_lists(WORDS_LISTS, np.uint64)),
    "TableCodec.recon(rows)": (
        _core.TableCodec.recon(RECON, "rows"),
        QUERIES,
        two_lists(PACKED_LISTS, np.uint8, SCALE_LISTS),
    ),
    "TableCodec.recon(blocks)": (
        _core.TableCodec.recon(RECON, "blocks", "scalar"),
        QUERIES,
        two_lists(_core.to_blocks(PACKED_LISTS), np.uint8, SCALE_LISTS),
    ),
    "TableCodec.given(rows)": (_core.TableCodec.given(2, "rows"), LUTS, two_lists(PACKED_LISTS, np.uint8)),
    "TableCodec.given(blocks)": (
        _core.TableCodec.given(2, "blocks"),
        LUTS,
        two_lists(_core.to_blocks(PACKED_LISTS), np.uint8, SCALE_LISTS),
    ),
    "TableCodec.projected(rows)": (
        _core.TableCodec.projected(BASIS, SLOT_DIMS, SLOT_VALUES, "rows"),
        QUERIES,
        two_lists(PACKED_LISTS, np.uint8, SCALE_LISTS),
    ),
    "TableCodec.projected(blocks)": (
        _core.TableCodec.projected(BASIS, NIBBLE_DIMS, NIBBLE_VALUES, "blocks"),
        QUERIES,
        two_lists(_core.to_blocks(PACKED_LISTS), np.uint8, SCALE_LISTS),
    ),
    "FloatCodec": (_core.FloatCodec(8), QUERIES, two_lists(VECTORS_LISTS, np.float32)),
    "Float16Codec": (
        _core.Float16Codec(8),
        QUERIES,
        two_lists(VECTORS_LISTS.astype(np.float16).view(np.uint16), np.uint16),
    ),
    "Affine8Codec": (
        _core.Affine8Codec(np.linspace(-1, 1, 8, dtype=np.float32), np.full(8, 0.01, np.float32)),
        QUERIES,
        two_lists((np.arange(VECTORS_LISTS.size) % 251).astype(np.uint8).reshape(VECTORS_LISTS.shape), np.uint8),
    ),
}
CODEC_CALLS = {
    "search": lambda c, q, s: c.search(q, s, 5),
    "search_lists": lambda c, q, s: c.search_lists(
        q, s, 5, UNBIASED if isinstance(c, _core.HammingCodec) else PLAN, FILTER
    ),
    "score": lambda c, q, s: c.score(q, s, CANDS),
    "rescore": lambda c, q, s: c.rescore(q, s, CANDS, 2, FILTER),
}

CALLS = {
    "quantize": lambda: _core.quantize(X, THRESHOLDS, LEVELS),
    "expand": lambda: _core.expand(CODES, LEVELS),
    "collapse": lambda: _core.collapse(EXPANDED, LEVELS),
    "encode": lambda: _core.encode(X, THRESHOLDS, LEVELS),
    "Thresholds.quantize": lambda: _core.Thresholds(THRESHOLDS, LEVELS).quantize(X),
    "Thresholds.encode": lambda: _core.Thresholds(THRESHOLDS, LEVELS).encode(X),
    "pack_bits": lambda: _core.pack_bits(np.ones((3, 70), dtype=np.uint8)),
    "unpack_bits": lambda: _core.unpack_bits(WORDS, 100),
    "hamming_distances": lambda: _core.hamming_distances(WORDS[:3], WORDS),
    "pack_codes": lambda: _core.pack_codes(CODES, 2),
    "unpack_codes": lambda: _core.unpack_codes(PACKED, 8, 2),
    "to_blocks": lambda: _core.to_blocks(PACKED),
    "from_blocks": lambda: _core.from_blocks(BLOCKS, 40, 2),
    "write_block_rows": lambda: _core.write_block_rows(BLOCKS.copy(), 3, PACKED[:5]),
    "keep_block_rows": lambda: _core.keep_block_rows(BLOCKS.copy(), 2, np.arange(40) % 3 == 0),
    "kmeans_iterate": lambda: _core.kmeans_iterate(VECTORS, VECTORS[:4].copy()),
    "kmeans_assign": lambda: _core.kmeans_assign(VECTORS, VECTORS[:4].copy()),
    "Plan.arrays": lambda: COARSE.plan(QUERIES, 1, 3, True).arrays(),
    "Filter.admitting": lambda: FILTER.admitting(CODEC_CASES["TableCodec.recon(blocks)"][2]),
    **{
        f"{name}.{method}": (lambda call=call, args=args: call(*args))
        for name, args in CODEC_CASES.items()
        for method, call in CODEC_CALLS.items()
    },
}
# Functions that only read a constant or a CPU flag, constructors (and static constructors) that
# only check and copy their arguments, and a coarse plan (ranked when used): nothing to release the GIL for.
# peak_abs holds the GIL on purpose: Python calls it for small arrays only (a few microseconds).
NO_WORK = {"available_isas", "best_isa", "cpu_features", "num_threads", "_gil_checks", "peak_abs"}
CODEC_CLASSES = {"HammingCodec", "TableCodec", "FloatCodec", "Float16Codec", "Affine8Codec"}
CONSTRUCTORS = CODEC_CLASSES | {"Store", "Filter", "Plan", "Coarse", "Thresholds"}
STATIC_CONSTRUCTORS = {"TableCodec": {"recon", "given", "projected"}, "Filter": {"bits", "labels"}}
# plan checks and copies the queries (lists are ranked where the plan is used); centroids is a copy.
NO_WORK_CALLS = {"Coarse": {"plan", "centroids"}}


def test_every_working_function_and_method_is_covered():
    public = {
        n for n in dir(_core) if callable(getattr(_core, n)) and not isinstance(getattr(_core, n), type)
    }
    public -= {n for n in public if n.startswith("__")}
    functions = {n for n in CALLS if "." not in n}
    assert public == functions | NO_WORK
    classes = {
        n
        for n in dir(_core)
        if isinstance(getattr(_core, n), type) and not issubclass(getattr(_core, n), BaseException)
    }
    assert classes == CONSTRUCTORS
    for name in sorted(classes):
        members = vars(getattr(_core, name)).items()
        methods = {n for n, v in members if type(v).__name__ == "method_descriptor"}
        statics = {n for n, v in members if type(v).__name__ in ("staticmethod", "classmethod")}
        assert statics == STATIC_CONSTRUCTORS.get(name, set()), name
        working = methods - NO_WORK_CALLS.get(name, set())
        assert NO_WORK_CALLS.get(name, set()) <= methods, name
        if name in CODEC_CLASSES:
            assert working == set(CODEC_CALLS), name
        else:  # each working method of an argument object is called
            assert {f"{name}.{m}" for m in working} <= set(CALLS), name
    # Every codec class is called, and TableCodec through each of its constructors.
    assert {n.split(".")[0].split("(")[0] for n in CODEC_CASES} == CODEC_CLASSES
    assert {n.split("(")[0] for n in CODEC_CASES if n.startswith("TableCodec.")} == {
        f"TableCodec.{s}" for s in STATIC_CONSTRUCTORS["TableCodec"]
    }


@pytest.mark.parametrize("name", sorted(CALLS))
def test_runs_with_the_gil_released(name):
    released, held = _core._gil_checks()
    CALLS[name]()
    released_after, held_after = _core._gil_checks()
    assert held_after == held, f"{name} ran the core while holding the GIL"
    assert released_after - released == 1, f"{name} did not run detached (once)"


def test_errors_are_raised_after_detaching_too():
    """Core-side validation runs detached as well (the binding only converts)."""
    codec, queries, store = CODEC_CASES["TableCodec.recon(rows)"]
    released, held = _core._gil_checks()
    with pytest.raises(ValueError, match="not finite"):
        codec.search(np.full_like(queries, np.nan), store, 5)  # refused by the core
    assert _core._gil_checks() == (released + 1, held)
