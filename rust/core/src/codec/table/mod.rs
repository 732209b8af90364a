//! Codes scored through per-query byte tables: float32 queries against compact codes.
//!
//! A row is `row_bytes` code bytes; a query becomes one table of 256 float32 entries per code byte
//! ([`ByteLuts`]), and a row scores `Σ_i T[i][byte_i]` (a float32 sum over bytes in order, from
//! `0.0`), times the row's scale when the extent has scales, plus the extent's bias. The tables come
//! from one of two sources ([`Tables`]):
//!
//! - **per-dimension reconstruction values** ([`Recon`], `bits` ∈ {1, 2, 4, 8} per dimension packed
//!   little-endian into bytes, see [`codes`]): `T[i][v] = Σ_{j in byte i} q_j · recon[j][field_j(v)]`,
//!   built in a fixed order so every kernel and the NumPy reference agree bit for bit;
//! - **tables the caller builds** (product codes, PQ, bit-allocated PCA codes): `m` tables per query.
//!
//! Two layouts ([`Layout`]): row-major rows, scanned with the float tables (the scalar reference,
//! or [`rows::scores_interleaved`] with 8 rows in flight, same sums); and the transposed 32-row
//! block layout ([`blocks`]), scanned by the quantized FastScan-style kernel ([`fastscan`]): 4-bit
//! `vpshufb` lookups give an integer approximate score per row with a proven error bound, and only
//! rows whose bound reaches the current k-th exact score are scored from the float tables, so the
//! top-k is exact (a query's first tile is seeded with its rows of best integer sums, so that bound
//! is tight from the start: `TableCodec::seed`). Given tables are split into their least-squares
//! nibble pair (exact pruning for any table; tight for nibble-separable ones, e.g. `pca_nibble`).
//! Rescoring reads either layout.
//!
//! Nothing here panics on bad input: shapes, widths, non-finite values and scores that could
//! overflow float32 are reported as [`crate::QamaError`].
use std::ops::Range;

use crate::codec::{Codec, Extent};
use crate::error::{shape_err, value_err, Result};
use crate::isa::Isa;
use crate::select::{cost_of_score, score_of_cost, TopK};

pub mod blocks;
pub mod codes;
mod fastscan;
mod luts;
mod projection;
mod rows;

pub use blocks::{blocked_len, from_blocks, keep_rows, to_blocks, write_rows, BLOCK_ROWS};
pub use codes::{pack_codes, unpack_codes, CodeFormat, SUPPORTED_BITS};
pub use luts::{ByteLuts, Recon};
pub use projection::Projection;

use fastscan::{block_scalar, lane_of, BlockKernel, NibbleLuts, GROUP_BLOCKS, GROUP_ROWS};
use rows::{scores_interleaved, scores_scalar};

/// Queries per task from which the batch regime (parallel over queries) is used.
const QUERIES_PER_CHUNK: usize = 8;

/// Largest top-k that [`TableCodec::seed`] seeds (its pick keeps the best sums in a plain list).
const SEED_MAX: usize = 64;

/// Code bytes per tile: a tile stays in L2 (512 KiB on Zen 3) beside one query's float tables.
const TILE_BYTES: usize = 192 * 1024;

/// Where a query's byte tables come from.
#[derive(Debug, Clone)]
pub enum Tables {
    /// Per-dimension reconstruction values: a query is `dims` floats.
    Recon(Recon),
    /// The caller's tables: a query is `m * 256` floats (`m` tables of 256 entries).
    Given {
        /// Code bytes per row (= tables per query).
        m: usize,
    },
    /// Built here from a float query: a projection, then per-byte slots (see [`Projection`]).
    Projected(Projection),
}

/// How rows are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Row-major rows of `row_bytes`.
    Rows,
    /// Blocks of 32 rows, byte `i` of row `r` at `i * 32 + r` (see [`blocks`]).
    Blocks,
}

/// A row-layout scan: scores of every row of a tile (row-major) into `out`.
type RowKernel = fn(&ByteLuts, &[u8], usize, &mut [f32]);

/// Codes scored through byte tables (see the module docs).
#[derive(Debug, Clone)]
pub struct TableCodec {
    tables: Tables,
    layout: Layout,
    row_bytes: usize,
    row_kernel: RowKernel,
    block_kernel: BlockKernel,
    isa: Isa,
}

/// One query made ready: its float tables, and its quantized nibble tables (block layout).
#[derive(Debug)]
pub struct Prepared {
    luts: ByteLuts,
    nibbles: Option<NibbleLuts>,
}

