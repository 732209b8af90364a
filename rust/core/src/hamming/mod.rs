//! Hamming distance kernels with runtime CPU-feature dispatch.
//!
//! Codes are rows of `words` `u64`s; only the first `nbits` stream bits are compared (a Matryoshka
//! prefix), so the last compared word is masked. Backends: the scalar reference (the parity
//! baseline for SIMD tests and the last fallback), AVX2 and AVX-512 VPOPCNTDQ, picked once per call.
//!
//! Each x86 backend has two kernels, and a scan picks one per database tile:
//! - a row-major kernel on the scalar `popcnt` instruction (`popcnt.rs`), which reads the database
//!   in place: used when fewer than `TILED_MIN_QUERIES` (4) queries share a tile. One query is
//!   memory-bound, and copying the tile would cost more than the faster kernel saves;
//! - a batch kernel on lane-interleaved tiles (`avx2.rs`: `vpshufb` nibble lookups on 4 rows per
//!   register plus one scalar-`popcnt` row per group; `avx512.rs`: `vpopcntq`, 8 rows per
//!   register), used when enough queries share a tile to amortise the interleaving copy.
//!
//! The AVX2 choice was measured on an AMD EPYC Zen 3 (AVX2, no AVX-512): see `avx2.rs`. The
//! AVX-512 kernel could not be run there; it compiles everywhere and its parity tests run where
//! the CPU has the feature.
use rayon::prelude::*;

use crate::error::{shape_err, value_err, QamaError, Result};

mod avx2;
mod avx512;
mod popcnt;
mod scalar;
pub(crate) mod tile;

use tile::GroupShape;

/// Largest `nbits` a search accepts: distances must fit the 24 bits the top-k keys give them.
pub const MAX_BITS: usize = (1 << 24) - 1;

/// Queries that must share a tile before the batch (interleaved) kernel pays for its copy.
pub(crate) const TILED_MIN_QUERIES: usize = 4;

/// Bytes of database codes per tile: a tile plus its interleaved copy stay in a 512 KiB L2.
const TILE_BYTES: usize = 192 * 1024;

/// Row-major kernel: `(q, db, words, cw, mask, out)`, see [`scalar::rows`].
pub(crate) type RowKernel = unsafe fn(&[u64], &[u64], usize, usize, u64, &mut [u32]);

/// Interleaved-tile kernel: `(q, tile, cw, mask, out)`, see `avx2::tiled_fixed`.
pub(crate) type TiledKernel = unsafe fn(&[u64], &[u64], usize, u64, &mut [u32]);

/// A distance backend; [`Backend::Scalar`] is always available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Portable `u64::count_ones` loop: the reference the SIMD kernels are tested against.
    Scalar,
    /// AVX2 kernel (x86_64): `vpshufb` batch kernel plus a `popcnt` row kernel for few queries.
    Avx2,
    /// AVX-512F + VPOPCNTDQ kernel (x86_64): `vpopcntq` batch kernel plus the `popcnt` row kernel.
    Avx512Vpopcnt,
}

impl Backend {
    /// Every backend, fastest first.
    pub const ALL: [Backend; 3] = [Backend::Avx512Vpopcnt, Backend::Avx2, Backend::Scalar];

    /// Short stable name (`"scalar"`, `"avx2"`, `"avx512vpopcntdq"`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512Vpopcnt => "avx512vpopcntdq",
        }
    }

    /// The backend called `name` (see [`Backend::name`]), if any.
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Whether this CPU can run the backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("popcnt"),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Vpopcnt => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512vpopcntdq")
                    && is_x86_feature_detected!("popcnt")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx2 | Backend::Avx512Vpopcnt => false,
        }
    }
}

/// Backends this CPU can run, fastest first (always ends with `Scalar`).
pub fn available_backends() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect()
}

/// The fastest available backend (what search uses unless told otherwise).
pub fn best_backend() -> Backend {
    Backend::ALL
        .into_iter()
        .find(|b| b.is_available())
        .unwrap_or(Backend::Scalar)
}

