//! The coarse quantizer of a partitioned index: which lists a query scans, and their bias.
//!
//! Rows go to their nearest centroid (squared Euclidean), so a list holds a Voronoi cell, and a
//! query's lists rank by how near their centroid is to the query: by the key
//! `<q, c> - |q| |c|^2 / (2 R)`, with `R` the rows' typical norm (the partition's *radius*), which
//! ranks by `|q R / |q| - c|^2` (the query scaled to the rows' norm: no ranking changes with a
//! query's scale). Without a radius (indexes saved before it) lists rank by `<q, c>` alone, which
//! on the 199k real wiki vectors in 1,024 lists put 0.49 of a query's true top-10 in its first list
//! where the cell ranking puts 0.55 (0.75 / 0.78 in its first four). The product `<q, c>` is also
//! the list's *bias* when codes hold residuals `r = x - c`: `<q, x> = <q, c> + <q, r>`. The
//! products use [`crate::codec::float::dot`]'s summation order (8 partial sums). The AVX2 kernel scores
//! a tile of queries x centroids at a time with the same operations in the same order per product as
//! its portable twin, so the same values: one query alone and in a batch rank lists identically. One
//! query reads and widens every centroid for itself (four centroids at a time: the float16 widening
//! bounds it); a block of [`QUERY_BLOCK`] queries reads and widens each centroid once for all of them.
//! Where the CPU has AVX-512 VNNI, [`Coarse::best_block`] first shortlists the lists that can be
//! among a query's best from an int8 copy of the centroids and scores only those exactly
//! ([`shortlist`]): the same lists and products, for about a quarter of the cost at narrow widths.
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use crate::codec::float::{dot, reduce8};
use crate::error::{shape_err, value_err, Result};
use crate::isa::Isa;
use crate::kmeans::check_centroids_finite;

mod shortlist;

/// Queries that [`Coarse::scores_block`] scores in one pass over the centroids.
pub const QUERY_BLOCK: usize = 4;

// The driver plans groups that one block scores.
const _: () = assert!(crate::driver::PLAN_GROUP <= QUERY_BLOCK);

/// Centroids `nlist x dims` (row-major, finite).
#[derive(Debug, Clone)]
pub struct Coarse {
    dims: usize,
    nlist: usize,
    centroids: Centroids,
    /// The largest centroid norm (the bias bound of [`Coarse::max_product`]).
    max_norm: f64,
    /// `|c|^2` of each centroid (float32 of the float64 sum) and `1 / (2 R)` of the radius `R`, or
    /// None: lists rank by `<q, c>` alone.
    cells: Option<Cells>,
    /// The int8 copy that shortlists a query's lists before exact scoring ([`Coarse::best_block`]).
    bytes: Option<shortlist::Bytes>,
    isa: Isa,
}

/// What the cell ranking needs: each centroid's squared norm and `1 / (2 R)`.
#[derive(Debug, Clone)]
struct Cells {
    squares: Vec<f32>,
    /// The largest of `squares`.
    max_square: f32,
    half_inverse: f64,
}

/// What the cell ranking subtracts from each list's product for one query, and the largest of it.
struct Offsets {
    values: Vec<f32>,
    largest: f32,
}

/// How centroids are held: as float16 bits when every value is a float16 exactly (the partition
/// rounds them so: half the bytes to read per query, 512 x 384 fits a 512 KiB L2), else float32.
/// Widening float16 is exact, so both give the same scores for the same values.
#[derive(Debug, Clone)]
enum Centroids {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
}

impl Coarse {
    /// Checks `centroids` (`nlist * dims` finite values).
    pub fn new(centroids: Vec<f32>, dims: usize, isa: Isa) -> Result<Self> {
        // The int8 copy only where its kernel runs (AVX-512 VNNI): elsewhere it would not be read.
        Self::build(centroids, dims, isa, isa >= Isa::Avx512)
    }

