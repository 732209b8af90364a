//! Float rows scored by inner product: the exact reference (`Flat`), its half-size twin (`Flat16`,
//! float16 storage) and one byte per value decoded affinely (`Int8`: `base[j] + step[j] * code`,
//! [`FloatCodec::affine`]).
//!
//! A row scores `Σ_j q_j x_j` as a float32 sum over eight interleaved partial sums (so it
//! vectorizes), the same order for every row and query. Float16 rows are widened to float32 (the
//! widening is exact), then scored by the same sum, so `Flat16` scores equal `Flat` scores of the
//! rounded vectors bit for bit; byte rows are decoded the same way, so `Int8` scores equal `Flat`
//! scores of the decoded vectors.
//!
//! With AVX2 a tile is scored two queries by four rows at a time, each product's eight partial sums
//! one register ([`dots_avx2`]): the same multiplies and adds in the same order as the portable
//! [`dots`], so the same values. The portable code ran scalar (the compiler kept its partial sums on
//! the stack): 1,758 against 130 µs a query in a batch over 20,000 rows of 384 floats (AMD EPYC, 2
//! cores). A batch widens or decodes each tile once into a float32 copy; one or two queries read
//! the stored rows in place, widened or decoded in registers ([`Lanes`]): one query over 20,000
//! float16 rows 302 against 1,117 µs through a copy.
use std::ops::Range;

use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};

use crate::codec::{Codec, Extent};
use crate::error::{shape_err, value_err, Result};
use crate::isa::Isa;
use crate::select::{cost_of_score, TopK};

/// Queries per task from which the batch regime (parallel over queries) is used.
const QUERIES_PER_CHUNK: usize = 8;

/// Bytes of float32 rows per tile (a tile stays in L2 while a chunk of queries scans it).
const TILE_BYTES: usize = 256 * 1024;

/// A stored element: `f32`, `u16` holding float16 bits, or `u8` (a code an affine codec decodes,
/// else its value).
pub trait FloatUnit: Copy + Send + Sync + 'static {
    /// `src` as the kind of rows it is.
    fn stored(src: &[Self]) -> Stored<'_>;
}

/// Stored rows by kind (what [`FloatUnit::stored`] tells a scan).
#[derive(Clone, Copy)]
pub enum Stored<'a> {
    /// Float32 values.
    F32(&'a [f32]),
    /// Float16 bits.
    F16(&'a [u16]),
    /// Bytes.
    U8(&'a [u8]),
}

impl FloatUnit for f32 {
    fn stored(src: &[f32]) -> Stored<'_> {
        Stored::F32(src)
    }
}

impl FloatUnit for u16 {
    fn stored(src: &[u16]) -> Stored<'_> {
        Stored::F16(src)
    }
}

impl FloatUnit for u8 {
    fn stored(src: &[u8]) -> Stored<'_> {
        Stored::U8(src)
    }
}

/// Inner product over `dims`-value rows stored as `U`.
#[derive(Debug, Clone)]
pub struct FloatCodec<U> {
    dims: usize,
    isa: Isa,
    /// Byte rows' decoding `(base, step)`, a value `base[j] + step[j] * code` (see
    /// [`FloatCodec::affine`]); `None`: rows are their values.
    affine: Option<(Vec<f32>, Vec<f32>)>,
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
    /// A codec of `dims`-value rows, its kernel the fastest this CPU runs.
    pub fn new(dims: usize) -> Result<Self> {
        if dims == 0 {
            return shape_err("dims = 0; vectors need at least one value");
        }
        Ok(Self {
            dims,
            isa: Isa::detect(),
            affine: None,
            unit: std::marker::PhantomData,
        })
    }

