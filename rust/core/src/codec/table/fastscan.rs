//! The quantized kernel (FastScan style): approximate integer scores of 32-row blocks from 4-bit
//! lookups, then exact float scores of the rows that might make the top-k.
//!
//! Per query, each nibble of a code byte (`4 / bits` dimensions; so `bits` ∈ {1, 2, 4}) gets a
//! 16-entry table of its dimensions' contributions, quantized to `u8` with one scale `delta`
//! shared by all tables and an offset per table. A row's approximate score is the integer sum `A`
//! of its nibbles' entries, and its float score `S` (the [`ByteLuts`] sum) satisfies
//! `S <= offset + delta * A + upper`, where `upper` is computed per query from the actual signed
//! rounding errors of every byte value plus a bound on float32 summation error. A row whose `A`
//! is below [`NibbleLuts::min_sum`] of the current k-th float score therefore cannot enter the
//! top-k; every other row is scored exactly from the float tables and offered. The result is the
//! exact top-k of the float scores, with the same scores as the float kernels.
//!
//! Byte tables given directly (the byte-LUT codecs) get their nibble tables from
//! [`NibbleLuts::from_byte_luts`]: the least-squares separable split of each 256-entry table, its
//! split errors folded into `upper` / `lower` like the rounding errors (exact for any table, tight
//! for separable ones).
//!
//! Kernels: the AVX2 one looks up 32 rows per `vpshufb` and accumulates in 16-bit lanes (the
//! even/odd trick: adding the byte results as `u16` and, separately, their high bytes, recovers
//! both per-row sums exactly, since they stay below 2^16); two blocks share each table load, and
//! the codes are prefetched a few blocks ahead. The AVX-512 one (AVX-512BW) takes two code bytes of a
//! block per 64-byte load (a block stores them side by side) with their tables paired by two lane
//! shuffles, and adds the halves' 16-bit sums at the end: the same integers. Measured on AMD EPYC
//! (Zen 4), 199k rows of 48 bytes: one query 4-9 % faster than the AVX2 kernel, batches on two
//! threads the same (not measured on Intel). The scalar twin computes the same integers one row at
//! a time and is the parity baseline for both.
//!
//! Cost (Zen 3, 384-d 2-bit codes, 96 bytes per row): about 3 ns per row on cache-resident codes
//! (one thread), so a single query over 1M rows is memory-bound like the 1-bit Hamming scan, with
//! twice the bytes to read: measured 1.6-2.0x the Hamming scan's time on a quiet-to-busy 2-core
//! machine (see `benches/RESULTS.md`). Re-scoring touches a few hundred rows per query.
use super::blocks::BLOCK_ROWS;
use super::luts::{ByteLuts, Recon};

/// Entries of a nibble table.
const NIBBLE_VALUES: usize = 16;

/// Table bytes per code byte: the low-nibble table twice, then the high-nibble table twice (one
/// copy per 128-bit lane of an AVX2 register, so a plain load gives the `vpshufb` operand).
pub(crate) const TABLE_STRIDE: usize = 4 * NIBBLE_VALUES;

/// Blocks a kernel call scans (two share each table load).
pub(crate) const GROUP_BLOCKS: usize = 2;

/// Rows of a kernel call.
pub(crate) const GROUP_ROWS: usize = GROUP_BLOCKS * BLOCK_ROWS;

/// Kernel over one or two consecutive blocks: `(tables, blocks, threshold, sums) -> mask`.
/// `blocks.len()` is one or two blocks of [`block_bytes`]`(tables)` bytes. Writes
/// each block's 32 integer sums in lane order (see [`lane_of`]) and returns bit `r` set iff row `r`
/// of the group (block `r / 32`, row `r % 32`) has a sum of at least `threshold`; bits of a
/// missing second block are zero.
pub(crate) type BlockKernel = unsafe fn(&[u8], &[u8], u16, &mut [u16; GROUP_ROWS]) -> u64;

