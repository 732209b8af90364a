//! Exact Hamming top-k: per query the `min(k, n)` nearest codes, sorted by distance, ties broken by
//! lower id, on the shared driver (`crate::driver`, the same one the asymmetric codecs use):
//! parallel over queries (batches, cache-resident database tiles) and over database blocks (few
//! queries).
//!
//! - Batch (at least `QUERIES_PER_CHUNK` (16) queries per thread; compute-bound): each rayon task
//!   owns a chunk of queries and walks the database in tiles of a few thousand rows that stay in
//!   L2 while every query of the chunk scans them (with the interleaved batch kernel).
//! - Few queries (memory-bound): the database is split into blocks scanned in parallel, each
//!   task keeping a partial top-k per query; the partial results are merged at the end.
//!
//! Selection never sorts all distances: distances are small integers, so most candidates fail
//! one compare against the current k-th distance (see `select.rs`). Threads: rayon's global
//! pool, sized by `RAYON_NUM_THREADS`.
use std::ops::Range;

use crate::driver::{self, Scorer, Selection};
use crate::error::{value_err, QamaError, Result};
use crate::hamming::{check_codes, try_zeroed, Backend, Kernels, Scratch};

#[cfg(test)]
mod perf;
mod select;

pub(crate) use select::sift_down;
use select::{split, TopKeys, MAX_ROWS};

/// Queries per thread from which the batch regime (parallel over queries) is used.
const QUERIES_PER_CHUNK: usize = 16;

/// Row-major results: `distances[i * k + r]`, `ids[i * k + r]` for query `i`, rank `r`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopK {
    /// Results per query (`min(k, n)`).
    pub k: usize,
    /// Hamming distances, ascending per query.
    pub distances: Vec<u32>,
    /// Row numbers in the database (0-based).
    pub ids: Vec<u64>,
}

/// Top-k search of `nq` query codes against `n` database codes (both with `words` words per row)
/// over the first `nbits` bits, on the fastest backend. Errors on `k == 0`, `n == 0`,
/// `nbits == 0 || nbits > 64 * words` or length mismatches.
pub fn search(
    q: &[u64],
    nq: usize,
    db: &[u64],
    n: usize,
    words: usize,
    nbits: usize,
    k: usize,
) -> Result<TopK> {
    search_with(
        crate::hamming::best_backend(),
        q,
        nq,
        db,
        n,
        words,
        nbits,
        k,
    )
}

/// [`search`] on a chosen backend.
#[allow(clippy::too_many_arguments)]
pub fn search_with(
    backend: Backend,
    q: &[u64],
    nq: usize,
    db: &[u64],
    n: usize,
    words: usize,
    nbits: usize,
    k: usize,
) -> Result<TopK> {
    check_codes(q, nq, db, n, words, nbits)?;
    if k == 0 {
        return value_err("k = 0; must be at least 1");
    }
    if n == 0 {
        return value_err("the database is empty (n = 0); nothing to search");
    }
    if n > MAX_ROWS {
        return value_err(format!("n = {n} rows; at most {MAX_ROWS} are supported"));
    }
    let kernels = Kernels::new(backend, words, nbits)?;
    search_kernels(&kernels, q, db, n, k)
}

/// The search proper, on validated arguments and picked kernels.
pub(crate) fn search_kernels(
    kernels: &Kernels,
    q: &[u64],
    db: &[u64],
    n: usize,
    k: usize,
) -> Result<TopK> {
    let words = kernels.words();
    let nq = q.len() / words;
    let kk = k.min(n);
    let total = nq
        .checked_mul(kk)
        .ok_or_else(|| QamaError::Value(format!("nq * k = {nq} * {kk} results overflow")))?;
    let mut distances = try_zeroed::<u32>(total, "the distances")?;
    let mut ids = try_zeroed::<u64>(total, "the ids")?;
    if nq == 0 {
        return Ok(TopK {
            k: kk,
            distances,
            ids,
        });
    }
    let scorer = HammingScorer {
        kernels,
        q,
        db,
        n,
        kk,
    };
    driver::run(&scorer, nq, kk, &mut distances, &mut ids, |top, d, i| {
        for ((key, d), i) in top.into_sorted().into_iter().zip(d).zip(i) {
            (*d, *i) = split(key);
        }
    })?;
    Ok(TopK {
        k: kk,
        distances,
        ids,
    })
}

/// Hamming distances as a [`Scorer`]: a batch is a range of query codes (nothing to prepare); a
/// tile's rows go through the picked kernels, the batch kernel when the chunk has enough queries.
struct HammingScorer<'a> {
    kernels: &'a Kernels,
    q: &'a [u64],
    db: &'a [u64],
    n: usize,
    kk: usize,
}

