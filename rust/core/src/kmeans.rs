//! k-means and nearest-centroid assignment: the coarse quantizer of the partitioned index and the
//! codebooks of product quantization.
//!
//! One Lloyd iteration is [`iterate`]: assign every row to its nearest centroid (squared Euclidean,
//! `|c|^2 - 2 <x, c>`, with the inner products of a block of rows against every centroid from one
//! `sgemm` call of `matrixmultiply`, a well-kept pure-Rust GEMM with runtime SIMD dispatch), then
//! move each centroid to the mean of its rows. Row blocks run in parallel on rayon, each task reusing
//! one buffer of products; the means are parallel over centroids, each summing its own rows in
//! float64 in row order (rows grouped by a counting sort: `n` indices of memory, not a `k x dims`
//! sum per block), so a result does not depend on the number of threads. Empty clusters are
//! refilled by splitting the largest cluster (faiss's rule: two copies pushed apart by a relative
//! 1/1024), so every centroid keeps rows. The caller (Python) samples the rows, seeds the initial
//! centroids and loops over iterations with a progress bar.
//!
//! With many centroids the assignment can take a [`Shortlist`]: each row is scored first against the
//! centroids projected on a few principal directions of the centroids (two small GEMMs, a third of
//! the multiply-adds at 4,096 centroids in 384 dimensions), then exactly against its best few
//! candidates — faiss's advice for large `nlist` is an approximate coarse quantizer too (HNSW).
use rayon::prelude::*;

use crate::error::{
    cell, check_finite, check_rows, checked_size, shape_err, try_zeroed, value_err, Result,
};
use crate::isa::Isa;

/// Rows per block of the assignment (a block's `rows x k` products stay in L2 for a few thousand
/// centroids; fixed so results do not depend on the thread count).
const BLOCK: usize = 256;

/// Relative push apart of a split cluster's two centroids.
const SPLIT_EPS: f32 = 1.0 / 1024.0;

fn check(x: &[f32], n: usize, dims: usize, centroids: &[f32], k: usize) -> Result<()> {
    if dims == 0 || k == 0 {
        return shape_err(format!("dims = {dims}, k = {k}; both must be at least 1"));
    }
    check_rows(x.len(), n, dims, "x")?;
    if k.checked_mul(dims) != Some(centroids.len()) {
        return shape_err(format!(
            "centroids have {} values; expected k * dims = {k} * {dims}",
            centroids.len()
        ));
    }
    check_finite(x, "x", cell(dims))?;
    check_centroids_finite(centroids, dims)
}

/// Checks that `dims`-value centroids are finite; the error names the first other one (by its
/// row and column only).
pub(crate) fn check_centroids_finite(centroids: &[f32], dims: usize) -> Result<()> {
    match centroids.iter().position(|v| !v.is_finite()) {
        Some(at) => value_err(format!(
            "centroids[{}, {}] is not finite",
            at / dims,
            at % dims
        )),
        None => Ok(()),
    }
}

/// `out[r * k + c] = <x_r, centroid_c>` for the `rows` rows of `x` (row-major).
fn products(x: &[f32], rows: usize, dims: usize, centroids: &[f32], k: usize, out: &mut [f32]) {
    // SAFETY: the slices hold rows x dims, k x dims and rows x k values (checked by the callers),
    // and the strides below describe exactly those row-major shapes.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            dims,
            k,
            1.0,
            x.as_ptr(),
            dims as isize,
            1,
            centroids.as_ptr(),
            1,
            dims as isize,
            0.0,
            out.as_mut_ptr(),
            k as isize,
            1,
        );
    }
}

fn squared_norms(m: &[f32], dims: usize) -> Vec<f32> {
    m.chunks_exact(dims)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

/// An approximate assignment: `basis` holds `rank` orthonormal directions of `dims` values (row-major;
/// the caller takes the centroids' principal directions), and each row's nearest centroid is the
/// exactly nearest of its `candidates` best by `|c|^2 - 2 <P x, P c>`.
#[derive(Clone, Copy, Debug)]
pub struct Shortlist<'a> {
    /// `rank x dims` values, one direction a row.
    pub basis: &'a [f32],
    /// Directions in `basis`.
    pub rank: usize,
    /// Centroids scored exactly per row.
    pub candidates: usize,
}