/// Bytes of one block of the codes `tables` scores (one code byte per `TABLE_STRIDE` table bytes).
#[inline(always)]
pub(crate) fn block_bytes(tables: &[u8]) -> usize {
    tables.len() / TABLE_STRIDE * BLOCK_ROWS
}

/// Where row `r` of a group (`0..GROUP_ROWS`) has its sum in a [`BlockKernel`]'s output: per
/// block, rows 0, 2, ..., 30, then 1, 3, ..., 31.
#[inline]
pub(crate) fn lane_of(r: usize) -> usize {
    let (b, r) = (r / BLOCK_ROWS, r % BLOCK_ROWS);
    b * BLOCK_ROWS + r / 2 + (r % 2) * (BLOCK_ROWS / 2)
}

/// The quantized tables of one query and the constants relating their sums to float scores.
#[derive(Debug, Clone)]
pub(crate) struct NibbleLuts {
    tables: Vec<u8>,
    offset: f64,
    delta: f64,
    /// `S <= offset + delta * A + upper` for every row.
    upper: f64,
    /// `S >= offset + delta * A - lower` for every row (negative row scales use this side).
    lower: f64,
}

/// The sum of 16 values by halving (pairs of lanes; it vectorizes).
#[inline(always)]
fn sum_by_halves(mut v: [f64; NIBBLE_VALUES]) -> f64 {
    let mut half = NIBBLE_VALUES / 2;
    while half > 0 {
        for i in 0..half {
            v[i] += v[i + half];
        }
        half /= 2;
    }
    v[0]
}

/// The smallest and largest of 16 finite values, by halving (four steps of independent lanes, which
/// vectorize; a fold is sixteen dependent steps). Plain comparisons, not `f64::min`: NaN handling
/// costs.
#[inline(always)]
fn min_max(t: &[f64; NIBBLE_VALUES]) -> (f64, f64) {
    let (mut lo, mut hi) = (*t, *t);
    let mut half = NIBBLE_VALUES / 2;
    while half > 0 {
        for i in 0..half {
            let (a, b) = (lo[i + half], hi[i + half]);
            lo[i] = if a < lo[i] { a } else { lo[i] };
            hi[i] = if b > hi[i] { b } else { hi[i] };
        }
        half /= 2;
    }
    (lo[0], hi[0])
}

impl NibbleLuts {
    /// Quantizes the nibble tables of query `q`; `None` when the format has no nibble-separable
    /// tables (`bits == 8`) or rows are too long for 16-bit sums.
    pub(crate) fn build(q: &[f32], recon: &Recon, luts: &ByteLuts) -> Option<Self> {
        let format = recon.format();
        let per_byte = format.fields_per_byte();
        if per_byte < 2 {
            return None;
        }
        let bytes = format.row_bytes();
        let (bits, mask) = (format.bits() as usize, usize::from(format.field_mask()));
        let per_nibble = per_byte / 2;
        // Float64 nibble tables: [byte][half][value], and per byte the sum over its fields of the
        // largest |product| (which bounds every partial sum of the byte table).
        let mut nibble = vec![[[0f64; NIBBLE_VALUES]; 2]; bytes];
        let mut rho = vec![0f64; bytes];
        for (i, (halves, rho)) in nibble.iter_mut().zip(&mut rho).enumerate() {
            let mut reach = 0f64;
            for (h, table) in halves.iter_mut().enumerate() {
                for f in 0..per_nibble {
                    let j = i * per_byte + h * per_nibble + f;
                    if j >= format.dims() {
                        break;
                    }
                    let (qj, values) = (f64::from(q[j]), recon.dim(j));
                    reach += values
                        .iter()
                        .fold(0f64, |m, &v| m.max((qj * f64::from(v)).abs()));
                    for (u, entry) in table.iter_mut().enumerate() {
                        *entry += qj * f64::from(values[(u >> (f * bits)) & mask]);
                    }
                }
            }
            // The byte table is float32 products summed in float32 (per_byte - 1 adds), the nibble
            // tables nearly exact: they differ by at most (per_byte + 1) * 2^-24 * reach.
            *rho = 1.01 * (per_byte + 1) as f64 * f64::from(f32::EPSILON) / 2.0 * reach;
        }
        Self::quantize(&nibble, luts, Some(&rho))
    }