impl TableCodec {
    /// A codec of per-dimension reconstruction values (`Layout::Blocks` needs `bits <= 4`).
    pub fn recon(recon: Recon, layout: Layout, isa: Isa) -> Result<Self> {
        let format = recon.format();
        if layout == Layout::Blocks && format.bits() > 4 {
            return value_err(format!(
                "the block layout needs codes of at most 4 bits (nibble tables); these have {}",
                format.bits()
            ));
        }
        Self::with(Tables::Recon(recon), layout, format.row_bytes(), isa)
    }

    /// A codec of `m`-byte codes scored with the caller's tables.
    pub fn given(m: usize, layout: Layout, isa: Isa) -> Result<Self> {
        if m == 0 {
            return shape_err("m = 0; codes need at least one byte per row");
        }
        if m.checked_mul(luts::BYTE_VALUES).is_none() {
            return shape_err(format!("m = {m} is too large"));
        }
        Self::with(Tables::Given { m }, layout, m, isa)
    }

    fn with(tables: Tables, layout: Layout, row_bytes: usize, isa: Isa) -> Result<Self> {
        if !isa.is_available() {
            return value_err(format!("isa {} is not available on this CPU", isa.name()));
        }
        let (row_kernel, block_kernel): (RowKernel, BlockKernel) = match isa {
            Isa::Scalar => (scores_scalar, block_scalar),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (scores_interleaved, fastscan::avx2::block),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => (scores_interleaved, fastscan::avx512::block),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => (scores_interleaved, block_scalar),
        };
        Ok(Self {
            tables,
            layout,
            row_bytes,
            row_kernel,
            block_kernel,
            isa,
        })
    }

    /// Code bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    /// The layout rows are stored in.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The table source.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// A codec of byte tables built from float queries by `projection` (`Layout::Blocks` with nibble
    /// slots gives the tight bounds of nibble-separable tables).
    pub fn projected(projection: Projection, layout: Layout, isa: Isa) -> Result<Self> {
        let m = projection.bytes();
        Self::with(Tables::Projected(projection.with_isa(isa)), layout, m, isa)
    }

    /// Floats per query: `dims` (reconstruction values, projections) or `m * 256` (given tables).
    pub fn query_len(&self) -> usize {
        match &self.tables {
            Tables::Recon(r) => r.format().dims(),
            Tables::Given { m } => m * luts::BYTE_VALUES,
            Tables::Projected(p) => p.dims(),
        }
    }

    /// Makes query `index` (`query_len()` floats) ready for extents whose scales and biases are
    /// bounded by `bounds` (so no score can overflow float32).
    pub fn prepare(&self, query: &[f32], index: usize, bounds: Bounds) -> Result<Prepared> {
        prepare_leveled(self.isa, self, query, index, bounds, None)
    }

    /// [`TableCodec::prepare`] of the queries `first..` held in `queries` (`query_len()` floats
    /// each): the same values and errors. A projecting codec projects four valid queries at a time,
    /// reading its basis once for the four.
    pub fn prepare_block(
        &self,
        queries: &[f32],
        first: usize,
        bounds: Bounds,
    ) -> Result<Vec<Prepared>> {
        let len = self.query_len().max(1);
        let rows: Vec<&[f32]> = queries.chunks(len).collect();
        let mut out = Vec::with_capacity(rows.len());
        let mut at = 0;
        if let Tables::Projected(p) = &self.tables {
            while at + 4 <= rows.len() {
                let four: [&[f32]; 4] = std::array::from_fn(|j| rows[at + j]);
                // An invalid query among them: one at a time, so the errors come in their order.
                if (0..4).any(|j| super::check_query(four[j], len, first + at + j).is_err()) {
                    break;
                }
                for (j, projected) in p.project4(four).into_iter().enumerate() {
                    let (query, index) = (four[j], first + at + j);
                    out.push(prepare_leveled(
                        self.isa,
                        self,
                        query,
                        index,
                        bounds,
                        Some(projected),
                    )?);
                }
                at += 4;
            }
        }
        for (j, query) in rows[at..].iter().enumerate() {
            out.push(self.prepare(query, first + at + j, bounds)?);
        }
        Ok(out)
    }

