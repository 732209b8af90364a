//! Reconstruction tables and the per-query float lookup tables built from them.
//!
//! The score of a row is defined by these tables and one summation order (the contract every
//! kernel and the NumPy reference `tests/_reference.py.asym_scores` reproduce bit for bit):
//!
//! - `T[i][v] = Σ q_j · recon[j][field_j(v)]` over the dimensions `j` of byte `i` in ascending
//!   order, a float32 sum starting from `0.0` (padding fields add nothing);
//! - `score = Σ_i T[i][byte_i]` over bytes `i = 0, 1, ...` in order, a float32 sum from `0.0`.
use crate::error::{cell, check_finite, shape_err, value_err, Result};

use super::codes::CodeFormat;
use crate::error::try_zeroed;

/// Entries of one byte's table.
pub(crate) const BYTE_VALUES: usize = 256;

/// Largest total of per-byte maxima a query may reach: keeps every score (a sum of at most that
/// much) finite in float32, with room for rounding.
const MAX_SCORE_MAGNITUDE: f64 = f32::MAX as f64 / 2.0;

/// Per-dimension float32 reconstruction values: `table[j * 2^bits + c]` is what code `c` of
/// dimension `j` decodes to (Lloyd-Max levels times σ plus the median, int8 scale, ±1, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Recon {
    format: CodeFormat,
    table: Vec<f32>,
}

impl Recon {
    /// Checks that `table` has `dims * 2^bits` finite values.
    pub fn new(format: CodeFormat, table: Vec<f32>) -> Result<Self> {
        let levels = format.levels();
        if format.dims().checked_mul(levels) != Some(table.len()) {
            return shape_err(format!(
                "recon has {} values; expected dims * 2^bits = {} * {levels}",
                table.len(),
                format.dims()
            ));
        }
        check_finite(&table, "recon", cell(levels))?;
        Ok(Self { format, table })
    }

    /// The code format these values decode.
    pub fn format(&self) -> CodeFormat {
        self.format
    }

    /// The values of dimension `j` (`2^bits` of them).
    pub(crate) fn dim(&self, j: usize) -> &[f32] {
        let levels = self.format.levels();
        &self.table[j * levels..(j + 1) * levels]
    }
}

/// The float lookup tables of one query (`row_bytes` tables of 256 entries), or their nibble halves
/// `A`, `B` alone with `T[v] = fl(A[v & 15] + B[v >> 4])` made where a row is scored (the same
/// values: one float32 add either way) — a block-layout scan scores few rows exactly, so building
/// all 256 entries of every byte would cost more than it saves.
#[derive(Debug, Clone)]
pub struct ByteLuts {
    table: Vec<f32>,
    halves: Vec<NibbleHalves>,
    /// `max_v |T[i][v]|` per byte (an upper bound from halves), for the error bounds of the
    /// quantized kernel.
    abs_max: Vec<f64>,
}

/// One byte's two nibble tables (low nibble, high nibble), 16 entries each.
pub(crate) type NibbleHalves = [[f32; 16]; 2];

/// Largest `|v|` of a table, infinite when an entry is not finite (a NaN from `inf - inf` after an
/// overflowing product counts as infinite). Eight lanes with no early exit, so it vectorizes.
fn abs_max_of(t: &[f32]) -> f64 {
    let (mut lanes, mut finite) = ([0f32; 8], [0f32; 8]);
    let (chunks, rest) = t.as_chunks::<8>();
    for c in chunks {
        for l in 0..8 {
            let a = c[l].abs();
            lanes[l] = if a > lanes[l] { a } else { lanes[l] };
            finite[l] += c[l] * 0.0; // NaN from here on when an entry is inf or NaN
        }
    }
    let mut m = lanes.into_iter().fold(0f32, f32::max);
    let mut check = finite.into_iter().sum::<f32>();
    for &v in rest {
        m = m.max(v.abs());
        check += v * 0.0;
    }
    if check.is_nan() {
        f64::INFINITY
    } else {
        f64::from(m)
    }
}

