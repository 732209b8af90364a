//! Parity and exactness tests across kernels and layouts.
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::fastscan::{block_scalar, lane_of, NibbleLuts, GROUP_ROWS, TABLE_STRIDE};
use super::*;
use crate::error::{QamaError, Result};

/// Dims that exercise full bytes, ragged last bytes, one byte and long rows.
const PARITY_DIMS: [usize; 8] = [1, 3, 7, 8, 13, 64, 100, 384];

fn random_codes(rng: &mut StdRng, n: usize, format: CodeFormat) -> Vec<u8> {
    let levels = format.levels();
    (0..n * format.dims())
        .map(|_| rng.random_range(0..levels) as u8)
        .collect()
}

fn random_floats(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn random_recon(rng: &mut StdRng, format: CodeFormat) -> Recon {
    let table = random_floats(rng, format.dims() * format.levels());
    Recon::new(format, table).unwrap()
}

/// Every score from the scalar reference, then a full sort (score descending, id ascending).
fn brute_force(
    q: &[f32],
    nq: usize,
    recon: &Recon,
    packed: &[u8],
    n: usize,
    k: usize,
) -> TopScores {
    let dims = recon.format().dims();
    let row_bytes = recon.format().row_bytes();
    let kk = k.min(n);
    let mut out = TopScores {
        k: kk,
        scores: vec![],
        ids: vec![],
    };
    for query in q.chunks(dims).take(nq) {
        let luts = ByteLuts::build(query, recon).unwrap();
        let mut pairs: Vec<(f32, u64)> = packed
            .chunks(row_bytes)
            .enumerate()
            .map(|(i, row)| (luts.score(row), i as u64))
            .collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(s, i) in &pairs[..kk] {
            out.scores.push(s);
            out.ids.push(i);
        }
    }
    out
}

/// The search on every kernel and layout, in a fixed 2-thread pool (so the regime does not depend
/// on the machine), against the brute force.
fn check_all_kernels(q: &[f32], nq: usize, recon: &Recon, packed: &[u8], n: usize, k: usize) {
    let want = brute_force(q, nq, recon, packed, n, k);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let format = recon.format();
    let blocks = to_blocks(packed, n, format.row_bytes()).unwrap();
    for kernel in available_kernels() {
        if kernel.scans_rows() {
            let got = pool
                .install(|| search_with(kernel, q, nq, recon, packed, n, None, k))
                .unwrap();
            assert!(
                got == want,
                "rows kernel={} format={format:?} nq={nq} n={n} k={k}",
                kernel.name()
            );
        }
        if kernel.scans_blocks() && format.bits() <= 4 {
            let got = pool
                .install(|| search_blocked_with(kernel, q, nq, recon, &blocks, n, None, k))
                .unwrap();
            assert!(
                got == want,
                "blocks kernel={} format={format:?} nq={nq} n={n} k={k}",
                kernel.name()
            );
        }
    }
}

#[test]
fn hand_computed_search() {
    // 2 dims of 1 bit, recon ±1: q = (1, 2) scores codes (0,0), (1,0), (0,1), (1,1), (1,0) as
    // -3, -1, 1, 3, -1.
    let format = CodeFormat::new(2, 1).unwrap();
    let recon = Recon::new(format, vec![-1.0, 1.0, -1.0, 1.0]).unwrap();
    let packed = pack_codes(&[0, 0, 1, 0, 0, 1, 1, 1, 1, 0], 5, format).unwrap();
    for kernel in available_kernels() {
        let top = if kernel.scans_rows() {
            search_with(kernel, &[1.0, 2.0], 1, &recon, &packed, 5, None, 4).unwrap()
        } else {
            let blocks = to_blocks(&packed, 5, 1).unwrap();
            search_blocked_with(kernel, &[1.0, 2.0], 1, &recon, &blocks, 5, None, 4).unwrap()
        };
        assert_eq!(top.k, 4);
        assert_eq!(top.scores, vec![3.0, 1.0, -1.0, -1.0], "{kernel:?}");
        // Rows 1 and 4 tie at -1: the lower row first.
        assert_eq!(top.ids, vec![3, 2, 1, 4], "{kernel:?}");
    }
}

#[test]
fn interleaved_scores_equal_scalar_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(1);
    for bits in SUPPORTED_BITS {
        for dims in PARITY_DIMS {
            let format = CodeFormat::new(dims, bits).unwrap();
            let recon = random_recon(&mut rng, format);
            let n = 8 * 3 + 5; // a ragged last group
            let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
            let luts = ByteLuts::build(&random_floats(&mut rng, dims), &recon).unwrap();
            let mut want = vec![0f32; n];
            let mut got = vec![0f32; n];
            scan::scores_scalar(&luts, &packed, format.row_bytes(), &mut want);
            scan::scores_interleaved(&luts, &packed, format.row_bytes(), &mut got);
            let bits_of = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits_of(&got), bits_of(&want), "bits={bits} dims={dims}");
        }
    }
}

