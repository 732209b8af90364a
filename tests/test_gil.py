"""Every binding function that does work releases the GIL while the core runs.

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
WORDS = rng.integers(0, 2**63, size=(20, 2), dtype=np.uint64)
RECON = rng.normal(size=(8, 4)).astype(np.float32)
PACKED = rng.integers(0, 256, size=(40, 2), dtype=np.uint8)
QUERIES = rng.normal(size=(3, 8)).astype(np.float32)
CANDS = np.array([[0, 5, 9], [1, 2, 3], [7, 8, 39]], dtype=np.int64)
SCALE = rng.uniform(0.5, 2, 40).astype(np.float32)
LUTS = rng.normal(size=(3, 2, 256)).astype(np.float32)
VECTORS = rng.normal(size=(40, 8)).astype(np.float32)

CALLS = {
    "quantize": lambda: _core.quantize(X, THRESHOLDS, LEVELS),
    "expand": lambda: _core.expand(CODES, LEVELS),
    "collapse": lambda: _core.collapse(_core.expand(CODES, LEVELS), LEVELS),
    "encode": lambda: _core.encode(X, THRESHOLDS, LEVELS),
    "pack_bits": lambda: _core.pack_bits(np.ones((3, 70), dtype=np.uint8)),
    "unpack_bits": lambda: _core.unpack_bits(WORDS, 100),
    "hamming_distances": lambda: _core.hamming_distances(WORDS[:3], WORDS),
    "search": lambda: _core.search(WORDS[:3], WORDS, 5),
    "asym_pack": lambda: _core.asym_pack(CODES, 2),
    "asym_unpack": lambda: _core.asym_unpack(PACKED, 8, 2),
    "asym_to_blocks": lambda: _core.asym_to_blocks(PACKED),
    "asym_from_blocks": lambda: _core.asym_from_blocks(_core.asym_to_blocks(PACKED), 40, 2),
    "asym_search": lambda: _core.asym_search(QUERIES, RECON, PACKED, 5, None, SCALE),
    "asym_search_blocked": lambda: _core.asym_search_blocked(
        QUERIES, RECON, _core.asym_to_blocks(PACKED), 40, 5, "scalar", SCALE
    ),
    "asym_score_candidates": lambda: _core.asym_score_candidates(QUERIES, RECON, PACKED, CANDS, SCALE),
    "asym_rescore": lambda: _core.asym_rescore(QUERIES, RECON, PACKED, CANDS, 2, SCALE),
    "float_rescore": lambda: _core.float_rescore(QUERIES, VECTORS, CANDS, 2),
    "lut_search": lambda: _core.lut_search(LUTS, PACKED, 5, SCALE),
    "lut_search_blocked": lambda: _core.lut_search_blocked(
        LUTS, _core.asym_to_blocks(PACKED), 40, 5, SCALE, "scalar"
    ),
    "lut_score_candidates": lambda: _core.lut_score_candidates(LUTS, PACKED, CANDS, SCALE),
    "lut_rescore": lambda: _core.lut_rescore(LUTS, PACKED, CANDS, 2, SCALE),
}
# Functions that only read a constant or a CPU flag: nothing to release the GIL for.
NO_WORK = {"available_backends", "best_backend", "cpu_features", "num_threads", "asym_kernels", "_gil_checks"}


def test_every_working_function_is_covered():
    public = {
        n for n in dir(_core) if callable(getattr(_core, n)) and not isinstance(getattr(_core, n), type)
    }
    public -= {n for n in public if n.startswith("__")}
    assert public == set(CALLS) | NO_WORK


@pytest.mark.parametrize("name", sorted(CALLS))
def test_runs_with_the_gil_released(name):
    # Calls that build their input through the engine count once more per inner call.
    inner = {"collapse": 1, "asym_from_blocks": 1, "asym_search_blocked": 1, "lut_search_blocked": 1}.get(
        name, 0
    )
    released, held = _core._gil_checks()
    CALLS[name]()
    released_after, held_after = _core._gil_checks()
    assert held_after == held, f"{name} ran the core while holding the GIL"
    assert released_after - released == 1 + inner, f"{name} did not run detached"


def test_errors_are_raised_after_detaching_too():
    """Core-side validation runs detached as well (the binding only converts)."""
    released, held = _core._gil_checks()
    with pytest.raises(ValueError):
        _core.asym_search(QUERIES, RECON, PACKED[:0], 5)  # empty: refused by the core
    assert _core._gil_checks() == (released + 1, held)
