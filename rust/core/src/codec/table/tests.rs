//! Parity and exactness of the table codec across levels, layouts, sources, scales and biases.
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::fastscan::{NibbleLuts, TABLE_STRIDE};
use super::*;
use crate::driver::{self, Candidates};
use crate::error::QamaError;
use crate::select::Hits;
use crate::testing::{brute, random_floats};

/// Dims that exercise full bytes, ragged last bytes, one byte and long rows.
const PARITY_DIMS: [usize; 8] = [1, 3, 7, 8, 13, 64, 100, 384];

fn random_codes(rng: &mut StdRng, n: usize, format: CodeFormat) -> Vec<u8> {
    let levels = format.levels();
    (0..n * format.dims())
        .map(|_| rng.random_range(0..levels) as u8)
        .collect()
}

fn random_recon(rng: &mut StdRng, format: CodeFormat) -> Recon {
    Recon::new(format, random_floats(rng, format.dims() * format.levels())).unwrap()
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

/// Rows stored as a codec of this layout keeps them.
fn stored(codec: &TableCodec, packed: &[u8], n: usize) -> Vec<u8> {
    match codec.layout() {
        Layout::Rows => packed.to_vec(),
        Layout::Blocks => to_blocks(packed, n, codec.row_bytes()).unwrap(),
    }
}

/// The driver's flat search of `codec` over `packed` rows (converted to its layout).
#[allow(clippy::too_many_arguments)]
fn run(
    codec: &TableCodec,
    q: &[f32],
    nq: usize,
    packed: &[u8],
    n: usize,
    scale: Option<&[f32]>,
    bias: f32,
    k: usize,
) -> crate::Result<Hits> {
    let data = stored(codec, packed, n);
    let extent = Extent {
        row_scale: scale,
        bias,
        ..Extent::new(&data[..], n, 0)
    };
    let bounds = codec.bounds([&extent])?;
    let len = codec.query_len();
    driver::search(
        codec,
        nq,
        k,
        |r: std::ops::Range<usize>| {
            codec.prepare_block(&q[r.start * len..r.end * len], r.start, bounds)
        },
        &[extent],
        None,
    )
}

fn finish(raw: f32, scale: Option<&[f32]>, r: usize, bias: f32) -> f32 {
    let s = scale.map_or(raw, |s| raw * s[r]);
    if bias != 0.0 {
        s + bias
    } else {
        s
    }
}

/// Every score from the scalar reference tables, `fl(bias + fl(scale * raw))`, then a full sort.
fn recon_brute(
    q: &[f32],
    nq: usize,
    recon: &Recon,
    packed: &[u8],
    scale: Option<&[f32]>,
    bias: f32,
    k: usize,
) -> Hits {
    let (dims, rb) = (recon.format().dims(), recon.format().row_bytes());
    let luts: Vec<ByteLuts> = q
        .chunks(dims)
        .take(nq)
        .map(|x| ByteLuts::build(x, recon).unwrap())
        .collect();
    brute(
        |i, r| finish(luts[i].score(&packed[r * rb..(r + 1) * rb]), scale, r, bias),
        nq,
        packed.len() / rb,
        k,
    )
}

fn lut_brute(
    luts: &[f32],
    nq: usize,
    m: usize,
    codes: &[u8],
    scale: Option<&[f32]>,
    k: usize,
) -> Hits {
    let raw = |i: usize, r: usize| {
        codes[r * m..(r + 1) * m]
            .iter()
            .enumerate()
            .fold(0f32, |s, (b, &v)| {
                s + luts[i * m * 256 + b * 256 + usize::from(v)]
            })
    };
    brute(
        |i, r| finish(raw(i, r), scale, r, 0.0),
        nq,
        codes.len() / m,
        k,
    )
}

/// Every available level and layout of a reconstruction codec, in a fixed 2-thread pool (so the
/// regime does not depend on the machine), against the brute force.
#[allow(clippy::too_many_arguments)]
fn check_recon(
    q: &[f32],
    nq: usize,
    recon: &Recon,
    packed: &[u8],
    n: usize,
    scale: Option<&[f32]>,
    bias: f32,
    k: usize,
) {
    let want = recon_brute(q, nq, recon, packed, scale, bias, k);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for isa in Isa::available() {
        for layout in [Layout::Rows, Layout::Blocks] {
            let Ok(codec) = TableCodec::recon(recon.clone(), layout, isa) else {
                assert!(layout == Layout::Blocks && recon.format().bits() > 4);
                continue;
            };
            let got = pool
                .install(|| run(&codec, q, nq, packed, n, scale, bias, k))
                .unwrap();
            assert!(
                got == want,
                "{} {layout:?} format={:?} nq={nq} n={n} k={k} bias={bias}",
                isa.name(),
                recon.format()
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
    for isa in Isa::available() {
        for layout in [Layout::Rows, Layout::Blocks] {
            let codec = TableCodec::recon(recon.clone(), layout, isa).unwrap();
            let top = run(&codec, &[1.0, 2.0], 1, &packed, 5, None, 0.0, 4).unwrap();
            assert_eq!(top.scores, vec![3.0, 1.0, -1.0, -1.0], "{isa:?} {layout:?}");
            // Rows 1 and 4 tie at -1: the lower row first.
            assert_eq!(top.ids, vec![3, 2, 1, 4], "{isa:?} {layout:?}");
            let biased = run(&codec, &[1.0, 2.0], 1, &packed, 5, None, 10.0, 2).unwrap();
            assert_eq!(biased.scores, vec![13.0, 11.0]);
        }
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
            let (mut want, mut got) = (vec![0f32; n], vec![0f32; n]);
            rows::scores_scalar(&luts, &packed, format.row_bytes(), &mut want);
            rows::scores_interleaved(&luts, &packed, format.row_bytes(), &mut got);
            let bits_of = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits_of(&got), bits_of(&want), "bits={bits} dims={dims}");
        }
    }
}

#[test]
fn scores_match_float_reconstruction_within_rounding() {
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
            assert!(
                (f64::from(luts.score(row)) - exact).abs() < 1e-4,
                "bits={bits}"
            );
        }
    }
}