    /// Quantized tables for byte tables given directly (the byte-LUT codecs): each byte's table is
    /// split into the least-squares nibble-separable pair `T[lo + 16 hi] ≈ A[lo] + B[hi]`
    /// (`A` the means over `hi`, `B` the means over `lo` less the grand mean), exact for tables that
    /// are separable (codes whose nibbles hold disjoint dimensions). Any table is accepted: the
    /// bounds use the actual errors, so the top-k stays exact; a table far from separable only
    /// loosens them (more rows re-scored). `None` when rows are too long for 16-bit sums.
    #[inline(always)]
    pub(crate) fn from_byte_luts(luts: &ByteLuts) -> Option<Self> {
        // Plain loops, not iterator adaptors: they inline into the caller's wider registers
        // (`leveled!`). A row's sum by halving vectorizes; its last bits may differ from a
        // sum in order, which changes no result (the bounds measure the actual errors).
        let tables = luts.tables();
        let mut nibble = vec![[[0f64; NIBBLE_VALUES]; 2]; tables.len()];
        let n = NIBBLE_VALUES as f64;
        for (t, out) in tables.iter().zip(nibble.iter_mut()) {
            let (mut lo, mut hi) = ([0f64; NIBBLE_VALUES], [0f64; NIBBLE_VALUES]);
            for (h, row) in t.chunks_exact(NIBBLE_VALUES).enumerate() {
                let mut v = [0f64; NIBBLE_VALUES];
                for (v, &x) in v.iter_mut().zip(row) {
                    *v = f64::from(x);
                }
                for (lo, &x) in lo.iter_mut().zip(&v) {
                    *lo += x;
                }
                hi[h] = sum_by_halves(v);
            }
            let grand = sum_by_halves(lo) / (NIBBLE_VALUES * NIBBLE_VALUES) as f64;
            for (o, &v) in out[0].iter_mut().zip(&lo) {
                *o = v / n;
            }
            for (o, &v) in out[1].iter_mut().zip(&hi) {
                *o = v / n - grand;
            }
        }
        Self::quantize(&nibble, luts, None)
    }

    /// Quantized tables of byte tables that are exactly `T[v] = fl(A[v & 15] + B[v >> 4])` for the
    /// given float32 nibble tables `split[byte] = [A, B]` (codecs whose nibbles code different
    /// dimensions, built by [`super::TableCodec`]'s projected slots): the bound's errors follow from
    /// the 32 nibble entries of a byte instead of its 256 byte values.
    #[inline(always)]
    pub(crate) fn from_split(split: &[[[f32; NIBBLE_VALUES]; 2]], luts: &ByteLuts) -> Option<Self> {
        let mut nibble = vec![[[0f64; NIBBLE_VALUES]; 2]; split.len()];
        for (out, halves) in nibble.iter_mut().zip(split) {
            for (o, h) in out.iter_mut().zip(halves) {
                for (o, &v) in o.iter_mut().zip(h) {
                    *o = f64::from(v);
                }
            }
        }
        // T[v] = fl(A + B): one float32 rounding, at most 2^-24 |T[v]|.
        let mut rho = vec![0f64; split.len()];
        for (r, &m) in rho.iter_mut().zip(luts.abs_max()) {
            *r = 1.01 * f64::from(f32::EPSILON) / 2.0 * m;
        }
        Self::quantize(&nibble, luts, Some(&rho))
    }

