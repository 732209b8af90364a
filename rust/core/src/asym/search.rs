//! Exact top-k of the byte-table codecs, for the row layout (float tables) and the block layout
//! (quantized tables plus exact re-scoring), on the shared driver (`crate::driver`): parallel over
//! queries (batches, cache-resident code tiles) or over code tiles (few queries).
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::driver::{self, Scorer, Selection};
use crate::error::{value_err, QamaError, Result};

use super::blocks::{blocked_len, check_rows, BLOCK_ROWS};
use super::fastscan::{block_scalar, lane_of, BlockKernel, NibbleLuts, GROUP_BLOCKS, GROUP_ROWS};
use super::lut::{ByteLuts, Recon};
use super::scan::{scores_interleaved, scores_scalar};
use super::select::{from_ordered, ordered, Best, TopScores};
use super::{try_zeroed, Kernel};

/// Queries per task from which the batch regime (parallel over queries) is used.
const QUERIES_PER_CHUNK: usize = 8;

/// Code bytes per tile: a tile stays in L2 (512 KiB on Zen 3) beside one query's float tables.
const TILE_BYTES: usize = 192 * 1024;

/// Largest `n` a search accepts (ids are `u64`, results `int64` in Python).
const MAX_ROWS: usize = 1 << 48;

/// What one query needs during a scan.
struct Prepared {
    luts: ByteLuts,
    /// Quantized tables (block layout only).
    nibbles: Option<NibbleLuts>,
    /// The best k-th score any task has reached for this query (as [`ordered`] bits): every task
    /// scanning other rows of the same query can skip rows below it, so a task that starts with an
    /// empty selection does not re-score its first rows needlessly.
    floor: AtomicU32,
}

impl Prepared {
    /// The k-th score to beat: the task's own, or a better one another task published.
    #[inline]
    fn kth(&self, best: &Best) -> f32 {
        best.kth()
            .max(from_ordered(self.floor.load(Ordering::Relaxed)))
    }

    /// Publishes a task's k-th score (a lower bound of the final k-th score).
    #[inline]
    fn publish(&self, best: &Best) {
        if best.kth() > f32::NEG_INFINITY {
            self.floor.fetch_max(ordered(best.kth()), Ordering::Relaxed);
        }
    }
}

/// A row-layout scan: scores of every row of a tile (row-major, `row_bytes` per row) into `out`.
pub(crate) type RowKernel = fn(&ByteLuts, &[u8], usize, &mut [f32]);

/// The row-layout scan of a row kernel ([`Kernel::Scalar`] or [`Kernel::Interleaved`]).
pub(crate) fn row_kernel(kernel: Kernel) -> Result<RowKernel> {
    match kernel {
        Kernel::Scalar => Ok(scores_scalar),
        Kernel::Interleaved => Ok(scores_interleaved),
        Kernel::Avx2 => value_err("kernel 'avx2' scans the block layout; use search_blocked"),
    }
}

/// Exact top-k by asymmetric score of `nq` float queries (`nq * dims` values) against `n`
/// row-major packed codes, on the fastest row kernel. Scores descending, ties by lower row.
pub fn search(
    q: &[f32],
    nq: usize,
    recon: &Recon,
    codes: &[u8],
    n: usize,
    k: usize,
) -> Result<TopScores> {
    search_with(Kernel::best_rows(), q, nq, recon, codes, n, None, k)
}

/// [`search`] with a chosen row kernel ([`Kernel::Scalar`] or [`Kernel::Interleaved`]) and
/// optional per-row scales: row `i` scores `row_scale[i] * Σ_j q_j · recon[j][c_ij]` (the float32
/// product of the scale and the unscaled score, so scaled scores are bit-for-bit reproducible).
#[allow(clippy::too_many_arguments)]
pub fn search_with(
    kernel: Kernel,
    q: &[f32],
    nq: usize,
    recon: &Recon,
    codes: &[u8],
    n: usize,
    row_scale: Option<&[f32]>,
    k: usize,
) -> Result<TopScores> {
    let scores = row_kernel(kernel)?;
    let format = recon.format();
    check_rows(codes, n, format.row_bytes())?;
    check_search(q, nq, format.dims(), "queries", n, k)?;
    check_finite_queries(q, format.dims())?;
    scan_rows(
        scores,
        q,
        format.dims(),
        nq,
        codes,
        n,
        format.row_bytes(),
        row_scale,
        k,
        |query, _| ByteLuts::build(query, recon),
    )
}