#[test]
fn scores_match_float_reconstruction_within_rounding() {
    // score = q · reconstruct(codes), up to float32 rounding of a different summation order.
    let mut rng = StdRng::seed_from_u64(2);
    for bits in SUPPORTED_BITS {
        let format = CodeFormat::new(100, bits).unwrap();
        let recon = random_recon(&mut rng, format);
        let codes = random_codes(&mut rng, 20, format);
        let packed = pack_codes(&codes, 20, format).unwrap();
        let q = random_floats(&mut rng, 100);
        let luts = ByteLuts::build(&q, &recon).unwrap();
        for (row, fields) in packed.chunks(format.row_bytes()).zip(codes.chunks(100)) {
            let exact: f64 = fields
                .iter()
                .enumerate()
                .map(|(j, &c)| f64::from(q[j]) * f64::from(recon.dim(j)[usize::from(c)]))
                .sum();
            let got = f64::from(luts.score(row));
            assert!((got - exact).abs() < 1e-4, "bits={bits}: {got} vs {exact}");
        }
    }
}

/// The AVX2 block kernel returns the scalar twin's sums and masks exactly.
#[test]
fn block_kernels_match_scalar_twin() {
    let mut rng = StdRng::seed_from_u64(3);
    for bytes in [1usize, 2, 3, 15, 16, 31, 32, 63, 96, 128, 257] {
        let tables: Vec<u8> = (0..bytes)
            .flat_map(|_| {
                // Entries keep lo + hi <= 255, as built tables do; include the extremes.
                let lo: Vec<u8> = (0..16)
                    .map(|u| if u == 0 { 0 } else { rng.random_range(0..=127) })
                    .collect();
                let hi: Vec<u8> = (0..16)
                    .map(|u| {
                        if u == 15 {
                            128
                        } else {
                            rng.random_range(0..=128)
                        }
                    })
                    .collect();
                [lo.clone(), lo, hi.clone(), hi].concat()
            })
            .collect();
        assert_eq!(tables.len(), bytes * TABLE_STRIDE);
        let bb = bytes * BLOCK_ROWS;
        let mut blocks: Vec<u8> = (0..2 * bb).map(|_| rng.random()).collect();
        // Row 0 of block 0 and row 33 (block 1, row 1) all 0xFF (the largest entries where
        // allowed); row 1 and row 32 all zero.
        for i in 0..bytes {
            blocks[i * BLOCK_ROWS] = 0xFF;
            blocks[i * BLOCK_ROWS + 1] = 0;
            blocks[bb + i * BLOCK_ROWS] = 0;
            blocks[bb + i * BLOCK_ROWS + 1] = 0xFF;
        }
        let max_sum = (bytes * 255).min(usize::from(u16::MAX));
        for group in [&blocks[..bb], &blocks[..]] {
            let rows = group.len() / bytes;
            for threshold in [0u16, 1, 1000, (max_sum / 2) as u16, u16::MAX] {
                let mut want = [0u16; GROUP_ROWS];
                // SAFETY: lengths as the kernel type requires.
                let want_mask = unsafe { block_scalar(&tables, group, threshold, &mut want) };
                for r in 0..GROUP_ROWS {
                    let expected = r < rows && want[lane_of(r)] >= threshold;
                    assert_eq!(want_mask >> r & 1 == 1, expected, "bytes={bytes} r={r}");
                }
                #[cfg(target_arch = "x86_64")]
                if Kernel::Avx2.is_available() && bytes * 255 <= usize::from(u16::MAX) {
                    let mut got = [0u16; GROUP_ROWS];
                    // SAFETY: AVX2 is available; lengths as required.
                    let mask =
                        unsafe { fastscan::avx2::block(&tables, group, threshold, &mut got) };
                    assert_eq!(got, want, "bytes={bytes} rows={rows}");
                    assert_eq!(
                        mask, want_mask,
                        "bytes={bytes} rows={rows} threshold={threshold}"
                    );
                }
            }
        }
    }
}

