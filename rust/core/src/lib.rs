//! Pure-Rust core of qama-rs (no Python here).
//!
//! Codes: [`quantize`] (per-dimension ascending thresholds, code = number of thresholds strictly
//! exceeded) → [`expand`] (thermometer codes, so Hamming distance equals the L1 distance between
//! levels) → [`pack`] (bits into `u64` words); compact per-dimension codes and their block layout in
//! [`codec::table`]. Search: one [`codec::Codec`] trait (Hamming, table and float codecs, each with
//! SIMD kernels picked from an [`Isa`] and a scalar twin), one [`driver`] (rayon, tiles, the one
//! top-k of [`select`], an allowed-label filter, partitioned lists; [`share`] lets helper threads
//! join a query searched alone), and [`kmeans`] for coarse quantizers and codebooks.
//!
//! Bit order (the one layout every module agrees on): the code of a row is one bit stream.
//! Dimension `j` with `L_j` levels owns `L_j - 1` consecutive stream bits starting at
//! `CodeLayout::bit_offset(j)`; stream bit `p` of that group is set iff the code is `> p`
//! (code 0 → `000`, 1 → `100`, 2 → `110`, 3 → `111` in stream order). Stream bit `b` lives in word
//! `b / 64` at bit position `b % 64` (least significant first), which is exactly
//! `np.packbits(bits, bitorder="little")` read as little-endian `u64`. Padding bits are zero.
//! Because dimensions are laid out in order, the first `m` dimensions (a Matryoshka prefix) are the
//! first `CodeLayout::prefix_bits(m)` stream bits: a prefix is searched by comparing only those bits.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod coarse;
pub mod codec;
pub mod driver;
pub mod error;
pub mod expand;
pub mod isa;
pub mod kmeans;
pub mod layout;
pub mod pack;
pub mod quantize;
pub mod select;
pub mod share;
#[cfg(test)]
mod testing;

pub use error::{QamaError, Result};
pub use isa::Isa;
pub use layout::CodeLayout;
