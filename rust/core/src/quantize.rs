//! Threshold quantization: code of value `x` in dimension `j` = number of thresholds of `j` that `x`
//! strictly exceeds (so a value equal to a threshold falls in the lower bucket).
use rayon::prelude::*;

use crate::error::{cell, check_finite, check_rows, shape_err, value_err, QamaError, Result};
use crate::layout::CodeLayout;

/// Rows handed to one rayon task by [`quantize`] and [`crate::expand::encode`]: enough work to
/// amortise the task, small enough to balance two to a few dozen threads.
pub(crate) const ROWS_PER_TASK: usize = 256;

/// Per-dimension ascending (non-decreasing) thresholds, concatenated in dimension order:
/// dimension `j` owns `layout.thresholds_of(j)` values starting at `layout.bit_offset(j)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    layout: CodeLayout,
    values: Vec<f32>,
}

impl Thresholds {
    /// Validates length (= `layout.total_thresholds()`), finiteness and per-dimension order.
    pub fn new(layout: CodeLayout, values: Vec<f32>) -> Result<Self> {
        let expected = layout.total_thresholds();
        if values.len() != expected {
            return shape_err(format!(
                "thresholds has {} values; a layout of {} dimensions with these levels needs {expected}",
                values.len(),
                layout.dims()
            ));
        }
        for (j, span) in layout.bit_offsets().windows(2).enumerate() {
            let dim = &values[span[0]..span[1]];
            if let Some(i) = dim.iter().position(|v| !v.is_finite()) {
                return value_err(format!(
                    "thresholds of dimension {j}: value {i} is {}; thresholds must be finite",
                    dim[i]
                ));
            }
            if let Some(i) = dim.windows(2).position(|pair| pair[1] < pair[0]) {
                return value_err(format!(
                    "thresholds of dimension {j} are not ascending: value {i} = {} > value {} = {}",
                    dim[i],
                    i + 1,
                    dim[i + 1]
                ));
            }
        }
        Ok(Self { layout, values })
    }
    /// The layout the thresholds belong to.
    pub fn layout(&self) -> &CodeLayout {
        &self.layout
    }
    /// All thresholds, concatenated in dimension order.
    pub fn values(&self) -> &[f32] {
        &self.values
    }
    /// The thresholds of dimension `j`; `None` if `j >= layout().dims()`.
    pub fn of(&self, j: usize) -> Option<&[f32]> {
        let offsets = self.layout.bit_offsets();
        let (start, end) = (*offsets.get(j)?, *offsets.get(j + 1)?);
        self.values.get(start..end)
    }
}

/// Number of `thresholds` (ascending) that `x` strictly exceeds; `x` must not be NaN.
#[inline]
pub(crate) fn level_of(x: f32, thresholds: &[f32]) -> usize {
    let above = |t: f32| usize::from(x > t);
    match *thresholds {
        // The schemes in use (1, 1.5 and 2 bits) have 1 to 3 thresholds: unrolled, branch-free.
        [t0] => above(t0),
        [t0, t1] => above(t0) + above(t1),
        [t0, t1, t2] => above(t0) + above(t1) + above(t2),
        _ if thresholds.len() <= 16 => thresholds.iter().map(|&t| above(t)).sum(),
        // Ascending thresholds: the exceeded ones are a prefix.
        _ => thresholds.partition_point(|&t| t < x),
    }
}

/// Calls `f(j, x, offset, thresholds of j)` for each value of one row, walking the concatenated
/// thresholds in step (dimension `j`'s thresholds and stream bits both start at `offset`).
#[inline]
pub(crate) fn for_each_dim(
    x_row: &[f32],
    levels: &[u16],
    values: &[f32],
    mut f: impl FnMut(usize, f32, usize, &[f32]),
) {
    let mut offset = 0;
    for (j, (&x, &l)) in x_row.iter().zip(levels).enumerate() {
        let count = usize::from(l) - 1;
        f(j, x, offset, &values[offset..offset + count]);
        offset += count;
    }
}

/// The thresholds of a layout whose dimensions all have at most 4 levels (the 1, 1.5, 2-bit and
/// hybrid schemes), as three per-dimension columns padded with `+inf` (which no finite value
/// exceeds): a code is three compares with no per-dimension branching, and a row of codes is
/// one loop the compiler vectorises.
pub(crate) struct FewLevels {
    columns: [Vec<f32>; 3],
}

impl FewLevels {
    /// `None` when some dimension has more than 4 levels.
    pub(crate) fn new(thresholds: &Thresholds) -> Option<Self> {
        let layout = &thresholds.layout;
        if layout.levels().iter().any(|&l| l > 4) {
            return None;
        }
        let column = |i: usize| -> Vec<f32> {
            (0..layout.dims())
                .map(|j| {
                    thresholds
                        .of(j)
                        .and_then(|t| t.get(i))
                        .copied()
                        .unwrap_or(f32::INFINITY)
                })
                .collect()
        };
        Some(Self {
            columns: [column(0), column(1), column(2)],
        })
    }

    /// The single threshold of every dimension when all have 2 levels (the 1-bit scheme).
    pub(crate) fn one_bit(&self) -> Option<&[f32]> {
        let [t0, t1, _] = &self.columns;
        t1.iter().all(|t| *t == f32::INFINITY).then_some(&t0[..])
    }

    /// Codes of one row of finite values.
    #[inline]
    pub(crate) fn codes(&self, x_row: &[f32], out: &mut [u8]) {
        let [t0, t1, t2] = &self.columns;
        for ((((code, &x), &a), &b), &c) in out.iter_mut().zip(x_row).zip(t0).zip(t1).zip(t2) {
            *code = u8::from(x > a) + u8::from(x > b) + u8::from(x > c);
        }
    }
}

