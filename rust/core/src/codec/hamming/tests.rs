//! Parity of every Hamming kernel with the scalar twin, and of the search with a brute force.
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use super::*;
use crate::driver::{self, Candidates};
use crate::select::{Allowed, Hits, Labels};
use crate::testing::{brute, search_rows};

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

fn search(codec: &HammingCodec, q: &[u64], db: &[u64], k: usize) -> Hits {
    search_rows(codec, q, codec.words(), db, k, |q, _| codec.prepare(q))
}

/// Reference: all distances from the bit-by-bit definition, then a sort by (distance, row).
fn brute_force<'a>(q: &'a [u64], db: &'a [u64], words: usize, nbits: usize, k: usize) -> Hits {
    let row = |x: &'a [u64], i: usize| &x[i * words..(i + 1) * words];
    brute(
        |i, r| -(naive(row(q, i), row(db, r), nbits) as f32),
        q.len() / words,
        db.len() / words,
        k,
    )
}

fn check_every_isa(q: &[u64], db: &[u64], words: usize, nbits: usize, k: usize) {
    let want = brute_force(q, db, words, nbits, k);
    // A fixed pool, so the regime (batch from 2 * 16 queries) does not depend on the machine.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for isa in Isa::available() {
        let codec = HammingCodec::new(words, nbits, isa).unwrap();
        let got = pool.install(|| search(&codec, q, db, k));
        assert!(
            got == want,
            "isa={} nq={} words={words} nbits={nbits} k={k}",
            isa.name(),
            q.len() / words
        );
    }
}

#[test]
fn hand_computed_distances_and_ranking_with_ties() {
    // Two 2-word codes: differ in bits 0, 1 (word 0) and bit 63 + 64 = 127 (word 1).
    let q = [0b11u64, 1 << 63];
    let db = [0u64, 0, 0b11, 1 << 63, 0b01, 0];
    for isa in Isa::available() {
        let full = HammingCodec::new(2, 128, isa).unwrap();
        assert_eq!(
            (0..3)
                .map(|r| full.distance(&q, &db[2 * r..2 * r + 2]))
                .collect::<Vec<_>>(),
            vec![3, 0, 2]
        );
        // The 127-bit prefix drops bit 127.
        let prefix = HammingCodec::new(2, 127, isa).unwrap();
        assert_eq!(prefix.distance(&q, &db[..2]), 2);
        // Distances to 0b1111 over 4 bits: 4, 0, 2, 1, 2, 0; ties by lower row.
        let one = HammingCodec::new(1, 4, isa).unwrap();
        let top = search(
            &one,
            &[0b1111],
            &[0b0000, 0b1111, 0b0011, 0b0111, 0b1100, 0b1111],
            4,
        );
        assert_eq!(top.scores, vec![0.0, 0.0, -1.0, -2.0]);
        assert_eq!(top.ids, vec![1, 5, 3, 2]);
    }
}

/// Every kernel of every available level equals the scalar reference bit for bit, for the row
/// and the interleaved path, every tail, and the all-bits-differ case.
#[test]
fn every_kernel_matches_the_scalar_twin() {
    for missing in Isa::ALL.iter().filter(|i| !i.is_available()) {
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
        let batch: Vec<Vec<u64>> = q.chunks(words).map(|c| c.to_vec()).collect();
        for nbits in nbits_cases(words) {
            let reference = HammingCodec::new(words, nbits, Isa::Scalar).unwrap();
            let mut want = vec![0u32; TILED_MIN_QUERIES * n];
            for (i, query) in batch.iter().enumerate() {
                reference.rows_into(query, &db, &mut want[i * n..(i + 1) * n]);
            }
            assert_eq!((want[0], want[1]), (nbits as u32, 0));
            for isa in Isa::available() {
                for variant in ["dispatched", "rows", "vector-only"] {
                    let codec = HammingCodec::new(words, nbits, isa).unwrap();
                    let codec = match variant {
                        "rows" => codec.without_tiles(),
                        "vector-only" => codec.vector_only(),
                        _ => codec,
                    };
                    let mut got = vec![u32::MAX; TILED_MIN_QUERIES * n];
                    codec.distances(&batch, &db, &mut Scratch::default(), |i, d| {
                        got[i * n..(i + 1) * n].copy_from_slice(d)
                    });
                    assert_eq!(
                        got,
                        want,
                        "isa={} kernel={variant} words={words} nbits={nbits}",
                        isa.name()
                    );
                }
            }
        }
    }
}

#[test]
fn matches_brute_force_single_query_over_several_tiles() {
    let mut rng = StdRng::seed_from_u64(11);
    for &words in &[1usize, 6, 10, 18, 33] {
        let n = 6_001;
        let db = random_words(&mut rng, n * words);
        let q = random_words(&mut rng, words);
        for nbits in [64 * words, 64 * words - 5, 7] {
            check_every_isa(&q, &db, words, nbits, 10);
        }
    }
}

#[test]
fn matches_brute_force_with_many_ties_in_every_regime() {
    let mut rng = StdRng::seed_from_u64(12);
    let (words, n) = (3, 3_001);
    let db = tied_words(&mut rng, n, words, 40);
    // Few queries with the row kernel, with the batch kernel, then the batch regime.
    for nq in [1, 5, 40] {
        let q = tied_words(&mut rng, nq, words, 40);
        for (nbits, k) in [(192, 25), (150, 1), (3, 100), (130, 700)] {
            check_every_isa(&q, &db, words, nbits, k);
        }
    }
}

