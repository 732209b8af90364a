//! Exact top-k drivers: parallel over queries (batches, cache-resident code tiles) or over code
//! tiles (few queries), for the row layout (float tables) and the block layout (quantized
//! tables plus exact re-scoring).
use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

use crate::error::{value_err, QamaError, Result};

use super::blocks::{blocked_len, check_rows, BLOCK_ROWS};
use super::fastscan::{block_scalar, lane_of, BlockKernel, NibbleLuts, GROUP_BLOCKS, GROUP_ROWS};
use super::lut::{check_query, ByteLuts, Recon};
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
    search_with(Kernel::best_rows(), q, nq, recon, codes, n, k)
}

/// [`search`] with a chosen row kernel ([`Kernel::Scalar`] or [`Kernel::Interleaved`]).
pub fn search_with(
    kernel: Kernel,
    q: &[f32],
    nq: usize,
    recon: &Recon,
    codes: &[u8],
    n: usize,
    k: usize,
) -> Result<TopScores> {
    let scores = match kernel {
        Kernel::Scalar => scores_scalar,
        Kernel::Interleaved => scores_interleaved,
        Kernel::Avx2 => {
            return value_err("the avx2 kernel scans the block layout; use search_blocked")
        }
    };
    let row_bytes = recon.format().row_bytes();
    check_rows(codes, n, row_bytes)?;
    check_search(q, nq, recon, n, k)?;
    let tile_rows = (TILE_BYTES / row_bytes).max(1);
    drive(
        q,
        nq,
        recon,
        n,
        k,
        codes,
        tile_rows * row_bytes,
        tile_rows,
        false,
        |prep, tile, first, best, buf| {
            let rows = tile.len() / row_bytes;
            buf.resize(rows, 0.0);
            scores(&prep.luts, tile, row_bytes, buf);
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
    search_blocked_with(Kernel::best_blocks(), q, nq, recon, blocks, n, k)
}

/// [`search_blocked`] with a chosen block kernel ([`Kernel::Scalar`] or [`Kernel::Avx2`]).
pub fn search_blocked_with(
    kernel: Kernel,
    q: &[f32],
    nq: usize,
    recon: &Recon,
    blocks: &[u8],
    n: usize,
    k: usize,
) -> Result<TopScores> {
    let block_kernel: BlockKernel = match kernel {
        Kernel::Scalar => block_scalar,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 if kernel.is_available() => super::fastscan::avx2::block,
        Kernel::Avx2 => return value_err("the avx2 kernel is not available on this CPU"),
        Kernel::Interleaved => {
            return value_err("the interleaved kernel scans the row layout; use search")
        }
    };
    let format = recon.format();
    if format.bits() > 4 {
        return value_err(format!(
            "the block layout needs bits <= 4 (nibble tables); got {}; use search",
            format.bits()
        ));
    }
    let row_bytes = format.row_bytes();
    if blocked_len(n, row_bytes) != Some(blocks.len()) {
        return Err(QamaError::Shape(format!(
            "blocked codes have {} bytes; {n} rows of {row_bytes} bytes need {:?}",
            blocks.len(),
            blocked_len(n, row_bytes)
        )));
    }
    check_search(q, nq, recon, n, k)?;
    let block_bytes = BLOCK_ROWS * row_bytes;
    // Whole kernel groups per tile, about 64 KiB.
    let tile_blocks = (TILE_BYTES / 3 / block_bytes / GROUP_BLOCKS).max(1) * GROUP_BLOCKS;
    drive(
        q,
        nq,
        recon,
        n,
        k,
        blocks,
        tile_blocks * block_bytes,
        tile_blocks * BLOCK_ROWS,
        true,
        |prep, tile, first, best, _| {
            let Some(nibbles) = &prep.nibbles else {
                // Rows too long for 16-bit sums: score every row exactly.
                for (b, block) in tile.chunks_exact(block_bytes).enumerate() {
                    let base = first + b * BLOCK_ROWS;
                    for r in 0..BLOCK_ROWS.min(n.saturating_sub(base)) {
                        best.offer(
                            prep.luts.score_strided(block, BLOCK_ROWS, r),
                            (base + r) as u64,
                        );
                    }
                }
                return;
            };
            scan_blocks(block_kernel, prep, nibbles, tile, first, n, best);
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

fn check_search(q: &[f32], nq: usize, recon: &Recon, n: usize, k: usize) -> Result<()> {
    let dims = recon.format().dims();
    if nq.checked_mul(dims) != Some(q.len()) {
        return Err(QamaError::Shape(format!(
            "queries have {} values; expected nq * dims = {nq} * {dims}",
            q.len()
        )));
    }
    if k == 0 {
        return value_err("k = 0; must be at least 1");
    }
    if n == 0 {
        return value_err("the database is empty (n = 0); nothing to search");
    }
    if n > MAX_ROWS {
        return value_err(format!("n = {n} rows; at most {MAX_ROWS} are supported"));
    }
    for (i, row) in q.chunks_exact(dims).enumerate() {
        check_query(row, recon.format(), i)?;
    }
    Ok(())
}

fn prepare(q: &[f32], recon: &Recon, blocked: bool) -> Result<Prepared> {
    let luts = ByteLuts::build(q, recon)?;
    let nibbles = if blocked {
        NibbleLuts::build(q, recon, &luts)
    } else {
        None
    };
    Ok(Prepared {
        luts,
        nibbles,
        floor: AtomicU32::new(ordered(f32::NEG_INFINITY)),
    })
}

/// Runs `scan(prepared, tile, first_row, best, buffer)` over every (query, tile) pair in one of
/// the two parallel regimes and collects the results. Tiles are `tile_bytes` of `data` holding
/// `tile_rows` rows each.
#[allow(clippy::too_many_arguments)]
fn drive<F>(
    q: &[f32],
    nq: usize,
    recon: &Recon,
    n: usize,
    k: usize,
    data: &[u8],
    tile_bytes: usize,
    tile_rows: usize,
    blocked: bool,
    scan: F,
) -> Result<TopScores>
where
    F: Fn(&Prepared, &[u8], usize, &mut Best, &mut Vec<f32>) + Sync,
{
    let dims = recon.format().dims();
    let kk = k.min(n);
    let total = nq
        .checked_mul(kk)
        .ok_or_else(|| QamaError::Value(format!("nq * k = {nq} * {kk} results overflow")))?;
    let mut scores = try_zeroed::<f32>(total, "the scores")?;
    let mut ids = try_zeroed::<u64>(total, "the ids")?;
    if nq == 0 {
        return Ok(TopScores { k: kk, scores, ids });
    }
    let threads = rayon::current_num_threads();
    if nq >= threads * QUERIES_PER_CHUNK {
        let chunk = query_chunk(nq, threads);
        scores
            .par_chunks_mut(chunk * kk)
            .zip(ids.par_chunks_mut(chunk * kk))
            .zip(q.par_chunks(chunk * dims))
            .try_for_each(|((scores, ids), queries)| -> Result<()> {
                let prepared = queries
                    .chunks_exact(dims)
                    .map(|row| prepare(row, recon, blocked))
                    .collect::<Result<Vec<_>>>()?;
                let mut best = vec![Best::new(kk); prepared.len()];
                let mut buf = Vec::new();
                for (t, tile) in data.chunks(tile_bytes).enumerate() {
                    for (p, b) in prepared.iter().zip(&mut best) {
                        scan(p, tile, t * tile_rows, b, &mut buf);
                    }
                }
                write_results(best, kk, scores, ids);
                Ok(())
            })?;
    } else {
        let prepared = q
            .chunks_exact(dims)
            .map(|row| prepare(row, recon, blocked))
            .collect::<Result<Vec<_>>>()?;
        let best = data
            .par_chunks(tile_bytes)
            .enumerate()
            .fold(
                || (vec![Best::new(kk); nq], Vec::new()),
                |(mut best, mut buf), (t, tile)| {
                    for (p, b) in prepared.iter().zip(&mut best) {
                        scan(p, tile, t * tile_rows, b, &mut buf);
                    }
                    (best, buf)
                },
            )
            .map(|(best, _)| best)
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| a.merge(b));
                a
            })
            .unwrap_or_else(|| vec![Best::new(kk); nq]);
        write_results(best, kk, &mut scores, &mut ids);
    }
    Ok(TopScores { k: kk, scores, ids })
}

/// Query chunk of the batch regime: at least [`QUERIES_PER_CHUNK`] queries, a few chunks per
/// thread so the pool balances.
fn query_chunk(nq: usize, threads: usize) -> usize {
    let chunks = (threads * 4).min(nq / QUERIES_PER_CHUNK).max(1);
    nq.div_ceil(chunks)
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