    /// `projected`: the query's projection, where the caller made it (see `prepare_block`).
    #[inline(always)]
    fn prepare_portable(
        &self,
        query: &[f32],
        index: usize,
        bounds: Bounds,
        projected: Option<Vec<f32>>,
    ) -> Result<Prepared> {
        if matches!(self.tables, Tables::Given { .. }) {
            if query.len() != self.query_len() {
                return shape_err(format!(
                    "queries[{index}] has {} values; expected {}",
                    query.len(),
                    self.query_len()
                ));
            }
        } else if projected.is_none() {
            // (A projection given by `prepare_block` is of a query it checked.)
            super::check_query(query, self.query_len(), index)?;
        }
        let luts = match &self.tables {
            Tables::Recon(recon) => ByteLuts::build(query, recon)?,
            Tables::Given { m } => ByteLuts::from_table(query, *m, index)?,
            Tables::Projected(p) if p.is_split() && self.layout == Layout::Blocks => {
                // Halves only: block scans score rows from them (see `ByteLuts::from_halves`).
                let (_, halves) = p.tables(&projected.unwrap_or_else(|| p.project(query)), false);
                let halves = halves.expect("split projections give halves");
                let Some(luts) = ByteLuts::from_halves(halves) else {
                    return value_err(format!(
                        "queries[{index}] is too large: its projected tables overflow float32"
                    ));
                };
                luts
            }
            Tables::Projected(p) => {
                let (table, _) = p.tables(&projected.unwrap_or_else(|| p.project(query)), true);
                // Finite queries and tables can still overflow in the sums: name the query only.
                // Branch-free (it vectorizes): an exponent of all ones is inf or NaN.
                let exp = 0x7f80_0000u32;
                if table
                    .iter()
                    .fold(false, |bad, v| bad | (v.to_bits() & exp == exp))
                {
                    return value_err(format!(
                        "queries[{index}] is too large: its projected tables overflow float32"
                    ));
                }
                ByteLuts::from_vec(table, index)?
            }
        };
        luts.check_scale(bounds.max_scale, bounds.max_bias)?;
        let nibbles = match (self.layout, &self.tables) {
            (Layout::Rows, _) => None,
            (Layout::Blocks, Tables::Recon(recon)) => NibbleLuts::build(query, recon, &luts),
            (Layout::Blocks, _) => match luts.halves() {
                Some(halves) => NibbleLuts::from_split(halves, &luts),
                None => NibbleLuts::from_byte_luts(&luts),
            },
        };
        Ok(Prepared { luts, nibbles })
    }