impl Shortlist<'_> {
    fn check(&self, dims: usize) -> Result<()> {
        if self.rank == 0 || self.rank > dims || self.candidates == 0 {
            return value_err(format!(
                "basis must have 1 to dims = {dims} rows and candidates must be at least 1; got {} \
                 rows and {} candidates",
                self.rank, self.candidates
            ));
        }
        if self.rank.checked_mul(dims) != Some(self.basis.len()) {
            return shape_err(format!(
                "basis has {} values; expected rank * dims = {} * {dims}",
                self.basis.len(),
                self.rank
            ));
        }
        check_finite(self.basis, "basis", cell(dims))
    }
}

/// `<a, b>` in float32 with eight running sums (so the compiler vectorizes it).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Values per run in [`lowest`].
const RUN: usize = 16;

/// The `m` lowest `(value, index)` of `values`, ascending (ties: the lower index), into `out`;
/// `mins` is scratch. Two passes instead of one insertion per candidate: each run of [`RUN`] values
/// gives its minimum (vectorized); the `m`-th lowest of those minima bounds the `m`-th lowest value
/// (the `m` runs below it hold `m` values at most that), so only the runs whose minimum is within the
/// bound are read again, their values within it collected and sorted.
#[inline(always)]
fn lowest(values: &[f32], m: usize, mins: &mut Vec<f32>, out: &mut Vec<(f32, u32)>) {
    out.clear();
    mins.clear();
    mins.extend(values.chunks(RUN).map(run_min));
    let runs = mins.len();
    let bound = if m >= runs {
        f32::INFINITY
    } else {
        mins.extend_from_within(..runs);
        let (_, nth, _) = mins[runs..].select_nth_unstable_by(m - 1, f32::total_cmp);
        *nth
    };
    for (run, (&low, chunk)) in mins[..runs].iter().zip(values.chunks(RUN)).enumerate() {
        if low <= bound {
            for (j, &v) in chunk.iter().enumerate() {
                if v <= bound {
                    out.push((v, (run * RUN + j) as u32));
                }
            }
        }
    }
    out.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    out.truncate(m);
}

/// The least of `chunk` (up to [`RUN`] values): a full run by halving in independent lanes, which
/// the compiler vectorizes.
#[inline(always)]
fn run_min(chunk: &[f32]) -> f32 {
    let Ok(run) = <&[f32; RUN]>::try_from(chunk) else {
        return chunk
            .iter()
            .fold(f32::INFINITY, |a, &b| if b < a { b } else { a });
    };
    let mut lanes = [0.0f32; RUN / 2];
    for j in 0..RUN / 2 {
        let (a, b) = (run[j], run[j + RUN / 2]);
        lanes[j] = if b < a { b } else { a };
    }
    let mut width = RUN / 4;
    while width > 0 {
        for j in 0..width {
            let (a, b) = (lanes[j], lanes[j + width]);
            lanes[j] = if b < a { b } else { a };
        }
        width /= 2;
    }
    lanes[0]
}