/// Every row's float score lies within the interval its integer sum stands for.
#[test]
fn quantized_sums_bound_the_float_scores() {
    let mut rng = StdRng::seed_from_u64(4);
    for bits in [1, 2, 4] {
        for dims in PARITY_DIMS {
            let format = CodeFormat::new(dims, bits).unwrap();
            let recon = random_recon(&mut rng, format);
            let n = 64;
            let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
            let blocks = to_blocks(&packed, n, format.row_bytes()).unwrap();
            let q = random_floats(&mut rng, dims);
            let luts = ByteLuts::build(&q, &recon).unwrap();
            let nibbles = NibbleLuts::build(&q, &recon, &luts).unwrap();
            let mut sums = [0u16; GROUP_ROWS];
            for (b, block) in blocks.chunks(BLOCK_ROWS * format.row_bytes()).enumerate() {
                // SAFETY: lengths as the kernel type requires.
                unsafe { block_scalar(nibbles.tables(), block, 0, &mut sums) };
                for r in 0..BLOCK_ROWS {
                    let row =
                        &packed[(b * BLOCK_ROWS + r) * format.row_bytes()..][..format.row_bytes()];
                    let score = f64::from(luts.score(row));
                    let (lo, hi) = nibbles.interval(sums[lane_of(r)]);
                    assert!(
                        lo <= score && score <= hi,
                        "bits={bits} dims={dims}: {lo} <= {score} <= {hi}"
                    );
                    // The threshold of a score never excludes a row reaching it.
                    assert!(sums[lane_of(r)] >= nibbles.min_sum(score as f32));
                }
            }
        }
    }
}

#[test]
fn search_matches_brute_force_in_both_regimes() {
    let mut rng = StdRng::seed_from_u64(5);
    for bits in SUPPORTED_BITS {
        for dims in [5, 64, 384] {
            let format = CodeFormat::new(dims, bits).unwrap();
            let recon = random_recon(&mut rng, format);
            let n = 3_001; // several tiles when rows are long, a ragged last block
            let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
            // Few-query regime, then the batch regime (2 threads * 8 queries).
            for nq in [1, 3, 20] {
                let q = random_floats(&mut rng, nq * dims);
                for k in [1, 10] {
                    check_all_kernels(&q, nq, &recon, &packed, n, k);
                }
            }
        }
    }
}

#[test]
fn ties_small_databases_and_large_k() {
    let mut rng = StdRng::seed_from_u64(6);
    let format = CodeFormat::new(6, 2).unwrap();
    // Integer recon values and queries: many exactly equal scores.
    let recon = Recon::new(format, (0..24).map(|i| (i % 3) as f32).collect()).unwrap();
    for n in [1, 2, 31, 32, 33, 100] {
        let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
        let nq = 17;
        let q: Vec<f32> = (0..nq * 6)
            .map(|_| rng.random_range(-2..=2) as f32)
            .collect();
        for k in [1, 5, n, n + 1, 1000] {
            check_all_kernels(&q, nq, &recon, &packed, n, k);
            check_all_kernels(&q[..6], 1, &recon, &packed, n, k);
        }
    }
}

/// Heavy ties across several tiles scanned in parallel: tasks share their k-th scores, and a row
/// tying the shared k-th score must still be considered (it may win on a lower id).
#[test]
fn ties_across_parallel_tiles() {
    let mut rng = StdRng::seed_from_u64(10);
    let format = CodeFormat::new(6, 2).unwrap();
    let recon = Recon::new(format, (0..24).map(|i| (i % 2) as f32).collect()).unwrap();
    let n = 50_000; // several 16k-row tiles
    let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
    for nq in [1, 3] {
        let q: Vec<f32> = (0..nq * 6)
            .map(|_| rng.random_range(0..=2) as f32)
            .collect();
        for k in [1, 7, 300] {
            check_all_kernels(&q, nq, &recon, &packed, n, k);
        }
    }
}