    /// Largest `|row_scale|` and `|bias|` over `extents` (1 and 0 without), for
    /// [`TableCodec::prepare`]; a non-finite scale is an error naming its row.
    pub fn bounds<'a>(
        &self,
        extents: impl IntoIterator<Item = &'a Extent<'a, u8>>,
    ) -> Result<Bounds> {
        let mut b = Bounds::default();
        for e in extents {
            b.max_bias = b.max_bias.max(f64::from(e.bias).abs());
            match e.row_scale {
                None => b.max_scale = b.max_scale.max(1.0),
                Some(s) => {
                    let s = &s[..e.rows.min(s.len())];
                    if let Some(at) = s.iter().position(|v| !v.is_finite()) {
                        return value_err(format!("row_scale[{at}] = {} is not finite", s[at]));
                    }
                    b.max_scale = s
                        .iter()
                        .fold(b.max_scale, |m, &v| m.max(f64::from(v).abs()));
                }
            }
        }
        Ok(b)
    }

    /// The raw (unscaled, unbiased) score of row `row` of `extent`.
    #[inline]
    fn raw(&self, luts: &ByteLuts, extent: &Extent<'_, u8>, row: usize) -> f32 {
        match self.layout {
            Layout::Rows => {
                luts.score(&extent.data[row * self.row_bytes..(row + 1) * self.row_bytes])
            }
            Layout::Blocks => {
                let block_bytes = BLOCK_ROWS * self.row_bytes;
                let block = &extent.data[(row / BLOCK_ROWS) * block_bytes..][..block_bytes];
                luts.score_strided(block, BLOCK_ROWS, row % BLOCK_ROWS)
            }
        }
    }

    /// The score of a raw score at row `row`: times the row's scale, plus the bias.
    #[inline]
    fn finish(extent: &Extent<'_, u8>, row: usize, raw: f32) -> f32 {
        let scaled = match extent.row_scale {
            Some(scale) => raw * scale[row],
            None => raw,
        };
        if extent.bias != 0.0 {
            scaled + extent.bias
        } else {
            scaled
        }
    }

    fn scan_rows<'q, 's: 'q>(
        &self,
        queries: impl Iterator<Item = (&'q Prepared, &'q mut TopK<'s>)>,
        extent: &Extent<'_, u8>,
        tile: Range<usize>,
        scratch: &mut Scratch,
    ) {
        let rows = tile.len();
        let data = &extent.data[tile.start * self.row_bytes..tile.end * self.row_bytes];
        let labels = extent.labels.skip(tile.start);
        scratch.scores.resize(rows, 0.0);
        scratch.costs.resize(rows, 0);
        for (p, select) in queries {
            (self.row_kernel)(&p.luts, data, self.row_bytes, &mut scratch.scores);
            for (r, (c, &s)) in scratch.costs.iter_mut().zip(&scratch.scores).enumerate() {
                *c = cost_of_score(Self::finish(extent, tile.start + r, s));
            }
            select.offer_costs(&scratch.costs, labels);
        }
    }

    fn scan_blocks<'q, 's: 'q>(
        &self,
        queries: impl Iterator<Item = (&'q Prepared, &'q mut TopK<'s>)>,
        extent: &Extent<'_, u8>,
        tile: Range<usize>,
    ) {
        let block_bytes = BLOCK_ROWS * self.row_bytes;
        let first_block = tile.start / BLOCK_ROWS;
        let data =
            &extent.data[first_block * block_bytes..tile.end.div_ceil(BLOCK_ROWS) * block_bytes];
        for (p, select) in queries {
            let Some(nibbles) = &p.nibbles else {
                // Rows too long for 16-bit sums: score every row exactly.
                for r in tile.clone() {
                    if select.excludes(|| extent.labels.of(r)) {
                        continue;
                    }
                    let s = Self::finish(extent, r, self.raw(&p.luts, extent, r));
                    select.offer(cost_of_score(s), extent.labels.of(r));
                }
                continue;
            };
            // A query with no bound yet scores the tile's best rows by sum first (see `seed`).
            let seeded = if select.bound() == u32::MAX && extent.admitted.is_none() {
                self.seed(p, nibbles, extent, tile.clone(), data, select)
            } else {
                Vec::new()
            };
            let mut sums = [0u16; GROUP_ROWS];
            for (g, group) in data.chunks(GROUP_BLOCKS * block_bytes).enumerate() {
                let mut base = tile.start + g * GROUP_ROWS;
                let mut group = group;
                // Admitted rows: only the blocks with one are read.
                let admitted = match extent.admitted {
                    None => None,
                    Some(bits) => match group_bits(bits, base, group.len() / block_bytes) {
                        0 => continue,
                        a if a as u32 == 0 && group.len() > block_bytes => {
                            (group, base) = (&group[block_bytes..], base + BLOCK_ROWS);
                            Some(a >> BLOCK_ROWS)
                        }
                        a if a >> BLOCK_ROWS == 0 => {
                            group = &group[..block_bytes];
                            Some(a)
                        }
                        a => Some(a),
                    },
                };
                let live = extent
                    .rows
                    .min(base + group.len() / block_bytes * BLOCK_ROWS)
                    - base;
                let (threshold, scales) = match extent.row_scale {
                    None => (nibbles.min_sum(target(select, extent.bias)), None),
                    Some(scale) => {
                        let scales = &scale[base..base + live];
                        let (lo, hi) = scales
                            .iter()
                            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &s| {
                                (lo.min(s), hi.max(s))
                            });
                        let t = if lo > 0.0 {
                            nibbles.min_sum_scaled(target(select, extent.bias), lo, hi)
                        } else {
                            0
                        };
                        (t, Some(scales))
                    }
                };
                // SAFETY: the kernel was picked for this CPU; `tables` has TABLE_STRIDE bytes per
                // code byte and `group` one or two whole blocks.
                let mut mask =
                    unsafe { (self.block_kernel)(nibbles.tables(), group, threshold, &mut sums) }
                        & admitted.unwrap_or(u64::MAX)
                        & !seeded.get(g).copied().unwrap_or(0);
                // Rows that may enter, scored exactly four at a time (see `score_strided4`); the
                // bound is re-read before each four, so rows it has since excluded are skipped.
                let mut pending = [0usize; 4];
                let mut held = 0;
                while mask != 0 {
                    let r = mask.trailing_zeros() as usize;
                    mask &= mask - 1;
                    if r >= live {
                        break; // padding rows (the last block's tail; bits ascend with rows)
                    }
                    if held == 4 {
                        self.offer4(&p.luts, extent, base, pending, 4, select);
                        held = 0;
                    }
                    // The filter first (unless the mask has it): a test per row, cheaper than the
                    // bound's arithmetic (while few allowed rows are held, every row passes the kernel).
                    if admitted.is_none() && select.excludes(|| extent.labels.of(base + r)) {
                        continue;
                    }
                    let goal = target(select, extent.bias);
                    let sum = sums[lane_of(r)];
                    let reachable = match scales {
                        None => sum >= nibbles.min_sum(goal),
                        Some(scales) => nibbles.may_reach(sum, scales[r], goal),
                    };
                    if reachable {
                        pending[held] = r;
                        held += 1;
                    }
                }
                if held > 0 {
                    // Fewer than four: the last is repeated (four chains cost what one does).
                    for j in held..4 {
                        pending[j] = pending[held - 1];
                    }
                    self.offer4(&p.luts, extent, base, pending, held, select);
                }
            }
        }
    }

    /// Offers the `cap` rows of `tile` with the largest integer sums (scored exactly) before the
    /// scan proper, and returns them as bits per kernel group (bit `r` of word `g`: row
    /// `tile.start + 64 g + r`) for the scan to skip. A bound made in row order is loose until it has
    /// seen most of a tile: on a query's first list every row passes the kernel's cut until `cap`
    /// are held, and most that pass next are scored only to be displaced. The best sums make it
    /// nearly the final bound at once (measured, one list of 24-byte codes, top-10: 15 exact scores a
    /// query instead of 62). Any rows would do for the results (they are offered like any other):
    /// only the cost depends on the choice. Not under a filter (its rows may be excluded), for tiles
    /// of few rows or for a large top-k.
    fn seed(
        &self,
        p: &Prepared,
        nibbles: &NibbleLuts,
        extent: &Extent<'_, u8>,
        tile: Range<usize>,
        data: &[u8],
        select: &mut TopK<'_>,
    ) -> Vec<u64> {
        let cap = select.capacity();
        let live = extent.rows.min(tile.end).saturating_sub(tile.start);
        if cap > SEED_MAX || live <= 2 * cap || select.is_filtered() {
            return Vec::new();
        }
        let block_bytes = BLOCK_ROWS * self.row_bytes;
        // The `cap` largest (sum, row) so far, and the sum a row must exceed to displace the least.
        let mut best: Vec<(u16, usize)> = Vec::with_capacity(cap);
        let mut floor = 0u16;
        let mut least = 0usize;
        let mut sums = [0u16; GROUP_ROWS];
        for (g, group) in data.chunks(GROUP_BLOCKS * block_bytes).enumerate() {
            let base = tile.start + g * GROUP_ROWS;
            let rows = extent
                .rows
                .min(base + group.len() / block_bytes * BLOCK_ROWS)
                - base;
            // SAFETY: as in `scan_blocks`.
            let mut mask =
                unsafe { (self.block_kernel)(nibbles.tables(), group, floor, &mut sums) };
            while mask != 0 {
                let r = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                if r >= rows {
                    break;
                }
                let sum = sums[lane_of(r)];
                // The kernel cut at the group's first floor; it may have risen since.
                if sum < floor {
                    continue;
                }
                if best.len() < cap {
                    best.push((sum, base + r));
                    if best.len() < cap {
                        continue;
                    }
                } else if sum > best[least].0 {
                    best[least] = (sum, base + r);
                } else {
                    continue; // equal to the least (the floor saturated at u16::MAX)
                }
                // The least held (the first of equals), found again only when the set changed.
                least = 0;
                for (j, &(s, _)) in best.iter().enumerate() {
                    if s < best[least].0 {
                        least = j;
                    }
                }
                floor = best[least].0.saturating_add(1);
            }
        }
        let mut seeded = vec![0u64; data.len().div_ceil(GROUP_BLOCKS * block_bytes)];
        for four in best.chunks(4) {
            let rows: [usize; 4] = std::array::from_fn(|j| four[j.min(four.len() - 1)].1);
            self.offer4(&p.luts, extent, 0, rows, four.len(), select);
            for &(_, row) in four {
                let at = row - tile.start;
                seeded[at / GROUP_ROWS] |= 1 << (at % GROUP_ROWS);
            }
        }
        seeded
    }

    /// Scores rows `base + r` (`r` in `rows`) of a block extent exactly and offers the first `n`.
    fn offer4(
        &self,
        luts: &ByteLuts,
        extent: &Extent<'_, u8>,
        base: usize,
        rows: [usize; 4],
        n: usize,
        select: &mut TopK<'_>,
    ) {
        let block_bytes = BLOCK_ROWS * self.row_bytes;
        let row = rows.map(|r| base + r);
        let blocks = row.map(|x| &extent.data[(x / BLOCK_ROWS) * block_bytes..][..block_bytes]);
        let raw = luts.score_strided4(blocks, BLOCK_ROWS, row.map(|x| x % BLOCK_ROWS));
        for (&x, raw) in row.iter().zip(raw).take(n) {
            let s = Self::finish(extent, x, raw);
            select.offer(cost_of_score(s), extent.labels.of(x));
        }
    }
}