/// The AVX2 and AVX-512 block kernels return the scalar twin's sums and masks exactly.
#[test]
fn block_kernels_match_the_scalar_twin() {
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
                if Isa::Avx2.is_available() && bytes * 255 <= usize::from(u16::MAX) {
                    let mut got = [0u16; GROUP_ROWS];
                    // SAFETY: AVX2 is available; lengths as required.
                    let mask =
                        unsafe { fastscan::avx2::block(&tables, group, threshold, &mut got) };
                    assert_eq!(
                        (got, mask),
                        (want, want_mask),
                        "bytes={bytes} rows={rows} t={threshold}"
                    );
                }
                #[cfg(target_arch = "x86_64")]
                if Isa::Avx512.is_available() && bytes * 255 <= usize::from(u16::MAX) {
                    let mut got = [0u16; GROUP_ROWS];
                    // SAFETY: AVX-512 is available; lengths as required.
                    let mask =
                        unsafe { fastscan::avx512::block(&tables, group, threshold, &mut got) };
                    assert_eq!(
                        (got, mask),
                        (want, want_mask),
                        "avx512 bytes={bytes} rows={rows} t={threshold}"
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
                    check_recon(&q, nq, &recon, &packed, n, None, 0.0, k);
                }
            }
            let q = random_floats(&mut rng, 2 * dims);
            check_recon(&q, 2, &recon, &packed, n, None, 0.37, 10);
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
        let q: Vec<f32> = (0..17 * 6)
            .map(|_| rng.random_range(-2..=2) as f32)
            .collect();
        for k in [1, 5, n, n + 1, 1000] {
            check_recon(&q, 17, &recon, &packed, n, None, 0.0, k);
            check_recon(&q[..6], 1, &recon, &packed, n, None, -4.0, k);
        }
    }
}