    /// [`Coarse::new`], with the int8 shortlist or without (the tests run it on every level, with
    /// its portable products below AVX-512).
    fn build(centroids: Vec<f32>, dims: usize, isa: Isa, shortlist: bool) -> Result<Self> {
        // The kernels (and `leveled!` code) of `isa` run on trust later: refuse a level the CPU lacks.
        if !isa.is_available() {
            return value_err(format!("isa {} is not available on this CPU", isa.name()));
        }
        if dims == 0 || centroids.is_empty() || !centroids.len().is_multiple_of(dims) {
            return shape_err(format!(
                "centroids have {} values; expected nlist * dims with dims = {dims}",
                centroids.len()
            ));
        }
        check_centroids_finite(&centroids, dims)?;
        let max_norm = centroids.chunks_exact(dims).map(norm).fold(0f64, f64::max);
        let nlist = centroids.len() / dims;
        let halves: Vec<half::f16> = centroids.iter().map(|&v| half::f16::from_f32(v)).collect();
        let exact = halves.iter().zip(&centroids).all(|(h, &v)| h.to_f32() == v);
        let bytes = shortlist
            .then(|| shortlist::Bytes::new(&centroids, dims))
            .flatten();
        Ok(Self {
            dims,
            nlist,
            centroids: if exact {
                Centroids::F16(halves)
            } else {
                Centroids::F32(centroids)
            },
            max_norm,
            cells: None,
            bytes,
            isa,
        })
    }

    /// Ranks lists by the cell ranking with the rows' typical norm `radius` (positive and finite):
    /// by the key `fl32(<q, c> - fl32(|q| / (2 radius) * |c|^2))`, ties by the lower list.
    pub fn with_radius(mut self, radius: f64) -> Result<Self> {
        if !(radius.is_finite() && radius > 0.0) {
            return value_err(format!("radius = {radius} must be positive and finite"));
        }
        let squares: Vec<f32> = self
            .centroids()
            .chunks_exact(self.dims)
            .map(|c| {
                let n = norm(c);
                (n * n) as f32
            })
            .collect();
        self.cells = Some(Cells {
            max_square: squares.iter().copied().fold(0f32, f32::max),
            squares,
            half_inverse: 0.5 / radius,
        });
        Ok(self)
    }

    /// The radius of the cell ranking, or None (lists rank by `<q, c>`).
    pub fn radius(&self) -> Option<f64> {
        self.cells.as_ref().map(|c| 0.5 / c.half_inverse)
    }

    /// What the cell ranking subtracts from each list's `<q, c>` for query `q`: `fl32(|q| / (2 R) *
    /// |c|^2)` (None without a radius, where the key is the product itself).
    #[inline(always)]
    fn offsets(&self, q: &[f32]) -> Option<Offsets> {
        let cells = self.cells.as_ref()?;
        let t = norm(q) * cells.half_inverse;
        // A filled buffer and a zipped loop: it vectorizes (a push per list stayed scalar).
        let mut values = vec![0f32; cells.squares.len()];
        for (o, &n) in values.iter_mut().zip(&cells.squares) {
            *o = (t * f64::from(n)) as f32;
        }
        // Rounding is monotonic: the largest square gives the largest offset.
        let largest = (t * f64::from(cells.max_square)) as f32;
        Some(Offsets { values, largest })
    }

    /// Bytes held: the centroids (float16 or float32) and their int8 copy (AVX-512 only).
    pub fn nbytes(&self) -> usize {
        let values = match &self.centroids {
            Centroids::F32(c) => 4 * c.len(),
            Centroids::F16(c) => 2 * c.len(),
        };
        values + self.bytes.as_ref().map_or(0, shortlist::Bytes::nbytes)
    }

    /// The centroids as float32 (`nlist * dims`, row-major; float16 ones widened exactly).
    pub fn centroids(&self) -> Vec<f32> {
        match &self.centroids {
            Centroids::F32(c) => c.clone(),
            Centroids::F16(c) => c.iter().map(|h| h.to_f32()).collect(),
        }
    }

    /// Whether the centroids are held as float16 (every value is one).
    pub fn is_half(&self) -> bool {
        matches!(self.centroids, Centroids::F16(_))
    }

    /// Lists.
    pub fn nlist(&self) -> usize {
        self.nlist
    }

    /// Dimensions of a query.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// `<q, c>` for every list (`q`: `dims` finite floats).
    pub fn scores(&self, q: &[f32]) -> Vec<f32> {
        assert_eq!(q.len(), self.dims, "a query has dims values");
        self.scores_rows(q, self.nlist, |r| r)
    }

    /// The scores of lists `row_of(0..n)` (each below `nlist`), in that order: the values
    /// [`Coarse::scores`] gives them.
    fn scores_rows(&self, q: &[f32], n: usize, row_of: impl Fn(usize) -> usize + Copy) -> Vec<f32> {
        let mut out = vec![0f32; n];
        if n == 0 {
            return out;
        }
        #[cfg(target_arch = "x86_64")]
        if self.isa >= Isa::Avx2 {
            // SAFETY: `isa` (AVX2 + F16C) was checked available when the caller built it; `q`
            // holds one query's `dims` values, `out` its `n` scores, and every row is a list.
            unsafe { scores_avx2::<1, 4>(q, &self.centroids, self.dims, row_of, &mut out) };
            return out;
        }
        scores_portable(q, &self.centroids, self.dims, row_of, &mut out);
        out
    }

