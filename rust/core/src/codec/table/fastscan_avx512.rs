//! The AVX-512 block kernel of the quantized scan (see `fastscan.rs`): the AVX2 kernel's sums, two
//! code bytes a register.
use std::arch::x86_64::*;

use super::avx2::{load_tables, mask, step as half_step, store};
use super::{BLOCK_ROWS, GROUP_ROWS, TABLE_STRIDE};

/// How far ahead of the current load the kernel prefetches (as the AVX2 kernel).
const PREFETCH_BYTES: usize = 8192;

/// AVX-512BW kernel (see [`super::BlockKernel`]): a block stores code bytes `2p` and `2p + 1` of its
/// 32 rows side by side, so one 64-byte load takes both, and their tables are paired by two lane
/// shuffles shared by the group's blocks. The two halves' 16-bit sums are added at the end (mod
/// 2^16, as every sum is): the same sums and masks as the AVX2 kernel and the scalar twin.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512BW (and AVX2). Lengths are bounded by the iterators.
#[target_feature(enable = "avx2,avx512f,avx512bw")]
pub(crate) unsafe fn block(
    tables: &[u8],
    blocks: &[u8],
    threshold: u16,
    sums: &mut [u16; GROUP_ROWS],
) -> u64 {
    let block_bytes = super::block_bytes(tables);
    let t = _mm256_set1_epi16(threshold as i16);
    if blocks.len() >= 2 * block_bytes {
        let (b0, b1) = (
            &blocks[..block_bytes],
            &blocks[block_bytes..2 * block_bytes],
        );
        let ((even0, odd0), (even1, odd1)) = sums_of_two(tables, b0, b1);
        // SAFETY: `sums` holds 64 u16 = four 32-byte stores.
        unsafe { store(sums, [even0, odd0, even1, odd1]) };
        u64::from(mask(even0, odd0, t)) | (u64::from(mask(even1, odd1, t)) << 32)
    } else {
        let (even, odd) = sums_of_one(tables, &blocks[..block_bytes.min(blocks.len())]);
        // SAFETY: as above, two of the four stores.
        unsafe {
            store(
                sums,
                [even, odd, _mm256_setzero_si256(), _mm256_setzero_si256()],
            )
        };
        u64::from(mask(even, odd, t))
    }
}

/// Two blocks sharing the table loads and shuffles; accumulators by name (kept in registers).
#[inline]
#[target_feature(enable = "avx2,avx512f,avx512bw")]
fn sums_of_two(tables: &[u8], b0: &[u8], b1: &[u8]) -> ((__m256i, __m256i), (__m256i, __m256i)) {
    let zero = _mm512_setzero_si512();
    let (mut all0, mut odd0, mut all1, mut odd1) = (zero, zero, zero, zero);
    let pairs = tables.chunks_exact(2 * TABLE_STRIDE);
    let last = pairs.remainder();
    for ((t, x0), x1) in pairs
        .zip(b0.chunks_exact(2 * BLOCK_ROWS))
        .zip(b1.chunks_exact(2 * BLOCK_ROWS))
    {
        let (lo, hi) = pair_tables(t);
        step(lo, hi, x0, &mut all0, &mut odd0);
        step(lo, hi, x1, &mut all1, &mut odd1);
    }
    let (mut a0, mut o0, mut a1, mut o1) = (fold(all0), fold(odd0), fold(all1), fold(odd1));
    if !last.is_empty() {
        // An odd count of code bytes: the last one a block half at a time.
        let at = b0.len() - BLOCK_ROWS;
        let (lo, hi) = load_tables(last);
        half_step(lo, hi, &b0[at..], &mut a0, &mut o0);
        half_step(lo, hi, &b1[at..], &mut a1, &mut o1);
    }
    (even_odd(a0, o0), even_odd(a1, o1))
}