    /// The codec with the kernel of `isa` (the same scores on every level); an error when the CPU
    /// does not run it.
    pub fn with_isa(self, isa: Isa) -> Result<Self> {
        if !isa.is_available() {
            return value_err(format!("isa {} is not available on this CPU", isa.name()));
        }
        Ok(Self { isa, ..self })
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

    /// Scores of `batch` over the `n` rows of `data` into `out` read in place (widened or decoded in
    /// registers, the values [`FloatCodec::widen`] gives), where the level has such a kernel; false
    /// where it has none (nothing written).
    fn scan_in_place(&self, batch: &[Vec<f32>], data: &[U], n: usize, out: &mut [f32]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if self.isa >= Isa::Avx2 {
            let dims = self.dims;
            // SAFETY (each): the level runs AVX2 and F16C; `data` holds `n` rows of `dims` values.
            match (U::stored(data), &self.affine) {
                (Stored::F32(rows), _) => unsafe { dots_lanes(batch, rows, n, dims, out) },
                (Stored::F16(bits), _) => unsafe { dots_lanes(batch, Halves(bits), n, dims, out) },
                (Stored::U8(codes), Some((base, step))) => {
                    let rows = Decoded { codes, base, step };
                    unsafe { dots_lanes(batch, rows, n, dims, out) }
                }
                (Stored::U8(_), None) => return false,
            }
            return true;
        }
        let _ = (batch, data, n, out);
        false
    }

    /// Stored rows `data` as float32 values into `out`: widened, or decoded in one pass where the
    /// codec is [`FloatCodec::affine`] (a multiply then an add per value, never fused).
    fn widen(&self, data: &[U], out: &mut Vec<f32>) {
        out.clear();
        match (U::stored(data), &self.affine) {
            (Stored::F32(rows), _) => out.extend_from_slice(rows),
            (Stored::F16(bits), _) => {
                out.resize(bits.len(), 0.0);
                bits.reinterpret_cast::<half::f16>()
                    .convert_to_f32_slice(out);
            }
            (Stored::U8(codes), Some((base, step))) => {
                out.resize(codes.len(), 0.0);
                decode_leveled(self.isa, codes, base, step, out);
            }
            (Stored::U8(codes), None) => out.extend(codes.iter().map(|&v| f32::from(v))),
        }
    }
}

impl FloatCodec<u8> {
    /// Rows of one byte per value, value `j` decoded as `base[j] + step[j] * code` (float32: the
    /// product rounded, then the sum), then scored as float rows. `base` and `step`: `dims` finite
    /// values each.
    pub fn affine(base: Vec<f32>, step: Vec<f32>) -> Result<Self> {
        if base.len() != step.len() {
            return shape_err(format!(
                "base has {} values and step {}; give one of each per dimension",
                base.len(),
                step.len()
            ));
        }
        crate::error::check_finite(&base, "base", |at| at.to_string())?;
        crate::error::check_finite(&step, "step", |at| at.to_string())?;
        let codec = Self::new(base.len())?;
        Ok(Self {
            affine: Some((base, step)),
            ..codec
        })
    }
}

/// `out = base[j] + step[j] * code` over rows of `base.len()` codes (one pass: widened, multiplied
/// and added in registers).
#[inline(always)]
fn decode_portable(codes: &[u8], base: &[f32], step: &[f32], out: &mut [f32]) {
    let dims = base.len();
    for (row, out) in codes.chunks_exact(dims).zip(out.chunks_exact_mut(dims)) {
        for (((o, &c), &b), &s) in out.iter_mut().zip(row).zip(base).zip(step) {
            *o = b + s * f32::from(c);
        }
    }
}

crate::isa::leveled! {
    /// [`decode_portable`] compiled for the level (the same values).
    fn decode_leveled(codes: &[u8], base: &[f32], step: &[f32], out: &mut [f32]) -> () = decode_portable;
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

/// `out[i * n + r] = dot(queries[i], row r)` for the `n` rows of `rows` (`dims` values each): the
/// values of [`dots`], with `isa`'s kernel (the caller checked that the CPU runs it).
fn dots_many(isa: Isa, queries: &[Vec<f32>], rows: &[f32], dims: usize, out: &mut [f32]) {
    let n = rows.len() / dims;
    debug_assert_eq!(out.len(), queries.len() * n);
    if n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa >= Isa::Avx2 {
        // SAFETY: the CPU runs AVX2 and F16C (the caller's contract: the level implies them).
        unsafe { dots_lanes(queries, rows, n, dims, out) };
        return;
    }
    let _ = isa;
    for (q, o) in queries.iter().zip(out.chunks_exact_mut(n)) {
        dots(q, rows, dims, o);
    }
}

/// `out[i * n + r] = dot(queries[i], row r)` for the `n` rows of `rows`, read through [`Lanes`] (the
/// values its widening gives), two queries at a time.
///
/// # Safety
/// The CPU must run AVX2 and F16C; every query has `dims` values, `rows` `n` rows, `out` `nq * n`.
#[cfg(target_arch = "x86_64")]
unsafe fn dots_lanes<S: Lanes>(
    queries: &[Vec<f32>],
    rows: S,
    n: usize,
    dims: usize,
    out: &mut [f32],
) {
    let mut outs = out.chunks_exact_mut(n);
    let mut pairs = queries.chunks_exact(2);
    for pair in &mut pairs {
        let (a, b) = (
            outs.next().expect("a row per query"),
            outs.next().expect("a row per query"),
        );
        // SAFETY: the caller's contract.
        unsafe { dots_avx2::<2, S>([&pair[0], &pair[1]], rows, dims, [a, b]) };
    }
    if let [q] = pairs.remainder() {
        let a = outs.next().expect("a row per query");
        // SAFETY: as above.
        unsafe { dots_avx2::<1, S>([q], rows, dims, [a]) };
    }
}

/// [`dots`] of `Q` queries with AVX2, four rows at a time: the eight partial sums of each query x
/// row product are one register, summed with a multiply then an add (never fused) per chunk of
/// eight values in order, then reduced as [`reduce8`] does and the tail added in order — each
/// output the value `dot` gives. Each chunk of a row is loaded once for the `Q` queries.
///
/// # Safety
/// The CPU must run AVX2; each of `q` holds `dims` values, `rows` `n * dims` and each of `out` `n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn dots_avx2<const Q: usize, S: Lanes>(
    q: [&[f32]; Q],
    rows: S,
    dims: usize,
    out: [&mut [f32]; Q],
) {
    use std::arch::x86_64::*;
    let chunks = dims / 8;
    let n = rows.rows(dims);
    assert!(q.iter().all(|q| q.len() == dims) && out.iter().all(|o| o.len() == n));
    // The reduction of `reduce8`: (a0 + a4, a1 + a5, a2 + a6, a3 + a7), then lanes 0 + 2 and
    // 1 + 3, then those two (the same adds, so the same value).
    let reduce = |acc: __m256| -> f32 {
        let s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps::<1>(s2, s2)))
    };
    let tail = |mut s: f32, qi: &[f32], r: usize| {
        for (t, x) in qi.iter().enumerate().skip(chunks * 8) {
            s += x * rows.value(r * dims + t);
        }
        s
    };
    let mut out = out;
    let mut r = 0;
    while r + 4 <= n {
        let mut acc = [[_mm256_setzero_ps(); 4]; Q];
        for j in 0..chunks {
            // SAFETY: rows r..r + 4 hold `dims` values each and `8 * j + 8 <= dims`.
            let x = [0, 1, 2, 3].map(|i| unsafe { rows.load8((r + i) * dims + 8 * j, 8 * j) });
            for (acc, qi) in acc.iter_mut().zip(&q) {
                // SAFETY: `8 * j + 8 <= dims` values of the query.
                let v = unsafe { _mm256_loadu_ps(qi.as_ptr().add(8 * j)) };
                for (a, &x) in acc.iter_mut().zip(&x) {
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(v, x));
                }
            }
        }
        for ((acc, qi), o) in acc.iter().zip(&q).zip(out.iter_mut()) {
            for (i, &a) in acc.iter().enumerate() {
                o[r + i] = tail(reduce(a), qi, r + i);
            }
        }
        r += 4;
    }
    while r < n {
        let mut acc = [_mm256_setzero_ps(); Q];
        for j in 0..chunks {
            // SAFETY: `8 * j + 8 <= dims` values of the row and of each query.
            let x = unsafe { rows.load8(r * dims + 8 * j, 8 * j) };
            for (a, qi) in acc.iter_mut().zip(&q) {
                // SAFETY: as above.
                let v = unsafe { _mm256_loadu_ps(qi.as_ptr().add(8 * j)) };
                *a = _mm256_add_ps(*a, _mm256_mul_ps(v, x));
            }
        }
        for ((a, qi), o) in acc.iter().zip(&q).zip(out.iter_mut()) {
            o[r] = tail(reduce(*a), qi, r);
        }
        r += 1;
    }
}