crate::isa::leveled! {
    /// [`TableCodec::prepare`]'s work, its loops compiled for the codec's level (the same values).
    fn prepare_leveled(
        codec: &TableCodec,
        query: &[f32],
        index: usize,
        bounds: Bounds,
        projected: Option<Vec<f32>>,
    ) -> Result<Prepared> = TableCodec::prepare_portable;
}

/// Admitted-row bits (see [`Extent::admitted`]) of the `blocks` blocks from row `base`, bit `r` for
/// row `base + r`. `base` is a multiple of 64: tiles are whole kernel groups (`tile_rows`).
#[inline]
fn group_bits(bits: &[u64], base: usize, blocks: usize) -> u64 {
    debug_assert_eq!(base % GROUP_ROWS, 0);
    let word = bits.get(base / 64).copied().unwrap_or(0);
    match blocks * BLOCK_ROWS {
        64.. => word,
        n => word & ((1u64 << n) - 1),
    }
}

/// What the raw (unbiased) score of a row must reach for the row to possibly enter `select`:
/// the k-th score less the bias, stepped down for the float32 rounding of `bias + score`.
#[inline]
fn target(select: &TopK<'_>, bias: f32) -> f32 {
    let bound = select.bound();
    if bound == u32::MAX {
        return f32::NEG_INFINITY;
    }
    let kth = score_of_cost(bound);
    if bias == 0.0 {
        return kth;
    }
    let k = f64::from(kth);
    let b = f64::from(bias);
    let need = k - b - (k.abs() + b.abs()) * f64::from(f32::EPSILON);
    (need as f32).next_down()
}