/// Rows whose quantized sums rank in the opposite order of their float scores: the block search
/// must still return the float order (re-scoring is exact, not an approximation).
#[test]
fn block_search_is_exact_where_the_approximation_misranks() {
    let mut rng = StdRng::seed_from_u64(7);
    let format = CodeFormat::new(384, 2).unwrap();
    let recon = random_recon(&mut rng, format);
    let n = 4000;
    let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
    let blocks = to_blocks(&packed, n, format.row_bytes()).unwrap();
    let q = random_floats(&mut rng, 384);
    let luts = ByteLuts::build(&q, &recon).unwrap();
    let nibbles = NibbleLuts::build(&q, &recon, &luts).unwrap();
    let rb = format.row_bytes();
    let mut sums = vec![0u16; n];
    let mut buf = [0u16; GROUP_ROWS];
    for (b, block) in blocks.chunks(BLOCK_ROWS * rb).enumerate() {
        // SAFETY: lengths as the kernel type requires.
        unsafe { block_scalar(nibbles.tables(), block, 0, &mut buf) };
        for r in 0..BLOCK_ROWS.min(n - b * BLOCK_ROWS) {
            sums[b * BLOCK_ROWS + r] = buf[lane_of(r)];
        }
    }
    let score = |i: usize| luts.score(&packed[i * rb..][..rb]);
    // A pair (x, y) with sum(x) > sum(y) but score(x) < score(y).
    let (x, y) = (0..n)
        .flat_map(|x| (0..n).map(move |y| (x, y)))
        .find(|&(x, y)| sums[x] > sums[y] && score(x) < score(y))
        .expect("random rows include a pair the approximation misranks");
    let pair = [&packed[x * rb..][..rb], &packed[y * rb..][..rb]].concat();
    let pair_blocks = to_blocks(&pair, 2, rb).unwrap();
    for kernel in available_kernels().into_iter().filter(|k| k.scans_blocks()) {
        let top = search_blocked_with(kernel, &q, 1, &recon, &pair_blocks, 2, None, 1).unwrap();
        assert_eq!(
            top.ids,
            vec![1],
            "{kernel:?}: row y (float-better) must win"
        );
        assert_eq!(top.scores, vec![score(y)]);
    }
    // And on the full database the block search equals the float brute force.
    check_all_kernels(&q, 1, &recon, &packed, n, 25);
}