/// A query's first tile is seeded with its best rows by their sums (`TableCodec::seed`) at most
/// `SEED_MAX` of them and above `2 k` rows: around those limits, with heavy ties, misranking sums
/// (a small integer recon against float queries) and row scales of every sign, the results are the
/// brute force's.
#[test]
fn seeded_first_tiles_match_brute_force_at_the_seed_limits() {
    let mut rng = StdRng::seed_from_u64(23);
    let format = CodeFormat::new(40, 4).unwrap();
    let tied = Recon::new(format, (0..40 * 16).map(|i| (i % 3) as f32).collect()).unwrap();
    let spread = random_recon(&mut rng, format);
    for k in [1, 2, SEED_MAX - 1, SEED_MAX, SEED_MAX + 1] {
        for n in [2 * k, 2 * k + 1, 3 * k + 5, 1500] {
            let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
            // 20 queries: the batch regime (2 threads x 8 a chunk); 3 below: parallel tiles.
            let ints: Vec<f32> = (0..20 * 40)
                .map(|_| rng.random_range(-2..=2) as f32)
                .collect();
            check_recon(&ints, 20, &tied, &packed, n, None, 0.0, k);
            let q = random_floats(&mut rng, 3 * 40);
            for (_, scale) in scale_patterns(&mut rng, n) {
                check_recon(&q, 3, &spread, &packed, n, Some(&scale), 0.25, k);
            }
        }
    }
}