impl Scorer for HammingScorer<'_> {
    type Batch = Range<usize>;
    type Select = TopKeys;
    type Scratch = Scratch;

    fn rows(&self) -> usize {
        self.n
    }

    fn tile_rows(&self) -> usize {
        self.kernels.tile_rows()
    }

    fn queries_per_chunk(&self) -> usize {
        QUERIES_PER_CHUNK
    }

    fn select(&self) -> TopKeys {
        TopKeys::new(self.kk)
    }

    fn prepare(&self, queries: Range<usize>) -> Result<Range<usize>> {
        Ok(queries)
    }

    fn scan(
        &self,
        batch: &Range<usize>,
        tile: Range<usize>,
        tops: &mut [TopKeys],
        scratch: &mut Scratch,
    ) {
        let words = self.kernels.words();
        let queries = &self.q[batch.start * words..batch.end * words];
        let block = &self.db[tile.start * words..tile.end * words];
        let first = tile.start as u64;
        self.kernels
            .scan(queries, block, scratch, |i, d| tops[i].offer_all(d, first));
    }
}

impl Selection for TopKeys {
    fn merge(&mut self, other: &Self) {
        TopKeys::merge(self, other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hamming::{available_backends, hamming_distances_with};
    use rand::rngs::StdRng;
    use rand::{Rng, RngExt, SeedableRng};

    /// Reference: all distances from the scalar backend, then a full sort by (distance, id).
    fn brute_force(
        q: &[u64],
        nq: usize,
        db: &[u64],
        n: usize,
        words: usize,
        nbits: usize,
        k: usize,
    ) -> TopK {
        let all = hamming_distances_with(Backend::Scalar, q, nq, db, n, words, nbits).unwrap();
        let kk = k.min(n);
        let mut out = TopK {
            k: kk,
            distances: vec![],
            ids: vec![],
        };
        for row in all.chunks(n) {
            let mut pairs: Vec<(u32, u64)> = row
                .iter()
                .enumerate()
                .map(|(i, &d)| (d, i as u64))
                .collect();
            pairs.select_nth_unstable(kk - 1);
            pairs[..kk].sort_unstable();
            for &(d, i) in &pairs[..kk] {
                out.distances.push(d);
                out.ids.push(i);
            }
        }
        out
    }

    fn random_words(rng: &mut StdRng, len: usize) -> Vec<u64> {
        (0..len).map(|_| rng.next_u64()).collect()
    }

    /// Codes with heavy ties: each row picks one of `distinct` random patterns.
    fn tied_words(rng: &mut StdRng, rows: usize, words: usize, distinct: usize) -> Vec<u64> {
        let patterns = random_words(rng, distinct * words);
        (0..rows)
            .flat_map(|_| {
                let p = rng.random_range(0..distinct);
                patterns[p * words..(p + 1) * words].to_vec()
            })
            .collect()
    }

    fn check_all_backends(
        q: &[u64],
        nq: usize,
        db: &[u64],
        n: usize,
        words: usize,
        nbits: usize,
        k: usize,
    ) {
        let want = brute_force(q, nq, db, n, words, nbits, k);
        // A fixed pool, so the regime (batch from 2 * 16 queries) does not depend on the machine.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for backend in available_backends() {
            let got = pool
                .install(|| search_with(backend, q, nq, db, n, words, nbits, k))
                .unwrap();
            assert!(
                got == want,
                "backend={} nq={nq} n={n} words={words} nbits={nbits} k={k}",
                backend.name()
            );
        }
    }

    #[test]
    fn hand_computed_ranking_with_ties() {
        // One-word codes; distances to query 0b1111 over 4 bits: 4, 0, 2, 1, 2, 0.
        let db = [0b0000u64, 0b1111, 0b0011, 0b0111, 0b1100, 0b1111];
        let q = [0b1111u64];
        for backend in available_backends() {
            let top = search_with(backend, &q, 1, &db, 6, 1, 4, 4).unwrap();
            assert_eq!(top.k, 4);
            assert_eq!(top.distances, vec![0, 0, 1, 2]);
            assert_eq!(top.ids, vec![1, 5, 3, 2]);
        }
    }

    #[test]
    fn k_above_n_returns_every_row() {
        let db = [5u64, 1, 4];
        let top = search(&[0], 1, &db, 3, 1, 64, 10).unwrap();
        assert_eq!(top.k, 3);
        assert_eq!(top.distances, vec![1, 1, 2]);
        assert_eq!(top.ids, vec![1, 2, 0]);
    }

    #[test]
    fn single_row_database() {
        let top = search(&[0, 0, u64::MAX, u64::MAX], 2, &[u64::MAX, 0], 1, 2, 100, 5).unwrap();
        assert_eq!(top.k, 1);
        // Query 1 differs in the 36 compared bits of word 1.
        assert_eq!(top.distances, vec![64, 36]);
        assert_eq!(top.ids, vec![0, 0]);
    }

    #[test]
    fn matches_brute_force_single_query() {
        let mut rng = StdRng::seed_from_u64(11);
        for &words in &[1usize, 6, 10, 18, 33] {
            let n = 6_001; // several blocks (4096 rows of 6 words), ragged last one
            let db = random_words(&mut rng, n * words);
            let q = random_words(&mut rng, words);
            for nbits in [64 * words, 64 * words - 5, 7] {
                check_all_backends(&q, 1, &db, n, words, nbits, 10);
            }
        }
    }

    #[test]
    fn matches_brute_force_with_many_ties() {
        let mut rng = StdRng::seed_from_u64(12);
        let words = 3;
        let n = 3_001;
        let db = tied_words(&mut rng, n, words, 40);
        // Few-query regime with the row kernel, with the batch kernel, then the batch regime.
        for nq in [1, 5, 40] {
            let q = tied_words(&mut rng, nq, words, 40);
            for (nbits, k) in [(192, 25), (150, 1), (3, 100), (130, 700)] {
                check_all_backends(&q, nq, &db, n, words, nbits, k);
            }
        }
    }

    #[test]
    fn matches_brute_force_large_batch() {
        let mut rng = StdRng::seed_from_u64(13);
        let n = 4_567;
        for words in [6, 18] {
            let db = random_words(&mut rng, n * words);
            let nq = 77;
            let q = random_words(&mut rng, nq * words);
            check_all_backends(&q, nq, &db, n, words, 64 * words - 1, 10);
        }
    }

    #[test]
    fn small_databases_and_large_k() {
        let mut rng = StdRng::seed_from_u64(14);
        for n in [1, 2, 3, 7, 8, 9, 63] {
            let db = tied_words(&mut rng, n, 2, 3);
            let q = random_words(&mut rng, 2 * 70);
            for k in [1, n, n + 1, 1000] {
                check_all_backends(&q, 70, &db, n, 2, 100, k);
                check_all_backends(&q[..2], 1, &db, n, 2, 128, k);
            }
        }
    }

    #[test]
    fn respects_a_custom_thread_pool() {
        let mut rng = StdRng::seed_from_u64(15);
        let (n, words, nq) = (5_000, 4, 50);
        let db = random_words(&mut rng, n * words);
        let q = random_words(&mut rng, nq * words);
        let want = brute_force(&q, nq, &db, n, words, 256, 8);
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool
                .install(|| search(&q, nq, &db, n, words, 256, 8))
                .unwrap();
            assert_eq!(got, want, "threads={threads}");
        }
    }