/// One block.
#[inline]
#[target_feature(enable = "avx2,avx512f,avx512bw")]
fn sums_of_one(tables: &[u8], b0: &[u8]) -> (__m256i, __m256i) {
    let zero = _mm512_setzero_si512();
    let (mut all0, mut odd0) = (zero, zero);
    let pairs = tables.chunks_exact(2 * TABLE_STRIDE);
    let last = pairs.remainder();
    for (t, x0) in pairs.zip(b0.chunks_exact(2 * BLOCK_ROWS)) {
        let (lo, hi) = pair_tables(t);
        step(lo, hi, x0, &mut all0, &mut odd0);
    }
    let (mut a0, mut o0) = (fold(all0), fold(odd0));
    if !last.is_empty() {
        let at = b0.len() - BLOCK_ROWS;
        let (lo, hi) = load_tables(last);
        half_step(lo, hi, &b0[at..], &mut a0, &mut o0);
    }
    even_odd(a0, o0)
}

/// The low- and high-nibble tables of two code bytes (`t`: their 2 x 64 bytes, each `[lo, lo, hi,
/// hi]` in 16-byte lanes) as `[lo0, lo0, lo1, lo1]` and `[hi0, hi0, hi1, hi1]`.
#[inline]
#[target_feature(enable = "avx2,avx512f,avx512bw")]
fn pair_tables(t: &[u8]) -> (__m512i, __m512i) {
    debug_assert!(t.len() >= 128);
    // SAFETY: `t` has 128 bytes (callers pass `chunks_exact` chunks).
    let (t0, t1) = unsafe {
        (
            _mm512_loadu_si512(t.as_ptr() as *const __m512i),
            _mm512_loadu_si512(t.as_ptr().add(64) as *const __m512i),
        )
    };
    (
        _mm512_shuffle_i64x2::<0x44>(t0, t1),
        _mm512_shuffle_i64x2::<0xEE>(t0, t1),
    )
}

/// Adds the looked-up entries of two code bytes of 32 rows (`x`: 64 bytes) to the accumulators:
/// lanes 0-255 hold the first byte's, 256-511 the second's.
#[inline]
#[target_feature(enable = "avx2,avx512f,avx512bw")]
fn step(lut_lo: __m512i, lut_hi: __m512i, x: &[u8], all: &mut __m512i, odd: &mut __m512i) {
    debug_assert!(x.len() >= 2 * BLOCK_ROWS);
    // SAFETY: `x` has 64 bytes (callers pass `chunks_exact` chunks).
    let v = unsafe { _mm512_loadu_si512(x.as_ptr() as *const __m512i) };
    _mm_prefetch::<_MM_HINT_T0>(x.as_ptr().wrapping_add(PREFETCH_BYTES) as *const i8);
    let low = _mm512_set1_epi8(0x0f);
    let lo = _mm512_and_si512(v, low);
    let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(v), low);
    // Entries are capped so that lo + hi fits a byte.
    let s = _mm512_add_epi8(
        _mm512_shuffle_epi8(lut_lo, lo),
        _mm512_shuffle_epi8(lut_hi, hi),
    );
    // As u16 lanes: even row + 256 * odd row (mod 2^16), and the odd row alone.
    *all = _mm512_add_epi16(*all, s);
    *odd = _mm512_add_epi16(*odd, _mm512_srli_epi16::<8>(s));
}

/// The two halves' sums added (u16 lanes, mod 2^16).
#[inline]
#[target_feature(enable = "avx2,avx512f,avx512bw")]
fn fold(v: __m512i) -> __m256i {
    _mm256_add_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v))
}

/// Even-row sums (`all - 256 * odd`) and odd-row sums.
#[inline]
#[target_feature(enable = "avx2,avx512f,avx512bw")]
fn even_odd(all: __m256i, odd: __m256i) -> (__m256i, __m256i) {
    (_mm256_sub_epi16(all, _mm256_slli_epi16::<8>(odd)), odd)
}
