//! Asymmetric scoring: float32 queries against compact per-dimension codes, exact top-k.
//!
//! **Codes** ([`CodeFormat`], [`pack_codes`]): dimension `j` of a document has a code
//! `c_j ∈ 0..2^bits`, `bits` ∈ {1, 2, 4, 8} for the whole array, stored in a field of `bits` bits at
//! bit `j * bits` of the row's little-endian byte stream; rows are padded to whole bytes. This is
//! not the thermometer layout of the Hamming engine: a 4-level code takes 2 bits here, not 3.
//!
//! **Scores** ([`Recon`], [`ByteLuts`]): `score(q, doc) = Σ_j q_j · recon[j][c_j]` with a caller's
//! float32 reconstruction table `recon` of shape `(dims, 2^bits)` (Lloyd-Max levels times σ plus
//! the median, int8 scales, ±1 signs, centroids ...). Per query, one table of 256 entries per code
//! byte, `T[i][v] = Σ_{j in byte i} q_j · recon[j][field_j(v)]`, turns a document's score into
//! `Σ_i T[i][byte_i]`. The summation order is fixed (see `lut.rs`), so every kernel returns the
//! same float32 scores bit for bit, and the NumPy reference reproduces them exactly.
//!
//! **Kernels** ([`Kernel`], picked once per call):
//! - row layout ([`search`]): the float tables, one lookup and one add per code byte; the scalar
//!   reference scores one row at a time, [`Kernel::Interleaved`] keeps 8 rows in flight (same
//!   sums, same order).
//! - block layout ([`to_blocks`], [`search_blocked`], `bits <= 4`): codes transposed in blocks
//!   of 32 documents; per query, the nibble tables quantized to `u8`; AVX2 `vpshufb` lookups with
//!   16-bit accumulation give an integer approximate score per document with a proven error
//!   bound; only documents whose bound reaches the current k-th exact score are re-scored from the
//!   float tables. The top-k is exact with respect to the float scores (see `fastscan.rs`); the
//!   scalar twin of the AVX2 kernel computes the same integers.
//!
//! **Top-k**: scores descending, ties by lower row, `k > n` returns `n` per query; parallel over
//! queries (batches: each task walks cache-sized code tiles while several queries' tables are
//! applied) or over code tiles (few queries: partial top-k per task, merged). Threads: rayon's
//! global pool (`RAYON_NUM_THREADS`).
//!
//! **Per-row scales**: every search and rescoring function of the row and block layouts takes an
//! optional `row_scale` (`n` finite float32 values): row `i` then scores `row_scale[i] * score_i`
//! (one float32 product). The block kernel scales its error bounds per row (any sign), so the
//! top-k stays exact.
//!
//! **Byte-LUT codecs** ([`lut_search`], `adc.rs`): product codes / PQ / packed trits give their own
//! per-query tables `(m, 256)`; the same row kernels, drivers and selection score them.
//! [`lut_search_blocked`] scans them in the block layout: each byte table is split into its
//! least-squares nibble pair and quantized, with the actual split errors in the bound, so the
//! top-k stays exact for any table and the scan is fast for nibble-separable ones (codecs whose
//! low and high nibbles code different dimensions, e.g. `pca_nibble` in Python).
//!
//! **Rescoring** ([`rescore`], [`rescore_float`]): the best `k` of given candidate rows per query,
//! the second stage of a two-stage search.
//!
//! Nothing here panics on bad input: shapes, widths, non-finite values and scores that could
//! overflow float32 are reported as [`crate::QamaError`].

mod adc;
mod blocks;
mod codes;
mod fastscan;
mod lut;
#[cfg(test)]
mod perf;
mod rescore;
mod scan;
mod search;
mod select;
#[cfg(test)]
mod tests;

pub use adc::{
    lut_rescore, lut_score_candidates, lut_search, lut_search_blocked, lut_search_blocked_with,
    lut_search_with,
};
pub use blocks::{blocked_len, from_blocks, to_blocks, BLOCK_ROWS};
pub use codes::{pack_codes, unpack_codes, CodeFormat, SUPPORTED_BITS};
pub use lut::{ByteLuts, Recon};
pub use rescore::{rescore, rescore_float, score_candidates};
pub use search::{search, search_blocked, search_blocked_with, search_with};
pub use select::TopScores;

/// A scoring kernel; which layouts it scans is listed per variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Reference for both layouts: one row at a time (rows), or the scalar twin of the quantized
    /// block kernel (blocks). The parity baseline and the last fallback.
    Scalar,
    /// Row layout: float tables, 8 rows in flight (portable).
    Interleaved,
    /// Block layout: quantized nibble tables with AVX2 `vpshufb` (x86_64 with AVX2).
    Avx2,
}

impl Kernel {
    /// Every kernel.
    pub const ALL: [Kernel; 3] = [Kernel::Avx2, Kernel::Interleaved, Kernel::Scalar];

    /// Short stable name (`"scalar"`, `"interleaved"`, `"avx2"`).
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Interleaved => "interleaved",
            Kernel::Avx2 => "avx2",
        }
    }

    /// The kernel called `name` (see [`Kernel::name`]), if any.
    pub fn from_name(name: &str) -> Option<Kernel> {
        Kernel::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this CPU can run the kernel.
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Scalar | Kernel::Interleaved => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx2 => false,
        }
    }

    /// Whether the kernel scans the row layout ([`search_with`]).
    pub fn scans_rows(self) -> bool {
        matches!(self, Kernel::Scalar | Kernel::Interleaved)
    }

    /// Whether the kernel scans the block layout ([`search_blocked_with`]).
    pub fn scans_blocks(self) -> bool {
        matches!(self, Kernel::Scalar | Kernel::Avx2)
    }

    /// The fastest available kernel for the row layout.
    pub fn best_rows() -> Kernel {
        Kernel::Interleaved
    }

    /// The fastest available kernel for the block layout.
    pub fn best_blocks() -> Kernel {
        if Kernel::Avx2.is_available() {
            Kernel::Avx2
        } else {
            Kernel::Scalar
        }
    }
}

/// Kernels this CPU can run.
pub fn available_kernels() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_available())
        .collect()
}

pub(crate) use crate::error::try_zeroed;