    #[test]
    fn rejects_bad_arguments() {
        let db = [0u64; 4];
        let q = [0u64; 2];
        assert!(matches!(
            search(&q, 1, &db, 2, 2, 128, 0),
            Err(QamaError::Value(_))
        ));
        assert!(matches!(
            search(&q, 1, &[], 0, 2, 128, 1),
            Err(QamaError::Value(_))
        ));
        assert!(matches!(
            search(&q, 1, &db, 2, 2, 0, 1),
            Err(QamaError::Value(_))
        ));
        assert!(matches!(
            search(&q, 1, &db, 2, 2, 129, 1),
            Err(QamaError::Value(_))
        ));
        assert!(matches!(
            search(&q, 1, &db, 3, 2, 128, 1),
            Err(QamaError::Shape(_))
        ));
        assert!(matches!(
            search(&q, 2, &db, 2, 2, 128, 1),
            Err(QamaError::Shape(_))
        ));
        assert!(matches!(
            search(&q, 1, &db, 2, 0, 1, 1),
            Err(QamaError::Shape(_))
        ));
        assert!(matches!(
            search(&q, usize::MAX, &db, 2, 2, 128, 1),
            Err(QamaError::Shape(_))
        ));
        let empty = search(&[], 0, &db, 2, 2, 128, 3).unwrap();
        assert_eq!((empty.k, empty.distances.len(), empty.ids.len()), (2, 0, 0));
        let huge_k = search(&q, 1, &db, 2, 2, 128, usize::MAX).unwrap();
        assert_eq!(huge_k.k, 2);
    }
}
