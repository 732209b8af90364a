"""``gray_2bit``: 2-bit codes stored as Gray codes, compared by Hamming distance on 2 bits a dimension.

Gray code ``g = c ^ (c >> 1)`` (0→00, 1→01, 2→11, 3→10) makes neighbouring levels differ in exactly
one bit, so 2 stored bits a dimension approximate the level distance that thermometer codes (3 bits
a dimension, exact L1) give; the price is that levels 0 and 3 are also one bit apart. Codes and
asymmetric scores are those of the underlying 2-bit Lloyd-Max (Gaussian) quantizer.
"""

from __future__ import annotations

import numpy as np

from qama_rs.quantizers.lloyd_max import LloydMaxGauss


def gray_encode(codes: np.ndarray) -> np.ndarray:
    """Binary-reflected Gray code of unsigned integer codes."""
    codes = np.asarray(codes)
    return codes ^ (codes >> 1)


def gray_decode(gray: np.ndarray) -> np.ndarray:
    """Inverse of :func:`gray_encode` (for codes below 256)."""
    out = np.array(gray, copy=True)
    shift = out >> 1
    while shift.any():
        out ^= shift
        shift >>= 1
    return out


class GrayTwoBit(LloydMaxGauss):
    name = "gray_2bit"
    supports_hamming = True
    _state_params = ()

    def __init__(self) -> None:
        super().__init__(bits=2)

    def hamming_bits(self, codes) -> np.ndarray:
        g = gray_encode(self.check_codes(codes))
        # Per dimension: low bit then high bit, so dimension j owns stream bits 2j and 2j + 1.
        return np.stack([g & 1, (g >> 1) & 1], axis=2).reshape(g.shape[0], -1).astype(np.uint8)
