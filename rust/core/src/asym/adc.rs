//! Byte-LUT asymmetric distance computation (ADC) for codecs that hand over their own tables:
//! product codes, PQ with 256 centroids per sub-space, base-3 packed trits (5 per byte).
//!
//! A row is `m` code bytes; a query is `m` tables of 256 float32 entries (`luts[q, b, v]`, what
//! byte value `v` at position `b` contributes). `score = Σ_b lut[q, b, code_b]`, a float32 sum
//! over `b = 0, 1, ...` from `0.0`, times `row_scale[row]` when given: the same contract as the
//! per-dimension tables of [`super::Recon`] (so the same row kernels, drivers and selection serve
//! both, bit for bit). The tables are copied once per query (`m` KiB), never per row.
//!
//! SIMD: an AVX-512 gather kernel (16 rows per register, one 32-bit gather for 4 code bytes, one
//! float gather per byte; bit-for-bit equal) was measured on this project's Intel Xeon (AVX-512,
//! one thread, 200k rows, one query): 87.6 ns/row against 53.7 (interleaved) at m = 48, 187.5
//! against 108.1 at m = 96: gathers are microcoded slowly there (the GDS mitigation), so it was
//! not kept. Float tables of 256 entries do not fit `vpshufb`; [`lut_search_blocked`] splits each
//! byte table into two nibble tables (FastScan style, the kernels of the block layout), which is
//! exact pruning for any table and fast for nibble-separable ones (`pca_alloc` with nibble
//! packing); PQ tables are not separable, so the interleaved row kernel stays their default.
use crate::error::{checked_size, shape_err, Result};

use super::blocks::check_rows;
use super::fastscan::NibbleLuts;
use super::lut::{ByteLuts, BYTE_VALUES};
use super::rescore::{check_queries, rescore_rows, score_rows};
use super::search::{block_kernel, check_search, row_kernel, scan_blocked, scan_rows};
use super::select::TopScores;
use super::Kernel;

/// Values per query: `m * 256`.
fn query_len(m: usize) -> Result<usize> {
    if m == 0 {
        return shape_err("m = 0; codes need at least one byte per row");
    }
    checked_size(m, BYTE_VALUES, "luts values per query (m * 256)")
}

/// Exact top-k of `nq` queries given as byte tables (`nq * m * 256` values) against `n` rows of
/// `m` code bytes, on the fastest row kernel: scores descending, ties by lower row, `k > n`
/// returns `n` per query.
#[allow(clippy::too_many_arguments)]
pub fn lut_search(
    luts: &[f32],
    nq: usize,
    m: usize,
    codes: &[u8],
    n: usize,
    row_scale: Option<&[f32]>,
    k: usize,
) -> Result<TopScores> {
    lut_search_with(Kernel::best_rows(), luts, nq, m, codes, n, row_scale, k)
}

/// [`lut_search`] with a chosen row kernel ([`Kernel::Scalar`] or [`Kernel::Interleaved`]).
#[allow(clippy::too_many_arguments)]
pub fn lut_search_with(
    kernel: Kernel,
    luts: &[f32],
    nq: usize,
    m: usize,
    codes: &[u8],
    n: usize,
    row_scale: Option<&[f32]>,
    k: usize,
) -> Result<TopScores> {
    let scores = row_kernel(kernel)?;
    let len = query_len(m)?;
    check_rows(codes, n, m)?;
    check_search(luts, nq, len, "luts", n, k)?;
    scan_rows(
        scores,
        luts,
        len,
        nq,
        codes,
        n,
        m,
        row_scale,
        k,
        |table, i| ByteLuts::from_table(table, m, i),
    )
}

/// Exact top-k of byte-table queries against `n` rows of `m` code bytes in the block layout (see
/// [`super::to_blocks`]), on the fastest block kernel: quantized nibble tables split from each
/// byte table prune the rows that cannot make the top-k, the rest are scored from the float tables.
/// Same results as [`lut_search`] for any tables; fast when the tables are nibble-separable
/// (`T[lo + 16 hi] = A[lo] + B[hi]`: codes whose low and high nibbles hold different dimensions).
#[allow(clippy::too_many_arguments)]
pub fn lut_search_blocked(
    luts: &[f32],
    nq: usize,
    m: usize,
    blocks: &[u8],
    n: usize,
    row_scale: Option<&[f32]>,
    k: usize,
) -> Result<TopScores> {
    lut_search_blocked_with(Kernel::best_blocks(), luts, nq, m, blocks, n, row_scale, k)
}

/// [`lut_search_blocked`] with a chosen block kernel ([`Kernel::Scalar`] or [`Kernel::Avx2`]).
#[allow(clippy::too_many_arguments)]
pub fn lut_search_blocked_with(
    kernel: Kernel,
    luts: &[f32],
    nq: usize,
    m: usize,
    blocks: &[u8],
    n: usize,
    row_scale: Option<&[f32]>,
    k: usize,
) -> Result<TopScores> {
    let block_kernel = block_kernel(kernel)?;
    let len = query_len(m)?;
    check_search(luts, nq, len, "luts", n, k)?;
    scan_blocked(
        block_kernel,
        luts,
        len,
        nq,
        blocks,
        n,
        m,
        row_scale,
        k,
        |table, i| {
            let luts = ByteLuts::from_table(table, m, i)?;
            let nibbles = NibbleLuts::from_byte_luts(&luts);
            Ok((luts, nibbles))
        },
    )
}

/// Scores `(nq, kc)` of each query's candidate rows (`int64`, in `0..n`), in the given order;
/// equal to [`lut_search`]'s scores bit for bit.
#[allow(clippy::too_many_arguments)]
pub fn lut_score_candidates(
    luts: &[f32],
    nq: usize,
    m: usize,
    codes: &[u8],
    n: usize,
    row_scale: Option<&[f32]>,
    candidates: &[i64],
    kc: usize,
) -> Result<Vec<f32>> {
    let len = query_len(m)?;
    check_rows(codes, n, m)?;
    check_queries(luts, nq, len, "luts")?;
    score_rows(
        luts,
        len,
        nq,
        codes,
        n,
        m,
        row_scale,
        candidates,
        kc,
        |table, i| ByteLuts::from_table(table, m, i),
    )
}

/// The best `min(k, kc)` of each query's distinct candidate rows by byte-LUT score: descending,
/// ties by lower row.
#[allow(clippy::too_many_arguments)]
pub fn lut_rescore(
    luts: &[f32],
    nq: usize,
    m: usize,
    codes: &[u8],
    n: usize,
    row_scale: Option<&[f32]>,
    candidates: &[i64],
    kc: usize,
    k: usize,
) -> Result<TopScores> {
    let len = query_len(m)?;
    check_rows(codes, n, m)?;
    check_queries(luts, nq, len, "luts")?;
    rescore_rows(
        luts,
        len,
        nq,
        codes,
        n,
        m,
        row_scale,
        candidates,
        kc,
        k,
        |table, i| ByteLuts::from_table(table, m, i),
    )
}