    /// The `width` best lists of 1 to [`QUERY_BLOCK`] queries (`q`: their rows), each what
    /// [`best`] of its [`Coarse::scores`] gives. Where the CPU has AVX-512 VNNI, the int8 copy
    /// shortlists the lists that can be among them (see [`shortlist`]) and only those are scored
    /// exactly (every list where the shortlist is long); elsewhere every list is. A block of
    /// queries shortlists only for narrow widths (at most 1/16 of the lists): it widens each
    /// float16 centroid once for all its queries, and measured on 1,024 lists, shortlisting was 2 %
    /// faster at width 32 and 7 % slower at 128.
    pub fn best_block(&self, q: &[f32], width: usize) -> Vec<Vec<(usize, f32)>> {
        best_block_leveled(self.isa, self, q, width)
    }

    #[inline(always)]
    fn best_block_portable(&self, q: &[f32], width: usize) -> Vec<Vec<(usize, f32)>> {
        let single = q.len() == self.dims;
        let bytes = match &self.bytes {
            Some(bytes) if bytes.helps(width) && (single || 16 * width <= self.nlist) => bytes,
            _ => {
                let mut out = Vec::with_capacity(q.len() / self.dims);
                for (x, s) in q
                    .chunks_exact(self.dims)
                    .zip(self.scores_block(q).chunks_exact(self.nlist))
                {
                    let offsets = self.offsets(x);
                    out.push(best_keyed(s, offsets.as_ref(), |r| r, width));
                }
                return out;
            }
        };
        // Plain loops, not `map(..).collect()`: a collect's loop is a function of its own that
        // `leveled!` does not reach (it ran baseline x86-64 code).
        let mut queries = Vec::with_capacity(q.len() / self.dims);
        for x in q.chunks_exact(self.dims) {
            queries.push(bytes.query(x));
        }
        let products = bytes.products(&queries, self.isa >= Isa::Avx512);
        let mut out = Vec::with_capacity(queries.len());
        for (x, (qb, p)) in q.chunks_exact(self.dims).zip(queries.iter().zip(&products)) {
            let offsets = self.offsets(x);
            out.push(
                match bytes.candidates(qb, p, self.dims, width, offsets.as_ref()) {
                    Some(rows) => {
                        let scores = self.scores_rows(x, rows.len(), |r| rows[r]);
                        best_keyed(&scores, offsets.as_ref(), |r| rows[r], width)
                    }
                    None => best_keyed(&self.scores(x), offsets.as_ref(), |r| r, width),
                },
            );
        }
        out
    }

    /// The scores of 1 to [`QUERY_BLOCK`] queries (`q`: their rows, `dims` finite floats each), query
    /// by query (`nq x nlist`): each the values [`Coarse::scores`] gives it alone.
    pub fn scores_block(&self, q: &[f32]) -> Vec<f32> {
        let nq = q.len() / self.dims;
        assert!(
            (1..=QUERY_BLOCK).contains(&nq) && q.len() == nq * self.dims,
            "a block holds 1 to {QUERY_BLOCK} queries"
        );
        if nq == 1 {
            return self.scores(q);
        }
        let mut out = vec![0f32; nq * self.nlist];
        #[cfg(target_arch = "x86_64")]
        if self.isa >= Isa::Avx2 {
            if nq == QUERY_BLOCK {
                // SAFETY: as in `scores`, for `QUERY_BLOCK` queries and their scores.
                unsafe {
                    scores_avx2::<QUERY_BLOCK, 2>(q, &self.centroids, self.dims, |r| r, &mut out)
                };
                return out;
            }
            // A short block is filled up with its last query (its scores are dropped).
            let mut full = q.to_vec();
            while full.len() < QUERY_BLOCK * self.dims {
                full.extend_from_slice(&q[(nq - 1) * self.dims..]);
            }
            let mut all = vec![0f32; QUERY_BLOCK * self.nlist];
            // SAFETY: as in `scores`, for `QUERY_BLOCK` queries and their scores.
            unsafe {
                scores_avx2::<QUERY_BLOCK, 2>(&full, &self.centroids, self.dims, |r| r, &mut all)
            };
            out.copy_from_slice(&all[..nq * self.nlist]);
            return out;
        }
        for (x, o) in q
            .chunks_exact(self.dims)
            .zip(out.chunks_exact_mut(self.nlist))
        {
            scores_portable(x, &self.centroids, self.dims, |r| r, o);
        }
        out
    }

