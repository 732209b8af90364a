//! AVX2 batch kernel: nibble-lookup popcount (`vpshufb`) on lane-interleaved tiles, 4 rows per
//! register, plus a fifth row per group counted with scalar `popcnt` alongside.
//!
//! Per register of 4 row-words the vector part spends 8 operations (xor, two masks, a shift, two
//! lookups, two byte adds) on the four vector pipes of Zen 3; byte counts are summed across words
//! and widened once per group with `vpsadbw`, so there is no horizontal reduction per pair. The
//! vector loop leaves the integer ALUs idle, so each group also carries one row-major row that
//! scalar `popcnt` counts in the same iteration ([`hybrid_fixed`]).
//!
//! Why not scalar `popcnt` alone: on the Zen 3 VM this was tuned on, `popcnt` retires at about
//! 1.7 per cycle (measured with independent chains; not the 4 per cycle a dedicated Zen 3 core
//! gives), so the row-major kernel costs about 1 cycle per word. Cache-resident tile, 16
//! queries, CPU time per pair (the `perf_kernels_in_cache` timing run, removed with the old `topk`
//! module at c067302; `cargo bench -p qama-core --bench engine -- topk_batch` times the kernels now):
//!
//! | words | popcnt rows | vpshufb only | vpshufb + 1 popcnt row (chosen) |
//! |------:|------------:|-------------:|--------------------------------:|
//! |     6 |     1.88 ns |      1.48 ns |                         1.31 ns |
//! |    18 |     6.0 ns  |      4.26 ns |                         4.2 ns  |
#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::tile::GroupShape;
use super::TiledKernel;

/// Rows per register.
pub(crate) const LANES: usize = 4;

/// A byte can count 31 words of 8 bits (248) before it overflows.
const MAX_BYTE_WORDS: usize = 31;

/// Popcount of each byte of `x`.
#[inline]
#[target_feature(enable = "avx2")]
fn byte_popcounts(x: __m256i) -> __m256i {
    let lut = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, //
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
    );
    let low = _mm256_set1_epi8(0x0f);
    let lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low));
    let hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16::<4>(x), low));
    _mm256_add_epi8(lo, hi)
}

/// Stores the four 64-bit lane sums of `sums` as four `u32` at `out`.
///
/// # Safety
/// `out` must be valid for writing 4 `u32`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store_lanes(sums: __m256i, out: *mut u32) {
    let packed = _mm256_permutevar8x32_epi32(sums, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));
    // SAFETY: the caller guarantees 4 writable `u32` at `out`.
    unsafe { _mm_storeu_si128(out as *mut __m128i, _mm256_castsi256_si128(packed)) };
}

/// Distances of `q` (first `CW` words, the last masked with `mask`) to every row of an
/// interleaved tile (see `tile::interleave` with `LANES` lanes); `out[i]` gets row `i`.
///
/// # Safety
/// The CPU must support AVX2. Lengths are checked: `CW <= 31`, `q.len() >= CW`,
/// `out.len().is_multiple_of(LANES)` and `tile.len() == out.len() / LANES * CW * LANES`.
/// Kept next to the hybrid kernel, which beats it on the Zen 3 this was tuned on; tests and
/// timing runs compare the two.
#[cfg_attr(not(test), allow(dead_code))]
#[target_feature(enable = "avx2")]
unsafe fn tiled_fixed<const CW: usize>(
    q: &[u64],
    tile: &[u64],
    _cw: usize,
    mask: u64,
    out: &mut [u32],
) {
    assert!((1..=MAX_BYTE_WORDS).contains(&CW) && q.len() >= CW && out.len().is_multiple_of(LANES));
    let groups = out.len() / LANES;
    assert_eq!(tile.len(), groups * CW * LANES);
    let qb: [__m256i; CW] = std::array::from_fn(|w| {
        let word = if w == CW - 1 { q[w] & mask } else { q[w] };
        _mm256_set1_epi64x(word as i64)
    });
    let zero = _mm256_setzero_si256();
    let mut src = tile.as_ptr() as *const __m256i;
    let mut dst = out.as_mut_ptr();
    for _ in 0..groups {
        let mut acc = zero;
        for qw in &qb {
            // SAFETY: `src` walks the tile one register at a time; the length was checked.
            let x = _mm256_xor_si256(unsafe { _mm256_loadu_si256(src) }, *qw);
            acc = _mm256_add_epi8(acc, byte_popcounts(x));
            src = unsafe { src.add(1) };
        }
        // SAFETY: `dst` stays inside `out`, 4 entries per group.
        unsafe {
            store_lanes(_mm256_sad_epu8(acc, zero), dst);
            dst = dst.add(LANES);
        }
    }
}

