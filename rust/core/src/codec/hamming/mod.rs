//! Symmetric Hamming codes: the codec whose prepared query is itself a code.
//!
//! Rows are `words` `u64`s (the thermometer bit stream of `crate::expand`, or sign bits); only the
//! first `nbits` stream bits are compared (a Matryoshka prefix), so the last compared word is masked.
//! The cost a row offers is its distance; its score is `-distance`.
//!
//! Kernels, picked once from the [`Isa`]: the scalar reference (the parity baseline and the last
//! fallback); on x86 a row-major kernel on the scalar `popcnt` instruction (`popcnt.rs`), which reads
//! the rows in place and serves fewer than [`TILED_MIN_QUERIES`] queries per tile (one query is
//! memory-bound: copying the tile would cost more than a faster kernel saves), and a batch kernel on
//! lane-interleaved copies of a tile (`avx2.rs`: `vpshufb` nibble lookups on 4 rows per register plus
//! one scalar-`popcnt` row per group; `avx512.rs`: `vpopcntq`, 8 rows per register) when enough
//! queries share the tile to amortise the copy. The AVX2 choice was measured on an AMD EPYC Zen 3;
//! the AVX-512 kernel's parity tests run where the CPU has it.
use std::ops::Range;

use crate::codec::{Codec, Extent};
use crate::error::{value_err, Result};
use crate::isa::Isa;
use crate::select::TopK;

mod avx2;
mod avx512;
mod popcnt;
mod scalar;
pub(crate) mod tile;

use tile::GroupShape;

/// Largest `nbits` a codec accepts: distances must stay exact as `f32` scores (below 2^24).
pub const MAX_BITS: usize = (1 << 24) - 1;

/// Queries that must share a tile before the batch (interleaved) kernel pays for its copy.
pub(crate) const TILED_MIN_QUERIES: usize = 4;

/// Queries per task from which the batch regime (parallel over queries) is used.
const QUERIES_PER_CHUNK: usize = 16;

/// Bytes of codes per tile: a tile plus its interleaved copy stay in a 512 KiB L2.
const TILE_BYTES: usize = 192 * 1024;

/// Row-major kernel: `(q, rows, words, cw, mask, out)`, see [`scalar::rows`].
pub(crate) type RowKernel = unsafe fn(&[u64], &[u64], usize, usize, u64, &mut [u32]);

/// Interleaved-tile kernel: `(q, tile, cw, mask, out)`, see `avx2::tiled_fixed`.
pub(crate) type TiledKernel = unsafe fn(&[u64], &[u64], usize, u64, &mut [u32]);

/// Hamming distance over the first `nbits` bits of `words`-word codes.
#[derive(Debug, Clone)]
pub struct HammingCodec {
    words: usize,
    nbits: usize,
    /// Compared words: `ceil(nbits / 64)`.
    cw: usize,
    /// Mask of the last compared word.
    mask: u64,
    rows: RowKernel,
    /// The batch kernel and its group shape, where the level has one.
    tiled: Option<(TiledKernel, GroupShape)>,
}

/// Per-task buffers of a scan.
#[derive(Default)]
pub struct Scratch {
    tile: Vec<u64>,
    dist: Vec<u32>,
}

impl HammingCodec {
    /// A codec for `words`-word codes compared over their first `nbits` bits, with the kernels of
    /// `isa` (errors if the CPU lacks it or `nbits` is out of range).
    pub fn new(words: usize, nbits: usize, isa: Isa) -> Result<Self> {
        if !isa.is_available() {
            return value_err(format!("isa {} is not available on this CPU", isa.name()));
        }
        if words == 0 {
            return value_err("codes have 0 words per row (words = 0); they need at least one");
        }
        let max = words.saturating_mul(64).min(MAX_BITS);
        if nbits == 0 || nbits > max {
            return value_err(format!(
                "nbits = {nbits}; must be in 1..={max} for {words}-word codes"
            ));
        }
        let cw = nbits.div_ceil(64);
        let mask = match nbits % 64 {
            0 => u64::MAX,
            r => (1u64 << r) - 1,
        };
        let (rows, tiled): (RowKernel, Option<(TiledKernel, GroupShape)>) = match isa {
            Isa::Scalar => (scalar::rows, None),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (popcnt::select(cw), Some(avx2::select(cw))),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => (popcnt::select(cw), Some(avx512::select(cw))),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => (scalar::rows, None),
        };
        Ok(Self {
            words,
            nbits,
            cw,
            mask,
            rows,
            tiled,
        })
    }

    /// Words per stored code.
    pub fn words(&self) -> usize {
        self.words
    }

    /// Compared bits.
    pub fn nbits(&self) -> usize {
        self.nbits
    }