#[test]
fn rescore_matches_brute_force_over_candidates() {
    let mut rng = StdRng::seed_from_u64(8);
    let format = CodeFormat::new(50, 2).unwrap();
    let recon = random_recon(&mut rng, format);
    let n = 500;
    let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
    let nq = 4;
    let q = random_floats(&mut rng, nq * 50);
    let kc = 30;
    let cands: Vec<i64> = (0..nq)
        .flat_map(|i| (0..kc).map(move |c| ((c * 16 + i * 7) % n) as i64))
        .collect();
    let scores = score_candidates(&q, nq, &recon, &packed, n, None, &cands, kc).unwrap();
    let top = rescore(&q, nq, &recon, &packed, n, None, &cands, kc, 10).unwrap();
    assert_eq!(top.k, 10);
    for i in 0..nq {
        let luts = ByteLuts::build(&q[i * 50..][..50], &recon).unwrap();
        let mut pairs: Vec<(f32, u64)> = cands[i * kc..][..kc]
            .iter()
            .map(|&c| (luts.score(&packed[c as usize * 13..][..13]), c as u64))
            .collect();
        for (j, p) in pairs.iter().enumerate() {
            assert_eq!(scores[i * kc + j].to_bits(), p.0.to_bits());
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        assert_eq!(
            &top.ids[i * 10..][..10],
            &pairs[..10].iter().map(|p| p.1).collect::<Vec<_>>()[..]
        );
        assert_eq!(
            &top.scores[i * 10..][..10],
            &pairs[..10].iter().map(|p| p.0).collect::<Vec<_>>()[..]
        );
    }
    // Rescoring every row gives the full search's answer, scores bit for bit.
    let all: Vec<i64> = (0..nq).flat_map(|_| (0..n as i64).rev()).collect();
    let full = search(&q, nq, &recon, &packed, n, 10).unwrap();
    assert_eq!(
        rescore(&q, nq, &recon, &packed, n, None, &all, n, 10).unwrap(),
        full
    );
    // k above the candidate count returns every candidate.
    assert_eq!(
        rescore(&q, nq, &recon, &packed, n, None, &cands, kc, 99)
            .unwrap()
            .k,
        kc
    );
}

#[test]
fn float_rescore_matches_float64_dot_products() {
    let mut rng = StdRng::seed_from_u64(9);
    let (n, dims, nq, kc) = (300, 37, 3, 40);
    let vectors = random_floats(&mut rng, n * dims);
    let q = random_floats(&mut rng, nq * dims);
    let cands: Vec<i64> = (0..nq * kc).map(|i| ((i * 11) % n) as i64).collect();
    let top = rescore_float(&q, nq, dims, &vectors, n, &cands, kc, 5).unwrap();
    for i in 0..nq {
        let mut pairs: Vec<(f64, i64)> = cands[i * kc..][..kc]
            .iter()
            .map(|&c| {
                let v = &vectors[c as usize * dims..][..dims];
                let s: f64 = v
                    .iter()
                    .zip(&q[i * dims..])
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                (s, c)
            })
            .collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (r, &(score, id)) in pairs.iter().take(5).enumerate() {
            assert_eq!(top.ids[i * 5 + r] as i64, id);
            assert!((f64::from(top.scores[i * 5 + r]) - score).abs() < 1e-5);
        }
    }
}

#[test]
fn rejects_bad_arguments() {
    let format = CodeFormat::new(4, 2).unwrap();
    let recon = Recon::new(format, vec![0.5; 16]).unwrap();
    let packed = vec![0u8; 3];
    let q = [1.0f32; 4];
    let value = |r: Result<TopScores>| matches!(r, Err(QamaError::Value(_)));
    let shape = |r: Result<TopScores>| matches!(r, Err(QamaError::Shape(_)));
    assert!(value(search(&q, 1, &recon, &packed, 3, 0)));
    assert!(value(search(&q, 1, &recon, &[], 0, 1)));
    assert!(shape(search(&q, 1, &recon, &packed, 2, 1)));
    assert!(shape(search(&q[..3], 1, &recon, &packed, 3, 1)));
    assert!(shape(search(&q, usize::MAX, &recon, &packed, 3, 1)));
    assert!(value(search(
        &[f32::NAN, 0.0, 0.0, 0.0],
        1,
        &recon,
        &packed,
        3,
        1
    )));
    assert!(value(search_with(
        Kernel::Avx2,
        &q,
        1,
        &recon,
        &packed,
        3,
        None,
        1
    )));
    let blocks = to_blocks(&packed, 3, 1).unwrap();
    assert!(value(search_blocked_with(
        Kernel::Interleaved,
        &q,
        1,
        &recon,
        &blocks,
        3,
        None,
        1
    )));
    assert!(shape(search_blocked(&q, 1, &recon, &packed, 3, 1)));
    let wide = CodeFormat::new(4, 8).unwrap();
    let wide_recon = Recon::new(wide, vec![0.0; 4 * 256]).unwrap();
    let wide_blocks = to_blocks(&[0u8; 4], 1, 4).unwrap();
    assert!(value(search_blocked(
        &q,
        1,
        &wide_recon,
        &wide_blocks,
        1,
        1
    )));
    // Candidates: out of range, negative, duplicated, wrong count.
    assert!(value(rescore(
        &q,
        1,
        &recon,
        &packed,
        3,
        None,
        &[0, 3],
        2,
        1
    )));
    assert!(value(rescore(
        &q,
        1,
        &recon,
        &packed,
        3,
        None,
        &[-1, 0],
        2,
        1
    )));
    assert!(value(rescore(
        &q,
        1,
        &recon,
        &packed,
        3,
        None,
        &[1, 1],
        2,
        1
    )));
    assert!(shape(rescore(
        &q,
        1,
        &recon,
        &packed,
        3,
        None,
        &[1, 2],
        3,
        1
    )));
    assert!(value(rescore(
        &q,
        1,
        &recon,
        &packed,
        3,
        None,
        &[1, 2],
        2,
        0
    )));
    assert!(value(rescore_float(
        &q,
        1,
        4,
        &[f32::INFINITY; 8],
        2,
        &[1],
        1,
        1
    )));
    // Empty query batches and huge k are fine.
    assert_eq!(
        search(&[], 0, &recon, &packed, 3, 5).unwrap().scores.len(),
        0
    );
    assert_eq!(search(&q, 1, &recon, &packed, 3, usize::MAX).unwrap().k, 3);
}

#[test]
fn kernel_names_round_trip() {
    for k in Kernel::ALL {
        assert_eq!(Kernel::from_name(k.name()), Some(k));
    }
    assert!(available_kernels().contains(&Kernel::Scalar));
    assert!(Kernel::best_blocks().scans_blocks() && Kernel::best_rows().scans_rows());
}

/// Brute force with optional row scales: `fl(scale * raw)`, full sort.
fn brute_force_scaled(
    q: &[f32],
    nq: usize,
    recon: &Recon,
    packed: &[u8],
    n: usize,
    scale: &[f32],
    k: usize,
) -> TopScores {
    let dims = recon.format().dims();
    let row_bytes = recon.format().row_bytes();
    let kk = k.min(n);
    let mut out = TopScores {
        k: kk,
        scores: vec![],
        ids: vec![],
    };
    for query in q.chunks(dims).take(nq) {
        let luts = ByteLuts::build(query, recon).unwrap();
        let mut pairs: Vec<(f32, u64)> = packed
            .chunks(row_bytes)
            .enumerate()
            // `+ 0.0`: the engine returns -0.0 as +0.0 (they tie and break on the id).
            .map(|(i, row)| (luts.score(row) * scale[i] + 0.0, i as u64))
            .collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(s, i) in &pairs[..kk] {
            out.scores.push(s);
            out.ids.push(i);
        }
    }
    out
}

/// Scale patterns the block kernel's bounds must survive: all positive (one group threshold),
/// mixed signs, zeros, all negative, tiny and huge magnitudes, constant.
fn scale_patterns(rng: &mut StdRng, n: usize) -> Vec<(&'static str, Vec<f32>)> {
    vec![
        (
            "positive",
            (0..n).map(|_| rng.random_range(0.5f32..2.0)).collect(),
        ),
        (
            "mixed",
            (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect(),
        ),
        (
            "zeros",
            (0..n).map(|i| if i % 3 == 0 { 0.0 } else { 1.0 }).collect(),
        ),
        (
            "negative",
            (0..n).map(|_| rng.random_range(-3.0f32..-0.1)).collect(),
        ),
        (
            "spread",
            (0..n)
                .map(|i| if i % 2 == 0 { 1e-6 } else { 1e4 })
                .collect(),
        ),
        ("constant", vec![0.75; n]),
    ]
}

#[test]
fn row_scale_every_kernel_equals_brute_force() {
    let mut rng = StdRng::seed_from_u64(21);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for bits in SUPPORTED_BITS {
        for (dims, n, nq, k) in [(13, 301, 3, 10), (64, 700, 40, 25), (384, 130, 2, 200)] {
            let format = CodeFormat::new(dims, bits).unwrap();
            let recon = random_recon(&mut rng, format);
            let codes = random_codes(&mut rng, n, format);
            let packed = pack_codes(&codes, n, format).unwrap();
            let blocks = to_blocks(&packed, n, format.row_bytes()).unwrap();
            let q = random_floats(&mut rng, nq * dims);
            for (name, scale) in scale_patterns(&mut rng, n) {
                let want = brute_force_scaled(&q, nq, &recon, &packed, n, &scale, k);
                for kernel in available_kernels() {
                    let got = if kernel.scans_rows() {
                        pool.install(|| {
                            search_with(kernel, &q, nq, &recon, &packed, n, Some(&scale), k)
                        })
                    } else if bits <= 4 {
                        pool.install(|| {
                            search_blocked_with(kernel, &q, nq, &recon, &blocks, n, Some(&scale), k)
                        })
                    } else {
                        continue;
                    }
                    .unwrap();
                    assert!(
                        got == want,
                        "{} scales={name} bits={bits} dims={dims} nq={nq}",
                        kernel.name()
                    );
                }
                if bits <= 4 {
                    for kernel in available_kernels().into_iter().filter(|k| k.scans_blocks()) {
                        let got = search_blocked_with(
                            kernel,
                            &q,
                            nq,
                            &recon,
                            &blocks,
                            n,
                            Some(&scale),
                            k,
                        )
                        .unwrap();
                        assert!(got == want, "{} blocks scales={name}", kernel.name());
                    }
                }
            }
        }
    }
}

#[test]
fn row_scale_rescoring_equals_scaled_search() {
    let mut rng = StdRng::seed_from_u64(22);
    let format = CodeFormat::new(40, 2).unwrap();
    let (n, nq, kc) = (500, 4, 60);
    let recon = random_recon(&mut rng, format);
    let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
    let q = random_floats(&mut rng, nq * 40);
    let scale: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..3.0)).collect();
    let mut cands = Vec::new();
    for _ in 0..nq {
        let mut rows: Vec<i64> = (0..n as i64).collect();
        for i in 0..kc {
            let j = rng.random_range(i..n);
            rows.swap(i, j);
        }
        cands.extend_from_slice(&rows[..kc]);
    }
    let scores = score_candidates(&q, nq, &recon, &packed, n, Some(&scale), &cands, kc).unwrap();
    for (i, query) in q.chunks(40).enumerate() {
        let luts = ByteLuts::build(query, &recon).unwrap();
        for (c, &row) in cands[i * kc..][..kc].iter().enumerate() {
            let r = row as usize;
            let want =
                luts.score(&packed[r * format.row_bytes()..][..format.row_bytes()]) * scale[r];
            assert_eq!(scores[i * kc + c].to_bits(), want.to_bits());
        }
    }
    let all: Vec<i64> = (0..nq).flat_map(|_| 0..n as i64).collect();
    assert_eq!(
        rescore(&q, nq, &recon, &packed, n, Some(&scale), &all, n, 10).unwrap(),
        brute_force_scaled(&q, nq, &recon, &packed, n, &scale, 10)
    );
}

