//! AVX-512 batch kernel: `vpopcntq` on lane-interleaved tiles, 8 rows per register.
//!
//! One xor, one `vpopcntq` and one add per register of 8 row-words, accumulated in 64-bit lanes
//! (no overflow bound, no lookup tables), narrowed to `u32` once per group.
#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::tile::GroupShape;
use super::TiledKernel;

/// Rows per register.
pub(crate) const LANES: usize = 8;

/// Distances of `q` (first `CW` words, the last masked with `mask`) to every row of an
/// interleaved tile (see `tile::interleave` with `LANES` lanes); `out[i]` gets row `i`.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512 VPOPCNTDQ. Lengths are checked: `q.len() >= CW`,
/// `out.len().is_multiple_of(LANES)` and `tile.len() == out.len() / LANES * CW * LANES`.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn tiled_fixed<const CW: usize>(
    q: &[u64],
    tile: &[u64],
    _cw: usize,
    mask: u64,
    out: &mut [u32],
) {
    assert!(CW >= 1 && q.len() >= CW && out.len().is_multiple_of(LANES));
    let groups = out.len() / LANES;
    assert_eq!(tile.len(), groups * CW * LANES);
    let qb: [__m512i; CW] = std::array::from_fn(|w| {
        let word = if w == CW - 1 { q[w] & mask } else { q[w] };
        _mm512_set1_epi64(word as i64)
    });
    let mut src = tile.as_ptr() as *const __m512i;
    let mut dst = out.as_mut_ptr() as *mut __m256i;
    for _ in 0..groups {
        let mut acc = _mm512_setzero_si512();
        for qw in &qb {
            // SAFETY: `src` walks the tile one register at a time; the length was checked.
            let x = _mm512_xor_si512(unsafe { _mm512_loadu_si512(src) }, *qw);
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
            src = unsafe { src.add(1) };
        }
        // SAFETY: `dst` stays inside `out`, 8 entries per group.
        unsafe {
            _mm256_storeu_si256(dst, _mm512_cvtepi64_epi32(acc));
            dst = dst.add(1);
        }
    }
}

/// [`tiled_fixed`] for a word count known only at run time.
///
/// # Safety
/// As [`tiled_fixed`], with `cw` in place of `CW`.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn tiled_any(q: &[u64], tile: &[u64], cw: usize, mask: u64, out: &mut [u32]) {
    assert!(cw >= 1 && q.len() >= cw && out.len().is_multiple_of(LANES));
    let groups = out.len() / LANES;
    assert_eq!(tile.len(), groups * cw * LANES);
    for (g, block) in tile.chunks_exact(cw * LANES).enumerate() {
        let mut acc = _mm512_setzero_si512();
        for (w, lanes) in block.chunks_exact(LANES).enumerate() {
            let word = if w == cw - 1 { q[w] & mask } else { q[w] };
            // SAFETY: `lanes` holds exactly 8 words.
            let x = unsafe { _mm512_loadu_si512(lanes.as_ptr() as *const __m512i) };
            let x = _mm512_xor_si512(x, _mm512_set1_epi64(word as i64));
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
        }
        // SAFETY: group `g` owns `out[8g..8g + 8]`.
        unsafe {
            _mm256_storeu_si256(
                out.as_mut_ptr().add(g * LANES) as *mut __m256i,
                _mm512_cvtepi64_epi32(acc),
            )
        };
    }
}

/// The kernel for `cw` compared words and its group shape: specialised up to 24 words, else
/// the generic loop.
pub(crate) fn select(cw: usize) -> (TiledKernel, GroupShape) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match cw {
                $($n => tiled_fixed::<$n> as TiledKernel,)*
                _ => tiled_any as TiledKernel,
            }
        };
    }
    let kernel = fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);
    (
        kernel,
        GroupShape {
            lanes: LANES,
            extra: 0,
        },
    )
}
