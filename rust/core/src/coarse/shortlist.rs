//! A cheap first pass over the centroids that keeps the exact ranking. The centroids (each with its
//! own scale) and the query (likewise) are rounded to int8; their integer products cost a quarter of
//! the float16 bytes and no widening (AVX-512 VNNI: 64 products an instruction). From the rounding
//! errors each exact score gets a lower and an upper bound: `|<q, c> - <q', c'>| <= |q - q'| |c| +
//! |q'| |c - c'|`, plus the float32 rounding of the exact product. A list can be among the `width`
//! best only if its upper bound reaches the `width`-th largest lower bound, so only those lists are
//! scored exactly, and the ranking is the exact one, ties included. On the 199k wiki vectors in
//! 1,024 lists that leaves 13 / 49 / 185 lists on average at widths 8 / 32 / 128.
//!
//! Hand-written: no library scores int8 tiles against one float query with a proof of the ranking.

/// Centroids per interleaved block: the 16 int32 lanes of a 512-bit register.
pub(super) const BLOCK: usize = 16;

/// The centroids as int8, each block of [`BLOCK`] centroids interleaved by 4 dimensions (for each
/// group of 4 dimensions, 4 bytes of each centroid in turn: one `vpdpbusd` operand), with what the
/// bound needs per centroid.
#[derive(Debug, Clone)]
pub(super) struct Bytes {
    codes: Vec<i8>,
    /// Groups of 4 dimensions (the last zero-padded).
    groups: usize,
    nlist: usize,
    /// `c' = scale * code` (float64: the bound's arithmetic).
    scale: Vec<f64>,
    /// The sum of a centroid's codes (the query's bytes are offset by 128).
    sums: Vec<i32>,
    /// `|c|` and `|c - c'|`.
    norm: Vec<f64>,
    err: Vec<f64>,
    /// The largest `|c|` (scores of queries past `2^126 / max_norm` could overflow float32).
    max_norm: f64,
}

/// A query rounded to bytes: `q' = scale * (byte - 128)`, and the norms the bound needs.
#[derive(Debug, Clone)]
pub(super) struct QueryBytes {
    bytes: Vec<u8>,
    scale: f64,
    /// `|q|`, `|q'|` and `|q - q'|`.
    norm: f64,
    rounded_norm: f64,
    err: f64,
}

/// The largest magnitude a code takes (symmetric: -127..=127).
const LEVELS: f64 = 127.0;

/// Per-vector scale, codes and `(|v'|, |v - v'|)` of `v` rounded to -127..=127 times the scale.
/// Plain loops over preallocated buffers, so they inline and vectorize where the caller is compiled
/// for wider registers (see `crate::isa::leveled`).
#[inline(always)]
fn round(v: &[f32]) -> (f64, Vec<i8>, f64, f64) {
    // Whole chunks of 8 then the tail: fixed-size lanes stay in registers.
    let mut peaks = [0f64; 8];
    let whole = v.chunks_exact(8);
    for &x in whole.remainder() {
        let a = f64::from(x).abs();
        peaks[0] = if a > peaks[0] { a } else { peaks[0] };
    }
    for c in whole {
        for l in 0..8 {
            let a = f64::from(c[l]).abs();
            peaks[l] = if a > peaks[l] { a } else { peaks[l] };
        }
    }
    let peak = peaks.iter().fold(0f64, |m, &p| if p > m { p } else { m });
    let scale = if peak > 0.0 { peak / LEVELS } else { 1.0 };
    let inverse = 1.0 / scale;
    let mut codes = vec![0i8; v.len()];
    // Eight partial sums each: any order of the sums is within the bound's 1e-9 relative slack.
    let (mut rounded, mut err) = ([0f64; 8], [0f64; 8]);
    // The code of `x`: half away from zero by truncation (`f64::round` is a libm call without
    // SSE4.1); any rounding will do: the bound counts the error that the codes have. Clamped, then
    // truncated (the same codes as truncating first: the bounds are integers); max/min map NaN into
    // range, so the truncation needs no saturation fix-ups.
    let code_of = |x: f32| -> i32 {
        let t = f64::from(x) * inverse;
        #[allow(clippy::manual_clamp)] // not `clamp`, which keeps NaN
        let r = (t + 0.5f64.copysign(t)).max(-LEVELS).min(LEVELS);
        // SAFETY: `r` is finite and within ±127.
        unsafe { r.to_int_unchecked::<i32>() }
    };
    let mut codes_whole = codes.chunks_exact_mut(8);
    let whole = v.chunks_exact(8);
    let tail = whole.remainder();
    for (cs, xs) in (&mut codes_whole).zip(whole) {
        // Whole arrays a step at a time (they vectorize; one loop with the sums stayed scalar).
        let ints: [i32; 8] = std::array::from_fn(|l| code_of(xs[l]));
        let back: [f64; 8] = std::array::from_fn(|l| f64::from(ints[l]) * scale);
        for l in 0..8 {
            rounded[l] += back[l] * back[l];
            let d = f64::from(xs[l]) - back[l];
            err[l] += d * d;
            cs[l] = ints[l] as i8;
        }
    }
    for (c, &x) in codes_whole.into_remainder().iter_mut().zip(tail) {
        let code = code_of(x);
        let back = f64::from(code) * scale;
        rounded[0] += back * back;
        err[0] += (f64::from(x) - back) * (f64::from(x) - back);
        *c = code as i8;
    }
    let total = |lanes: [f64; 8]| lanes.iter().sum::<f64>().sqrt();
    (scale, codes, total(rounded), total(err))
}

