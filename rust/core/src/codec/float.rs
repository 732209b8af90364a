//! Float rows scored by inner product: the exact reference (`Flat`) and its half-size twin
//! (`Flat16`, float16 storage).
//!
//! A row scores `Σ_j q_j x_j` as a float32 sum over eight interleaved partial sums (so it
//! vectorizes), the same order for every row and query. Float16 rows are widened to float32 a tile at
//! a time (`half`'s slice conversion uses F16C where the CPU has it; the widening is exact), then
//! scored by the same sum, so `Flat16` scores equal `Flat` scores of the rounded vectors bit for bit.
use std::ops::Range;

use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};

use crate::codec::{Codec, Extent};
use crate::error::{shape_err, Result};
use crate::select::{cost_of_score, TopK};

/// Queries per task from which the batch regime (parallel over queries) is used.
const QUERIES_PER_CHUNK: usize = 8;

/// Bytes of float32 rows per tile (a tile stays in L2 while a chunk of queries scans it).
const TILE_BYTES: usize = 256 * 1024;

/// A stored float element: `f32`, or `u16` holding float16 bits.
pub trait FloatUnit: Copy + Send + Sync + 'static {
    /// Widens `src` into `dst` (same length).
    fn widen(src: &[Self], dst: &mut Vec<f32>);
}

impl FloatUnit for f32 {
    fn widen(src: &[f32], dst: &mut Vec<f32>) {
        dst.clear();
        dst.extend_from_slice(src);
    }
}

impl FloatUnit for u16 {
    fn widen(src: &[u16], dst: &mut Vec<f32>) {
        dst.resize(src.len(), 0.0);
        src.reinterpret_cast::<half::f16>()
            .convert_to_f32_slice(dst);
    }
}

/// Inner product over `dims`-value rows stored as `U`.
#[derive(Debug, Clone)]
pub struct FloatCodec<U> {
    dims: usize,
    unit: std::marker::PhantomData<U>,
}

/// Per-task buffers: a tile widened to float32.
#[derive(Default)]
pub struct Scratch {
    wide: Vec<f32>,
    scores: Vec<f32>,
    costs: Vec<u32>,
}

impl<U: FloatUnit> FloatCodec<U> {
    /// A codec of `dims`-value rows.
    pub fn new(dims: usize) -> Result<Self> {
        if dims == 0 {
            return shape_err("dims = 0; vectors need at least one value");
        }
        Ok(Self {
            dims,
            unit: std::marker::PhantomData,
        })
    }

    /// Values per row.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Query `index` made ready: `dims` finite values, copied.
    pub fn prepare(&self, query: &[f32], index: usize) -> Result<Vec<f32>> {
        super::check_query(query, self.dims, index)?;
        Ok(query.to_vec())
    }
}

/// Dot product with 8 partial sums (so it vectorizes); the one summation order of float scores.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a8, a_tail) = a.as_chunks::<8>();
    let (b8, b_tail) = b.as_chunks::<8>();
    let mut acc = [0f32; 8];
    for (x, y) in a8.iter().zip(b8) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    finish(&acc, a_tail, b_tail)
}