/// Stored rows as [`dots_avx2`] reads them, each value the one the codec's widening gives: float32
/// rows as they are, float16 bits widened (exactly), bytes decoded as `base + step * code`.
#[cfg(target_arch = "x86_64")]
trait Lanes: Copy {
    /// Rows of `dims` values held.
    fn rows(&self, dims: usize) -> usize;
    /// Values `at..at + 8` of the rows (row-major), of columns `col..col + 8`.
    ///
    /// # Safety
    /// The CPU runs AVX2 and F16C; `at + 8` values are held and `col + 8 <= dims`.
    unsafe fn load8(&self, at: usize, col: usize) -> std::arch::x86_64::__m256;
    /// Value `at` of the rows.
    fn value(&self, at: usize) -> f32;
}

#[cfg(target_arch = "x86_64")]
impl Lanes for &[f32] {
    fn rows(&self, dims: usize) -> usize {
        self.len() / dims
    }

    #[inline(always)]
    unsafe fn load8(&self, at: usize, _col: usize) -> std::arch::x86_64::__m256 {
        // SAFETY: the caller's contract.
        unsafe { std::arch::x86_64::_mm256_loadu_ps(self.as_ptr().add(at)) }
    }

    #[inline(always)]
    fn value(&self, at: usize) -> f32 {
        self[at]
    }
}

