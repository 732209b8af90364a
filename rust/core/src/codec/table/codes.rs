//! The compact code layout: `bits` bits per dimension, packed little-endian into bytes.
//!
//! Field `j` of a row (the code of dimension `j`) occupies bits `j * bits .. (j + 1) * bits` of the
//! row's byte stream: byte `j * bits / 8`, starting at bit `(j * bits) % 8` (least significant
//! first). Rows are padded with zero bits to whole bytes. `bits` divides 8, so no field straddles
//! two bytes, which is what lets one byte be scored with one lookup.
use rayon::prelude::*;

use crate::error::{check_rows, checked_size, chunk_len, shape_err, value_err, Result};

use crate::error::try_zeroed;

/// Bits per field a compact code array may use.
pub const SUPPORTED_BITS: [u32; 4] = [1, 2, 4, 8];

/// Rows per parallel task when packing and unpacking (enough work to amortise a task).
const ROWS_PER_TASK: usize = 4096;

/// Shape of one compact code row: `dims` fields of `bits` bits each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeFormat {
    dims: usize,
    bits: u32,
}

impl CodeFormat {
    /// A format of `dims >= 1` fields of `bits` ∈ {1, 2, 4, 8} bits.
    pub fn new(dims: usize, bits: u32) -> Result<Self> {
        if !SUPPORTED_BITS.contains(&bits) {
            return value_err(format!("bits = {bits}; must be one of 1, 2, 4, 8"));
        }
        if dims == 0 {
            return shape_err("dims = 0; a code row needs at least one dimension");
        }
        // `dims * bits` must not overflow when computing offsets.
        if dims > usize::MAX / 8 {
            return shape_err(format!("dims = {dims} is too large"));
        }
        Ok(Self { dims, bits })
    }

    /// Dimensions (fields) per row.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Bits per field.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Codes a field can hold: `2^bits`.
    pub fn levels(&self) -> usize {
        1 << self.bits
    }

    /// Fields per byte: `8 / bits`.
    pub fn fields_per_byte(&self) -> usize {
        8 / self.bits as usize
    }

    /// Bytes per row: `ceil(dims * bits / 8)`.
    pub fn row_bytes(&self) -> usize {
        (self.dims * self.bits as usize).div_ceil(8)
    }

    /// Mask of one field's bits.
    pub(crate) fn field_mask(&self) -> u8 {
        (((1u16) << self.bits) - 1) as u8
    }
}

/// Packs `n` rows of `dims` codes (`uint8`, row-major, each `< 2^bits`) into `n * row_bytes` bytes.
pub fn pack_codes(codes: &[u8], n: usize, format: CodeFormat) -> Result<Vec<u8>> {
    let dims = format.dims();
    check_rows(codes.len(), n, dims, "codes")?;
    let levels = format.levels();
    if let Some(at) = codes.iter().position(|&c| usize::from(c) >= levels) {
        return value_err(format!(
            "codes[{}, {}] = {} does not fit {} bits (must be < {levels})",
            at / dims,
            at % dims,
            codes[at],
            format.bits()
        ));
    }
    let row_bytes = format.row_bytes();
    let mut out = try_zeroed::<u8>(
        checked_size(n, row_bytes, "n * row_bytes")?,
        "the packed codes",
    )?;
    let (bits, per_byte) = (format.bits() as usize, format.fields_per_byte());
    each_row(&mut out, row_bytes, codes, dims, n, |row, fields| {
        for (byte, group) in row.iter_mut().zip(fields.chunks(per_byte)) {
            *byte = group
                .iter()
                .enumerate()
                .fold(0u8, |acc, (f, &c)| acc | (c << (f * bits)));
        }
    });
    Ok(out)
}