/// The nearest centroid of every row and its squared distance (ties: the lower centroid); with a
/// `shortlist`, the nearest of each row's candidates (see [`Shortlist`]).
pub fn nearest(
    x: &[f32],
    n: usize,
    dims: usize,
    centroids: &[f32],
    k: usize,
    shortlist: Option<&Shortlist>,
) -> Result<(Vec<u32>, Vec<f32>)> {
    check(x, n, dims, centroids, k)?;
    if k > u32::MAX as usize {
        return value_err(format!(
            "k = {k} centroids; at most {} are supported",
            u32::MAX
        ));
    }
    if let Some(s) = shortlist {
        s.check(dims)?;
    }
    let mut assign = try_zeroed::<u32>(n, "the assignment")?;
    let mut dist = try_zeroed::<f32>(n, "the distances")?;
    checked_size(BLOCK, k, "a block of products")?;
    let c2 = squared_norms(centroids, dims);
    let isa = Isa::detect();
    // The centroids in the shortlist's directions (k x rank).
    let projected = match shortlist {
        Some(s) => {
            let size = checked_size(k, s.rank, "projected centroids")?;
            let mut cp = try_zeroed::<f32>(size, "the projected centroids")?;
            products(centroids, k, dims, s.basis, s.rank, &mut cp);
            cp
        }
        None => Vec::new(),
    };
    assign
        .par_chunks_mut(BLOCK)
        .zip(dist.par_chunks_mut(BLOCK))
        .zip(x.par_chunks(BLOCK * dims))
        .for_each_init(
            || (Vec::new(), Vec::new(), Vec::new(), Vec::new()),
            |(prod, xp, mins, cand), ((a, d), xb)| {
                let rows = a.len();
                prod.resize(rows * k, 0.0);
                let pick = Pick {
                    xb,
                    dims,
                    centroids,
                    c2: &c2,
                    candidates: shortlist.map(|s| s.candidates.min(k)),
                };
                match shortlist {
                    None => products(xb, rows, dims, centroids, k, prod),
                    Some(s) => {
                        xp.resize(rows * s.rank, 0.0);
                        products(xb, rows, dims, s.basis, s.rank, xp);
                        products(xp, rows, s.rank, &projected, k, prod);
                    }
                }
                choose(isa, &pick, prod, mins, cand, a, d);
            },
        );
    Ok((assign, dist))
}

/// A block of rows and what its nearest centroids are chosen among (see [`choose_portable`]).
struct Pick<'a> {
    /// The block's rows (`dims` values each).
    xb: &'a [f32],
    dims: usize,
    centroids: &'a [f32],
    /// The centroids' squared norms.
    c2: &'a [f32],
    /// With a shortlist: the centroids scored exactly per row.
    candidates: Option<usize>,
}

/// Each row's nearest centroid and squared distance into `a` and `d`, from the block's products in
/// `prod` (`rows x k`: exact inner products, or with a shortlist the projected ones, overwritten
/// with scores); `mins` and `cand` are scratch.
#[inline(always)]
fn choose_portable(
    pick: &Pick<'_>,
    prod: &mut [f32],
    mins: &mut Vec<f32>,
    cand: &mut Vec<(f32, u32)>,
    a: &mut [u32],
    d: &mut [f32],
) {
    let (dims, c2, centroids) = (pick.dims, pick.c2, pick.centroids);
    let k = c2.len();
    let Some(candidates) = pick.candidates else {
        for (r, p) in prod.chunks_exact(k).enumerate() {
            let (mut best, mut arg) = (f32::INFINITY, 0usize);
            for (c, (&pc, &cc)) in p.iter().zip(c2).enumerate() {
                let v = cc - 2.0 * pc;
                if v < best {
                    (best, arg) = (v, c);
                }
            }
            let xr = &pick.xb[r * dims..(r + 1) * dims];
            (a[r], d[r]) = (arg as u32, (best + dot(xr, xr)).max(0.0));
        }
        return;
    };
    for (r, p) in prod.chunks_exact_mut(k).enumerate() {
        // Finite inputs can still overflow (|c|^2 = inf, inf - inf = NaN): such a score
        // ranks last instead of poisoning the selection.
        p.iter_mut().zip(c2).for_each(|(v, &cc)| {
            let a = cc - 2.0 * *v;
            *v = if a.is_nan() { f32::INFINITY } else { a };
        });
        lowest(p, candidates, mins, cand);
        let xr = &pick.xb[r * dims..(r + 1) * dims];
        // The first candidate stands unless a later one is nearer (an overflowing
        // distance, NaN, never displaces it; `lowest` returns at least one candidate).
        let (mut best, mut arg) = (f32::NAN, u32::MAX);
        for &(_, c) in cand.iter() {
            let v = c2[c as usize] - 2.0 * dot(xr, &centroids[c as usize * dims..][..dims]);
            if arg == u32::MAX || v < best || (v == best && c < arg) {
                (best, arg) = (v, c);
            }
        }
        (a[r], d[r]) = (arg, (best + dot(xr, xr)).max(0.0));
    }
}

crate::isa::leveled! {
    /// [`choose_portable`], its loops (scores, run minima, exact products) compiled for the CPU's
    /// level: the same values.
    fn choose(
        pick: &Pick<'_>,
        prod: &mut [f32],
        mins: &mut Vec<f32>,
        cand: &mut Vec<(f32, u32)>,
        a: &mut [u32],
        d: &mut [f32],
    ) -> () = choose_portable;
}