/// Float16 bits, widened in registers.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Halves<'a>(&'a [u16]);

#[cfg(target_arch = "x86_64")]
impl Lanes for Halves<'_> {
    fn rows(&self, dims: usize) -> usize {
        self.0.len() / dims
    }

    #[inline(always)]
    unsafe fn load8(&self, at: usize, _col: usize) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        // SAFETY: the caller's contract (8 values from `at`; F16C).
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(self.0.as_ptr().add(at).cast())) }
    }

    #[inline(always)]
    fn value(&self, at: usize) -> f32 {
        half::f16::from_bits(self.0[at]).to_f32()
    }
}

/// Byte codes decoded in registers as `base + step * code` (a multiply then an add, as
/// [`decode_portable`]).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Decoded<'a> {
    codes: &'a [u8],
    base: &'a [f32],
    step: &'a [f32],
}

#[cfg(target_arch = "x86_64")]
impl Lanes for Decoded<'_> {
    fn rows(&self, dims: usize) -> usize {
        self.codes.len() / dims
    }

    #[inline(always)]
    unsafe fn load8(&self, at: usize, col: usize) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        // SAFETY: the caller's contract: 8 codes from `at`, 8 columns of `base` and `step` from `col`.
        unsafe {
            let codes = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                self.codes.as_ptr().add(at).cast(),
            )));
            let step = _mm256_loadu_ps(self.step.as_ptr().add(col));
            _mm256_add_ps(
                _mm256_loadu_ps(self.base.as_ptr().add(col)),
                _mm256_mul_ps(step, codes),
            )
        }
    }

    #[inline(always)]
    fn value(&self, at: usize) -> f32 {
        let col = at % self.base.len();
        self.base[col] + self.step[col] * f32::from(self.codes[at])
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
        let labels = extent.labels.skip(tile.start);
        let n = tile.len();
        if n == 0 {
            return;
        }
        scratch.costs.resize(n, 0);
        scratch.scores.resize(batch.len() * n, 0.0);
        // Up to two queries (one pass over the tile) read the stored rows in place, widened or
        // decoded in registers: a copy doubled what they read (one query over 1,000 float32 rows:
        // 26 against 52 µs). More passes read a widened copy, which measured faster (113 against
        // 133 µs a query for 1,000 queries over 20,000 rows: the copy streams the tile into cache).
        if batch.len() > 2 || !self.scan_in_place(batch, data, n, &mut scratch.scores) {
            let rows = match U::stored(data) {
                Stored::F32(rows) if batch.len() <= 2 => rows,
                _ => {
                    self.widen(data, &mut scratch.wide);
                    &scratch.wide
                }
            };
            dots_many(self.isa, batch, rows, self.dims, &mut scratch.scores);
        }
        for (select, scores) in selects.iter_mut().zip(scratch.scores.chunks_exact(n)) {
            for (c, &s) in scratch.costs.iter_mut().zip(scores) {
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
        let data = &extent.data[row * self.dims..(row + 1) * self.dims];
        let query = std::slice::from_ref(query);
        let mut s = [0f32];
        // In place where the level reads this kind of row (no copy of the row per call).
        if !self.scan_in_place(query, data, 1, &mut s) {
            let mut wide = Vec::new();
            let row = match U::stored(data) {
                Stored::F32(row) => row,
                _ => {
                    self.widen(data, &mut wide);
                    &wide
                }
            };
            dots_many(self.isa, query, row, self.dims, &mut s);
        }
        let s = s[0];
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
    use rand::{RngExt, SeedableRng};

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
    fn every_isa_scores_like_the_portable_dot_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(8);
        for dims in [1, 7, 8, 9, 16, 37, 384] {
            for rows in [1, 3, 4, 5, 9] {
                for nq in [1, 2, 3, 8] {
                    let x = random_floats(&mut rng, rows * dims);
                    let q: Vec<Vec<f32>> = (0..nq).map(|_| random_floats(&mut rng, dims)).collect();
                    let want: Vec<u32> = q
                        .iter()
                        .flat_map(|q| x.chunks_exact(dims).map(|r| dot(q, r).to_bits()))
                        .collect();
                    for isa in Isa::available() {
                        let mut out = vec![f32::NAN; nq * rows];
                        dots_many(isa, &q, &x, dims, &mut out);
                        let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                        assert_eq!(got, want, "{isa:?} dims {dims} rows {rows} nq {nq}");
                    }
                }
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
    fn affine_byte_rows_score_like_float_rows_of_their_decoded_values() {
        let mut rng = StdRng::seed_from_u64(9);
        let (dims, n) = (37, 1_500);
        let codes: Vec<u8> = (0..n * dims).map(|_| rng.random()).collect();
        let base = random_floats(&mut rng, dims);
        let step: Vec<f32> = random_floats(&mut rng, dims)
            .iter()
            .map(|v| v * 0.01)
            .collect();
        // What the codec promises: the product rounded, then the sum (as NumPy's float32 does).
        let decoded: Vec<f32> = codes
            .iter()
            .enumerate()
            .map(|(i, &c)| base[i % dims] + step[i % dims] * f32::from(c))
            .collect();
        for isa in Isa::available() {
            let a = FloatCodec::affine(base.clone(), step.clone())
                .unwrap()
                .with_isa(isa)
                .unwrap();
            let f = FloatCodec::<f32>::new(dims).unwrap().with_isa(isa).unwrap();
            for nq in [1, 3, 40] {
                let q = random_floats(&mut rng, nq * dims);
                let got = search_rows(&a, &q, dims, &codes, 7, |q, i| a.prepare(q, i));
                let want = search_rows(&f, &q, dims, &decoded, 7, |q, i| f.prepare(q, i));
                assert_eq!(got, want, "{isa:?}, {nq} queries");
                assert_eq!(
                    got,
                    brute_dots(&q, &decoded, dims, 7),
                    "{isa:?}, {nq} queries"
                );
            }
            let q = random_floats(&mut rng, dims);
            let extent = Extent::new(&codes[..], n, 0);
            for row in [0, 17, n - 1] {
                let want = dot(&q, &decoded[row * dims..(row + 1) * dims]);
                assert_eq!(
                    a.score(&q, &extent, row).to_bits(),
                    want.to_bits(),
                    "{isa:?}"
                );
            }
        }
        assert!(FloatCodec::affine(vec![0.0; 3], vec![1.0; 2]).is_err());
        assert!(FloatCodec::affine(vec![0.0, f32::NAN], vec![1.0; 2]).is_err());
        assert!(FloatCodec::affine(vec![], vec![]).is_err());
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