#[test]
fn small_databases_and_large_k() {
    let mut rng = StdRng::seed_from_u64(14);
    for n in [1, 2, 3, 7, 8, 9, 63] {
        let db = tied_words(&mut rng, n, 2, 3);
        let q = random_words(&mut rng, 2 * 70);
        for k in [1, n, n + 1, 1000] {
            check_every_isa(&q, &db, 2, 100, k);
            check_every_isa(&q[..2], &db, 2, 128, k);
        }
    }
}

#[test]
fn the_alternative_pools_and_extents_give_the_same_answer() {
    let mut rng = StdRng::seed_from_u64(15);
    let (n, words, nq) = (5_000, 4, 50);
    let db = random_words(&mut rng, n * words);
    let q = random_words(&mut rng, nq * words);
    let want = brute_force(&q, &db, words, 256, 8);
    let codec = HammingCodec::new(words, 256, Isa::detect()).unwrap();
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        assert_eq!(
            pool.install(|| search(&codec, &q, &db, 8)),
            want,
            "threads={threads}"
        );
    }
    // The same rows split over two extents (labels continue) give the same top-k.
    let (a, b) = db.split_at(1234 * words);
    let extents = [Extent::new(a, 1234, 0), Extent::new(b, n - 1234, 1234)];
    for nq in [1, nq] {
        let got = driver::search(
            &codec,
            nq,
            8,
            driver::one_by_one(|i| codec.prepare(&q[i * words..(i + 1) * words])),
            &extents,
            None,
        )
        .unwrap();
        let want = brute_force(&q[..nq * words], &db, words, 256, 8);
        assert_eq!(got, want, "nq={nq}");
    }
}

#[test]
fn allowed_rows_and_candidates() {
    let mut rng = StdRng::seed_from_u64(16);
    let (n, words) = (3_000, 2);
    let db = tied_words(&mut rng, n, words, 50);
    let q = random_words(&mut rng, 3 * words);
    let codec = HammingCodec::new(words, 128, Isa::detect()).unwrap();
    let allowed: Vec<u64> = (0..n as u64).filter(|r| r % 100 == 7).collect();
    let extent = Extent::new(&db[..], n, 0);
    let filtered = driver::search(
        &codec,
        3,
        10,
        driver::one_by_one(|i| codec.prepare(&q[i * 2..i * 2 + 2])),
        &[extent],
        Some(Allowed::Sorted(&allowed)),
    )
    .unwrap();
    let candidates: Vec<i64> = allowed.iter().map(|&r| r as i64).collect();
    let rescored = driver::rescore(
        &codec,
        3,
        10,
        driver::one_by_one(|i| codec.prepare(&q[i * 2..i * 2 + 2])),
        &[extent],
        Candidates::Shared(&candidates),
        None,
    )
    .unwrap();
    assert_eq!(filtered, rescored);
    assert!(filtered.ids.iter().all(|id| id % 100 == 7));
    // Fewer allowed rows than k: the rest is padded.
    let few = [5u64, 9];
    let top = driver::search(
        &codec,
        1,
        4,
        driver::one_by_one(|_| codec.prepare(&q[..2])),
        &[extent],
        Some(Allowed::Sorted(&few)),
    )
    .unwrap();
    assert_eq!(top.ids[2..], [crate::select::MISSING; 2]);
    let labelled = Extent {
        labels: Labels::Given(&allowed),
        ..Extent::new(&db[..30 * words], 30, 0)
    };
    let top = driver::search(
        &codec,
        1,
        30,
        driver::one_by_one(|_| codec.prepare(&q[..2])),
        &[labelled],
        None,
    )
    .unwrap();
    let mut ids = top.ids.clone();
    ids.sort_unstable();
    assert_eq!(ids, allowed);
}

#[test]
fn rejects_bad_arguments() {
    assert!(HammingCodec::new(0, 1, Isa::Scalar).is_err());
    assert!(HammingCodec::new(2, 0, Isa::Scalar).is_err());
    assert!(HammingCodec::new(2, 129, Isa::Scalar).is_err());
    for isa in Isa::ALL {
        assert_eq!(HammingCodec::new(1, 64, isa).is_ok(), isa.is_available());
    }
    let codec = HammingCodec::new(2, 128, Isa::Scalar).unwrap();
    assert!(codec.prepare(&[0]).is_err());
    let db = [0u64; 6];
    // One preparer for every call below (a reference to it is a preparer too).
    let prep = driver::one_by_one(|_| codec.prepare(&[0, 0]));
    // Data length does not match the rows.
    let bad = Extent::new(&db[..], 4, 0);
    assert!(driver::search(&codec, 1, 1, &prep, &[bad], None).is_err());
    let ok = Extent::new(&db[..], 3, 0);
    assert!(driver::search(&codec, 1, 0, &prep, &[ok], None).is_err());
    let empty = driver::search(&codec, 0, 3, &prep, &[ok], None).unwrap();
    assert_eq!((empty.k, empty.ids.len()), (3, 0));
    let huge_k = driver::search(&codec, 1, usize::MAX, &prep, &[ok], None).unwrap();
    assert_eq!(huge_k.k, 3);
    let dup = [0i64, 0];
    assert!(driver::rescore(&codec, 1, 1, &prep, &[ok], Candidates::Shared(&dup), None).is_err());
    let out = [3i64];
    assert!(driver::score_rows(&codec, 1, &prep, &[ok], Candidates::Shared(&out)).is_err());
}