impl ByteLuts {
    /// Builds the tables of query `q` (`dims` finite values); errors if a score could overflow.
    pub fn build(q: &[f32], recon: &Recon) -> Result<Self> {
        let format = recon.format();
        crate::codec::check_query(q, format.dims(), 0)?;
        let bytes = format.row_bytes();
        let per_byte = format.fields_per_byte();
        let mut table = try_zeroed::<f32>(bytes * BYTE_VALUES, "the lookup tables")?;
        let levels = format.levels();
        for (i, t) in table.chunks_exact_mut(BYTE_VALUES).enumerate() {
            // Built field by field: after field f, entries 0..2^((f+1) * bits) hold the partial
            // sums of fields 0..=f, each extended from the previous partial sum by one add, which
            // is exactly the ascending-order sum (from 0.0) of the definition.
            t[0] = 0.0;
            let mut filled = 1;
            for f in 0..per_byte {
                let j = i * per_byte + f;
                let (lo, hi) = t.split_at_mut(filled);
                if j >= format.dims() {
                    // Padding field: every value of it leaves the sum unchanged.
                    for c in 1..levels {
                        hi[(c - 1) * filled..c * filled].copy_from_slice(lo);
                    }
                } else {
                    let (qj, values) = (q[j], recon.dim(j));
                    // Value c > 0 extends the partial sums into block c; value 0 last, in place.
                    for c in (1..levels).rev() {
                        let product = qj * values[c];
                        let block = &mut hi[(c - 1) * filled..c * filled];
                        block
                            .iter_mut()
                            .zip(&*lo)
                            .for_each(|(h, &l)| *h = l + product);
                    }
                    let product = qj * values[0];
                    lo.iter_mut().for_each(|l| *l += product);
                }
                filled *= levels;
            }
        }
        let abs_max: Vec<f64> = table.chunks_exact(BYTE_VALUES).map(abs_max_of).collect();
        let total: f64 = abs_max.iter().sum();
        if total > MAX_SCORE_MAGNITUDE {
            return value_err(format!(
                "queries x recon values reach {total:e}; scores would overflow float32"
            ));
        }
        Ok(Self {
            table,
            halves: Vec::new(),
            abs_max,
        })
    }

    /// Tables given directly (byte-LUT codecs: product codes, PQ, packed trits): `table` holds
    /// `m` tables of 256 finite entries, byte-major; `query` numbers the query in messages.
    pub fn from_table(table: &[f32], m: usize, query: usize) -> Result<Self> {
        if m.checked_mul(BYTE_VALUES) != Some(table.len()) {
            return shape_err(format!(
                "queries[{query}] has {} values; expected m * 256 = {m} * 256",
                table.len()
            ));
        }
        let mut owned = try_zeroed::<f32>(table.len(), "the lookup tables")?;
        owned.copy_from_slice(table);
        Self::from_vec(owned, query)
    }

    /// [`ByteLuts::from_table`] taking the tables it holds (`m * 256` values).
    pub(crate) fn from_vec(table: Vec<f32>, query: usize) -> Result<Self> {
        let abs_max: Vec<f64> = table.chunks_exact(BYTE_VALUES).map(abs_max_of).collect();
        if abs_max.iter().any(|m| m.is_infinite()) {
            let at = table.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return value_err(format!(
                "queries[{query}, {}, {}] = {} is not finite",
                at / BYTE_VALUES,
                at % BYTE_VALUES,
                table[at]
            ));
        }
        let total: f64 = abs_max.iter().sum();
        if total > MAX_SCORE_MAGNITUDE {
            return value_err(format!(
                "queries[{query}] entries reach {total:e} per row; scores would overflow float32"
            ));
        }
        Ok(Self {
            table,
            halves: Vec::new(),
            abs_max,
        })
    }

