"""``TableCodec``'s compact code layout: ``pack_codes`` / ``unpack_codes`` against the NumPy reference
and their bit order, the 32-row block layout (``to_blocks`` / ``from_blocks``), and its in-place writes
and removals (``write_block_rows`` / ``keep_block_rows``) with the errors they raise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import _reference as ref
import qama_rs
from _table_helpers import BITS
from qama_rs import _core


# ------------------------------------------------------------------------------ code layout
@given(
    bits=st.sampled_from(BITS),
    n=st.integers(0, 40),
    dims=st.integers(1, 70),
    seed=st.integers(0, 2**32 - 1),
)
def test_pack_unpack_match_reference(bits, n, dims, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 1 << bits, size=(n, dims), dtype=np.uint8)
    packed = qama_rs.pack_codes(codes, bits)
    assert packed.shape == (n, -(-dims * bits // 8)) and packed.dtype == np.uint8
    np.testing.assert_array_equal(packed, ref.asym_pack(codes, bits))
    np.testing.assert_array_equal(qama_rs.unpack_codes(packed, dims, bits), codes)


def test_field_j_sits_at_bit_j_times_bits():
    # Five 2-bit fields 3, 0, 1, 2 | 1: byte 0 = 0b10_01_00_11, byte 1 = 0b01, padding zero.
    packed = qama_rs.pack_codes(np.array([[3, 0, 1, 2, 1]], dtype=np.uint8), 2)
    np.testing.assert_array_equal(packed, [[0b1001_0011, 0b01]])
    bits = np.unpackbits(packed, axis=1, bitorder="little")[0]
    assert list(bits[:10]) == [1, 1, 0, 0, 1, 0, 0, 1, 1, 0]


def test_block_layout_round_trips():
    rng = np.random.default_rng(0)
    packed = rng.integers(0, 256, size=(77, 13), dtype=np.uint8)
    blocks = _core.to_blocks(packed)
    np.testing.assert_array_equal(blocks, ref.asym_to_blocks(packed))
    np.testing.assert_array_equal(_core.from_blocks(blocks, 77, 13), packed)


@given(
    n=st.integers(0, 100),
    row_bytes=st.integers(1, 9),
    pieces=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_in_place_block_writes_and_removals_match_a_rebuild(n, row_bytes, pieces, seed):
    """``write_block_rows`` appends in uneven pieces and ``keep_block_rows`` compacts, in place: the
    array equals ``to_blocks`` of the same rows (zero padding included)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, size=(n, row_bytes), dtype=np.uint8)
    capacity = -(-max(n, 1) // 32) * 32 + 32
    blocks = np.zeros(capacity * row_bytes, dtype=np.uint8)
    at = 0
    for piece in [*pieces, n]:
        piece = min(piece, n - at)
        _core.write_block_rows(blocks, at, np.ascontiguousarray(rows[at : at + piece]))
        at += piece
    want = np.zeros_like(blocks)
    want[: len(ref.asym_to_blocks(rows))] = ref.asym_to_blocks(rows)
    np.testing.assert_array_equal(blocks, want)
    keep = rng.random(n) < 0.6
    assert _core.keep_block_rows(blocks, row_bytes, keep) == keep.sum()
    want = np.zeros_like(blocks)
    survivors = ref.asym_to_blocks(rows[keep])
    want[: len(survivors)] = survivors
    np.testing.assert_array_equal(blocks, want)


def test_block_writes_refuse_what_does_not_fit():
    blocks = np.zeros(32 * 3, dtype=np.uint8)
    with pytest.raises(qama_rs.QamaError, match="blocks has 96 bytes; rows 31..33 need 192"):
        _core.write_block_rows(blocks, 31, np.zeros((2, 3), np.uint8))
    with pytest.raises(qama_rs.QamaError, match="blocks has 96 bytes, too few for 33 rows"):
        _core.keep_block_rows(blocks, 3, np.ones(33, dtype=bool))
    frozen = blocks.copy()
    frozen.flags.writeable = False
    with pytest.raises(qama_rs.QamaError, match="blocks cannot be written"):
        _core.write_block_rows(frozen, 0, np.zeros((1, 3), np.uint8))
    with pytest.raises(qama_rs.QamaTypeError, match="blocks must be a 1-D NumPy array of uint8"):
        _core.keep_block_rows(blocks.reshape(3, 32), 3, np.ones(3, dtype=bool))
    assert not blocks.any()
