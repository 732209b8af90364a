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
fn round(v: &[f32]) -> (f64, Vec<i8>, f64, f64) {
    let peak = v.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs()));
    let scale = if peak > 0.0 { peak / LEVELS } else { 1.0 };
    let inverse = 1.0 / scale;
    let (mut rounded, mut err) = (0f64, 0f64);
    let codes = v
        .iter()
        .map(|&x| {
            // Half away from zero by truncation (`f64::round` is a libm call without SSE4.1);
            // any rounding will do: the bound counts the error that the codes have.
            let t = f64::from(x) * inverse;
            let code = ((t + 0.5f64.copysign(t)) as i64 as f64).clamp(-LEVELS, LEVELS);
            let back = code * scale;
            rounded += back * back;
            err += (f64::from(x) - back).powi(2);
            code as i8
        })
        .collect();
    (scale, codes, rounded.sqrt(), err.sqrt())
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
    pub(super) fn query(&self, q: &[f32]) -> QueryBytes {
        let (scale, codes, rounded_norm, err) = round(q);
        let mut bytes = vec![128u8; self.groups * 4];
        for (b, &c) in bytes.iter_mut().zip(&codes) {
            *b = (i16::from(c) + 128) as u8;
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

    /// [`Bytes::products_portable`] of the queries `qs`, with AVX-512 VNNI when `vnni`.
    pub(super) fn products(&self, qs: &[QueryBytes], vnni: bool) -> Vec<Vec<i32>> {
        #[cfg(target_arch = "x86_64")]
        if vnni {
            return qs
                .iter()
                .map(|q| {
                    let mut out = vec![0i32; self.scale.len()];
                    // SAFETY: `vnni` is true only where the CPU has AVX-512F + VNNI (the caller's
                    // `Isa::Avx512`); `q.bytes` holds `groups * 4` bytes, `codes` `padded * groups * 4`
                    // and `out` `padded` values.
                    unsafe { products_vnni(&q.bytes, &self.codes, self.groups, &mut out) };
                    for (o, s) in out.iter_mut().zip(&self.sums) {
                        *o -= 128 * s;
                    }
                    out
                })
                .collect();
        }
        let _ = vnni;
        qs.iter().map(|q| self.products_portable(q)).collect()
    }

    /// The lists whose exact score (float32, `dims` values summed as [`crate::codec::float::dot`]
    /// does) can be among the `width` best, ascending, from a query's integer `products`; None
    /// where that is more than half of them (scoring them all costs about the same then), and where
    /// a score could overflow float32 (the bound holds for finite scores only).
    pub(super) fn candidates(
        &self,
        q: &QueryBytes,
        products: &[i32],
        dims: usize,
        width: usize,
    ) -> Option<Vec<usize>> {
        if !self.helps(width) || q.norm * self.max_norm >= f64::powi(2.0, 126) {
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
        let (lo, hi): (Vec<f64>, Vec<f64>) = products[..n]
            .iter()
            .zip(&self.scale[..n])
            .zip(self.norm[..n].iter().zip(&self.err[..n]))
            .map(|((&p, &s), (&c, &e))| {
                let approx = f64::from(p) * q.scale * s;
                let bound = a * c + b * e + 1e-12 * approx.abs() + tiny;
                (approx - bound, approx + bound)
            })
            .unzip();
        let threshold = nth_largest(&lo, width);
        let keep: Vec<usize> = (0..n).filter(|&j| hi[j] >= threshold).collect();
        (2 * keep.len() <= self.nlist).then_some(keep)
    }
}

/// The `width`-th largest of `values` (`1 <= width <= values.len()`, no NaN). The smallest of the
/// maxima of `width` or more disjoint runs is at most that (they are as many distinct values), so
/// only the values at or above it take part in the selection: a few times `width`, not all.
fn nth_largest(values: &[f64], width: usize) -> f64 {
    let run = (values.len() / width).max(1);
    let floor = values
        .chunks(run)
        .map(|r| r.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        .fold(f64::INFINITY, f64::min);
    let mut above: Vec<f64> = values.iter().copied().filter(|&v| v >= floor).collect();
    *above
        .select_nth_unstable_by(width - 1, |a, b| b.total_cmp(a))
        .1
}

/// The products of one query's bytes with every block of centroids: eight blocks at a time (eight
/// chains of `vpdpbusd` in flight: four left the chains' latency exposed), each lane one centroid.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512 VNNI; `q` holds `groups * 4` bytes, `codes` whole
/// blocks of `groups * 64` bytes and `out` one value per centroid of them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn products_vnni(q: &[u8], codes: &[i8], groups: usize, out: &mut [i32]) {
    use std::arch::x86_64::*;
    const CHAINS: usize = 8;
    let blocks = out.len() / BLOCK;
    let words: Vec<i32> = q
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    for first in (0..blocks).step_by(CHAINS) {
        // Where blocks run out, the last one is done again (the same values written twice).
        let at: [usize; CHAINS] = std::array::from_fn(|c| (first + c).min(blocks - 1));
        let mut acc = [_mm512_setzero_si512(); CHAINS];
        for (g, &w) in words.iter().enumerate() {
            let x = _mm512_set1_epi32(w);
            for (a, &b) in acc.iter_mut().zip(&at) {
                // SAFETY: block `b < blocks` and group `g < groups`: 64 bytes inside `codes`.
                let c =
                    unsafe { _mm512_loadu_si512(codes.as_ptr().add((b * groups + g) * 64).cast()) };
                *a = _mm512_dpbusd_epi32(*a, x, c);
            }
        }
        for (a, &b) in acc.iter().zip(&at) {
            // SAFETY: `out` holds `blocks * 16` values.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(b * BLOCK).cast(), *a) };
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