    /// Tables held as their nibble halves (see the type's docs); `None` when an entry is not
    /// finite or a score could overflow float32.
    #[inline(always)]
    pub(crate) fn from_halves(halves: Vec<NibbleHalves>) -> Option<Self> {
        // |fl(a + b)| <= (|a| + |b|)(1 + 2^-24): an upper bound of each byte's largest entry.
        // Plain loops over fixed lanes (they vectorize where the caller is `leveled!`): the largest
        // |entry| of each half by halving, and infinities or NaN seen as an exponent of all ones.
        let bound = |t: &[f32; 16]| {
            let mut m = t.map(f32::abs);
            let mut half = 8;
            while half > 0 {
                for i in 0..half {
                    m[i] = if m[i + half] > m[i] {
                        m[i + half]
                    } else {
                        m[i]
                    };
                }
                half /= 2;
            }
            m[0]
        };
        let exp = 0x7f80_0000u32;
        let mut finite = true;
        let mut abs_max = vec![0f64; halves.len()];
        // Each half on its own (a chained iterator over both stayed scalar).
        let all_finite =
            |t: &[f32; 16]| t.iter().fold(true, |ok, v| ok & (v.to_bits() & exp != exp));
        for (out, [a, b]) in abs_max.iter_mut().zip(&halves) {
            finite &= all_finite(a) & all_finite(b);
            *out = (f64::from(bound(a)) + f64::from(bound(b))) * (1.0 + f64::from(f32::EPSILON));
        }
        if !finite || abs_max.iter().sum::<f64>() > MAX_SCORE_MAGNITUDE {
            return None;
        }
        Some(Self {
            table: Vec::new(),
            halves,
            abs_max,
        })
    }

    /// Refuses row scales and biases that could push a score past float32:
    /// `max |bias| + max |row_scale| * Σ max |T|`.
    pub(crate) fn check_scale(&self, max_abs_scale: f64, max_abs_bias: f64) -> Result<()> {
        // NaN fails too, hence no `>`.
        if max_abs_bias.is_nan() || max_abs_bias > MAX_SCORE_MAGNITUDE {
            return value_err(format!(
                "bias = {max_abs_bias:e}; scores would overflow float32"
            ));
        }
        let scaled = self.magnitude() * max_abs_scale;
        if scaled + max_abs_bias > MAX_SCORE_MAGNITUDE {
            return value_err(format!(
                "row_scale x scores reach {scaled:e} (and the bias {max_abs_bias:e}); scores would overflow float32"
            ));
        }
        Ok(())
    }

    /// `Σ_i max_v |T[i][v]|`: no row's score is larger in magnitude.
    pub(crate) fn magnitude(&self) -> f64 {
        self.abs_max.iter().sum()
    }

    /// Number of byte tables (= row bytes).
    pub fn bytes(&self) -> usize {
        self.abs_max.len()
    }

    /// The 256 entries of byte `i`.
    #[inline]
    pub(crate) fn byte(&self, i: usize) -> &[f32; BYTE_VALUES] {
        &self.tables()[i]
    }

    /// The nibble halves, when the tables are held as halves.
    pub(crate) fn halves(&self) -> Option<&[NibbleHalves]> {
        (!self.halves.is_empty()).then_some(&self.halves[..])
    }

    /// All tables, byte-major (not for tables held as halves: those score block layouts only).
    pub(crate) fn tables(&self) -> &[[f32; BYTE_VALUES]] {
        debug_assert!(
            self.halves.is_empty(),
            "full tables of tables held as halves"
        );
        self.table.as_chunks::<BYTE_VALUES>().0
    }

    /// `max_v |T[i][v]|` per byte.
    pub(crate) fn abs_max(&self) -> &[f64] {
        &self.abs_max
    }

    /// Score of one packed row (`bytes()` bytes): the scalar reference every kernel matches.
    pub fn score(&self, row: &[u8]) -> f32 {
        self.tables()
            .iter()
            .zip(row)
            .fold(0f32, |s, (t, &b)| s + t[usize::from(b)])
    }

    /// Score of row `r` of a transposed block (byte `i` of the row at `block[i * stride + r]`),
    /// in the same order as [`ByteLuts::score`].
    #[inline]
    pub(crate) fn score_strided(&self, block: &[u8], stride: usize, r: usize) -> f32 {
        if !self.halves.is_empty() {
            return self.score_strided4([block; 4], stride, [r; 4])[0];
        }
        self.tables()
            .iter()
            .enumerate()
            .fold(0f32, |s, (i, t)| s + t[usize::from(block[i * stride + r])])
    }