    /// Quantizes float64 nibble tables (`[byte][half][value]`) against the float byte tables the
    /// exact scores use: with `rho`, byte `i`'s table is within `rho[i]` of the sum of its two
    /// nibble tables at every value (the bound then needs only the 32 nibble entries); without, the
    /// errors are measured at all 256 values. `None` when rows are too long for 16-bit sums.
    #[inline(always)]
    fn quantize(
        nibble: &[[[f64; NIBBLE_VALUES]; 2]],
        luts: &ByteLuts,
        rho: Option<&[f64]>,
    ) -> Option<Self> {
        let bytes = nibble.len();
        // Per-byte cap on `lo + hi` so that `bytes * cap` fits a u16 sum.
        let cap = (u16::MAX as usize / bytes.max(1)).min(255);
        if cap < 2 || bytes != luts.bytes() {
            return None;
        }
        let mut ranges = vec![[(0f64, 0f64); 2]; bytes];
        let mut spread = 0f64;
        for (r, [lo, hi]) in ranges.iter_mut().zip(nibble) {
            *r = [min_max(lo), min_max(hi)];
            let [(a, b), (c, d)] = *r;
            spread = spread.max((b - a) + (d - c));
        }
        let delta = if spread > 0.0 && spread.is_finite() {
            spread / (cap - 1) as f64
        } else {
            1.0
        };
        // Multiplying by the inverse rounds differently from dividing; the bound below uses the
        // quantized values actually chosen, so it stays exact.
        let inverse = 1.0 / delta;
        let mut tables = vec![0u8; bytes * TABLE_STRIDE];
        let mut offset = 0f64;
        // Sums over bytes of the most negative and most positive table errors.
        let (mut below, mut above) = (0f64, 0f64);
        for (i, ((halves, range), out)) in nibble
            .iter()
            .zip(&ranges)
            .zip(tables.chunks_exact_mut(TABLE_STRIDE))
            .enumerate()
        {
            let mut quantized = [[0u8; NIBBLE_VALUES]; 2];
            for h in 0..2 {
                let low = range[h].0;
                // To int32 lanes first, then to bytes: fused into one loop the conversions stayed
                // scalar (one load, convert and byte store per value).
                let mut ints = [0i32; NIBBLE_VALUES];
                for (o, &v) in ints.iter_mut().zip(&halves[h]) {
                    // Round half up by truncation (values are >= 0; `f64::round` is a libm call on
                    // baseline x86-64). Clamped first (max/min also map NaN into range), so the truncation needs
                    // none of `as u8`'s saturation fix-ups: the same bytes.
                    #[allow(clippy::manual_clamp)] // not `clamp`, which keeps NaN
                    let t = ((v - low) * inverse + 0.5).max(0.0).min(255.0);
                    // SAFETY: `t` is finite and in 0..=255.
                    *o = unsafe { t.to_int_unchecked::<i32>() };
                }
                for (q, &i) in quantized[h].iter_mut().zip(&ints) {
                    *q = i as u8;
                }
            }
            let mut tops = [0u8; 2];
            for (t, q) in tops.iter_mut().zip(&quantized) {
                for &v in q {
                    *t = (*t).max(v);
                }
            }
            if usize::from(tops[0]) + usize::from(tops[1]) > cap {
                return None; // cannot happen with `delta` above; refuse rather than wrap
            }
            let base = range[0].0 + range[1].0;
            offset += base;
            if let Some(rho) = rho {
                // T[v] - (base + delta (Qa + Qb)) = (A - la - delta Qa) + (B - lb - delta Qb) + r,
                // with |r| <= rho[i].
                let mut errors = [(0f64, 0f64); 2];
                for (h, out) in errors.iter_mut().enumerate() {
                    let mut e = [0f64; NIBBLE_VALUES];
                    for ((e, &v), &q) in e.iter_mut().zip(&halves[h]).zip(&quantized[h]) {
                        *e = v - range[h].0 - delta * f64::from(q);
                    }
                    *out = min_max(&e);
                }
                let [(a_lo, a_hi), (b_lo, b_hi)] = errors;
                below += a_lo + b_lo - rho[i];
                above += a_hi + b_hi + rho[i];
                for copy in 0..2 {
                    out[copy * NIBBLE_VALUES..][..NIBBLE_VALUES].copy_from_slice(&quantized[0]);
                    out[(2 + copy) * NIBBLE_VALUES..][..NIBBLE_VALUES]
                        .copy_from_slice(&quantized[1]);
                }
                continue;
            }
            // The signed error of every byte value v = lo + 16 hi against the float table the exact
            // scores use: T[v] - (base + delta * (Qlo[lo] + Qhi[hi])). Lanes over `lo` keep the
            // loop free of cross-iteration dependencies (it vectorizes).
            let exact = luts.byte(i);
            let (mut lane_lo, mut lane_hi) = ([f64::INFINITY; 16], [f64::NEG_INFINITY; 16]);
            for (hi, t) in exact.chunks_exact(NIBBLE_VALUES).enumerate() {
                let shift = delta * f64::from(quantized[1][hi]);
                for lo in 0..NIBBLE_VALUES {
                    let e = f64::from(t[lo]) - shift;
                    lane_lo[lo] = if e < lane_lo[lo] { e } else { lane_lo[lo] };
                    lane_hi[lo] = if e > lane_hi[lo] { e } else { lane_hi[lo] };
                }
            }
            let (mut low_err, mut high_err) = (f64::INFINITY, f64::NEG_INFINITY);
            for lo in 0..NIBBLE_VALUES {
                let approx = base + delta * f64::from(quantized[0][lo]);
                low_err = low_err.min(lane_lo[lo] - approx);
                high_err = high_err.max(lane_hi[lo] - approx);
            }
            below += low_err;
            above += high_err;
            for copy in 0..2 {
                out[copy * NIBBLE_VALUES..][..NIBBLE_VALUES].copy_from_slice(&quantized[0]);
                out[(2 + copy) * NIBBLE_VALUES..][..NIBBLE_VALUES].copy_from_slice(&quantized[1]);
            }
        }
        let magnitude: f64 = luts.abs_max().iter().sum();
        // A float32 sum of `bytes` terms errs by at most about bytes * 2^-24 * Σ|terms|.
        let summation = 1.01 * bytes as f64 * f64::from(f32::EPSILON) / 2.0 * magnitude;
        // Margin for the float64 arithmetic of the bound itself.
        let arithmetic = 1e-12 * (offset.abs() + magnitude + delta * f64::from(u16::MAX));
        let margin = |x: f64| x * (1.0 + 1e-9) + summation * (1.0 + 1e-9) + arithmetic;
        Some(Self {
            tables,
            offset,
            delta,
            upper: margin(above.max(0.0)),
            lower: margin((-below).max(0.0)),
        })
    }