/// Heavy ties across tiles scanned in parallel: tasks share their bounds, and a row tying the
/// shared k-th score must still be considered (it may win on a lower id).
#[test]
fn ties_across_parallel_tiles() {
    let mut rng = StdRng::seed_from_u64(10);
    let format = CodeFormat::new(6, 2).unwrap();
    let recon = Recon::new(format, (0..24).map(|i| (i % 2) as f32).collect()).unwrap();
    let n = 50_000;
    let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
    for nq in [1, 3] {
        let q: Vec<f32> = (0..nq * 6)
            .map(|_| rng.random_range(0..=2) as f32)
            .collect();
        for k in [1, 7, 300] {
            check_recon(&q, nq, &recon, &packed, n, None, 0.0, k);
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
    let rb = format.row_bytes();
    let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
    let blocks = to_blocks(&packed, n, rb).unwrap();
    let q = random_floats(&mut rng, 384);
    let luts = ByteLuts::build(&q, &recon).unwrap();
    let nibbles = NibbleLuts::build(&q, &recon, &luts).unwrap();
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
    let (x, y) = (0..n)
        .flat_map(|x| (0..n).map(move |y| (x, y)))
        .find(|&(x, y)| sums[x] > sums[y] && score(x) < score(y))
        .expect("random rows include a pair the approximation misranks");
    let pair = [&packed[x * rb..][..rb], &packed[y * rb..][..rb]].concat();
    for isa in Isa::available() {
        let codec = TableCodec::recon(recon.clone(), Layout::Blocks, isa).unwrap();
        let top = run(&codec, &q, 1, &pair, 2, None, 0.0, 1).unwrap();
        assert_eq!(
            (top.ids, top.scores),
            (vec![1], vec![score(y)]),
            "{isa:?}: y must win"
        );
    }
    check_recon(&q, 1, &recon, &packed, n, None, 0.0, 25);
}

#[test]
fn rescoring_matches_the_scan_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(8);
    let format = CodeFormat::new(50, 2).unwrap();
    let recon = random_recon(&mut rng, format);
    let (n, nq, kc) = (500, 4, 30);
    let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
    let q = random_floats(&mut rng, nq * 50);
    let scale: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..3.0)).collect();
    let cands: Vec<i64> = (0..nq)
        .flat_map(|i| (0..kc).map(move |c| ((c * 16 + i * 7) % n) as i64))
        .collect();
    for layout in [Layout::Rows, Layout::Blocks] {
        let codec = TableCodec::recon(recon.clone(), layout, Isa::detect()).unwrap();
        let data = stored(&codec, &packed, n);
        for scale in [None, Some(&scale[..])] {
            let extent = Extent {
                row_scale: scale,
                ..Extent::new(&data[..], n, 0)
            };
            let bounds = codec.bounds([&extent]).unwrap();
            let prep = |r: std::ops::Range<usize>| {
                codec.prepare_block(&q[r.start * 50..r.end * 50], r.start, bounds)
            };
            let scores = driver::score_rows(
                &codec,
                nq,
                prep,
                &[extent],
                Candidates::PerQuery(&cands, kc),
            )
            .unwrap();
            let top = driver::rescore(
                &codec,
                nq,
                10,
                prep,
                &[extent],
                Candidates::PerQuery(&cands, kc),
                None,
            )
            .unwrap();
            let want_all = recon_brute(&q, nq, &recon, &packed, scale, 0.0, n);
            for i in 0..nq {
                let mine = &cands[i * kc..(i + 1) * kc];
                let mut want: Vec<(f32, u64)> = Vec::new();
                for (j, &c) in mine.iter().enumerate() {
                    let at = want_all.ids[i * n..(i + 1) * n]
                        .iter()
                        .position(|&r| r == c as u64)
                        .unwrap();
                    let s = want_all.scores[i * n + at];
                    assert_eq!(scores[i * kc + j] + 0.0, s, "{layout:?}");
                    want.push((s, c as u64));
                }
                want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                assert_eq!(
                    top.ids[i * 10..(i + 1) * 10],
                    want[..10].iter().map(|p| p.1).collect::<Vec<_>>()[..]
                );
            }
            // Rescoring every row gives the full search's answer.
            let all: Vec<i64> = (0..n as i64).rev().collect();
            let full = driver::search(&codec, nq, 10, prep, &[extent], None).unwrap();
            assert_eq!(
                driver::rescore(
                    &codec,
                    nq,
                    10,
                    prep,
                    &[extent],
                    Candidates::Shared(&all),
                    None
                )
                .unwrap(),
                full
            );
        }
    }
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
fn row_scales_and_biases_on_every_level_and_layout() {
    let mut rng = StdRng::seed_from_u64(21);
    for bits in SUPPORTED_BITS {
        for (dims, n, nq, k) in [(13, 301, 3, 10), (64, 700, 40, 25), (384, 130, 2, 200)] {
            let format = CodeFormat::new(dims, bits).unwrap();
            let recon = random_recon(&mut rng, format);
            let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
            let q = random_floats(&mut rng, nq * dims);
            for (name, scale) in scale_patterns(&mut rng, n) {
                for bias in [0.0, -1.5, 1e3] {
                    eprintln!("scales={name} bits={bits} dims={dims} bias={bias}");
                    check_recon(&q, nq, &recon, &packed, n, Some(&scale), bias, k);
                }
            }
        }
    }
}