    /// [`ByteLuts::score_strided`] of four rows at once (`blocks[j]`, row `r[j]`), each summed in
    /// the same order (so the same values): four add chains in flight instead of one.
    #[inline]
    pub(crate) fn score_strided4(
        &self,
        blocks: [&[u8]; 4],
        stride: usize,
        r: [usize; 4],
    ) -> [f32; 4] {
        let mut s = [0f32; 4];
        if !self.halves.is_empty() {
            for (i, [a, b]) in self.halves.iter().enumerate() {
                for j in 0..4 {
                    let v = usize::from(blocks[j][i * stride + r[j]]);
                    s[j] += a[v & 15] + b[v >> 4];
                }
            }
            return s;
        }
        for (i, t) in self.tables().iter().enumerate() {
            for j in 0..4 {
                s[j] += t[usize::from(blocks[j][i * stride + r[j]])];
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::QamaError;

    #[test]
    fn four_strided_rows_score_like_each_alone_bit_for_bit() {
        let m = 13;
        let table: Vec<f32> = (0..m * BYTE_VALUES)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.0137)
            .collect();
        let luts = ByteLuts::from_vec(table, 0).unwrap();
        let stride = 32;
        let blocks: Vec<Vec<u8>> = (0..2)
            .map(|b| {
                (0..m * stride)
                    .map(|i| ((i * 31 + b * 17) % 256) as u8)
                    .collect()
            })
            .collect();
        for rows in [[0, 1, 2, 3], [31, 0, 31, 5], [7, 7, 7, 7]] {
            let pick = [
                &blocks[0][..],
                &blocks[1][..],
                &blocks[0][..],
                &blocks[1][..],
            ];
            let four = luts.score_strided4(pick, stride, rows);
            for j in 0..4 {
                let alone = luts.score_strided(pick[j], stride, rows[j]);
                assert_eq!(four[j].to_bits(), alone.to_bits(), "rows {rows:?}, j {j}");
            }
        }
    }

    #[test]
    fn hand_computed_tables_and_score() {
        // 3 dims of 2 bits: one byte holds dims 0..3 (bits 0-1, 2-3, 4-5), bits 6-7 padding.
        let format = CodeFormat::new(3, 2).unwrap();
        let recon = Recon::new(
            format,
            vec![
                -1.0, 0.0, 1.0, 2.0, // dim 0
                10.0, 20.0, 30.0, 40.0, // dim 1
                0.5, 0.25, 0.125, 0.0625, // dim 2
            ],
        )
        .unwrap();
        let luts = ByteLuts::build(&[1.0, 0.5, 2.0], &recon).unwrap();
        assert_eq!(luts.bytes(), 1);
        // Codes 3, 1, 2 → 0b10_01_11 = 0x27: 2 + 0.5 * 20 + 2 * 0.125 = 12.25.
        assert_eq!(luts.byte(0)[0x27], 12.25);
        // Padding bits never change the value.
        assert_eq!(luts.byte(0)[0x27 | 0xC0], 12.25);
        assert_eq!(luts.score(&[0x27]), 12.25);
        assert_eq!(luts.score_strided(&[9, 0x27, 9], 3, 1), 12.25);
    }

    #[test]
    fn rejects_non_finite_and_overflowing_inputs() {
        let format = CodeFormat::new(2, 1).unwrap();
        assert!(matches!(
            Recon::new(format, vec![0.0, 1.0, f32::NAN, 0.0]),
            Err(QamaError::Value(_))
        ));
        assert!(matches!(
            Recon::new(format, vec![0.0; 3]),
            Err(QamaError::Shape(_))
        ));
        let recon = Recon::new(format, vec![0.0, 3e38, 0.0, 3e38]).unwrap();
        assert!(matches!(
            ByteLuts::build(&[1.0, 1.0], &recon),
            Err(QamaError::Value(_))
        ));
        // Products overflow to +inf and -inf in one byte: the NaN sum is refused too.
        let opposed = Recon::new(format, vec![3e38, 3e38, -3e38, -3e38]).unwrap();
        assert!(matches!(
            ByteLuts::build(&[10.0, 10.0], &opposed),
            Err(QamaError::Value(_))
        ));
        assert!(matches!(
            ByteLuts::build(&[1.0, f32::INFINITY], &recon),
            Err(QamaError::Value(_))
        ));
        assert!(matches!(
            ByteLuts::build(&[1.0], &recon),
            Err(QamaError::Shape(_))
        ));
    }
}