    /// An upper bound of `|<q, c>|` over the queries `points` (row-major) and every centroid: the
    /// largest `|q| |c|` (float64, rounded up a little), so a bias never exceeds it.
    pub fn max_product(&self, points: &[f32]) -> f64 {
        let q = points
            .chunks_exact(self.dims)
            .map(norm)
            .fold(0f64, f64::max);
        q * self.max_norm * (1.0 + 1e-6)
    }

    /// Scores of `nq` queries (row-major), parallel over blocks of [`QUERY_BLOCK`] queries.
    pub fn scores_batch(&self, q: &[f32], nq: usize) -> Result<Vec<f32>> {
        if nq.checked_mul(self.dims) != Some(q.len()) {
            return shape_err(format!(
                "queries have {} values; expected nq * dims = {nq} * {}",
                q.len(),
                self.dims
            ));
        }
        let nlist = self.nlist();
        let mut out = crate::error::try_zeroed::<f32>(nq * nlist, "the list scores")?;
        out.par_chunks_mut(QUERY_BLOCK * nlist)
            .zip(q.par_chunks(QUERY_BLOCK * self.dims))
            .for_each(|(o, x)| o.copy_from_slice(&self.scores_block(x)));
        Ok(out)
    }
}

/// Euclidean norm in float64.
#[inline(always)]
fn norm(v: &[f32]) -> f64 {
    // Eight partial sums (they vectorize): the squares are exact in float64, and any order of the
    // sum is within the bounds' 1e-9 relative slack.
    let mut lanes = [0f64; 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += f64::from(x) * f64::from(x);
        }
    }
    for (l, &x) in lanes.iter_mut().zip(tail) {
        *l += f64::from(x) * f64::from(x);
    }
    lanes.iter().sum::<f64>().sqrt()
}

crate::isa::leveled! {
    /// [`Coarse::best_block`]'s bookkeeping, its loops compiled for the level (the same lists).
    fn best_block_leveled(coarse: &Coarse, q: &[f32], width: usize) -> Vec<Vec<(usize, f32)>> =
        Coarse::best_block_portable;
}

/// Scores of centroids `row_of(0..out.len())` into `out`, portably: [`dot`] of each row (float16
/// rows widened first, exactly).
fn scores_portable(
    q: &[f32],
    centroids: &Centroids,
    dims: usize,
    row_of: impl Fn(usize) -> usize,
    out: &mut [f32],
) {
    let mut wide = vec![0f32; dims];
    for (i, o) in out.iter_mut().enumerate() {
        let row = row_of(i);
        *o = match centroids {
            Centroids::F32(c) => dot(q, &c[row * dims..][..dims]),
            Centroids::F16(c) => {
                c[row * dims..][..dims].convert_to_f32_slice(&mut wide);
                dot(q, &wide)
            }
        };
    }
}

/// [`scores_portable`] of `Q` queries (rows of `q`) into `out` (`Q x n`, query by query) with
/// AVX2 (+ F16C to widen float16 rows): [`dot`]'s multiplies and adds in its order, eight lanes at
/// once, `Q` queries x `C` centroids interleaved (`Q * C` chains in flight, each centroid read and
/// widened once for the `Q` queries).
///
/// # Safety
/// The CPU must support AVX2 and F16C; `q` holds `Q * dims` values, `centroids` `nlist * dims`,
/// `out` `Q * n` and `row_of(0..n)` rows below `nlist`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn scores_avx2<const Q: usize, const C: usize>(
    q: &[f32],
    centroids: &Centroids,
    dims: usize,
    row_of: impl Fn(usize) -> usize + Copy,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    // SAFETY (both loaders): `row < nlist` and `at + 8 <= dims`, so the 8 values are in bounds.
    match centroids {
        Centroids::F32(c) => unsafe {
            tiles_avx2::<Q, C>(
                q,
                dims,
                row_of,
                out,
                |row, at| _mm256_loadu_ps(c.as_ptr().add(row * dims + at)),
                |row, at| c[row * dims + at],
            )
        },
        Centroids::F16(c) => unsafe {
            tiles_avx2::<Q, C>(
                q,
                dims,
                row_of,
                out,
                |row, at| {
                    _mm256_cvtph_ps(_mm_loadu_si128(
                        c.as_ptr().add(row * dims + at).cast::<__m128i>(),
                    ))
                },
                |row, at| c[row * dims + at].to_f32(),
            )
        },
    }
}