#[test]
fn row_scale_errors() {
    let format = CodeFormat::new(4, 2).unwrap();
    let recon = Recon::new(format, vec![0.5; 16]).unwrap();
    let packed = vec![0u8; 3];
    let q = [1.0f32; 4];
    let short = [1.0f32; 2];
    let nan = [1.0, f32::NAN, 1.0];
    let huge = [1.0, 1e38, 1.0];
    for scale in [&short[..], &nan[..], &huge[..]] {
        assert!(search_with(Kernel::Scalar, &q, 1, &recon, &packed, 3, Some(scale), 1).is_err());
        assert!(score_candidates(&q, 1, &recon, &packed, 3, Some(scale), &[0], 1).is_err());
        assert!(rescore(&q, 1, &recon, &packed, 3, Some(scale), &[0], 1, 1).is_err());
    }
    assert!(matches!(
        search_with(Kernel::Scalar, &q, 1, &recon, &packed, 3, Some(&nan), 1),
        Err(QamaError::Value(m)) if m.contains("row_scale[1]")
    ));
}

/// Brute force of byte-LUT scores: `Σ_b lut[b][code_b]` in order, times the scale.
fn lut_brute_force(
    luts: &[f32],
    nq: usize,
    m: usize,
    codes: &[u8],
    scale: Option<&[f32]>,
    k: usize,
) -> TopScores {
    let n = codes.len() / m;
    let kk = k.min(n);
    let mut out = TopScores {
        k: kk,
        scores: vec![],
        ids: vec![],
    };
    for table in luts.chunks(m * 256).take(nq) {
        let mut pairs: Vec<(f32, u64)> = codes
            .chunks(m)
            .enumerate()
            .map(|(i, row)| {
                let raw = row
                    .iter()
                    .enumerate()
                    .fold(0f32, |s, (b, &v)| s + table[b * 256 + usize::from(v)]);
                (scale.map_or(raw, |s| raw * s[i]) + 0.0, i as u64)
            })
            .collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(s, i) in &pairs[..kk] {
            out.scores.push(s);
            out.ids.push(i);
        }
    }
    out
}