/// Checks the shared arguments of distance and search calls.
pub(crate) fn check_codes(
    q: &[u64],
    nq: usize,
    db: &[u64],
    n: usize,
    words: usize,
    nbits: usize,
) -> Result<()> {
    if words == 0 {
        return shape_err(
            "queries and database have 0 words per row (words = 0); codes need at least one",
        );
    }
    let max = words.saturating_mul(64).min(MAX_BITS);
    if nbits == 0 || nbits > max {
        return value_err(format!(
            "nbits = {nbits}; must be in 1..={max} for {words}-word codes"
        ));
    }
    if nq.checked_mul(words) != Some(q.len()) {
        return shape_err(format!(
            "queries have {} words; expected nq * words = {nq} * {words}",
            q.len()
        ));
    }
    if n.checked_mul(words) != Some(db.len()) {
        return shape_err(format!(
            "database has {} words; expected n * words = {n} * {words}",
            db.len()
        ));
    }
    Ok(())
}

pub(crate) use crate::error::try_zeroed;

pub(crate) use crate::driver::query_chunk;

/// Per-task buffers of a scan, allocated once per rayon task, never per row.
#[derive(Default)]
pub(crate) struct Scratch {
    tile: Vec<u64>,
    dist: Vec<u32>,
}

/// The kernels of one call, picked once from the backend, the word count and `nbits`.
pub(crate) struct Kernels {
    words: usize,
    /// Compared words: `ceil(nbits / 64)`.
    cw: usize,
    /// Mask of the last compared word.
    mask: u64,
    rows: RowKernel,
    /// The batch kernel and its group shape, where the backend has one.
    tiled: Option<(TiledKernel, GroupShape)>,
    /// Queries that must share a tile before the batch kernel is used.
    tiled_min_queries: usize,
}

impl Kernels {
    /// Picks the kernels; errors if the CPU lacks `backend` or `nbits` is out of range.
    pub(crate) fn new(backend: Backend, words: usize, nbits: usize) -> Result<Self> {
        if !backend.is_available() {
            return value_err(format!(
                "backend {} is not available on this CPU",
                backend.name()
            ));
        }
        if words == 0 || nbits == 0 || nbits > words.saturating_mul(64) {
            return value_err(format!("nbits = {nbits} does not fit {words}-word codes"));
        }
        let cw = nbits.div_ceil(64);
        let mask = match nbits % 64 {
            0 => u64::MAX,
            r => (1u64 << r) - 1,
        };
        let (rows, tiled): (RowKernel, Option<(TiledKernel, GroupShape)>) = match backend {
            Backend::Scalar => (scalar::rows, None),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => (popcnt::select(cw), Some(avx2::select(cw))),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Vpopcnt => (popcnt::select(cw), Some(avx512::select(cw))),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx2 | Backend::Avx512Vpopcnt => (scalar::rows, None),
        };
        Ok(Self {
            words,
            cw,
            mask,
            rows,
            tiled,
            tiled_min_queries: TILED_MIN_QUERIES,
        })
    }

    /// Only the row kernel (for tests and timings that compare the two kernels).
    #[cfg(test)]
    pub(crate) fn without_tiles(mut self) -> Self {
        self.tiled = None;
        self
    }

    /// The vector-only batch kernel in place of the hybrid one (AVX2), for comparisons.
    #[cfg(test)]
    pub(crate) fn vector_only(mut self) -> Self {
        // Only the AVX2 kernel has extra (scalar) rows.
        #[cfg(target_arch = "x86_64")]
        if matches!(self.tiled, Some((_, shape)) if shape.extra > 0) {
            self.tiled = Some(avx2::select_vector_only(self.cw));
        }
        self
    }

    /// The batch kernel whenever the backend has one, even for a single query.
    #[cfg(test)]
    pub(crate) fn always_tiled(mut self) -> Self {
        self.tiled_min_queries = 1;
        self
    }

