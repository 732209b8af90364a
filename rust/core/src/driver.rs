//! The one rayon driver of every exact top-k search (Hamming and asymmetric, every codec).
//!
//! A codec is a [`Scorer`] (qdrant's `EncodedVectors` shape): it prepares a batch of queries
//! (byte tables, the query codes themselves), scores the rows of a tile for every prepared query
//! into per-query selections, and says how its stored rows are tiled. Its SIMD kernels are picked
//! once, when the scorer is built. The driver owns the parallel schedule, in one of two regimes:
//!
//! - batch (at least `threads * queries_per_chunk()` queries; compute-bound): each rayon task takes
//!   a chunk of queries, prepares it, and walks the stored rows tile by tile (a tile stays in L2
//!   while every query of the chunk scans it), then writes its queries' results;
//! - tiles (few queries; memory-bound): the queries are prepared once and the tiles are scanned in
//!   parallel, each task keeping partial selections that are merged at the end.
use std::ops::Range;

use rayon::prelude::*;

use crate::error::Result;

/// A partial top-k that two tasks' results can be merged into.
pub(crate) trait Selection: Clone + Send {
    /// Adds every pair of `other`.
    fn merge(&mut self, other: &Self);
}

/// A codec's scoring, as the driver sees it.
pub(crate) trait Scorer: Sync {
    /// A chunk of queries made ready to score rows.
    type Batch: Sync;
    /// One query's partial top-k.
    type Select: Selection;
    /// Per-task buffers (allocated once per task, never per row).
    type Scratch: Default + Send;

    /// Stored rows the tiles cover (including a layout's padding rows, which scans skip).
    fn rows(&self) -> usize;
    /// Rows per tile.
    fn tile_rows(&self) -> usize;
    /// Queries per task from which the batch regime pays.
    fn queries_per_chunk(&self) -> usize;
    /// An empty selection.
    fn select(&self) -> Self::Select;
    /// Prepares queries `queries` (errors name the query).
    fn prepare(&self, queries: Range<usize>) -> Result<Self::Batch>;
    /// Scores rows `tile` for every query of `batch`, offering them to `selects` (one per query).
    fn scan(
        &self,
        batch: &Self::Batch,
        tile: Range<usize>,
        selects: &mut [Self::Select],
        scratch: &mut Self::Scratch,
    );
}

/// Runs `scorer` for `nq` queries and writes each query's selection with `write(select, values,
/// ids)` into its `kk` slots of `values` and `ids` (row-major, `nq * kk` each).
pub(crate) fn run<S, V, W>(
    scorer: &S,
    nq: usize,
    kk: usize,
    values: &mut [V],
    ids: &mut [u64],
    write: W,
) -> Result<()>
where
    S: Scorer,
    V: Send,
    W: Fn(S::Select, &mut [V], &mut [u64]) + Sync,
{
    if nq == 0 || kk == 0 {
        return Ok(());
    }
    let tile = scorer.tile_rows().max(1);
    let rows = scorer.rows();
    let tiles = rows.div_ceil(tile);
    let tile_range = |t: usize| t * tile..rows.min((t + 1) * tile);
    let threads = rayon::current_num_threads();
    let per_chunk = scorer.queries_per_chunk().max(1);
    if nq >= threads.saturating_mul(per_chunk) {
        let chunk = query_chunk(nq, threads, per_chunk);
        values
            .par_chunks_mut(chunk * kk)
            .zip(ids.par_chunks_mut(chunk * kk))
            .enumerate()
            .try_for_each(|(c, (values, ids))| -> Result<()> {
                let queries = c * chunk..nq.min((c + 1) * chunk);
                let batch = scorer.prepare(queries.clone())?;
                let mut selects = vec![scorer.select(); queries.len()];
                let mut scratch = S::Scratch::default();
                for t in 0..tiles {
                    scorer.scan(&batch, tile_range(t), &mut selects, &mut scratch);
                }
                write_all(selects, kk, values, ids, &write);
                Ok(())
            })
    } else {
        let batch = scorer.prepare(0..nq)?;
        let selects = (0..tiles)
            .into_par_iter()
            .fold(
                || (vec![scorer.select(); nq], S::Scratch::default()),
                |(mut selects, mut scratch), t| {
                    scorer.scan(&batch, tile_range(t), &mut selects, &mut scratch);
                    (selects, scratch)
                },
            )
            .map(|(selects, _)| selects)
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| a.merge(b));
                a
            })
            .unwrap_or_else(|| vec![scorer.select(); nq]);
        write_all(selects, kk, values, ids, &write);
        Ok(())
    }
}

fn write_all<T, V>(
    selects: Vec<T>,
    kk: usize,
    values: &mut [V],
    ids: &mut [u64],
    write: &impl Fn(T, &mut [V], &mut [u64]),
) {
    for ((s, v), i) in selects
        .into_iter()
        .zip(values.chunks_exact_mut(kk))
        .zip(ids.chunks_exact_mut(kk))
    {
        write(s, v, i);
    }
}

/// Query chunk of the batch regime: at least `min` queries, and a few chunks per thread so the
/// pool balances.
pub(crate) fn query_chunk(nq: usize, threads: usize, min: usize) -> usize {
    let chunks = (threads * 4).min(nq / min.max(1)).max(1);
    nq.div_ceil(chunks)
}