/// One Lloyd iteration from `centroids` (updated in place): returns the assignment before the
/// update (through `shortlist` when given), the rows per cluster after any split, and the mean
/// squared distance of the assignment.
pub fn iterate(
    x: &[f32],
    n: usize,
    dims: usize,
    centroids: &mut [f32],
    k: usize,
    shortlist: Option<&Shortlist>,
) -> Result<(Vec<u32>, Vec<u64>, f64)> {
    if n == 0 {
        return value_err("x has no rows to cluster");
    }
    if n > u32::MAX as usize {
        return value_err(format!(
            "{n} rows; k-means takes at most {} (sample them)",
            u32::MAX
        ));
    }
    let (assign, dist) = nearest(x, n, dims, centroids, k, shortlist)?;
    // Rows grouped by cluster, ascending within each (a counting sort).
    let mut counts = vec![0u64; k];
    for &a in &assign {
        counts[a as usize] += 1;
    }
    let mut starts = Vec::with_capacity(k + 1);
    starts.push(0usize);
    for &c in &counts {
        starts.push(starts[starts.len() - 1] + c as usize);
    }
    let mut order = try_zeroed::<u32>(n, "the rows by cluster")?;
    let mut next = starts[..k].to_vec();
    for (row, &a) in assign.iter().enumerate() {
        order[next[a as usize]] = row as u32;
        next[a as usize] += 1;
    }
    // Each centroid the float64 mean of its rows, summed in row order.
    centroids.par_chunks_mut(dims).enumerate().for_each_init(
        Vec::new,
        |sum: &mut Vec<f64>, (c, out)| {
            let rows = &order[starts[c]..starts[c + 1]];
            if rows.is_empty() {
                return;
            }
            sum.clear();
            sum.resize(dims, 0.0);
            for &row in rows {
                let v = &x[row as usize * dims..][..dims];
                sum.iter_mut().zip(v).for_each(|(s, &v)| *s += f64::from(v));
            }
            let inv = 1.0 / rows.len() as f64;
            out.iter_mut()
                .zip(sum.iter())
                .for_each(|(o, s)| *o = (s * inv) as f32);
        },
    );
    split_empty(centroids, &mut counts, dims);
    let inertia = dist.iter().map(|&d| f64::from(d)).sum::<f64>() / n as f64;
    Ok((assign, counts, inertia))
}