/// The reduction of [`dot`]'s 8 partial sums.
#[inline(always)]
pub(crate) fn reduce8(acc: &[f32; 8]) -> f32 {
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// The 8 partial sums of [`dot`] reduced, then its tail added in order.
#[inline(always)]
fn finish(acc: &[f32; 8], a_tail: &[f32], b_tail: &[f32]) -> f32 {
    let mut s = reduce8(acc);
    for (x, y) in a_tail.iter().zip(b_tail) {
        s += x * y;
    }
    s
}

/// [`dot`] of `a` with four rows at once, each summed in `dot`'s order (so the same values): one
/// dot's eight partial sums form a single dependency chain of adds, four rows interleaved keep
/// four chains in flight (the scan of one row was bound by the add latency).
#[inline(always)]
pub fn dot4(a: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
    let (a8, a_tail) = a.as_chunks::<8>();
    let n = a8.len();
    let r8 = rows.map(|r| &r.as_chunks::<8>().0[..n]);
    let mut acc = [[0f32; 8]; 4];
    for (j, x) in a8.iter().enumerate() {
        for (acc, r) in acc.iter_mut().zip(&r8) {
            for l in 0..8 {
                acc[l] += x[l] * r[j][l];
            }
        }
    }
    [0, 1, 2, 3].map(|i| finish(&acc[i], a_tail, &rows[i][n * 8..]))
}

/// `out[r] = dot(q, row r)` for the `dims`-value rows of `rows` (four at a time, see [`dot4`]).
#[inline(always)]
pub fn dots(q: &[f32], rows: &[f32], dims: usize, out: &mut [f32]) {
    let mut quads = rows.chunks_exact(4 * dims);
    let mut at = 0;
    for quad in &mut quads {
        let (r0, rest) = quad.split_at(dims);
        let (r1, rest) = rest.split_at(dims);
        let (r2, r3) = rest.split_at(dims);
        out[at..at + 4].copy_from_slice(&dot4(q, [r0, r1, r2, r3]));
        at += 4;
    }
    for (o, row) in out[at..]
        .iter_mut()
        .zip(quads.remainder().chunks_exact(dims))
    {
        *o = dot(q, row);
    }
}

impl<U: FloatUnit> Codec for FloatCodec<U> {
    type Unit = U;
    type Query = Vec<f32>;
    type Scratch = Scratch;

    fn row_units(&self) -> usize {
        self.dims
    }

    fn tile_rows(&self) -> usize {
        (TILE_BYTES / (4 * self.dims)).max(1)
    }

    fn queries_per_chunk(&self) -> usize {
        QUERIES_PER_CHUNK
    }

    fn scan(
        &self,
        batch: &[Vec<f32>],
        extent: &Extent<'_, U>,
        tile: Range<usize>,
        selects: &mut [TopK<'_>],
        scratch: &mut Scratch,
    ) {
        let data = &extent.data[tile.start * self.dims..tile.end * self.dims];
        U::widen(data, &mut scratch.wide);
        let labels = extent.labels.skip(tile.start);
        scratch.costs.resize(tile.len(), 0);
        scratch.scores.resize(tile.len(), 0.0);
        for (q, select) in batch.iter().zip(selects) {
            dots(q, &scratch.wide, self.dims, &mut scratch.scores);
            for (c, &s) in scratch.costs.iter_mut().zip(&scratch.scores) {
                *c = cost_of_score(if extent.bias != 0.0 {
                    s + extent.bias
                } else {
                    s
                });
            }
            select.offer_costs(&scratch.costs, labels);
        }
    }

    fn check_extent(&self, extent: &Extent<'_, U>, name: &str) -> Result<()> {
        if extent.row_scale.is_some() {
            return shape_err(format!(
                "{name}: row_scale: float rows carry no per-row factor"
            ));
        }
        crate::codec::check_lengths(extent, self.dims, 1, name)
    }

    fn score(&self, query: &Vec<f32>, extent: &Extent<'_, U>, row: usize) -> f32 {
        let mut wide = Vec::new();
        U::widen(
            &extent.data[row * self.dims..(row + 1) * self.dims],
            &mut wide,
        );
        let s = dot(query, &wide);
        if extent.bias != 0.0 {
            s + extent.bias
        } else {
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::{self, Candidates};
    use crate::select::Hits;
    use crate::testing::{brute, random_floats, search_rows};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn brute_dots<'a>(q: &'a [f32], x: &'a [f32], dims: usize, k: usize) -> Hits {
        let row = |v: &'a [f32], i: usize| &v[i * dims..(i + 1) * dims];
        brute(
            |i, r| dot(row(q, i), row(x, r)),
            q.len() / dims,
            x.len() / dims,
            k,
        )
    }

    #[test]
    fn four_rows_at_once_give_the_dot_of_each_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(5);
        for dims in [1, 7, 8, 9, 37, 384] {
            for rows in [1, 3, 4, 5, 9] {
                let q = random_floats(&mut rng, dims);
                let x = random_floats(&mut rng, rows * dims);
                let mut out = vec![f32::NAN; rows];
                dots(&q, &x, dims, &mut out);
                let each: Vec<f32> = x.chunks_exact(dims).map(|r| dot(&q, r)).collect();
                assert_eq!(
                    out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    each.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "dims {dims}, rows {rows}"
                );
            }
        }
    }

    #[test]
    fn float_and_half_rows_rank_like_a_brute_force() {
        let mut rng = StdRng::seed_from_u64(3);
        let (dims, n) = (37, 2_500);
        let x = random_floats(&mut rng, n * dims);
        let half_bits: Vec<u16> = x
            .iter()
            .map(|&v| half::f16::from_f32(v).to_bits())
            .collect();
        let rounded: Vec<f32> = half_bits
            .iter()
            .map(|&b| half::f16::from_bits(b).to_f32())
            .collect();
        for nq in [1, 3, 40] {
            let q = random_floats(&mut rng, nq * dims);
            let f = FloatCodec::<f32>::new(dims).unwrap();
            let got = search_rows(&f, &q, dims, &x, 7, |q, i| f.prepare(q, i));
            assert_eq!(got, brute_dots(&q, &x, dims, 7));
            let h = FloatCodec::<u16>::new(dims).unwrap();
            let got = search_rows(&h, &q, dims, &half_bits, 7, |q, i| h.prepare(q, i));
            assert_eq!(got, brute_dots(&q, &rounded, dims, 7));
        }
    }

    #[test]
    fn rescoring_agrees_with_a_float64_dot_and_refuses_bad_queries() {
        let mut rng = StdRng::seed_from_u64(4);
        let (dims, n) = (9, 50);
        let x = random_floats(&mut rng, n * dims);
        let q = random_floats(&mut rng, dims);
        let f = FloatCodec::<f32>::new(dims).unwrap();
        let cands = [3i64, 17, 44];
        let scores = driver::score_rows(
            &f,
            1,
            crate::driver::one_by_one(|i| f.prepare(&q, i)),
            &[Extent::new(&x[..], n, 0)],
            Candidates::Shared(&cands),
        )
        .unwrap();
        for (&c, s) in cands.iter().zip(scores) {
            let exact: f64 = q
                .iter()
                .zip(&x[c as usize * dims..])
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            assert!((f64::from(s) - exact).abs() < 1e-5);
        }
        assert!(f
            .prepare(&[f32::NAN; 9], 4)
            .unwrap_err()
            .to_string()
            .contains("queries[4, 0]"));
        assert!(f.prepare(&[0.0; 8], 0).is_err());
        assert!(FloatCodec::<f32>::new(0).is_err());
    }
}