/// The row-layout search proper on checked arguments: `q` holds `nq` queries of `query_len`
/// values, each turned into its byte tables by `build(query, index)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_rows<B>(
    scores: RowKernel,
    q: &[f32],
    query_len: usize,
    nq: usize,
    codes: &[u8],
    n: usize,
    row_bytes: usize,
    row_scale: Option<&[f32]>,
    k: usize,
    build: B,
) -> Result<TopScores>
where
    B: Fn(&[f32], usize) -> Result<ByteLuts> + Sync,
{
    let max_scale = check_row_scale(row_scale, n)?;
    let tile_rows = (TILE_BYTES / row_bytes.max(1)).max(1);
    drive(
        q,
        query_len,
        nq,
        n,
        k,
        codes,
        tile_rows * row_bytes,
        tile_rows,
        |query, i| prepared(build(query, i)?, None, max_scale),
        |prep, tile, first, best, buf| {
            let rows = tile.len() / row_bytes;
            buf.resize(rows, 0.0);
            scores(&prep.luts, tile, row_bytes, buf);
            if let Some(scale) = row_scale {
                for (s, &r) in buf.iter_mut().zip(&scale[first..]) {
                    *s *= r;
                }
            }
            best.offer_all(buf, first as u64);
        },
    )
}

/// Exact top-k of float queries against codes in the block layout (see [`super::to_blocks`]),
/// on the fastest block kernel; `bits` must be 1, 2 or 4. Same results as [`search`].
pub fn search_blocked(
    q: &[f32],
    nq: usize,
    recon: &Recon,
    blocks: &[u8],
    n: usize,
    k: usize,
) -> Result<TopScores> {
    search_blocked_with(Kernel::best_blocks(), q, nq, recon, blocks, n, None, k)
}

/// [`search_blocked`] with a chosen block kernel ([`Kernel::Scalar`] or [`Kernel::Avx2`]) and
/// optional per-row scales (as in [`search_with`]; any sign: the bounds are scaled per row, so
/// the top-k stays exact). Same results as [`search_with`].
#[allow(clippy::too_many_arguments)]
pub fn search_blocked_with(
    kernel: Kernel,
    q: &[f32],
    nq: usize,
    recon: &Recon,
    blocks: &[u8],
    n: usize,
    row_scale: Option<&[f32]>,
    k: usize,
) -> Result<TopScores> {
    let block_kernel = block_kernel(kernel)?;
    let format = recon.format();
    if format.bits() > 4 {
        return value_err(format!(
            "the block layout needs bits <= 4 (nibble tables); recon has {} bits; use search",
            format.bits()
        ));
    }
    check_search(q, nq, format.dims(), "queries", n, k)?;
    check_finite_queries(q, format.dims())?;
    scan_blocked(
        block_kernel,
        q,
        format.dims(),
        nq,
        blocks,
        n,
        format.row_bytes(),
        row_scale,
        k,
        |query, _| {
            let luts = ByteLuts::build(query, recon)?;
            let nibbles = NibbleLuts::build(query, recon, &luts);
            Ok((luts, nibbles))
        },
    )
}

/// The block kernel a [`Kernel`] names ([`Kernel::Scalar`] or an available [`Kernel::Avx2`]).
pub(crate) fn block_kernel(kernel: Kernel) -> Result<BlockKernel> {
    match kernel {
        Kernel::Scalar => Ok(block_scalar),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 if kernel.is_available() => Ok(super::fastscan::avx2::block),
        Kernel::Avx2 => value_err("kernel 'avx2' is not available on this CPU"),
        Kernel::Interleaved => value_err("kernel 'interleaved' scans the row layout; use search"),
    }
}

