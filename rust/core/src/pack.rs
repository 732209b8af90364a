//! Bit packing of 0/1 bytes into `u64` words: stream bit `b` → word `b / 64`, bit `b % 64`
//! (least significant first, as `np.packbits(..., bitorder="little")` viewed as little-endian u64).
use rayon::prelude::*;

use crate::error::{chunk_len, shape_err, try_zeroed, value_err, Result};

/// Rows per rayon task: packing is memory-bound, so tasks only need to be big enough to amortise.
const ROWS_PER_TASK: usize = 1024;

/// `u64` words needed for `nbits` bits.
pub fn words_for(nbits: usize) -> usize {
    nbits.div_ceil(64)
}

/// Gathers the low bits of 8 bytes (each 0 or 1) into one byte, byte `i` → bit `i`.
/// The multiplier moves byte `i`'s bit (at `8i`) to `56 + i`; the cross terms land on distinct
/// positions outside `56..64`, so no carry disturbs the result.
#[inline]
fn gather8(bytes: [u8; 8]) -> u64 {
    u64::from_le_bytes(bytes).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// `SPREAD[b]` holds bit `i` of `b` as byte `i` (the inverse of [`gather8`]).
static SPREAD: [[u8; 8]; 256] = {
    let mut table = [[0u8; 8]; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < 8 {
            table[b][i] = ((b >> i) & 1) as u8;
            i += 1;
        }
        b += 1;
    }
    table
};

/// Packs one row of 0/1 bytes into its zeroed words; false on a byte other than 0/1.
fn pack_row(bits: &[u8], out: &mut [u64]) -> bool {
    let mut bad = 0u64;
    for (word, chunk) in out.iter_mut().zip(bits.chunks(64)) {
        let mut acc = 0u64;
        let (eights, tail) = chunk.as_chunks::<8>();
        for (i, &eight) in eights.iter().enumerate() {
            bad |= u64::from_le_bytes(eight) & 0xFEFE_FEFE_FEFE_FEFE;
            acc |= gather8(eight) << (8 * i);
        }
        let done = 8 * eights.len();
        for (i, &b) in tail.iter().enumerate() {
            bad |= u64::from(b & !1);
            acc |= u64::from(b & 1) << (done + i);
        }
        *word = acc;
    }
    bad == 0
}

/// Spreads the first `out.len()` stream bits of `words` into 0/1 bytes.
fn unpack_row(words: &[u64], out: &mut [u8]) {
    let (eights, tail) = out.as_chunks_mut::<8>();
    // Byte `i` of the stream is byte `i % 8` (little-endian) of word `i / 8`.
    let byte = |i: usize| usize::from(words[i / 8].to_le_bytes()[i % 8]);
    for (i, dst) in eights.iter_mut().enumerate() {
        *dst = SPREAD[byte(i)];
    }
    if !tail.is_empty() {
        let len = tail.len();
        tail.copy_from_slice(&SPREAD[byte(eights.len())][..len]);
    }
}

/// Packs `bits` (row-major `(n, nbits)`, each byte 0 or 1) into `(n, words_for(nbits))` words,
/// zero-padded. Errors on a byte other than 0/1 or a length mismatch.
pub fn pack_bits(bits: &[u8], n: usize, nbits: usize) -> Result<Vec<u64>> {
    if n.checked_mul(nbits) != Some(bits.len()) {
        return shape_err(format!(
            "bits has {} bytes; expected n * nbits = {n} * {nbits}",
            bits.len()
        ));
    }
    let words = words_for(nbits);
    // n * words <= n * nbits = bits.len() when nbits > 0; n = 0 or nbits = 0 give no words.
    let total = if nbits == 0 { 0 } else { n * words };
    let mut packed = try_zeroed::<u64>(total, "the packed words")?;
    if total == 0 {
        return Ok(packed);
    }
    let all_binary = packed
        .par_chunks_mut(chunk_len(ROWS_PER_TASK, n, words))
        .zip(bits.par_chunks(chunk_len(ROWS_PER_TASK, n, nbits)))
        .all(|(out, rows)| {
            out.chunks_exact_mut(words)
                .zip(rows.chunks_exact(nbits))
                .all(|(o, r)| pack_row(r, o))
        });
    if !all_binary {
        let p = bits.iter().position(|&b| b > 1).unwrap_or(0);
        return value_err(format!(
            "bits[{}, {}] = {}; every byte must be 0 or 1",
            p / nbits,
            p % nbits,
            bits[p]
        ));
    }
    Ok(packed)
}

/// Unpacks `(n, words_for(nbits))` words into `(n, nbits)` 0/1 bytes (padding dropped).
pub fn unpack_bits(words: &[u64], n: usize, nbits: usize) -> Result<Vec<u8>> {
    let per_row = words_for(nbits);
    if n.checked_mul(per_row) != Some(words.len()) {
        return shape_err(format!(
            "words has {} words; expected n * words_for(nbits) = {n} * {per_row}",
            words.len()
        ));
    }
    let Some(total) = n.checked_mul(nbits) else {
        return shape_err(format!("n * nbits = {n} * {nbits} bytes overflow"));
    };
    let mut bits = try_zeroed::<u8>(total, "the unpacked bits")?;
    if total == 0 {
        return Ok(bits);
    }
    bits.par_chunks_mut(chunk_len(ROWS_PER_TASK, n, nbits))
        .zip(words.par_chunks(chunk_len(ROWS_PER_TASK, n, per_row)))
        .for_each(|(out, ws)| {
            for (o, w) in out.chunks_exact_mut(nbits).zip(ws.chunks_exact(per_row)) {
                unpack_row(w, o);
            }
        });
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::QamaError;

    /// Bit-by-bit definition of the layout, independent of the fast paths.
    fn reference_pack(bits: &[u8], n: usize, nbits: usize) -> Vec<u64> {
        let words = words_for(nbits);
        let mut out = vec![0u64; n * words];
        for r in 0..n {
            for b in 0..nbits {
                if bits[r * nbits + b] == 1 {
                    out[r * words + b / 64] |= 1 << (b % 64);
                }
            }
        }
        out
    }

    #[test]
    fn matches_numpy_packbits_little() {
        // np.packbits([1,0,1,1,0,0,0,0, 0,1], bitorder="little") == [0x0d, 0x02].
        let bits = [1, 0, 1, 1, 0, 0, 0, 0, 0, 1];
        assert_eq!(pack_bits(&bits, 1, 10).unwrap(), vec![0x020d]);
        assert_eq!(unpack_bits(&[0x020d], 1, 10).unwrap(), bits.to_vec());
    }

    #[test]
    fn gather8_maps_byte_i_to_bit_i() {
        for b in 0..=255u8 {
            let bytes: [u8; 8] = std::array::from_fn(|i| (b >> i) & 1);
            assert_eq!(gather8(bytes), u64::from(b));
            assert_eq!(SPREAD[usize::from(b)], bytes);
        }
    }

    #[test]
    fn round_trips_every_tail() {
        for nbits in [1, 7, 8, 9, 63, 64, 65, 100, 127, 128, 129, 384, 624, 1000] {
            let n = 5;
            let bits: Vec<u8> = (0..n * nbits)
                .map(|i| ((i * 2654435761) >> 7) as u8 & 1)
                .collect();
            let packed = pack_bits(&bits, n, nbits).unwrap();
            assert_eq!(packed, reference_pack(&bits, n, nbits), "nbits={nbits}");
            assert_eq!(
                unpack_bits(&packed, n, nbits).unwrap(),
                bits,
                "nbits={nbits}"
            );
        }
    }

    #[test]
    fn unpack_drops_padding() {
        assert_eq!(unpack_bits(&[u64::MAX], 1, 3).unwrap(), vec![1, 1, 1]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            pack_bits(&[0, 1, 1], 2, 2),
            Err(QamaError::Shape(_))
        ));
        let mut bits = vec![0u8; 3 * 70];
        bits[70 + 65] = 2;
        let err = pack_bits(&bits, 3, 70).unwrap_err();
        assert_eq!(
            err,
            QamaError::Value("bits[1, 65] = 2; every byte must be 0 or 1".into())
        );
        bits[70 + 65] = 0;
        bits[2 * 70 + 3] = 255;
        assert!(pack_bits(&bits, 3, 70).is_err());
        assert!(matches!(
            unpack_bits(&[0; 3], 2, 64),
            Err(QamaError::Shape(_))
        ));
        assert!(pack_bits(&[], usize::MAX, 2).is_err());
    }

    #[test]
    fn zero_bits_give_empty_rows() {
        assert!(pack_bits(&[], 4, 0).unwrap().is_empty());
        assert!(unpack_bits(&[], 4, 0).unwrap().is_empty());
    }
}