    /// Words per row of the codes these kernels read.
    pub(crate) fn words(&self) -> usize {
        self.words
    }

    /// Rows per database tile: about [`TILE_BYTES`], a multiple of every group size (4, 5, 8).
    pub(crate) fn tile_rows(&self) -> usize {
        (TILE_BYTES / (self.words * 8)).clamp(64, 1 << 16) / 40 * 40
    }

    /// Distances of one query to every row of `db` with the row kernel, into `out`.
    pub(crate) fn rows_into(&self, q: &[u64], db: &[u64], out: &mut [u32]) {
        // SAFETY: `new` only picks kernels the CPU supports; the kernels check lengths.
        unsafe { (self.rows)(q, db, self.words, self.cw, self.mask, out) }
    }

    /// Distances of every query in `queries` (row-major) to every row of `block`; `sink(i, d)`
    /// receives query `i`'s distances in row order. Uses the batch kernel when enough queries
    /// share the block to pay for interleaving it.
    pub(crate) fn scan(
        &self,
        queries: &[u64],
        block: &[u64],
        scratch: &mut Scratch,
        mut sink: impl FnMut(usize, &[u32]),
    ) {
        let rows = block.len() / self.words;
        let nqueries = queries.len() / self.words;
        match self.tiled {
            Some((kernel, shape)) if nqueries >= self.tiled_min_queries => {
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
                for (i, q) in queries.chunks_exact(self.words).enumerate() {
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
                for (i, q) in queries.chunks_exact(self.words).enumerate() {
                    self.rows_into(q, block, dist);
                    sink(i, dist);
                }
            }
        }
    }
}

/// All-pairs distances `(nq, n)` between query codes and database codes over the first `nbits` bits.
pub fn hamming_distances(
    q: &[u64],
    nq: usize,
    db: &[u64],
    n: usize,
    words: usize,
    nbits: usize,
) -> Result<Vec<u32>> {
    hamming_distances_with(best_backend(), q, nq, db, n, words, nbits)
}

/// [`hamming_distances`] on a chosen backend; errors if the CPU lacks it.
pub fn hamming_distances_with(
    backend: Backend,
    q: &[u64],
    nq: usize,
    db: &[u64],
    n: usize,
    words: usize,
    nbits: usize,
) -> Result<Vec<u32>> {
    check_codes(q, nq, db, n, words, nbits)?;
    let kernels = Kernels::new(backend, words, nbits)?;
    let total = nq
        .checked_mul(n)
        .ok_or_else(|| QamaError::Value(format!("nq * n = {nq} * {n} distances overflow")))?;
    let mut out = try_zeroed::<u32>(total, "the distance matrix")?;
    if total == 0 {
        return Ok(out);
    }
    distances_into(&kernels, q, db, n, &mut out);
    Ok(out)
}

/// Fills the row-major `(nq, n)` matrix `out`.
fn distances_into(kernels: &Kernels, q: &[u64], db: &[u64], n: usize, out: &mut [u32]) {
    let words = kernels.words;
    let nq = q.len() / words;
    let tile = kernels.tile_rows();
    let threads = rayon::current_num_threads();
    if nq >= threads * TILED_MIN_QUERIES * 2 {
        // Many queries: each task owns a block of queries and walks cache-sized database tiles.
        let chunk = query_chunk(nq, threads, TILED_MIN_QUERIES * 2);
        out.par_chunks_mut(chunk * n)
            .zip(q.par_chunks(chunk * words))
            .for_each(|(out, queries)| {
                let mut scratch = Scratch::default();
                for (t, block) in db.chunks(tile * words).enumerate() {
                    kernels.scan(queries, block, &mut scratch, |i, d| {
                        out[i * n + t * tile..][..d.len()].copy_from_slice(d);
                    });
                }
            });
    } else {
        // Few queries: parallel over database blocks, one query at a time.
        for (query, out) in q.chunks_exact(words).zip(out.chunks_exact_mut(n)) {
            out.par_chunks_mut(tile)
                .zip(db.par_chunks(tile * words))
                .for_each(|(out, block)| kernels.rows_into(query, block, out));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, RngExt, SeedableRng};

    /// Word counts that exercise every unrolled size, the generic loops and the 31-word
    /// byte-accumulator limit of the AVX2 kernel.
    const PARITY_WORDS: [usize; 14] = [1, 2, 5, 6, 7, 8, 9, 10, 15, 16, 17, 18, 31, 33];

    fn random_words(rng: &mut StdRng, len: usize) -> Vec<u64> {
        (0..len).map(|_| rng.next_u64()).collect()
    }

    /// Bit-by-bit definition: count differing stream bits below `nbits`.
    fn naive(a: &[u64], b: &[u64], nbits: usize) -> u32 {
        (0..nbits)
            .filter(|&i| (a[i / 64] ^ b[i / 64]) >> (i % 64) & 1 == 1)
            .count() as u32
    }

    /// `nbits` values for a word count: full words, a ragged tail, one bit, a shorter prefix.
    fn nbits_cases(words: usize) -> Vec<usize> {
        let mut cases = vec![64 * words, 64 * words - 13, 1, 64 * (words - 1) + 1];
        if words > 2 {
            cases.push(64 * (words / 2) + 37);
        }
        cases.sort_unstable();
        cases.dedup();
        cases.retain(|&b| b >= 1);
        cases
    }

    #[test]
    fn scalar_matches_bit_by_bit_definition() {
        let mut rng = StdRng::seed_from_u64(7);
        for words in [1, 3, 10] {
            let (q, db) = (
                random_words(&mut rng, words),
                random_words(&mut rng, 9 * words),
            );
            for nbits in nbits_cases(words) {
                let got =
                    hamming_distances_with(Backend::Scalar, &q, 1, &db, 9, words, nbits).unwrap();
                let want: Vec<u32> = db.chunks(words).map(|row| naive(&q, row, nbits)).collect();
                assert_eq!(got, want, "words={words} nbits={nbits}");
            }
        }
    }

    #[test]
    fn hand_computed_distances() {
        // Two 2-word codes: differ in bits 0, 1 (word 0) and bit 63 + 64 = 127 (word 1).
        let q = [0b11u64, 1 << 63];
        let db = [0u64, 0, 0b11, 1 << 63, 0b01, 0];
        for backend in available_backends() {
            let d = hamming_distances_with(backend, &q, 1, &db, 3, 2, 128).unwrap();
            assert_eq!(d, vec![3, 0, 2], "{backend:?}");
            // The 127-bit prefix drops bit 127.
            let d = hamming_distances_with(backend, &q, 1, &db, 3, 2, 127).unwrap();
            assert_eq!(d, vec![2, 0, 1], "{backend:?}");
        }
    }

    /// Every kernel of every available backend equals the scalar reference bit for bit, for both
    /// the row and the interleaved path, every tail, and the all-bits-differ case.
    #[test]
    fn every_kernel_matches_scalar() {
        // Backends this CPU lacks are skipped (say so, so a green run is not misread).
        for missing in Backend::ALL.iter().filter(|b| !b.is_available()) {
            eprintln!(
                "parity: skipping {} (not supported by this CPU)",
                missing.name()
            );
        }
        let mut rng = StdRng::seed_from_u64(42);
        let n = 8 * 5 + 3; // a ragged last lane group
        for &words in &PARITY_WORDS {
            let q = random_words(&mut rng, TILED_MIN_QUERIES * words);
            let mut db = random_words(&mut rng, n * words);
            // Row 0: every bit differs from query 0; row 1: identical to query 0.
            for w in 0..words {
                db[w] = !q[w];
                db[words + w] = q[w];
            }
            for nbits in nbits_cases(words) {
                let reference = Kernels::new(Backend::Scalar, words, nbits).unwrap();
                let mut want = vec![0u32; TILED_MIN_QUERIES * n];
                for (i, query) in q.chunks(words).enumerate() {
                    reference.rows_into(query, &db, &mut want[i * n..(i + 1) * n]);
                }
                assert_eq!(want[0], nbits as u32);
                assert_eq!(want[1], 0);
                for backend in available_backends() {
                    for variant in ["dispatched", "rows", "vector-only"] {
                        let kernels = Kernels::new(backend, words, nbits).unwrap();
                        let kernels = match variant {
                            "rows" => kernels.without_tiles(),
                            "vector-only" => kernels.vector_only(),
                            _ => kernels,
                        };
                        let mut got = vec![u32::MAX; TILED_MIN_QUERIES * n];
                        let mut scratch = Scratch::default();
                        kernels.scan(&q, &db, &mut scratch, |i, d| {
                            got[i * n..(i + 1) * n].copy_from_slice(d)
                        });
                        assert_eq!(
                            got,
                            want,
                            "backend={} kernel={variant} words={words} nbits={nbits}",
                            backend.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn distance_matrix_matches_scalar_in_both_regimes() {
        let mut rng = StdRng::seed_from_u64(3);
        let words = 6;
        let n = 9_000; // three tiles of 4096 rows
        let db = random_words(&mut rng, n * words);
        // A fixed pool, so the regime (batch from 2 * 8 queries) does not depend on the machine.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for nq in [1, 3, 5, 64] {
            let q = random_words(&mut rng, nq * words);
            for nbits in [384, 300] {
                let want =
                    hamming_distances_with(Backend::Scalar, &q, nq, &db, n, words, nbits).unwrap();
                for backend in available_backends() {
                    let got = pool
                        .install(|| hamming_distances_with(backend, &q, nq, &db, n, words, nbits))
                        .unwrap();
                    assert!(
                        got == want,
                        "backend={} nq={nq} nbits={nbits}",
                        backend.name()
                    );
                }
                let spot = rng.random_range(0..nq * n);
                let (i, j) = (spot / n, spot % n);
                assert_eq!(want[spot], naive(&q[i * words..], &db[j * words..], nbits));
            }
        }
    }

    #[test]
    fn rejects_bad_arguments() {
        let q = [0u64; 2];
        let db = [0u64; 6];
        let err = |r: Result<Vec<u32>>| r.unwrap_err();
        assert!(matches!(
            err(hamming_distances(&q, 1, &db, 3, 0, 1)),
            QamaError::Shape(_)
        ));
        assert!(matches!(
            err(hamming_distances(&q, 1, &db, 3, 2, 0)),
            QamaError::Value(_)
        ));
        assert!(matches!(
            err(hamming_distances(&q, 1, &db, 3, 2, 129)),
            QamaError::Value(_)
        ));
        assert!(matches!(
            err(hamming_distances(&q, 2, &db, 3, 2, 64)),
            QamaError::Shape(_)
        ));
        assert!(matches!(
            err(hamming_distances(&q, 1, &db, 4, 2, 64)),
            QamaError::Shape(_)
        ));
        assert!(matches!(
            err(hamming_distances(&q, 1, &db, usize::MAX, 2, 64)),
            QamaError::Shape(_)
        ));
        assert!(hamming_distances(&[], 0, &db, 3, 2, 64).unwrap().is_empty());
        assert!(hamming_distances(&q, 1, &[], 0, 2, 64).unwrap().is_empty());
        for backend in Backend::ALL {
            let r = hamming_distances_with(backend, &q, 1, &db, 3, 2, 64);
            assert_eq!(r.is_ok(), backend.is_available(), "{backend:?}");
        }
    }

    #[test]
    fn backend_names_round_trip_and_scalar_is_last() {
        for b in Backend::ALL {
            assert_eq!(Backend::from_name(b.name()), Some(b));
        }
        assert_eq!(Backend::from_name("sse"), None);
        let available = available_backends();
        assert_eq!(available.last(), Some(&Backend::Scalar));
        assert_eq!(available[0], best_backend());
    }
}
