//! The one codec concept: how a family of codes is stored, how a query is made ready, how rows are
//! scored (qdrant's `EncodedVectors` shape; faiss's `InvertedListScanner` for the partitioned case).
//!
//! A codec prepares a query, scans a range of stored rows (its fast path: SIMD kernels picked once,
//! from an [`Isa`](crate::Isa), when the codec is built), scores one given row (rescoring, and the
//! rows an allowed-set names), and says its layout. Stored rows come as [`Extent`]s: a contiguous run
//! of rows in the codec's layout with their labels, optional per-row scales and a bias added to
//! every score (a partition's `<q, centroid>` when codes hold residuals). The driver
//! ([`crate::driver`]) owns threads, tiles and the top-k; codecs never spawn work.
//!
//! Implementations: [`hamming::HammingCodec`] (thermometer / sign codes, symmetric Hamming),
//! [`table::TableCodec`] (codes scored through per-query byte tables: per-dimension reconstruction
//! values or tables the caller builds; row or 32-row block layout), [`float::FloatCodec`] (float32
//! or float16 rows, inner product).
use std::ops::Range;

use crate::error::{check_finite, shape_err, value_err, Result};
use crate::select::{Labels, TopK};

pub mod float;
pub mod hamming;
pub mod table;

/// Checks query `index` (of a batch): `len` values, all finite; errors name `queries[index, j]`.
pub fn check_query(query: &[f32], len: usize, index: usize) -> Result<()> {
    if query.len() != len {
        return shape_err(format!(
            "queries[{index}] has {} values; expected {len}",
            query.len()
        ));
    }
    check_finite(query, "queries", |j| format!("{index}, {j}"))
}

/// [`check_query`] for each row of a row-major `(nq, dims)` batch.
pub fn check_queries(queries: &[f32], dims: usize) -> Result<()> {
    if dims == 0 {
        return Ok(());
    }
    for (i, q) in queries.chunks(dims).enumerate() {
        check_query(q, dims, i)?;
    }
    Ok(())
}

/// A contiguous run of stored rows of one codec.
#[derive(Debug, Clone, Copy)]
pub struct Extent<'a, U> {
    /// The rows in the codec's layout: `rows * row_units` units (the block layout pads the last
    /// block: `ceil(rows / 32) * 32 * row_units`).
    pub data: &'a [U],
    /// Live rows.
    pub rows: usize,
    /// Labels the search returns for these rows.
    pub labels: Labels<'a>,
    /// Optional per-row factors (`rows` finite values, checked where they are made: a search reads
    /// them without a pass of its own): row `i` scores `bias + scale_i * raw_i`.
    pub row_scale: Option<&'a [f32]>,
    /// Added to every score of these rows (0 unless codes hold residuals of a partition).
    pub bias: f32,
    /// The rows a search's filter admits, when they were found for these rows (bit `r % 64` of word
    /// `r / 64`; see [`crate::select::AdmittedRows`]): a scan may skip the others unread. The top-k
    /// still tests labels, so a codec that ignores this returns the same results.
    pub admitted: Option<&'a [u64]>,
}

impl<'a, U> Extent<'a, U> {
    /// `rows` rows of `data`, labelled from `first`, no scales, no bias.
    pub fn new(data: &'a [U], rows: usize, first: u64) -> Self {
        Self {
            data,
            rows,
            labels: Labels::From(first),
            row_scale: None,
            bias: 0.0,
            admitted: None,
        }
    }
}

/// What every codec provides to the driver.
pub trait Codec: Sync {
    /// Element of stored rows (`u64` words, `u8` bytes, `f32` or `u16` (float16) values).
    type Unit: Copy + Send + Sync;
    /// A query made ready to score rows.
    type Query: Send + Sync;
    /// Per-task buffers (allocated once per task, never per row).
    type Scratch: Default + Send;

    /// Units per stored row.
    fn row_units(&self) -> usize;

    /// Rows per block of the layout: 1 for row-major rows, 32 for the transposed block layout.
    fn block_rows(&self) -> usize {
        1
    }

    /// Rows per tile of a scan (a tile stays in L2 while a chunk of queries scans it); a multiple
    /// of [`Codec::block_rows`].
    fn tile_rows(&self) -> usize;

    /// Queries per task from which the batch regime (parallel over queries) pays.
    fn queries_per_chunk(&self) -> usize;

    /// Scans rows `tile` of `extent` (block-aligned start) for every query of `batch`, offering
    /// them to `selects` (one per query).
    fn scan(
        &self,
        batch: &[Self::Query],
        extent: &Extent<'_, Self::Unit>,
        tile: Range<usize>,
        selects: &mut [TopK<'_>],
        scratch: &mut Self::Scratch,
    );

    /// The score of row `row` of `extent` (the same value [`Codec::scan`] ranks by).
    fn score(&self, query: &Self::Query, extent: &Extent<'_, Self::Unit>, row: usize) -> f32;

    /// The score a top-k cost stands for (the inverse of the cost the codec offers).
    fn score_of(&self, cost: u32) -> f32 {
        crate::select::score_of_cost(cost)
    }

    /// The cost the top-k ranks a score by.
    fn cost_of(&self, score: f32) -> u32 {
        crate::select::cost_of_score(score)
    }

    /// Checks an extent's lengths (data for `rows` in this layout, labels, scales) and its bias; O(1),
    /// so a search over small lists pays nothing per row.
    fn check_extent(&self, extent: &Extent<'_, Self::Unit>, name: &str) -> Result<()> {
        check_lengths(extent, self.row_units(), self.block_rows(), name)
    }
}

/// Units of `rows` rows of `row_units` in a layout of `block_rows`-row blocks (`None` on overflow).
pub fn stored_units(rows: usize, row_units: usize, block_rows: usize) -> Option<usize> {
    rows.div_ceil(block_rows)
        .checked_mul(block_rows)?
        .checked_mul(row_units)
}

/// The shared extent checks (see [`Codec::check_extent`]).
pub(crate) fn check_lengths<U>(
    extent: &Extent<'_, U>,
    row_units: usize,
    block_rows: usize,
    name: &str,
) -> Result<()> {
    let want = stored_units(extent.rows, row_units, block_rows);
    if want != Some(extent.data.len()) {
        return shape_err(format!(
            "{name} has {} values; {} rows of {row_units} need {}",
            extent.data.len(),
            extent.rows,
            want.map_or("too many".into(), |w| w.to_string())
        ));
    }
    if let Labels::Given(labels) = extent.labels {
        if labels.len() < extent.rows {
            return shape_err(format!(
                "{name}: {} labels for {} rows",
                labels.len(),
                extent.rows
            ));
        }
    }
    if let Some(scale) = extent.row_scale {
        if scale.len() < extent.rows {
            return shape_err(format!(
                "row_scale of {name} has {} values; expected one per row ({})",
                scale.len(),
                extent.rows
            ));
        }
    }
    if let Some(bits) = extent.admitted {
        if bits.len() < extent.rows.div_ceil(64) {
            return shape_err(format!(
                "{name}: {} words of admitted rows for {} rows",
                bits.len(),
                extent.rows
            ));
        }
    }
    if !extent.bias.is_finite() {
        return value_err(format!("the bias of {name} is {}", extent.bias));
    }
    Ok(())
}