    /// The tables, [`TABLE_STRIDE`] bytes per code byte.
    pub(crate) fn tables(&self) -> &[u8] {
        &self.tables
    }

    /// A threshold on integer sums below which no row can score `kth` or more.
    pub(crate) fn min_sum(&self, kth: f32) -> u16 {
        self.min_sum_raw(f64::from(kth))
    }

    /// A threshold on integer sums below which no row's float (unscaled) score reaches `raw`.
    pub(crate) fn min_sum_raw(&self, raw: f64) -> u16 {
        if raw == f64::NEG_INFINITY {
            return 0;
        }
        let x = (raw - self.offset - self.upper) / self.delta;
        // Truncation is the floor for x >= 0; `as u16` saturates (negative and NaN give 0).
        x as u16
    }

    /// With per-row scales (`score = fl(s * raw)`), a threshold for a group whose scales are all
    /// in `[s_min, s_max]`, `0 < s_min`: a row whose sum is below it cannot score `kth` or more.
    ///
    /// `fl(s * raw) >= kth` needs `s * raw >= k'` with `k' = kth - |kth| 2^-23 - TINY` (float32
    /// rounding of the product), so `raw >= k' / s`, which is at least `k' / s_max` when `k' > 0`
    /// and at least `k' / s_min` otherwise.
    pub(crate) fn min_sum_scaled(&self, kth: f32, s_min: f32, s_max: f32) -> u16 {
        if kth == f32::NEG_INFINITY {
            return 0;
        }
        let k = f64::from(kth);
        let k = k - k.abs() * SCALE_ROUNDING - TINY;
        let raw = if k > 0.0 {
            k / f64::from(s_max)
        } else {
            k / f64::from(s_min)
        };
        // The division rounds (relative 2^-53); step below it.
        self.min_sum_raw(raw - raw.abs() * 1e-12)
    }