/// Whether every value is finite; no early exit, so it vectorises.
#[inline]
pub(crate) fn all_finite(x: &[f32]) -> bool {
    x.iter().fold(true, |ok, v| ok & v.is_finite())
}

/// The error for the first non-finite value of row-major `x` with `dims` columns (the error
/// path of the parallel loops, which only know that some value failed).
pub(crate) fn first_non_finite(x: &[f32], dims: usize) -> QamaError {
    check_finite(x, "x", cell(dims))
        .err()
        .unwrap_or_else(|| QamaError::Value("x has a non-finite value".into()))
}

/// Quantizes row-major `x` of shape `(n, dims)` into codes `(n, dims)` (`u8`, `0..levels`).
/// Errors on a length mismatch or a non-finite value (naming its row and column).
pub fn quantize(x: &[f32], n: usize, thresholds: &Thresholds) -> Result<Vec<u8>> {
    let dims = thresholds.layout.dims();
    check_rows(x.len(), n, dims, "x")?;
    let mut codes = crate::error::try_zeroed::<u8>(x.len(), "the codes")?;
    let chunk = crate::error::chunk_len(ROWS_PER_TASK, n, dims);
    let few = FewLevels::new(thresholds);
    let finite = codes
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .all(|(out, xs)| {
            if !all_finite(xs) {
                return false;
            }
            if let Some(few) = &few {
                for (out_row, x_row) in out.chunks_exact_mut(dims).zip(xs.chunks_exact(dims)) {
                    few.codes(x_row, out_row);
                }
                return true;
            }
            let (levels, values) = (thresholds.layout.levels(), &thresholds.values[..]);
            for (out_row, x_row) in out.chunks_exact_mut(dims).zip(xs.chunks_exact(dims)) {
                for_each_dim(x_row, levels, values, |j, x, _, t| {
                    // At most MAX_LEVELS - 1 = 255 thresholds, so the count fits a u8.
                    out_row[j] = level_of(x, t) as u8;
                });
            }
            true
        });
    if !finite {
        return Err(first_non_finite(x, dims));
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds(levels: &[u16], values: &[f32]) -> Result<Thresholds> {
        Thresholds::new(CodeLayout::new(levels).unwrap(), values.to_vec())
    }

    #[test]
    fn code_counts_thresholds_strictly_exceeded() {
        // dim 0: 4 levels (-1, 0, 1); dim 1: 2 levels (0.5).
        let t = thresholds(&[4, 2], &[-1.0, 0.0, 1.0, 0.5]).unwrap();
        let x = [
            -2.0, 0.5, // below all; equal to the threshold stays low
            -1.0, 0.6, // equal to the first threshold stays at 0
            -0.5, 1.0, //
            0.0, -9.0, //
            1.0, 9.0, //
            1.5, 0.0, //
        ];
        let codes = quantize(&x, 6, &t).unwrap();
        assert_eq!(codes, vec![0, 0, 0, 1, 1, 1, 1, 0, 2, 1, 3, 0]);
    }

    #[test]
    fn many_thresholds_use_the_binary_search_path() {
        let values: Vec<f32> = (0..40).map(|i| i as f32).collect();
        let t = thresholds(&[41], &values).unwrap();
        let x = [-1.0, 0.0, 0.5, 17.0, 17.25, 39.0, 39.5];
        assert_eq!(quantize(&x, 7, &t).unwrap(), vec![0, 0, 1, 17, 18, 39, 40]);
        for &v in &x {
            let linear = values.iter().filter(|&&t| v > t).count();
            assert_eq!(level_of(v, &values), linear);
        }
    }

    #[test]
    fn repeated_thresholds_are_allowed() {
        let t = thresholds(&[4], &[0.0, 0.0, 1.0]).unwrap();
        assert_eq!(quantize(&[0.0, 0.5], 2, &t).unwrap(), vec![0, 2]);
    }

    #[test]
    fn rejects_bad_thresholds() {
        let err = thresholds(&[3, 2], &[0.0, 1.0]).unwrap_err();
        assert!(matches!(err, QamaError::Shape(_)), "{err}");
        let err = thresholds(&[2, 3], &[0.0, 1.0, f32::NAN]).unwrap_err();
        assert!(err.to_string().contains("dimension 1"), "{err}");
        let err = thresholds(&[2, 3], &[0.0, 2.0, 1.0]).unwrap_err();
        assert!(err.to_string().contains("dimension 1"), "{err}");
        assert!(err.to_string().contains("not ascending"), "{err}");
        assert!(thresholds(&[2], &[f32::INFINITY]).is_err());
    }

    #[test]
    fn rejects_bad_x() {
        let t = thresholds(&[2, 2], &[0.0, 0.0]).unwrap();
        assert!(matches!(
            quantize(&[0.0; 3], 2, &t),
            Err(QamaError::Shape(_))
        ));
        assert!(quantize(&[0.0; 4], usize::MAX, &t).is_err());
        let mut x = vec![0.0f32; 2 * 1000];
        x[2 * 700 + 1] = f32::NEG_INFINITY;
        x[2 * 900] = f32::NAN;
        let err = quantize(&x, 1000, &t).unwrap_err();
        assert_eq!(
            err,
            QamaError::Value("x[700, 1] = -inf is not finite".into())
        );
    }

    #[test]
    fn empty_input_gives_empty_codes() {
        let t = thresholds(&[2], &[0.0]).unwrap();
        assert!(quantize(&[], 0, &t).unwrap().is_empty());
    }
}