/// Largest `|row_scale|` and `|bias|` of the extents a query will score (overflow checks).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Largest `|row_scale|` (1 without scales).
    pub max_scale: f64,
    /// Largest `|bias|`.
    pub max_bias: f64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_scale: 0.0,
            max_bias: 0.0,
        }
    }
}

/// Per-task buffers of a row-layout scan.
#[derive(Default)]
pub struct Scratch {
    scores: Vec<f32>,
    costs: Vec<u32>,
}

impl Codec for TableCodec {
    type Unit = u8;
    type Query = Prepared;
    type Scratch = Scratch;

    fn row_units(&self) -> usize {
        self.row_bytes
    }

    fn block_rows(&self) -> usize {
        match self.layout {
            Layout::Rows => 1,
            Layout::Blocks => BLOCK_ROWS,
        }
    }

    fn tile_rows(&self) -> usize {
        match self.layout {
            Layout::Rows => (TILE_BYTES / self.row_bytes.max(1)).max(1),
            Layout::Blocks => {
                // Whole kernel groups per tile, about 64 KiB.
                let block_bytes = BLOCK_ROWS * self.row_bytes;
                (TILE_BYTES / 3 / block_bytes / GROUP_BLOCKS).max(1) * GROUP_ROWS
            }
        }
    }

    fn queries_per_chunk(&self) -> usize {
        QUERIES_PER_CHUNK
    }

    fn scan(
        &self,
        batch: &[Prepared],
        extent: &Extent<'_, u8>,
        tile: Range<usize>,
        selects: &mut [TopK<'_>],
        scratch: &mut Scratch,
    ) {
        let queries = batch.iter().zip(selects);
        match self.layout {
            Layout::Rows => self.scan_rows(queries, extent, tile, scratch),
            Layout::Blocks => self.scan_blocks(queries, extent, tile),
        }
    }

    fn score(&self, query: &Prepared, extent: &Extent<'_, u8>, row: usize) -> f32 {
        Self::finish(extent, row, self.raw(&query.luts, extent, row))
    }
}

#[cfg(test)]
mod tests;