/// The block-layout search proper on checked queries: `q` holds `nq` queries of `query_len`
/// values, each turned into its float and quantized tables by `build(query, index)`; `blocks`
/// holds `n` rows of `row_bytes` in the block layout.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_blocked<B>(
    block_kernel: BlockKernel,
    q: &[f32],
    query_len: usize,
    nq: usize,
    blocks: &[u8],
    n: usize,
    row_bytes: usize,
    row_scale: Option<&[f32]>,
    k: usize,
    build: B,
) -> Result<TopScores>
where
    B: Fn(&[f32], usize) -> Result<(ByteLuts, Option<NibbleLuts>)> + Sync,
{
    if blocked_len(n, row_bytes) != Some(blocks.len()) {
        return Err(QamaError::Shape(format!(
            "blocks has {} bytes; n = {n} rows of {row_bytes} bytes need {}",
            blocks.len(),
            blocked_len(n, row_bytes).map_or("too many".into(), |l| l.to_string())
        )));
    }
    let max_scale = check_row_scale(row_scale, n)?;
    let block_bytes = BLOCK_ROWS * row_bytes;
    // Whole kernel groups per tile, about 64 KiB.
    let tile_blocks = (TILE_BYTES / 3 / block_bytes / GROUP_BLOCKS).max(1) * GROUP_BLOCKS;
    drive(
        q,
        query_len,
        nq,
        n,
        k,
        blocks,
        tile_blocks * block_bytes,
        tile_blocks * BLOCK_ROWS,
        |query, i| {
            let (luts, nibbles) = build(query, i)?;
            prepared(luts, nibbles, max_scale)
        },
        |prep, tile, first, best, _| {
            let Some(nibbles) = &prep.nibbles else {
                // Rows too long for 16-bit sums: score every row exactly.
                for (b, block) in tile.chunks_exact(block_bytes).enumerate() {
                    let base = first + b * BLOCK_ROWS;
                    for r in 0..BLOCK_ROWS.min(n.saturating_sub(base)) {
                        let raw = prep.luts.score_strided(block, BLOCK_ROWS, r);
                        let scale = row_scale.map_or(1.0, |s| s[base + r]);
                        let score = if row_scale.is_some() {
                            raw * scale
                        } else {
                            raw
                        };
                        best.offer(score, (base + r) as u64);
                    }
                }
                return;
            };
            match row_scale {
                None => scan_blocks(block_kernel, prep, nibbles, tile, first, n, best),
                Some(scale) => {
                    scan_blocks_scaled(block_kernel, prep, nibbles, tile, first, n, scale, best)
                }
            }
        },
    )
}

/// Scans whole blocks starting at row `first`, two per kernel call: quantized sums, then exact
/// scores of the rows whose sums pass the current threshold.
fn scan_blocks(
    kernel: BlockKernel,
    prep: &Prepared,
    nibbles: &NibbleLuts,
    tile: &[u8],
    first: usize,
    n: usize,
    best: &mut Best,
) {
    let luts = &prep.luts;
    let block_bytes = BLOCK_ROWS * luts.bytes();
    let mut sums = [0u16; GROUP_ROWS];
    for (g, group) in tile.chunks(GROUP_BLOCKS * block_bytes).enumerate() {
        let mut threshold = nibbles.min_sum(prep.kth(best));
        // SAFETY: the kernel was picked for this CPU; `tables` has TABLE_STRIDE bytes per code
        // byte and `group` one or two whole blocks.
        let mut mask = unsafe { kernel(nibbles.tables(), group, threshold, &mut sums) };
        let base = first + g * GROUP_ROWS;
        while mask != 0 {
            let r = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if base + r >= n {
                break; // padding rows (the last block's tail; bits ascend with rows)
            }
            if (sums[lane_of(r)]) < threshold {
                continue; // the threshold rose since the kernel ran
            }
            let block = &group[(r / BLOCK_ROWS) * block_bytes..];
            let score = luts.score_strided(block, BLOCK_ROWS, r % BLOCK_ROWS);
            #[cfg(test)]
            RESCORED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if best.offer(score, (base + r) as u64) {
                prep.publish(best);
                threshold = nibbles.min_sum(prep.kth(best));
            }
        }
    }
}