#[test]
fn lut_search_equals_brute_force_on_every_row_kernel() {
    let mut rng = StdRng::seed_from_u64(23);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for (m, n, nq, k) in [
        (1, 50, 2, 5),
        (7, 333, 3, 10),
        (16, 1000, 40, 20),
        (77, 90, 1, 200),
    ] {
        let codes: Vec<u8> = (0..n * m).map(|_| rng.random_range(0..=255u8)).collect();
        let luts = random_floats(&mut rng, nq * m * 256);
        let scale: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..2.0)).collect();
        for scale in [None, Some(&scale[..])] {
            let want = lut_brute_force(&luts, nq, m, &codes, scale, k);
            for kernel in [Kernel::Scalar, Kernel::Interleaved] {
                let got = pool
                    .install(|| lut_search_with(kernel, &luts, nq, m, &codes, n, scale, k))
                    .unwrap();
                assert!(got == want, "{} m={m} n={n} nq={nq}", kernel.name());
            }
            let all: Vec<i64> = (0..nq).flat_map(|_| (0..n as i64).rev()).collect();
            assert_eq!(
                lut_rescore(&luts, nq, m, &codes, n, scale, &all, n, k).unwrap(),
                want
            );
            let scores = lut_score_candidates(&luts, nq, m, &codes, n, scale, &all, n).unwrap();
            for (i, (got, want_q)) in scores.chunks(n).zip(want.scores.chunks(want.k)).enumerate() {
                // Candidate order is reversed rows: the best row's score sits at n - 1 - id.
                let best = want.ids[i * want.k] as usize;
                assert_eq!(got[n - 1 - best] + 0.0, want_q[0]);
            }
        }
    }
}

#[test]
fn lut_search_errors_name_the_argument() {
    let codes = [0u8; 6];
    let luts = vec![0.5f32; 2 * 256];
    let msg = |r: Result<TopScores>| match r {
        Err(e) => e.to_string(),
        Ok(_) => String::from("ok"),
    };
    assert!(msg(lut_search(&luts, 1, 2, &codes, 3, None, 0)).contains("k = 0"));
    assert!(msg(lut_search(&luts, 1, 0, &[], 3, None, 1)).contains("m = 0"));
    assert!(msg(lut_search(&luts[..300], 1, 2, &codes, 3, None, 1)).contains("luts"));
    assert!(msg(lut_search(&luts, 1, 2, &codes[..5], 3, None, 1)).contains("codes"));
    let mut bad = luts.clone();
    bad[256 + 7] = f32::INFINITY;
    assert!(msg(lut_search(&bad, 1, 2, &codes, 3, None, 1)).contains("luts[0, 1, 7]"));
    let big = vec![3e38f32; 2 * 256];
    assert!(msg(lut_search(&big, 1, 2, &codes, 3, None, 1)).contains("overflow"));
    assert!(msg(lut_search(&luts, 1, 2, &codes, 3, Some(&[1.0; 2]), 1)).contains("row_scale"));
    assert_eq!(
        lut_search(&luts, 1, 2, &codes, 3, None, usize::MAX)
            .unwrap()
            .k,
        3
    );
    assert!(lut_search(&[], 0, 2, &codes, 3, None, 4)
        .unwrap()
        .scores
        .is_empty());
}