/// [`tiled_fixed`] for a word count known only at run time (any `cw >= 1`): byte counts are
/// widened every 31 words so they cannot overflow.
///
/// # Safety
/// The CPU must support AVX2. Lengths are checked as in [`tiled_fixed`].
#[target_feature(enable = "avx2")]
unsafe fn tiled_any(q: &[u64], tile: &[u64], cw: usize, mask: u64, out: &mut [u32]) {
    assert!(cw >= 1 && q.len() >= cw && out.len().is_multiple_of(LANES));
    let groups = out.len() / LANES;
    assert_eq!(tile.len(), groups * cw * LANES);
    let zero = _mm256_setzero_si256();
    for (g, block) in tile.chunks_exact(cw * LANES).enumerate() {
        let mut total = zero;
        for (c, words) in block.chunks(MAX_BYTE_WORDS * LANES).enumerate() {
            let mut acc = zero;
            for (i, lanes) in words.chunks_exact(LANES).enumerate() {
                let w = c * MAX_BYTE_WORDS + i;
                let word = if w == cw - 1 { q[w] & mask } else { q[w] };
                // SAFETY: `lanes` holds exactly 4 words.
                let x = unsafe { _mm256_loadu_si256(lanes.as_ptr() as *const __m256i) };
                let x = _mm256_xor_si256(x, _mm256_set1_epi64x(word as i64));
                acc = _mm256_add_epi8(acc, byte_popcounts(x));
            }
            total = _mm256_add_epi64(total, _mm256_sad_epu8(acc, zero));
        }
        // SAFETY: group `g` owns `out[4g..4g + 4]`.
        unsafe { store_lanes(total, out.as_mut_ptr().add(g * LANES)) };
    }
}

/// `popcnt` as an opaque instruction: written as `count_ones`, the scalar row of the hybrid
/// kernel is vectorised by LLVM onto the very vector pipes it is meant to spare.
#[inline(always)]
fn scalar_popcnt(x: u64) -> u64 {
    let count: u64;
    // SAFETY: `popcnt` only reads and writes registers; callers enable the `popcnt` feature.
    unsafe {
        std::arch::asm!("popcnt {c}, {x}", x = in(reg) x, c = lateout(reg) count, options(pure, nomem, nostack));
    }
    count
}

/// [`tiled_fixed`] with one more row per group, kept row-major and counted with scalar `popcnt`
/// on the integer ALUs, which the vector loop leaves idle (groups of `GroupShape { lanes: 4,
/// extra: 1 }`).
///
/// # Safety
/// The CPU must support AVX2 and POPCNT. Lengths are checked: `CW <= 31`, `q.len() >= CW`,
/// `out.len() % 5 == 0` and `tile.len() == out.len() / 5 * CW * 5`.
#[target_feature(enable = "avx2,popcnt")]
unsafe fn hybrid_fixed<const CW: usize>(
    q: &[u64],
    tile: &[u64],
    _cw: usize,
    mask: u64,
    out: &mut [u32],
) {
    const ROWS: usize = LANES + 1;
    assert!((1..=MAX_BYTE_WORDS).contains(&CW) && q.len() >= CW && out.len().is_multiple_of(ROWS));
    let groups = out.len() / ROWS;
    assert_eq!(tile.len(), groups * CW * ROWS);
    let qa: [u64; CW] = std::array::from_fn(|w| if w == CW - 1 { q[w] & mask } else { q[w] });
    let qb: [__m256i; CW] = std::array::from_fn(|w| _mm256_set1_epi64x(qa[w] as i64));
    let zero = _mm256_setzero_si256();
    for (g, block) in tile.chunks_exact(CW * ROWS).enumerate() {
        let (vector, scalar) = block.split_at(CW * LANES);
        let mut acc = zero;
        for (w, qw) in qb.iter().enumerate() {
            // SAFETY: `vector` holds CW registers of 4 words.
            let x = unsafe { _mm256_loadu_si256(vector.as_ptr().add(w * LANES) as *const __m256i) };
            acc = _mm256_add_epi8(acc, byte_popcounts(_mm256_xor_si256(x, *qw)));
        }
        let mut d = 0u64;
        for (a, b) in scalar.iter().zip(&qa) {
            d += scalar_popcnt(a ^ b);
        }
        let d = d as u32;
        // SAFETY: group `g` owns `out[5g..5g + 5]`.
        unsafe {
            let dst = out.as_mut_ptr().add(g * ROWS);
            store_lanes(_mm256_sad_epu8(acc, zero), dst);
            *dst.add(LANES) = d;
        }
    }
}

/// The kernel for `cw` compared words and its group shape: the hybrid vector + scalar kernel
/// specialised up to 24 words, else the generic vector loop.
pub(crate) fn select(cw: usize) -> (TiledKernel, GroupShape) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match cw {
                $($n => (hybrid_fixed::<$n> as TiledKernel, GroupShape { lanes: LANES, extra: 1 }),)*
                _ => (tiled_any as TiledKernel, GroupShape { lanes: LANES, extra: 0 }),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24)
}

/// The vector-only kernel (no scalar row), for comparison with [`select`].
#[cfg(test)]
pub(crate) fn select_vector_only(cw: usize) -> (TiledKernel, GroupShape) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match cw {
                $($n => tiled_fixed::<$n> as TiledKernel,)*
                _ => tiled_any as TiledKernel,
            }
        };
    }
    (
        fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24),
        GroupShape {
            lanes: LANES,
            extra: 0,
        },
    )
}