/// [`scan_blocks`] with per-row scales. A group whose scales are all positive gets one integer
/// threshold valid for its whole scale range (the kernel's mask prunes most rows); a group with a
/// zero or negative scale is scanned with threshold 0. Either way each surviving row is checked
/// against its own scaled bound before its exact score is computed.
#[allow(clippy::too_many_arguments)]
fn scan_blocks_scaled(
    kernel: BlockKernel,
    prep: &Prepared,
    nibbles: &NibbleLuts,
    tile: &[u8],
    first: usize,
    n: usize,
    scale: &[f32],
    best: &mut Best,
) {
    let luts = &prep.luts;
    let block_bytes = BLOCK_ROWS * luts.bytes();
    let mut sums = [0u16; GROUP_ROWS];
    for (g, group) in tile.chunks(GROUP_BLOCKS * block_bytes).enumerate() {
        let base = first + g * GROUP_ROWS;
        let Some(scales) = scale.get(base..n.min(base + GROUP_ROWS)) else {
            break;
        };
        let (s_min, s_max) = scales
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &s| {
                (lo.min(s), hi.max(s))
            });
        let threshold = if s_min > 0.0 {
            nibbles.min_sum_scaled(prep.kth(best), s_min, s_max)
        } else {
            0
        };
        // SAFETY: as in `scan_blocks`.
        let mut mask = unsafe { kernel(nibbles.tables(), group, threshold, &mut sums) };
        while mask != 0 {
            let r = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let Some(&s) = scales.get(r) else {
                break; // padding rows
            };
            if !nibbles.may_reach(sums[lane_of(r)], s, prep.kth(best)) {
                continue;
            }
            let block = &group[(r / BLOCK_ROWS) * block_bytes..];
            let score = luts.score_strided(block, BLOCK_ROWS, r % BLOCK_ROWS) * s;
            #[cfg(test)]
            RESCORED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if best.offer(score, (base + r) as u64) {
                prep.publish(best);
            }
        }
    }
}

/// Checks the shared arguments of a search: `nq` queries of `query_len` values in `q` (called
/// `name` in messages), `k >= 1`, `1 <= n <= MAX_ROWS`.
pub(crate) fn check_search(
    q: &[f32],
    nq: usize,
    query_len: usize,
    name: &str,
    n: usize,
    k: usize,
) -> Result<()> {
    if nq.checked_mul(query_len) != Some(q.len()) {
        return Err(QamaError::Shape(format!(
            "{name} has {} values; expected nq * {query_len} = {nq} * {query_len}",
            q.len()
        )));
    }
    if k == 0 {
        return value_err("k = 0; must be at least 1");
    }
    if n == 0 {
        return value_err("codes are empty (n = 0); nothing to search");
    }
    if n > MAX_ROWS {
        return value_err(format!("n = {n} rows; at most {MAX_ROWS} are supported"));
    }
    Ok(())
}

/// Every query value finite (`q` holds rows of `dims`).
pub(crate) fn check_finite_queries(q: &[f32], dims: usize) -> Result<()> {
    if let Some(at) = q.iter().position(|v| !v.is_finite()) {
        return value_err(format!(
            "queries[{}, {}] = {} is not finite",
            at / dims.max(1),
            at % dims.max(1),
            q[at]
        ));
    }
    Ok(())
}

/// Checks optional per-row scales (`n` finite values) and returns `max |row_scale|` (1 without).
pub(crate) fn check_row_scale(row_scale: Option<&[f32]>, n: usize) -> Result<f64> {
    let Some(scale) = row_scale else {
        return Ok(1.0);
    };
    if scale.len() != n {
        return Err(QamaError::Shape(format!(
            "row_scale has {} values; expected one per row (n = {n})",
            scale.len()
        )));
    }
    if let Some(at) = scale.iter().position(|v| !v.is_finite()) {
        return value_err(format!("row_scale[{at}] = {} is not finite", scale[at]));
    }
    Ok(scale.iter().fold(0f64, |m, &s| m.max(f64::from(s).abs())))
}

fn prepared(luts: ByteLuts, nibbles: Option<NibbleLuts>, max_scale: f64) -> Result<Prepared> {
    luts.check_scale(max_scale)?;
    Ok(Prepared {
        luts,
        nibbles,
        floor: AtomicU32::new(ordered(f32::NEG_INFINITY)),
    })
}