/// Gives every empty cluster half of the largest one: the two centroids become copies pushed
/// apart by a relative [`SPLIT_EPS`] (deterministic: the largest cluster, lowest index on ties).
fn split_empty(centroids: &mut [f32], counts: &mut [u64], dims: usize) {
    for empty in 0..counts.len() {
        if counts[empty] > 0 {
            continue;
        }
        let Some((big, &size)) = counts
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
        else {
            return;
        };
        if size < 2 {
            return; // fewer rows than clusters: nothing left to split
        }
        for j in 0..dims {
            let v = centroids[big * dims + j];
            let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
            centroids[empty * dims + j] = v * (1.0 + sign * SPLIT_EPS);
            centroids[big * dims + j] = v * (1.0 - sign * SPLIT_EPS);
        }
        counts[empty] = size / 2;
        counts[big] = size - size / 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn nearest_matches_a_brute_force() {
        let mut rng = StdRng::seed_from_u64(1);
        let (n, dims, k) = (1_000, 13, 37);
        let x: Vec<f32> = (0..n * dims)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let c: Vec<f32> = (0..k * dims)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let (assign, dist) = nearest(&x, n, dims, &c, k, None).unwrap();
        for r in 0..n {
            let d: Vec<f64> = (0..k)
                .map(|j| {
                    (0..dims)
                        .map(|t| f64::from(x[r * dims + t] - c[j * dims + t]).powi(2))
                        .sum()
                })
                .collect();
            let best = d.iter().cloned().fold(f64::INFINITY, f64::min);
            // The chosen centroid is the nearest up to float32 rounding of the expansion.
            assert!(d[assign[r] as usize] <= best + 1e-4, "row {r}");
            assert!((f64::from(dist[r]) - d[assign[r] as usize]).abs() < 1e-4);
        }
    }

    /// Clustered rows: `k` centres, rows near them; returns `(x, centres)`.
    fn clustered(n: usize, dims: usize, k: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let c: Vec<f32> = (0..k * dims)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let x = (0..n)
            .flat_map(|i| {
                let at = (i * 7) % k;
                c[at * dims..(at + 1) * dims]
                    .iter()
                    .map(|v| v + rng.random_range(-0.3f32..0.3))
                    .collect::<Vec<_>>()
            })
            .collect();
        (x, c)
    }

    /// The first `rank` coordinate axes of `dims`, as a shortlist basis.
    fn axes(rank: usize, dims: usize) -> Vec<f32> {
        (0..rank * dims)
            .map(|i| f32::from(u8::from(i % dims == i / dims)))
            .collect()
    }

    #[test]
    fn a_shortlist_of_every_centroid_is_the_exact_assignment() {
        let (n, dims, k) = (700, 24, 50);
        let (x, c) = clustered(n, dims, k, 3);
        // Any orthonormal basis: the candidates are every centroid, rescored exactly.
        let basis = axes(4, dims);
        let s = Shortlist {
            basis: &basis,
            rank: 4,
            candidates: k + 3,
        };
        let (exact, d_exact) = nearest(&x, n, dims, &c, k, None).unwrap();
        let (short, d_short) = nearest(&x, n, dims, &c, k, Some(&s)).unwrap();
        for r in 0..n {
            // Equal up to float32 rounding of two summation orders (a near tie may flip).
            assert!(d_short[r] <= d_exact[r] + 1e-4, "row {r}");
            assert!(exact[r] == short[r] || (d_short[r] - d_exact[r]).abs() < 1e-4);
        }
    }

    #[test]
    fn a_shortlist_on_principal_directions_finds_nearly_every_nearest() {
        let (n, dims, k) = (2_000, 32, 64);
        let (x, c) = clustered(n, dims, k, 4);
        // The centroids' principal directions would be the caller's choice; here the first 16 axes
        // of centroids that live in those axes plus small noise.
        let mut c = c;
        for (i, v) in c.iter_mut().enumerate() {
            if i % dims >= 16 {
                *v *= 0.05;
            }
        }
        let basis = axes(16, dims);
        let s = Shortlist {
            basis: &basis,
            rank: 16,
            candidates: 4,
        };
        let (exact, d_exact) = nearest(&x, n, dims, &c, k, None).unwrap();
        let (short, d_short) = nearest(&x, n, dims, &c, k, Some(&s)).unwrap();
        let agree = exact.iter().zip(&short).filter(|(a, b)| a == b).count();
        assert!(agree * 100 >= n * 99, "{agree} of {n}");
        for r in 0..n {
            // The distance returned is the chosen centroid's exact one.
            let t: f64 = (0..dims)
                .map(|j| f64::from(x[r * dims + j] - c[short[r] as usize * dims + j]).powi(2))
                .sum();
            assert!((f64::from(d_short[r]) - t).abs() < 1e-3, "row {r}");
            assert!(d_short[r] + 1e-4 >= d_exact[r]);
        }
    }

    #[test]
    fn overflowing_distances_still_assign_a_centroid() {
        // Finite values whose squares overflow: every score is NaN or infinite.
        let x = vec![3e19f32, -3e19, 1.0, 2.0];
        let c = vec![3e19f32, 3e19, -3e19, 1.0, 2.0, 2.0];
        let basis = [1.0f32, 0.0];
        let s = Shortlist {
            basis: &basis,
            rank: 1,
            candidates: 2,
        };
        let (exact, _) = nearest(&x, 2, 2, &c, 3, None).unwrap();
        let (short, _) = nearest(&x, 2, 2, &c, 3, Some(&s)).unwrap();
        assert!(
            exact.iter().chain(&short).all(|&a| a < 3),
            "{exact:?} {short:?}"
        );
        let mut cent = c.clone();
        assert!(iterate(&x, 2, 2, &mut cent, 3, Some(&s)).is_ok());
    }

    #[test]
    fn lowest_keeps_the_smallest_in_order_with_ties_by_index() {
        let (mut mins, mut out) = (Vec::new(), Vec::new());
        lowest(&[3.0, 1.0, 2.0, 1.0, 0.5, 9.0], 3, &mut mins, &mut out);
        assert_eq!(out, vec![(0.5, 4), (1.0, 1), (1.0, 3)]);
        lowest(&[2.0], 3, &mut mins, &mut out);
        assert_eq!(out, vec![(2.0, 0)]);
        // Across runs: against a sort, with ties, for several m (one run's values all low).
        let mut rng = StdRng::seed_from_u64(5);
        for len in [16, 100, 4096] {
            let mut values: Vec<f32> = (0..len).map(|_| rng.random_range(0..40) as f32).collect();
            values[..16.min(len)].iter_mut().for_each(|v| *v -= 50.0);
            let mut sorted: Vec<(f32, u32)> = values
                .iter()
                .enumerate()
                .map(|(i, &v)| (v, i as u32))
                .collect();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for m in [1, 9, 16, 17, 40] {
                lowest(&values, m, &mut mins, &mut out);
                assert_eq!(out, sorted[..m.min(len)], "len {len} m {m}");
            }
        }
        assert_eq!(run_min(&[3.0, -1.0, 2.0]), -1.0);
        let run: Vec<f32> = (0..16).map(|i| ((i * 7) % 16) as f32 - 3.0).collect();
        assert_eq!(run_min(&run), -3.0);
    }

    #[test]
    fn iterations_find_separated_clusters_and_do_not_depend_on_threads() {
        let mut rng = StdRng::seed_from_u64(2);
        let (dims, k, per) = (8, 5, 400);
        let centres: Vec<f32> = (0..k * dims).map(|i| ((i * 7919) % 23) as f32).collect();
        let mut x = Vec::new();
        for c in 0..k {
            for _ in 0..per {
                x.extend((0..dims).map(|j| centres[c * dims + j] + rng.random_range(-0.1f32..0.1)));
            }
        }
        let n = k * per;
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            // Start from one row of each true cluster.
            let mut cent: Vec<f32> = (0..k)
                .flat_map(|c| x[c * per * dims..(c * per + 1) * dims].to_vec())
                .collect();
            let mut last = None;
            for _ in 0..5 {
                last = Some(
                    pool.install(|| iterate(&x, n, dims, &mut cent, k, None))
                        .unwrap(),
                );
            }
            (cent, last.unwrap())
        };
        let (one, (_, counts, inertia)) = run(1);
        let (three, _) = run(3);
        assert_eq!(one, three);
        assert_eq!(counts, vec![per as u64; k]);
        // Uniform noise of half-width 0.1: 0.01 / 3 per dimension.
        let expected = dims as f64 * 0.01 / 3.0;
        assert!(
            (inertia - expected).abs() < 0.15 * expected,
            "{inertia} vs {expected}"
        );
    }

    #[test]
    fn empty_clusters_are_refilled_and_bad_input_refused() {
        let x = vec![0.0f32, 0.0, 1.0, 1.0, 1.1, 1.0, 5.0, 5.0];
        // Two centroids far from everything: one takes all rows, the other is emptied then split.
        let mut c = vec![100.0f32, 100.0, -100.0, -100.0];
        let (_, counts, _) = iterate(&x, 4, 2, &mut c, 2, None).unwrap();
        assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
        assert_ne!(c[..2], c[2..]);
        assert!(nearest(&x, 3, 2, &c, 2, None).is_err());
        assert!(nearest(&[f32::NAN, 0.0], 1, 2, &c, 2, None).is_err());
        assert!(iterate(&[], 0, 2, &mut c, 2, None).is_err());
        let basis = [1.0f32, 0.0];
        for (rank, candidates, b) in [(0, 1, &basis[..0]), (1, 0, &basis[..]), (2, 1, &basis[..])] {
            let s = Shortlist {
                basis: b,
                rank,
                candidates,
            };
            assert!(nearest(&x, 4, 2, &c, 2, Some(&s)).is_err());
        }
        let s = Shortlist {
            basis: &[f32::NAN, 0.0],
            rank: 1,
            candidates: 1,
        };
        assert!(nearest(&x, 4, 2, &c, 2, Some(&s)).is_err());
    }
}