#[test]
fn given_tables_on_every_level_and_layout() {
    let mut rng = StdRng::seed_from_u64(29);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for (m, n, nq, k) in [
        (1, 50, 2, 5),
        (7, 333, 3, 10),
        (24, 3000, 40, 10),
        (48, 777, 1, 200),
        (300, 70, 2, 7),
    ] {
        let codes: Vec<u8> = (0..n * m).map(|_| rng.random_range(0..=255u8)).collect();
        let scale: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..2.0)).collect();
        let positive: Vec<f32> = (0..n).map(|_| rng.random_range(0.5f32..2.0)).collect();
        for luts in [
            random_floats(&mut rng, nq * m * 256),
            separable_luts(&mut rng, nq, m),
        ] {
            for scale in [None, Some(&scale[..]), Some(&positive[..])] {
                let want = lut_brute(&luts, nq, m, &codes, scale, k);
                for isa in Isa::available() {
                    for layout in [Layout::Rows, Layout::Blocks] {
                        let codec = TableCodec::given(m, layout, isa).unwrap();
                        let got = pool
                            .install(|| run(&codec, &luts, nq, &codes, n, scale, 0.0, k))
                            .unwrap();
                        assert!(got == want, "{isa:?} {layout:?} m={m} n={n} nq={nq}");
                    }
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
    // Separable: only the rounding of each byte's two entries (at most one step a byte, either side).
    let tight = width(&separable_luts(&mut rng, 1, m));
    assert!(tight <= 2.0 * m as f64 * 1.01, "{tight}");
    // Arbitrary tables: the split errs by far more, and the bound says so.
    let loose = width(&random_floats(&mut rng, m * 256));
    assert!(loose > 4.0 * tight, "{loose} vs {tight}");
}

#[test]
fn errors_name_the_argument() {
    let format = CodeFormat::new(4, 2).unwrap();
    let recon = Recon::new(format, vec![0.5; 16]).unwrap();
    let packed = vec![0u8; 3];
    let q = [1.0f32; 4];
    let msg = |r: crate::Result<Hits>| r.map_or_else(|e| e.to_string(), |_| "ok".into());
    for layout in [Layout::Rows, Layout::Blocks] {
        let codec = TableCodec::recon(recon.clone(), layout, Isa::Scalar).unwrap();
        assert!(msg(run(&codec, &q, 1, &packed, 3, None, 0.0, 0)).contains("k = 0"));
        assert!(msg(run(
            &codec,
            &[f32::NAN, 0.0, 0.0, 0.0],
            1,
            &packed,
            3,
            None,
            0.0,
            1
        ))
        .contains("queries[0, 0]"));
        assert!(msg(run(
            &codec,
            &q,
            1,
            &packed,
            3,
            Some(&[1.0, f32::NAN, 1.0]),
            0.0,
            1
        ))
        .contains("row_scale[1]"));
        assert!(msg(run(
            &codec,
            &q,
            1,
            &packed,
            3,
            Some(&[1.0, 1e38, 1.0]),
            0.0,
            1
        ))
        .contains("overflow"));
        assert!(msg(run(&codec, &q, 1, &packed, 3, None, f32::INFINITY, 1)).contains("bias"));
        assert_eq!(
            run(&codec, &q, 1, &packed, 3, None, 0.0, usize::MAX)
                .unwrap()
                .k,
            3
        );
        assert!(run(&codec, &[], 0, &packed, 3, None, 0.0, 5)
            .unwrap()
            .scores
            .is_empty());
    }
    // Data of the wrong length for the layout.
    let codec = TableCodec::recon(recon.clone(), Layout::Blocks, Isa::Scalar).unwrap();
    let extent = Extent::new(&packed[..], 3, 0);
    let bounds = codec.bounds([&extent]).unwrap();
    assert!(matches!(
        driver::search(
            &codec,
            1,
            1,
            driver::one_by_one(|i| codec.prepare(&q, i, bounds)),
            &[extent],
            None
        ),
        Err(QamaError::Shape(_))
    ));
    let wide = Recon::new(CodeFormat::new(4, 8).unwrap(), vec![0.0; 4 * 256]).unwrap();
    assert!(TableCodec::recon(wide, Layout::Blocks, Isa::Scalar).is_err());
    assert!(TableCodec::given(0, Layout::Rows, Isa::Scalar).is_err());
    let given = TableCodec::given(2, Layout::Blocks, Isa::Scalar).unwrap();
    let mut bad = vec![0.5f32; 2 * 256];
    bad[256 + 7] = f32::INFINITY;
    assert!(given
        .prepare(&bad, 0, Bounds::default())
        .unwrap_err()
        .to_string()
        .contains("queries[0, 1, 7]"));
    assert!(given.prepare(&bad[..300], 0, Bounds::default()).is_err());
    let big = vec![3e38f32; 2 * 256];
    assert!(given
        .prepare(&big, 0, Bounds::default())
        .unwrap_err()
        .to_string()
        .contains("overflow"));
}

/// A random projection with slots: `split` gives nibble slots (2 halves x 16 entries), else byte slots.
fn random_projection(
    rng: &mut StdRng,
    dims: usize,
    width: usize,
    m: usize,
    slots: usize,
    split: bool,
) -> Projection {
    let (halves, entries) = if split { (2, 16) } else { (1, 256) };
    let basis = random_floats(rng, dims * width);
    let dim_of: Vec<u32> = (0..m * halves * slots)
        .map(|i| {
            if i % 5 == 4 {
                u32::MAX
            } else {
                rng.random_range(0..width as u32)
            }
        })
        .collect();
    let values = random_floats(rng, dim_of.len() * entries);
    Projection::new(basis, dims, dim_of, values, m, split).unwrap()
}

#[test]
fn projected_tables_equal_the_given_tables_they_build() {
    let mut rng = StdRng::seed_from_u64(41);
    for split in [false, true] {
        for (dims, width, m, slots, n, nq) in [(9, 7, 3, 2, 300, 3), (48, 20, 24, 3, 2000, 20)] {
            let projection = random_projection(&mut rng, dims, width, m, slots, split);
            let q = random_floats(&mut rng, nq * dims);
            // The tables the projection builds, handed over as given tables.
            let luts: Vec<f32> = q
                .chunks(dims)
                .flat_map(|x| projection.tables(&projection.project(x), true).0)
                .collect();
            let codes: Vec<u8> = (0..n * m).map(|_| rng.random_range(0..=255u8)).collect();
            let scale: Vec<f32> = (0..n).map(|_| rng.random_range(0.5f32..2.0)).collect();
            for scale in [None, Some(&scale[..])] {
                let want = lut_brute(&luts, nq, m, &codes, scale, 10);
                for isa in Isa::available() {
                    for layout in [Layout::Rows, Layout::Blocks] {
                        let codec = TableCodec::projected(projection.clone(), layout, isa).unwrap();
                        let got = run(&codec, &q, nq, &codes, n, scale, 0.0, 10).unwrap();
                        assert!(got == want, "split={split} {isa:?} {layout:?} m={m}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_block_of_queries_is_made_ready_as_each_alone_and_errors_name_the_first_bad_one() {
    let mut rng = StdRng::seed_from_u64(53);
    let (dims, nq) = (40, 11);
    // Widths 24 and 21 (a basis padded to 24 columns), nibble and byte slots.
    for (split, width) in [(false, 24), (true, 24), (true, 21), (false, 21)] {
        let projection = random_projection(&mut rng, dims, width, 6, 2, split);
        let q = random_floats(&mut rng, nq * dims);
        for isa in Isa::available() {
            let codec = TableCodec::projected(projection.clone(), Layout::Blocks, isa).unwrap();
            let bounds = Bounds::default();
            // From query 1: blocks of four (1..5, 5..9), then two alone.
            let block = codec.prepare_block(&q[dims..], 1, bounds).unwrap();
            assert_eq!(block.len(), nq - 1);
            for (j, got) in block.iter().enumerate() {
                let i = j + 1;
                let alone = codec
                    .prepare(&q[i * dims..(i + 1) * dims], i, bounds)
                    .unwrap();
                assert_eq!(
                    format!("{got:?}"),
                    format!("{alone:?}"),
                    "{isa:?} split={split} query {i}"
                );
            }
            // Three queries (fewer than a block): one at a time, the same.
            let three = codec.prepare_block(&q[dims..4 * dims], 1, bounds).unwrap();
            assert_eq!(format!("{three:?}"), format!("{:?}", &block[..3]));
            // A NaN in query 6 and an infinity in query 9: the error names query 6, as one at a time.
            let mut bad = q.clone();
            bad[6 * dims + 3] = f32::NAN;
            bad[9 * dims] = f32::INFINITY;
            let err = codec
                .prepare_block(&bad, 0, bounds)
                .unwrap_err()
                .to_string();
            assert!(err.contains("queries[6, 3]"), "{err}");
        }
    }
}

#[test]
fn every_projection_kernel_matches_the_scalar_twin() {
    let mut rng = StdRng::seed_from_u64(47);
    for (dims, width) in [
        (1, 1),
        (5, 7),
        (9, 8),
        (384, 161),
        (384, 176),
        (33, 65),
        (20, 120),
        // Every one-block rest (48 = 32 + 16 before), with and without an 8-wide tail.
        (384, 24),
        (384, 48),
        (40, 56),
        (384, 96),
        (30, 104),
        (17, 80),
        (9, 112),
        (12, 248),
    ] {
        let basis = random_floats(&mut rng, dims * width);
        let projection =
            Projection::new(basis.clone(), dims, vec![0; 2], vec![0.5; 512], 2, false).unwrap();
        let q = random_floats(&mut rng, dims);
        // The reference: each output sums the rows in order, a multiply then an add.
        let want: Vec<f32> = (0..width)
            .map(|j| (0..dims).fold(0f32, |acc, i| acc + q[i] * basis[i * width + j]))
            .collect();
        // Four queries at once: the same bits as each alone (the first is `q`).
        let others: Vec<Vec<f32>> = (0..3).map(|_| random_floats(&mut rng, dims)).collect();
        let four = [&q[..], &others[0], &others[1], &others[2]];
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
        for isa in Isa::available() {
            let p = projection.clone().with_isa(isa);
            let got = p.project(&q);
            assert!(same(&got, &want), "{isa:?} dims={dims} width={width}");
            let block = p.project4(four);
            for (j, (b, x)) in block.iter().zip(four).enumerate() {
                assert_eq!(b.len(), width);
                assert!(
                    same(b, &p.project(x)),
                    "{isa:?} dims={dims} width={width} query {j}"
                );
            }
        }
    }
}

#[test]
fn split_tables_bound_the_scores_tightly() {
    let mut rng = StdRng::seed_from_u64(43);
    let projection = random_projection(&mut rng, 32, 16, 40, 2, true);
    let q = random_floats(&mut rng, 32);
    let (table, split) = projection.tables(&projection.project(&q), true);
    let luts = ByteLuts::from_vec(table, 0).unwrap();
    let split = split.unwrap();
    let fast = NibbleLuts::from_split(&split, &luts).unwrap();
    let general = NibbleLuts::from_byte_luts(&luts).unwrap();
    // Same quantized tables; the analytic bound is no looser than scanning the 256 values (and sound:
    // every row's score lies inside its interval).
    assert_eq!(fast.tables(), general.tables());
    let width = |n: &NibbleLuts| {
        let (lo, hi) = n.interval(0);
        hi - lo
    };
    assert!(
        width(&fast) <= width(&general) * 1.0001 + 1e-9,
        "{} vs {}",
        width(&fast),
        width(&general)
    );
    let codes: Vec<u8> = (0..64 * 40).map(|_| rng.random_range(0..=255u8)).collect();
    let blocks = to_blocks(&codes, 64, 40).unwrap();
    let mut sums = [0u16; GROUP_ROWS];
    // SAFETY: lengths as the kernel type requires.
    unsafe { block_scalar(fast.tables(), &blocks, 0, &mut sums) };
    for r in 0..64 {
        let s = f64::from(luts.score(&codes[r * 40..(r + 1) * 40]));
        let (lo, hi) = fast.interval(sums[lane_of(r)]);
        assert!(lo <= s && s <= hi, "{lo} <= {s} <= {hi}");
    }
    assert!(Projection::new(vec![1.0; 6], 4, vec![0; 4], vec![0.0; 4 * 16], 1, true).is_err());
    assert!(Projection::new(vec![1.0; 8], 4, vec![9; 4], vec![0.0; 4 * 16], 1, true).is_err());
}

/// A filter's admitted rows (`Extent::admitted`: whole blocks skipped, no label tests) answer as
/// its labels alone do, on every level, in both regimes, with and without scales and a bias, across
/// tiles and ragged blocks (a last group of one block), for filters that admit no row, a few, half,
/// every row, and only one block of a pair.
#[test]
fn admitted_rows_answer_as_the_labels_do() {
    use crate::select::{AdmittedRows, Allowed, Labels};
    let mut rng = StdRng::seed_from_u64(31);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let format = CodeFormat::new(64, 4).unwrap();
    let recon = random_recon(&mut rng, format);
    for n in [45, 90, 700, 9_001] {
        let packed = pack_codes(&random_codes(&mut rng, n, format), n, format).unwrap();
        let labels: Vec<u64> = (0..n as u64).map(|r| 3 * r + 1_000).collect();
        let scale: Vec<f32> = (0..n).map(|_| rng.random_range(0.5f32..2.0)).collect();
        let mut filters: Vec<Vec<u64>> = [0.0, 0.01, 0.05, 0.5, 1.0]
            .iter()
            .map(|&share| {
                (0..n)
                    .filter(|_| rng.random_bool(share))
                    .map(|r| labels[r])
                    .collect()
            })
            .collect();
        // Only the first, or only the second, block of each two-block group.
        filters.push((0..n).filter(|r| r % 64 < 32).map(|r| labels[r]).collect());
        filters.push((0..n).filter(|r| r % 64 == 40).map(|r| labels[r]).collect());
        for isa in Isa::available() {
            let codec = TableCodec::recon(recon.clone(), Layout::Blocks, isa).unwrap();
            let data = stored(&codec, &packed, n);
            for (filter, (scaled, bias)) in filters
                .iter()
                .flat_map(|f| [(true, 0.0), (false, 0.0), (true, -2.5)].map(|c| (f, c)))
            {
                let allowed = Allowed::Sorted(filter);
                let mut rows = AdmittedRows::default();
                rows.push(allowed, Labels::Given(&labels), n);
                let plain = Extent {
                    labels: Labels::Given(&labels),
                    row_scale: scaled.then_some(&scale[..]),
                    bias,
                    ..Extent::new(&data[..], n, 0)
                };
                let admitted = Extent {
                    admitted: rows.get(0),
                    ..plain
                };
                for nq in [1, 20] {
                    let q = random_floats(&mut rng, nq * 64);
                    let search = |extent: Extent<'_, u8>| {
                        let bounds = codec.bounds([&extent]).unwrap();
                        pool.install(|| {
                            driver::search(
                                &codec,
                                nq,
                                10,
                                |r: std::ops::Range<usize>| {
                                    codec.prepare_block(
                                        &q[r.start * 64..r.end * 64],
                                        r.start,
                                        bounds,
                                    )
                                },
                                &[extent],
                                Some(allowed),
                            )
                        })
                        .unwrap()
                    };
                    let (want, got) = (search(plain), search(admitted));
                    assert!(
                        got == want,
                        "{} n={n} nq={nq} allowed={} scaled={scaled} bias={bias}",
                        isa.name(),
                        filter.len()
                    );
                    for ids in got.ids.chunks(10) {
                        let found = ids.iter().filter(|&&id| id != crate::select::MISSING);
                        assert_eq!(found.clone().count(), filter.len().min(10));
                        assert!(found.into_iter().all(|id| filter.binary_search(id).is_ok()));
                    }
                }
            }
        }
    }
    // Too few words for the rows: a clear error, not a read past them.
    let codec = TableCodec::recon(recon, Layout::Blocks, Isa::detect()).unwrap();
    let data = vec![0u8; 96 * format.row_bytes()];
    let short = Extent {
        admitted: Some(&[u64::MAX]),
        ..Extent::new(&data[..], 65, 0)
    };
    let err = codec.check_extent(&short, "lists[3]").unwrap_err();
    assert!(
        err.to_string()
            .contains("lists[3]: 1 words of admitted rows for 65 rows"),
        "{err}"
    );
}