/// Runs `scan(prepared, tile, first_row, best, buffer)` over every (query, tile) pair on the
/// shared driver ([`crate::driver`]) and collects the results. `q` holds `nq` queries of
/// `query_len` values, each made ready by `prepare(query, index)`; tiles are `tile_bytes` of
/// `data` holding `tile_rows` rows each.
#[allow(clippy::too_many_arguments)]
fn drive<P, F>(
    q: &[f32],
    query_len: usize,
    nq: usize,
    n: usize,
    k: usize,
    data: &[u8],
    tile_bytes: usize,
    tile_rows: usize,
    prepare: P,
    scan: F,
) -> Result<TopScores>
where
    P: Fn(&[f32], usize) -> Result<Prepared> + Sync,
    F: Fn(&Prepared, &[u8], usize, &mut Best, &mut Vec<f32>) + Sync,
{
    let kk = k.min(n);
    let total = nq
        .checked_mul(kk)
        .ok_or_else(|| QamaError::Value(format!("nq * k = {nq} * {kk} results overflow")))?;
    let mut scores = try_zeroed::<f32>(total, "the scores")?;
    let mut ids = try_zeroed::<u64>(total, "the ids")?;
    if nq == 0 || tile_bytes == 0 || tile_rows == 0 {
        return Ok(TopScores { k: kk, scores, ids });
    }
    let scorer = TableScorer {
        q,
        query_len,
        data,
        // Bytes per row of `data` (the block layout keeps a row's bytes inside its block).
        row_bytes: tile_bytes / tile_rows,
        tile_rows,
        kk,
        prepare,
        scan,
    };
    driver::run(&scorer, nq, kk, &mut scores, &mut ids, |b: Best, s, i| {
        b.write_sorted(s, i)
    })?;
    Ok(TopScores { k: kk, scores, ids })
}

/// The byte-table codecs (per-dimension recon tables, byte LUTs; row or block layout) as a
/// [`Scorer`]: a batch is its queries' prepared tables.
struct TableScorer<'a, P, F> {
    q: &'a [f32],
    query_len: usize,
    data: &'a [u8],
    row_bytes: usize,
    tile_rows: usize,
    kk: usize,
    prepare: P,
    scan: F,
}

impl<P, F> Scorer for TableScorer<'_, P, F>
where
    P: Fn(&[f32], usize) -> Result<Prepared> + Sync,
    F: Fn(&Prepared, &[u8], usize, &mut Best, &mut Vec<f32>) + Sync,
{
    type Batch = Vec<Prepared>;
    type Select = Best;
    type Scratch = Vec<f32>;

    fn rows(&self) -> usize {
        self.data.len() / self.row_bytes
    }

    fn tile_rows(&self) -> usize {
        self.tile_rows
    }

    fn queries_per_chunk(&self) -> usize {
        QUERIES_PER_CHUNK
    }

    fn select(&self) -> Best {
        Best::new(self.kk)
    }

    fn prepare(&self, queries: Range<usize>) -> Result<Vec<Prepared>> {
        queries
            .map(|i| (self.prepare)(&self.q[i * self.query_len..][..self.query_len], i))
            .collect()
    }

    fn scan(
        &self,
        batch: &Vec<Prepared>,
        tile: Range<usize>,
        best: &mut [Best],
        buf: &mut Vec<f32>,
    ) {
        let bytes = &self.data[tile.start * self.row_bytes..tile.end * self.row_bytes];
        for (p, b) in batch.iter().zip(best) {
            (self.scan)(p, bytes, tile.start, b, buf);
        }
    }
}

impl Selection for Best {
    fn merge(&mut self, other: &Self) {
        Best::merge(self, other);
    }
}

pub(crate) fn write_results(best: Vec<Best>, kk: usize, scores: &mut [f32], ids: &mut [u64]) {
    for ((b, s), i) in best
        .into_iter()
        .zip(scores.chunks_exact_mut(kk))
        .zip(ids.chunks_exact_mut(kk))
    {
        b.write_sorted(s, i);
    }
}

/// Rows the block scans re-scored exactly (test builds only: the perf runs report it).
#[cfg(test)]
pub(crate) static RESCORED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