/// The loop of [`scores_avx2`]: `load8(row, at)` gives values `at..at + 8` of a row, `load1` one.
///
/// # Safety
/// As [`scores_avx2`]; `load8` must read in bounds for `row < nlist`, `at + 8 <= dims`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn tiles_avx2<const Q: usize, const C: usize>(
    q: &[f32],
    dims: usize,
    row_of: impl Fn(usize) -> usize,
    out: &mut [f32],
    load8: impl Fn(usize, usize) -> std::arch::x86_64::__m256,
    load1: impl Fn(usize, usize) -> f32,
) {
    use std::arch::x86_64::*;
    let (n, full) = (out.len() / Q, dims / 8 * 8);
    for first in (0..n).step_by(C) {
        // Where rows run out, the last one is scored again (and dropped).
        let rows: [usize; C] = std::array::from_fn(|r| row_of((first + r).min(n - 1)));
        let mut acc = [[_mm256_setzero_ps(); C]; Q];
        for j in (0..full).step_by(8) {
            let c: [__m256; C] = std::array::from_fn(|r| load8(rows[r], j));
            for (i, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `i < Q` and `j + 8 <= dims`: in the `Q * dims` values of `q`.
                let x = unsafe { _mm256_loadu_ps(q.as_ptr().add(i * dims + j)) };
                for (a, c) in acc.iter_mut().zip(&c) {
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(x, *c));
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            let x = &q[i * dims..(i + 1) * dims];
            for (r, a) in acc.iter().enumerate().take(n - first) {
                let mut lanes = [0f32; 8];
                // SAFETY: `lanes` holds 8 floats.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *a) };
                out[i * n + first + r] =
                    (full..dims).fold(reduce8(&lanes), |s, t| s + x[t] * load1(rows[r], t));
            }
        }
    }
}

/// The `width` best lists of `scores` (descending, ties by lower list) with their scores.
pub fn best(scores: &[f32], width: usize) -> Vec<(usize, f32)> {
    best_of(scores.iter().copied().enumerate().collect(), width)
}

/// The `width` best of lists `list_of(i)` (ascending in `i`) with products `scores[i]`, by their
/// key (the product less the list's offset, or the product alone), with their products.
#[inline(always)]
fn best_keyed(
    scores: &[f32],
    offsets: Option<&Offsets>,
    list_of: impl Fn(usize) -> usize,
    width: usize,
) -> Vec<(usize, f32)> {
    let mut order = Vec::with_capacity(scores.len());
    match offsets {
        // Ranked by position (ascending with the list, so ties keep the lower list).
        Some(o) => {
            for (i, &s) in scores.iter().enumerate() {
                order.push((i, s - o.values[list_of(i)]));
            }
        }
        None => order.extend(scores.iter().copied().enumerate()),
    }
    let mut best = best_of(order, width);
    for (i, s) in &mut best {
        (*i, *s) = (list_of(*i), scores[*i]);
    }
    best
}

/// [`best`] of some lists' `(list, score)`.
#[inline(always)]
fn best_of(mut order: Vec<(usize, f32)>, width: usize) -> Vec<(usize, f32)> {
    let better = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let width = width.min(order.len());
    if width == 0 {
        return Vec::new();
    }
    if width < order.len() {
        order.select_nth_unstable_by(width - 1, better);
        order.truncate(width);
    }
    order.sort_unstable_by(better);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float16_centroids_score_like_their_float32_values_on_every_level() {
        let (dims, nlist) = (37, 9);
        let values: Vec<f32> = (0..nlist * dims)
            .map(|i| half::f16::from_f32(((i * 7919 % 1000) as f32 - 500.0) / 997.0).to_f32())
            .collect();
        let q: Vec<f32> = (0..dims).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut off = values.clone();
        off[5] += 1e-4; // no longer a float16: held as float32
        for isa in Isa::available() {
            let half = Coarse::new(values.clone(), dims, isa).unwrap();
            let full = Coarse::new(off.clone(), dims, isa).unwrap();
            assert!(half.is_half() && !full.is_half());
            let want: Vec<f32> = values.chunks_exact(dims).map(|c| dot(&q, c)).collect();
            assert_eq!(half.scores(&q), want, "{isa:?}");
            let got = full.scores(&q);
            assert_eq!(got[1..], want[1..], "{isa:?}");
            assert_ne!(got[0], want[0]);
        }
    }

    #[test]
    fn a_block_of_queries_scores_like_each_query_alone_bit_for_bit_on_every_level() {
        for (dims, nlist) in [(37, 9), (48, 7), (5, 1)] {
            let values: Vec<f32> = (0..nlist * dims)
                .map(|i| half::f16::from_f32(((i * 7919 % 1000) as f32 - 500.0) / 997.0).to_f32())
                .collect();
            let mut off = values.clone();
            off[0] += 1e-4; // float32 storage
            let q: Vec<f32> = (0..QUERY_BLOCK * 3 * dims)
                .map(|i| (i as f32 * 0.37).sin())
                .collect();
            for isa in Isa::available() {
                for c in [&values, &off] {
                    let coarse = Coarse::new(c.clone(), dims, isa).unwrap();
                    for nq in 1..=QUERY_BLOCK {
                        let block = coarse.scores_block(&q[..nq * dims]);
                        for (i, got) in block.chunks_exact(nlist).enumerate() {
                            let alone = coarse.scores(&q[i * dims..(i + 1) * dims]);
                            assert_eq!(got, alone, "{isa:?} dims {dims} nq {nq} query {i}");
                        }
                    }
                    let nq = q.len() / dims - 1; // a batch whose last block is short
                    let batch = coarse.scores_batch(&q[..nq * dims], nq).unwrap();
                    for (i, got) in batch.chunks_exact(nlist).enumerate() {
                        assert_eq!(got, coarse.scores(&q[i * dims..(i + 1) * dims]));
                    }
                }
            }
        }
    }

    /// Float16 centroids in clusters (near ties, as k-means gives) and queries near them.
    fn clustered(nlist: usize, dims: usize, nq: usize) -> (Vec<f32>, Vec<f32>) {
        let wave = |i: usize, f: f32| (i as f32 * f).sin() * 0.3;
        let centroids: Vec<f32> = (0..nlist * dims)
            .map(|i| {
                let (j, t) = (i / dims, i % dims);
                let v = wave(t * (j % 7 + 1), 0.37) + 0.02 * wave(i, 1.73);
                half::f16::from_f32(v).to_f32()
            })
            .collect();
        let q = (0..nq * dims)
            .map(|i| wave((i % dims) * (i / dims % 5 + 1), 0.37) + 0.05 * wave(i, 0.91))
            .collect();
        (centroids, q)
    }

    /// The `width` best lists of query `x` by the key of the cell ranking with `radius` (the
    /// product alone without one), written out from its definition: `fl32(s - fl32(|x| / (2 R) *
    /// fl32(|c|^2)))`, ties by the lower list; each with its product `s`.
    fn by_key(coarse: &Coarse, x: &[f32], width: usize, radius: Option<f64>) -> Vec<(usize, f32)> {
        let scores = coarse.scores(x);
        let keys: Vec<f32> = match radius {
            None => scores.clone(),
            Some(r) => {
                let t = norm(x) / (2.0 * r);
                let c = coarse.centroids();
                let squares = c
                    .chunks_exact(coarse.dims)
                    .map(|c| (norm(c) * norm(c)) as f32);
                scores
                    .iter()
                    .zip(squares)
                    .map(|(&s, n)| s - (t * f64::from(n)) as f32)
                    .collect()
            }
        };
        best(&keys, width)
            .into_iter()
            .map(|(l, _)| (l, scores[l]))
            .collect()
    }

    /// Checks that `best_block` (the int8 shortlist, forced on every level: portable products
    /// below AVX-512) gives each query what ranking every list exactly gives (by its key with
    /// `radius`), one query alone and in blocks, at `widths`.
    fn shortlist_agrees(
        centroids: &[f32],
        dims: usize,
        q: &[f32],
        widths: &[usize],
        radius: Option<f64>,
        what: &str,
    ) {
        for isa in Isa::available() {
            let mut coarse = Coarse::build(centroids.to_vec(), dims, isa, true).unwrap();
            if let Some(r) = radius {
                coarse = coarse.with_radius(r).unwrap();
            }
            assert!(coarse.bytes.is_some());
            for &width in widths {
                let each: Vec<_> = q
                    .chunks_exact(dims)
                    .map(|x| by_key(&coarse, x, width, radius))
                    .collect();
                for (x, want) in q.chunks_exact(dims).zip(&each) {
                    let got = coarse.best_block(x, width);
                    assert_eq!(got, vec![want.clone()], "{what} {isa:?} width {width}");
                }
                for (block, want) in q.chunks(QUERY_BLOCK * dims).zip(each.chunks(QUERY_BLOCK)) {
                    assert_eq!(coarse.best_block(block, width), want, "{what} {isa:?}");
                }
            }
        }
    }

    #[test]
    fn the_int8_shortlist_keeps_the_exact_ranking_on_every_level() {
        for (nlist, dims) in [(97, 37), (256, 64), (40, 5)] {
            let (centroids, q) = clustered(nlist, dims, 9);
            let mut duplicated = centroids.clone(); // exact ties: list 3 = list 11
            duplicated.copy_within(3 * dims..4 * dims, 11 * dims);
            let mut float32 = centroids.clone(); // not float16 values: held as float32
            float32.iter_mut().for_each(|v| *v += 1e-5);
            let widths = [
                0,
                1,
                2,
                8,
                nlist / 16,
                nlist / 3,
                nlist / 2,
                nlist,
                nlist + 3,
            ];
            for (c, what) in [
                (&centroids, "f16"),
                (&duplicated, "ties"),
                (&float32, "f32"),
            ] {
                // Radii below, near and above the centroids' norms (~0.2 sqrt(dims)).
                for radius in [None, Some(0.3), Some(2.0), Some(40.0)] {
                    shortlist_agrees(c, dims, &q, &widths, radius, what);
                }
            }
        }
    }

    #[test]
    fn the_shortlist_bound_counts_float32_rounding_underflow_and_refuses_overflow() {
        // Codes that int8 holds exactly (integers up to 127 times a power of two), so the bound is
        // the float32 rounding alone. 4,096 dimensions of 127 x ~127: the lanes' sums pass 2^24,
        // so float32 rounds some of the 8 lists that differ by 1 in one value (the query's value
        // there is 1) to equal scores, where the exact integers order them: only the rounding
        // term keeps the lower list that wins the tie.
        let dims = 4096;
        let s = 1.0 / 128.0;
        let mut centroids = Vec::new();
        for j in 0..32 {
            let mut c = vec![if j < 8 { 127.0 * s } else { -127.0 * s }; dims];
            c[0] = [124.0, 125.0, 126.0, 120.0, 121.0, 122.0, 123.0, 119.0][j % 8] * s;
            centroids.extend(c);
        }
        let mut q = vec![127.0 * s; dims];
        q[0] = s;
        let coarse = Coarse::new(centroids.clone(), dims, Isa::Scalar).unwrap();
        let scores = coarse.scores(&q);
        // List 2 has the largest exact product; float32 ties it with list 0, which wins.
        assert_eq!(best(&scores, 1)[0].0, 0, "{:?}", &scores[..8]);
        shortlist_agrees(&centroids, dims, &q, &[1, 2, 4], None, "rounding");
        // Products below float32's normal range (absolute, not relative, error).
        let tiny = [
            2f32.powi(-80),
            2f32.powi(-79),
            -(2f32.powi(-80)),
            -(2f32.powi(-79)),
        ];
        shortlist_agrees(&tiny, 1, &[2f32.powi(-80)], &[1, 2], None, "underflow");
        // Scores past float32's range: no shortlist (every list scored, as before).
        let huge = [1e20f32, 2e20, -1e20, -2e20];
        shortlist_agrees(&huge, 1, &[1e20], &[1, 2], None, "overflow");
        // Keys past float32's range (offsets of 2^127): no shortlist either, the same lists.
        shortlist_agrees(
            &[1.0, 2.0, -1.0, 0.5],
            1,
            &[2f32.powi(100)],
            &[1, 2],
            Some(2f64.powi(-28)),
            "offsets",
        );
    }

    #[test]
    fn the_shortlist_is_short_for_narrow_widths_and_its_products_match_the_portable_twin() {
        let (nlist, dims) = (512, 96);
        let (centroids, q) = clustered(nlist, dims, 4);
        let coarse = Coarse::build(centroids, dims, Isa::Scalar, true).unwrap();
        let bytes = coarse.bytes.as_ref().unwrap();
        for x in q.chunks_exact(dims) {
            let qb = bytes.query(x);
            let products = bytes.products_portable(&qb);
            let rows = bytes.candidates(&qb, &products, dims, 4, None).unwrap();
            assert!(
                rows.len() >= 4 && rows.len() < nlist / 4,
                "{} lists",
                rows.len()
            );
            assert!(bytes
                .candidates(&qb, &products, dims, nlist / 2 + 1, None)
                .is_none());
            #[cfg(target_arch = "x86_64")]
            if Isa::Avx512.is_available() {
                let fast = bytes.products(std::slice::from_ref(&qb), true);
                assert_eq!(fast[0], products);
            }
        }
        // The copy is held only where its kernel runs.
        for isa in Isa::available() {
            let coarse = Coarse::new(vec![0.5; 64], 4, isa).unwrap();
            assert_eq!(coarse.bytes.is_some(), isa >= Isa::Avx512, "{isa:?}");
            let values = 64 * 2; // float16
            let int8 = if isa >= Isa::Avx512 {
                16 * 4 + 16 * 28
            } else {
                0
            };
            assert_eq!(coarse.nbytes(), values + int8, "{isa:?}");
        }
    }

    #[test]
    fn blocks_of_four_queries_get_the_products_of_each_query_alone() {
        #[cfg(target_arch = "x86_64")]
        if Isa::Avx512.is_available() {
            // 3 blocks (fewer than a kernel step), 32 (whole steps), 36 (a repeated last block
            // with eight chains, not with four) and 63 (repeated with both).
            for (nlist, dims) in [(40, 13), (512, 96), (576, 20), (1000, 37)] {
                let (centroids, q) = clustered(nlist, dims, 7);
                let coarse = Coarse::build(centroids, dims, Isa::Avx512, true).unwrap();
                let bytes = coarse.bytes.as_ref().unwrap();
                let qs: Vec<_> = q.chunks_exact(dims).map(|x| bytes.query(x)).collect();
                let want: Vec<_> = qs.iter().map(|qb| bytes.products_portable(qb)).collect();
                // 7 queries: a block of four, then three alone.
                assert_eq!(bytes.products(&qs, true), want, "nlist {nlist}");
                assert_eq!(bytes.products(&qs[..4], true), want[..4], "nlist {nlist}");
            }
        }
    }

    #[test]
    fn with_a_radius_lists_rank_by_the_distance_of_the_scaled_query_to_their_centroid() {
        // Centroids of norms 0.2 to 2: by <q, c> alone the longest wins; by the cell ranking the
        // nearest to q scaled to norm R (float64 reference, no near ties here).
        let dims = 3;
        let centroids = vec![
            2.0, 0.0, 0.0, 0.6, 0.8, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0, 1.0, 0.9, 0.1, 0.3,
        ];
        let q = [1.0f32, 0.9, 0.1];
        for isa in Isa::available() {
            let plain = Coarse::new(centroids.clone(), dims, isa).unwrap();
            assert_eq!(plain.radius(), None);
            assert_eq!(plain.best_block(&q, 1)[0][0].0, 0);
            for radius in [0.3, 1.0, 2.5] {
                let coarse = Coarse::new(centroids.clone(), dims, isa)
                    .unwrap()
                    .with_radius(radius)
                    .unwrap();
                assert_eq!(coarse.radius(), Some(radius));
                let scale = radius / norm(&q);
                let far = |j: usize| -> f64 {
                    (0..dims)
                        .map(|t| {
                            (f64::from(q[t]) * scale - f64::from(centroids[j * dims + t])).powi(2)
                        })
                        .sum()
                };
                let mut want: Vec<usize> = (0..5).collect();
                want.sort_by(|&a, &b| far(a).total_cmp(&far(b)));
                for x in [q, q.map(|v| v * 7.5)] {
                    let got = coarse.best_block(&x, 5).remove(0);
                    let lists: Vec<usize> = got.iter().map(|&(l, _)| l).collect();
                    assert_eq!(lists, want, "{isa:?} radius {radius}");
                    // Each list keeps its product: the bias of residual codes.
                    let scores = coarse.scores(&x);
                    assert!(got.iter().all(|&(l, s)| s == scores[l]));
                }
            }
            for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
                let coarse = Coarse::new(centroids.clone(), dims, isa).unwrap();
                assert!(coarse.with_radius(bad).is_err(), "{bad}");
            }
        }
    }

    #[test]
    fn lists_rank_by_inner_product_on_every_level() {
        let centroids = vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.7, 0.7];
        for isa in Isa::available() {
            let coarse = Coarse::new(centroids.clone(), 2, isa).unwrap();
            let s = coarse.scores(&[1.0, 0.5]);
            assert_eq!(s, vec![1.0, 0.5, -1.0, 0.7 + 0.35]);
            assert_eq!(best(&s, 2), vec![(3, 0.7 + 0.35), (0, 1.0)]);
            assert_eq!(
                coarse.scores_batch(&[1.0, 0.5, 0.0, 1.0], 2).unwrap()[4..],
                [0.0, 1.0, 0.0, 0.7]
            );
        }
        assert_eq!(
            best(&[2.0, 2.0, 1.0], 9),
            vec![(0, 2.0), (1, 2.0), (2, 1.0)]
        );
        assert!(Coarse::new(vec![1.0; 5], 2, Isa::Scalar).is_err());
        assert!(Coarse::new(vec![f32::NAN, 0.0], 2, Isa::Scalar).is_err());
    }
}