    /// Whether a row with integer sum `sum` and scale `s` (any sign) may score `kth` or more:
    /// its unscaled score lies in the sum's interval `[lo, hi]`, so its scaled score is at most
    /// `max(s lo, s hi)` plus the float32 rounding of the product.
    #[inline]
    pub(crate) fn may_reach(&self, sum: u16, s: f32, kth: f32) -> bool {
        if kth == f32::NEG_INFINITY {
            return true;
        }
        let (lo, hi) = self.interval(sum);
        let s = f64::from(s);
        let (a, b) = (s * lo, s * hi);
        let top = a.max(b);
        top + a.abs().max(b.abs()) * SCALE_ROUNDING + TINY >= f64::from(kth)
    }

    /// The float score interval `[lo, hi]` an integer sum stands for.
    #[inline]
    pub(crate) fn interval(&self, sum: u16) -> (f64, f64) {
        let mid = self.offset + self.delta * f64::from(sum);
        (mid - self.lower, mid + self.upper)
    }
}

/// Relative rounding allowance of a float32 product computed and compared in float64 (twice the
/// float32 unit roundoff: the product's rounding plus the float64 arithmetic of the bound).
const SCALE_ROUNDING: f64 = 1.0 / (1u64 << 23) as f64;

/// Absolute allowance for subnormal results (a float32 product rounds by at most 2^-150 there).
const TINY: f64 = 1e-40;

/// Scalar twin of the AVX2 and AVX-512 kernels (see [`BlockKernel`]).
///
/// # Safety
/// None beyond the length contract of [`BlockKernel`] (checked by the iterators); `unsafe` only to
/// share the kernel type.
pub(crate) unsafe fn block_scalar(
    tables: &[u8],
    blocks: &[u8],
    threshold: u16,
    sums: &mut [u16; GROUP_ROWS],
) -> u64 {
    let mut mask = 0u64;
    for (b, block) in blocks
        .chunks_exact(block_bytes(tables).max(1))
        .take(GROUP_BLOCKS)
        .enumerate()
    {
        for r in 0..BLOCK_ROWS {
            let sum: u32 = tables
                .chunks_exact(TABLE_STRIDE)
                .zip(block.chunks_exact(BLOCK_ROWS))
                .map(|(t, x)| {
                    let v = usize::from(x[r]);
                    u32::from(t[v & 15]) + u32::from(t[2 * NIBBLE_VALUES + (v >> 4)])
                })
                .sum();
            let row = b * BLOCK_ROWS + r;
            // Sums fit: `NibbleLuts::build` caps a byte's entries so that all bytes sum below 2^16.
            sums[lane_of(row)] = sum as u16;
            mask |= u64::from(sum >= u32::from(threshold)) << row;
        }
    }
    mask
}

#[cfg(target_arch = "x86_64")]
#[path = "fastscan_avx2.rs"]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
#[path = "fastscan_avx512.rs"]
pub(crate) mod avx512;