/// Byte tables `T[lo + 16 hi] = A[lo] + B[hi]` (float32 sums): what nibble-packed codecs give.
fn separable_luts(rng: &mut StdRng, nq: usize, m: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(nq * m * 256);
    for _ in 0..nq * m {
        let (a, b) = (random_floats(rng, 16), random_floats(rng, 16));
        out.extend((0..256).map(|v| a[v & 15] + b[v >> 4]));
    }
    out
}

#[test]
fn lut_search_blocked_equals_brute_force_on_every_block_kernel() {
    let mut rng = StdRng::seed_from_u64(29);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let kernels: Vec<Kernel> = available_kernels()
        .into_iter()
        .filter(|k| k.scans_blocks())
        .collect();
    for (m, n, nq, k) in [
        (1, 50, 2, 5),
        (7, 333, 3, 10),
        (24, 3000, 40, 10),
        (48, 777, 1, 200),
        (300, 70, 2, 7), // rows too long for 16-bit sums: exact scores of every row
    ] {
        let codes: Vec<u8> = (0..n * m).map(|_| rng.random_range(0..=255u8)).collect();
        let blocks = to_blocks(&codes, n, m).unwrap();
        let scale: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..2.0)).collect();
        let positive: Vec<f32> = (0..n).map(|_| rng.random_range(0.5f32..2.0)).collect();
        for luts in [
            random_floats(&mut rng, nq * m * 256),
            separable_luts(&mut rng, nq, m),
        ] {
            for scale in [None, Some(&scale[..]), Some(&positive[..])] {
                let want = lut_brute_force(&luts, nq, m, &codes, scale, k);
                for &kernel in &kernels {
                    let got = pool
                        .install(|| {
                            lut_search_blocked_with(kernel, &luts, nq, m, &blocks, n, scale, k)
                        })
                        .unwrap();
                    assert!(got == want, "{} m={m} n={n} nq={nq}", kernel.name());
                }
            }
        }
    }
}

#[test]
fn nibble_split_of_separable_tables_is_tight() {
    let mut rng = StdRng::seed_from_u64(31);
    let m = 48;
    let width = |table: &[f32]| {
        let luts = ByteLuts::from_table(table, m, 0).unwrap();
        let nibbles = NibbleLuts::from_byte_luts(&luts).unwrap();
        let (lo0, hi0) = nibbles.interval(0);
        let delta = nibbles.interval(1).0 - lo0;
        (hi0 - lo0) / delta
    };
    // Separable: only the rounding of each byte's two entries (at most one step a byte, either
    // side).
    let tight = width(&separable_luts(&mut rng, 1, m));
    assert!(tight <= 2.0 * m as f64 * 1.01, "{tight}");
    // Arbitrary tables: the split errs by far more, and the bound says so.
    let loose = width(&random_floats(&mut rng, m * 256));
    assert!(loose > 4.0 * tight, "{loose} vs {tight}");
}

#[test]
fn lut_search_blocked_errors_name_the_argument() {
    let codes = [0u8; 6];
    let blocks = to_blocks(&codes, 3, 2).unwrap();
    let luts = vec![0.5f32; 2 * 256];
    let msg = |r: Result<TopScores>| match r {
        Err(e) => e.to_string(),
        Ok(_) => String::from("ok"),
    };
    assert!(msg(lut_search_blocked(&luts, 1, 2, &blocks, 3, None, 0)).contains("k = 0"));
    assert!(msg(lut_search_blocked(&luts, 1, 2, &codes, 3, None, 1)).contains("blocks"));
    assert!(msg(lut_search_blocked(&luts[..300], 1, 2, &blocks, 3, None, 1)).contains("luts"));
    let big = vec![3e38f32; 2 * 256];
    assert!(msg(lut_search_blocked(&big, 1, 2, &blocks, 3, None, 1)).contains("overflow"));
    assert!(msg(lut_search_blocked_with(
        Kernel::Interleaved,
        &luts,
        1,
        2,
        &blocks,
        3,
        None,
        1
    ))
    .contains("row layout"));
    assert_eq!(
        lut_search_blocked(&luts, 1, 2, &blocks, 3, None, 9)
            .unwrap()
            .ids,
        vec![0, 1, 2]
    );
}