/// Indices `i` of `values` with `keep(values[i])`, ascending: eight compares into a mask at a time
/// (they vectorize; most masks are empty), then the set bits.
#[inline(always)]
fn positions(values: &[f64], keep: impl Fn(f64) -> bool, capacity: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(capacity);
    let whole = values.chunks_exact(8);
    let tail = whole.remainder();
    for (b, c) in whole.enumerate() {
        let mut mask = 0u32;
        for (l, &v) in c.iter().enumerate() {
            mask |= u32::from(keep(v)) << l;
        }
        while mask != 0 {
            out.push(b * 8 + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
    }
    let start = values.len() - tail.len();
    for (j, &v) in tail.iter().enumerate() {
        if keep(v) {
            out.push(start + j);
        }
    }
    out
}

impl Bytes {
    /// The int8 copy of `centroids` (`nlist * dims` finite values), or None where an integer product
    /// could overflow int32 (more than 60,000 dimensions).
    pub(super) fn new(centroids: &[f32], dims: usize) -> Option<Self> {
        // The kernel's sum of byte * code stays within dims * 255 * 127 < 2^31 (dims <= 66,000);
        // the product less the offset, within dims * 127^2.
        if dims == 0 || dims > 60_000 {
            return None;
        }
        let nlist = centroids.len() / dims;
        let groups = dims.div_ceil(4);
        let padded = nlist.div_ceil(BLOCK) * BLOCK;
        let mut out = Self {
            codes: vec![0; padded * groups * 4],
            groups,
            nlist,
            scale: vec![1.0; padded],
            sums: vec![0; padded],
            norm: vec![0.0; padded],
            err: vec![0.0; padded],
            max_norm: 0.0,
        };
        for (j, c) in centroids.chunks_exact(dims).enumerate() {
            let (scale, codes, _, err) = round(c);
            out.scale[j] = scale;
            out.err[j] = err;
            out.norm[j] = super::norm(c);
            out.max_norm = out.max_norm.max(out.norm[j]);
            out.sums[j] = codes.iter().map(|&b| i32::from(b)).sum();
            for (t, &b) in codes.iter().enumerate() {
                let at = out.at(j, t);
                out.codes[at] = b;
            }
        }
        Some(out)
    }

    /// Where dimension `t` of centroid `j` is held.
    fn at(&self, j: usize, t: usize) -> usize {
        ((j / BLOCK) * self.groups + t / 4) * BLOCK * 4 + (j % BLOCK) * 4 + t % 4
    }

    /// Whether a shortlist can be shorter than half the lists at `width` (else every list is
    /// scored: about the same cost).
    pub(super) fn helps(&self, width: usize) -> bool {
        width > 0 && 2 * width <= self.nlist
    }

    /// Bytes held (the codes and the per-centroid values).
    pub(super) fn nbytes(&self) -> usize {
        self.codes.len() + self.scale.len() * (8 + 4 + 8 + 8)
    }

    /// `q` (`dims` finite floats) rounded as [`Bytes::products`] reads it.
    #[inline(always)]
    pub(super) fn query(&self, q: &[f32]) -> QueryBytes {
        let (scale, codes, rounded_norm, err) = round(q);
        let mut bytes = vec![128u8; self.groups * 4];
        for (b, &c) in bytes.iter_mut().zip(&codes) {
            *b = (c as u8) ^ 0x80; // c + 128 for -128..=127
        }
        QueryBytes {
            bytes,
            scale,
            norm: super::norm(q),
            rounded_norm,
            err,
        }
    }

    /// The integer products `<byte - 128, code>` of one query with every centroid (padded to
    /// [`BLOCK`]), portably: the scalar twin of [`products_vnni`].
    pub(super) fn products_portable(&self, q: &QueryBytes) -> Vec<i32> {
        let padded = self.scale.len();
        (0..padded)
            .map(|j| {
                let raw: i32 = (0..self.groups * 4)
                    .map(|t| i32::from(q.bytes[t]) * i32::from(self.codes[self.at(j, t)]))
                    .sum();
                raw - 128 * self.sums[j]
            })
            .collect()
    }

    /// [`Bytes::products_portable`] of the queries `qs`, with AVX-512 VNNI when `vnni` (a block of
    /// four queries reads each centroid once for all four: the int8 copy streams from L3 at 1,024
    /// lists, so sharing its loads is what a batch saves; integer sums, so the same values).
    pub(super) fn products(&self, qs: &[QueryBytes], vnni: bool) -> Vec<Vec<i32>> {
        #[cfg(target_arch = "x86_64")]
        if vnni {
            let mut outs = vec![vec![0i32; self.scale.len()]; qs.len()];
            let mut at = 0;
            while at < qs.len() {
                if qs.len() - at >= 4 {
                    let q: [&[u8]; 4] = std::array::from_fn(|i| &qs[at + i].bytes[..]);
                    let [a, b, c, d] = &mut outs[at..at + 4] else {
                        unreachable!("four outputs")
                    };
                    // SAFETY: `vnni` is true only where the CPU has AVX-512F + VNNI (the caller's
                    // `Isa::Avx512`); each query holds `groups * 4` bytes, `codes` `padded * groups
                    // * 4` and each output `padded` values.
                    unsafe {
                        products_vnni::<4, 4>(q, &self.codes, self.groups, [a, b, c, d]);
                    }
                    at += 4;
                } else {
                    // SAFETY: as above, for one query.
                    unsafe {
                        products_vnni::<1, 8>(
                            [&qs[at].bytes[..]],
                            &self.codes,
                            self.groups,
                            [&mut outs[at]],
                        );
                    }
                    at += 1;
                }
            }
            for out in &mut outs {
                for (o, s) in out.iter_mut().zip(&self.sums) {
                    *o -= 128 * s;
                }
            }
            return outs;
        }
        let _ = vnni;
        qs.iter().map(|q| self.products_portable(q)).collect()
    }

    /// The lists whose key can be among the `width` best, ascending, from a query's integer
    /// `products`: the key is the exact score (float32, `dims` values summed as
    /// [`crate::codec::float::dot`] does), less the list's offset where `offsets` are given (one
    /// float32 subtraction). None where that is more than half of them (scoring them all costs
    /// about the same then), and where a key could overflow float32 (the bound holds for finite
    /// keys only).
    #[inline(always)]
    pub(super) fn candidates(
        &self,
        q: &QueryBytes,
        products: &[i32],
        dims: usize,
        width: usize,
        offsets: Option<&super::Offsets>,
    ) -> Option<Vec<usize>> {
        let big = f64::powi(2.0, 126);
        let largest = offsets.map_or(0.0, |o| f64::from(o.largest)); // >= 0, maybe inf, never NaN
        if !self.helps(width) || q.norm * self.max_norm >= big || largest >= big {
            return None;
        }
        // The float32 product's own rounding: at most (depth) * 2^-24 * sum |q_t c_t|, with depth
        // the longest chain of roundings in `dot` (dims / 8 products and sums per lane, the lanes'
        // reduction, the tail), and sum |q_t c_t| <= |q| |c|; plus 2^-150 a product that falls
        // below float32's normal range (adding such values is exact).
        let depth = (dims / 8 + 16) as f64;
        let float = 1.01 * depth * f64::powi(2.0, -24);
        let tiny = dims as f64 * f64::powi(2.0, -149);
        // bound_j = a |c_j| + b |c_j - c'_j| + 1e-12 |approx_j| + tiny.
        let a = q.err * (1.0 + 1e-9) + (float + 1e-12) * q.norm;
        let b = q.rounded_norm * (1.0 + 1e-9);
        let n = self.nlist;
        let (mut lo, mut hi) = (vec![0f64; n], vec![0f64; n]);
        // Zipped slices of one length: no bounds checks, so the loop vectorizes.
        let per_list = products[..n]
            .iter()
            .zip(&self.scale[..n])
            .zip(self.norm[..n].iter().zip(&self.err[..n]));
        for ((l, h), ((&p, &s), (&c, &e))) in lo.iter_mut().zip(hi.iter_mut()).zip(per_list) {
            let approx = f64::from(p) * q.scale * s;
            let bound = a * c + b * e + 1e-12 * approx.abs() + tiny;
            *l = approx - bound;
            *h = approx + bound;
        }
        if let Some(o) = offsets {
            // The key `fl32(s - o)` of a score `s` in [lo, hi]: rounding is monotonic, so the key is
            // within [lo - o, hi - o] widened by one float32 rounding (2^-24 relative, 2^-150
            // absolute below the normal range; twice that covers the float64 subtraction).
            let slack = |v: f64| v.abs() * f64::powi(2.0, -23) + f64::powi(2.0, -149);
            for ((l, h), &o) in lo.iter_mut().zip(hi.iter_mut()).zip(&o.values[..n]) {
                let (kl, kh) = (*l - f64::from(o), *h - f64::from(o));
                *l = kl - slack(kl);
                *h = kh + slack(kh);
            }
        }
        let threshold = nth_largest(&lo, width);
        let keep = positions(&hi, |h| h >= threshold, 4 * width);
        (2 * keep.len() <= self.nlist).then_some(keep)
    }
}

/// The `width`-th largest of `values` (`1 <= width <= values.len()`, no NaN). The smallest of the
/// maxima of `width` or more disjoint runs is at most that (they are as many distinct values), so
/// only the values at or above it take part in the selection: a few times `width`, not all.
#[inline(always)]
fn nth_largest(values: &[f64], width: usize) -> f64 {
    let run = (values.len() / width).max(1);
    let mut floor = f64::INFINITY;
    for r in values.chunks(run) {
        // Eight lanes of maxima (they vectorize; the maximum is the same in any order).
        let mut tops = [f64::NEG_INFINITY; 8];
        let whole = r.chunks_exact(8);
        let mut top = whole
            .remainder()
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        for c in whole {
            for l in 0..8 {
                tops[l] = if c[l] > tops[l] { c[l] } else { tops[l] };
            }
        }
        for t in tops {
            top = if t > top { t } else { top };
        }
        floor = if top < floor { top } else { floor };
    }
    let mut above: Vec<f64> = positions(values, |v| v >= floor, 4 * width)
        .into_iter()
        .map(|j| values[j])
        .collect();
    *above
        .select_nth_unstable_by(width - 1, |a, b| b.total_cmp(a))
        .1
}

/// The products of `NQ` queries' bytes with every block of centroids: `CHAINS` blocks at a time
/// (eight chains of `vpdpbusd` in flight for one query: four left the chains' latency exposed; four
/// blocks of four queries keep 16 accumulators), each lane one centroid; a centroid's 64 bytes are
/// loaded once for all `NQ` queries.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512 VNNI; each of `qs` holds `groups * 4` bytes, `codes`
/// whole blocks of `groups * 64` bytes and each of `outs` one value per centroid of them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn products_vnni<const NQ: usize, const CHAINS: usize>(
    qs: [&[u8]; NQ],
    codes: &[i8],
    groups: usize,
    mut outs: [&mut [i32]; NQ],
) {
    use std::arch::x86_64::*;
    let blocks = outs[0].len() / BLOCK;
    // Each query's groups of 4 bytes as the 32-bit words `vpdpbusd` broadcasts.
    let words: [Vec<i32>; NQ] = std::array::from_fn(|j| {
        let mut w = vec![0i32; groups];
        for (w, b) in w.iter_mut().zip(qs[j].chunks_exact(4)) {
            *w = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        w
    });
    for first in (0..blocks).step_by(CHAINS) {
        // Where blocks run out, the last one is done again (the same values written twice).
        let at: [usize; CHAINS] = std::array::from_fn(|c| (first + c).min(blocks - 1));
        let mut acc = [[_mm512_setzero_si512(); CHAINS]; NQ];
        for g in 0..groups {
            let c: [__m512i; CHAINS] = std::array::from_fn(|j| {
                // SAFETY: block `at[j] < blocks` and group `g < groups`: 64 bytes inside `codes`.
                unsafe { _mm512_loadu_si512(codes.as_ptr().add((at[j] * groups + g) * 64).cast()) }
            });
            for (acc, w) in acc.iter_mut().zip(&words) {
                let x = _mm512_set1_epi32(w[g]);
                for (a, &c) in acc.iter_mut().zip(&c) {
                    *a = _mm512_dpbusd_epi32(*a, x, c);
                }
            }
        }
        for (acc, out) in acc.iter().zip(outs.iter_mut()) {
            for (a, &b) in acc.iter().zip(&at) {
                // SAFETY: each output holds `blocks * 16` values.
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(b * BLOCK).cast(), *a) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_largest_is_the_selection_for_every_width() {
        for n in [1usize, 2, 7, 10, 64, 101] {
            let values: Vec<f64> = (0..n).map(|i| ((i * 7919) % 97) as f64 - 40.0).collect();
            let mut sorted = values.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            for width in 1..=n {
                assert_eq!(
                    nth_largest(&values, width),
                    sorted[width - 1],
                    "n {n} width {width}"
                );
            }
        }
    }
}