/// Inverse of [`pack_codes`]: `n * row_bytes` bytes back to `n * dims` codes. Padding bits are
/// ignored (scoring ignores them too).
pub fn unpack_codes(packed: &[u8], n: usize, format: CodeFormat) -> Result<Vec<u8>> {
    let row_bytes = format.row_bytes();
    if n.checked_mul(row_bytes) != Some(packed.len()) {
        return shape_err(format!(
            "packed codes have {} bytes; expected n * row_bytes = {n} * {row_bytes}",
            packed.len()
        ));
    }
    let dims = format.dims();
    let mut out = try_zeroed::<u8>(checked_size(n, dims, "n * dims")?, "the unpacked codes")?;
    let (bits, per_byte, mask) = (
        format.bits() as usize,
        format.fields_per_byte(),
        format.field_mask(),
    );
    each_row(&mut out, dims, packed, row_bytes, n, |fields, row| {
        for (group, &byte) in fields.chunks_mut(per_byte).zip(row) {
            for (f, c) in group.iter_mut().enumerate() {
                *c = (byte >> (f * bits)) & mask;
            }
        }
    });
    Ok(out)
}

/// `convert(out_row, src_row)` for each of the `n` rows of `out` (`out_len` bytes a row) and
/// `src` (`src_len`), in parallel tasks of [`ROWS_PER_TASK`] rows: the walk of packing and
/// unpacking.
fn each_row(
    out: &mut [u8],
    out_len: usize,
    src: &[u8],
    src_len: usize,
    n: usize,
    convert: impl Fn(&mut [u8], &[u8]) + Sync,
) {
    if n == 0 {
        return;
    }
    out.par_chunks_mut(chunk_len(ROWS_PER_TASK, n, out_len))
        .zip(src.par_chunks(chunk_len(ROWS_PER_TASK, n, src_len)))
        .for_each(|(out, src)| {
            for (o, s) in out.chunks_exact_mut(out_len).zip(src.chunks_exact(src_len)) {
                convert(o, s);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::QamaError;

    #[test]
    fn hand_packed_two_bit_row() {
        // Five 2-bit fields 3, 0, 1, 2 | 1: byte 0 = 0b10_01_00_11, byte 1 = 0b01 (padding zero).
        let format = CodeFormat::new(5, 2).unwrap();
        assert_eq!(format.row_bytes(), 2);
        let packed = pack_codes(&[3, 0, 1, 2, 1], 1, format).unwrap();
        assert_eq!(packed, vec![0b1001_0011, 0b01]);
        assert_eq!(
            unpack_codes(&packed, 1, format).unwrap(),
            vec![3, 0, 1, 2, 1]
        );
    }

    #[test]
    fn round_trips_every_width_and_ragged_dims() {
        for bits in SUPPORTED_BITS {
            for dims in [1, 3, 7, 8, 9, 17, 384] {
                let format = CodeFormat::new(dims, bits).unwrap();
                let n = 5;
                let codes: Vec<u8> = (0..n * dims)
                    .map(|i| ((i * 7 + 3) % format.levels()) as u8)
                    .collect();
                let packed = pack_codes(&codes, n, format).unwrap();
                assert_eq!(packed.len(), n * (dims * bits as usize).div_ceil(8));
                assert_eq!(unpack_codes(&packed, n, format).unwrap(), codes);
                // Field j sits at bit j * bits of the row stream.
                for (row, fields) in packed.chunks(format.row_bytes()).zip(codes.chunks(dims)) {
                    for (j, &c) in fields.iter().enumerate() {
                        let bit = j * bits as usize;
                        let got = (row[bit / 8] >> (bit % 8)) & format.field_mask();
                        assert_eq!(got, c, "bits={bits} dims={dims} j={j}");
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(matches!(CodeFormat::new(4, 3), Err(QamaError::Value(_))));
        assert!(matches!(CodeFormat::new(0, 2), Err(QamaError::Shape(_))));
        let format = CodeFormat::new(3, 2).unwrap();
        assert!(matches!(
            pack_codes(&[0, 1, 4], 1, format),
            Err(QamaError::Value(_))
        ));
        assert!(matches!(
            pack_codes(&[0, 1], 1, format),
            Err(QamaError::Shape(_))
        ));
        assert!(matches!(
            unpack_codes(&[0, 1], 1, format),
            Err(QamaError::Shape(_))
        ));
        assert!(matches!(
            pack_codes(&[], usize::MAX, format),
            Err(QamaError::Shape(_))
        ));
        assert!(pack_codes(&[], 0, format).unwrap().is_empty());
    }
}