    /// A query code ready to scan (`words` words).
    pub fn prepare(&self, code: &[u64]) -> Result<Vec<u64>> {
        if code.len() != self.words {
            return value_err(format!(
                "a query code has {} words; the codec reads {}",
                code.len(),
                self.words
            ));
        }
        Ok(code.to_vec())
    }

    /// Only the row kernel (tests and timings comparing the two kernels).
    #[cfg(test)]
    pub(crate) fn without_tiles(mut self) -> Self {
        self.tiled = None;
        self
    }

    /// The vector-only batch kernel in place of the hybrid one (AVX2), for comparisons.
    #[cfg(test)]
    pub(crate) fn vector_only(mut self) -> Self {
        #[cfg(target_arch = "x86_64")]
        if matches!(self.tiled, Some((_, shape)) if shape.extra > 0) {
            self.tiled = Some(avx2::select_vector_only(self.cw));
        }
        self
    }

    /// Distances of one query to every row of row-major `rows` with the row kernel, into `out`.
    fn rows_into(&self, q: &[u64], rows: &[u64], out: &mut [u32]) {
        // SAFETY: `new` only picks kernels the CPU supports; the kernels check lengths.
        unsafe { (self.rows)(q, rows, self.words, self.cw, self.mask, out) }
    }

    /// Distances of every query of `batch` to every row of `block`; `sink(i, d)` receives query
    /// `i`'s distances in row order. Uses the batch kernel when enough queries share the block.
    pub(crate) fn distances(
        &self,
        batch: &[Vec<u64>],
        block: &[u64],
        scratch: &mut Scratch,
        mut sink: impl FnMut(usize, &[u32]),
    ) {
        let rows = block.len() / self.words;
        match self.tiled {
            Some((kernel, shape)) if batch.len() >= TILED_MIN_QUERIES => {
                let groups = tile::interleave(
                    block,
                    self.words,
                    self.cw,
                    self.mask,
                    shape,
                    &mut scratch.tile,
                );
                let len = groups * shape.rows();
                if scratch.dist.len() < len {
                    scratch.dist.resize(len, 0);
                }
                let dist = &mut scratch.dist[..len];
                for (i, q) in batch.iter().enumerate() {
                    // SAFETY: `new` only picks kernels the CPU supports; the kernels check lengths.
                    unsafe { kernel(q, &scratch.tile, self.cw, self.mask, dist) };
                    sink(i, &dist[..rows]);
                }
            }
            _ => {
                if scratch.dist.len() < rows {
                    scratch.dist.resize(rows, 0);
                }
                let dist = &mut scratch.dist[..rows];
                for (i, q) in batch.iter().enumerate() {
                    self.rows_into(q, block, dist);
                    sink(i, dist);
                }
            }
        }
    }

    /// Distance of `q` to one row (`words` words).
    pub fn distance(&self, q: &[u64], row: &[u64]) -> u32 {
        let mut d = [0u32];
        self.rows_into(q, row, &mut d);
        d[0]
    }
}

impl Codec for HammingCodec {
    type Unit = u64;
    type Query = Vec<u64>;
    type Scratch = Scratch;

    fn row_units(&self) -> usize {
        self.words
    }

    fn tile_rows(&self) -> usize {
        // A multiple of every group size (4 + 1, 8).
        (TILE_BYTES / (self.words * 8)).clamp(64, 1 << 16) / 40 * 40
    }

    fn queries_per_chunk(&self) -> usize {
        QUERIES_PER_CHUNK
    }

    fn scan(
        &self,
        batch: &[Vec<u64>],
        extent: &Extent<'_, u64>,
        tile: Range<usize>,
        selects: &mut [TopK<'_>],
        scratch: &mut Scratch,
    ) {
        let block = &extent.data[tile.start * self.words..tile.end * self.words];
        let labels = extent.labels.skip(tile.start);
        self.distances(batch, block, scratch, |i, d| {
            selects[i].offer_costs(d, labels)
        });
    }

    fn score(&self, query: &Vec<u64>, extent: &Extent<'_, u64>, row: usize) -> f32 {
        -(self.distance(
            query,
            &extent.data[row * self.words..(row + 1) * self.words],
        ) as f32)
    }

    fn score_of(&self, cost: u32) -> f32 {
        -(cost as f32)
    }

    fn cost_of(&self, score: f32) -> u32 {
        (-score) as u32
    }

    fn check_extent(&self, extent: &Extent<'_, u64>, name: &str) -> Result<()> {
        if extent.row_scale.is_some() {
            return value_err(format!(
                "{name}: row_scale: Hamming codes carry no per-row factor"
            ));
        }
        if extent.bias != 0.0 {
            return value_err(format!(
                "{name}: bias = {}: Hamming distances take no bias (their query is a code, not residuals)",
                extent.bias
            ));
        }
        crate::codec::check_lengths(extent, self.words, 1, name)
    }
}

#[cfg(test)]
mod tests;
