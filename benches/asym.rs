//! Criterion benchmarks of asymmetric scoring (`qama_core::asym`): each kernel on 384-d 2-bit codes
//! next to the 1-bit Hamming scan of the same corpus (384 bits, `topk::search`), the other code
//! widths, and candidate rescoring.
//!
//! ```text
//! cargo bench -p qama-core --bench asym                 # full run
//! cargo bench -p qama-core --bench asym -- --quick      # a minute or two on 2 cores
//! cargo bench -p qama-core --bench asym -- asym_single  # one group
//! ```
//!
//! Sizes are modest (200k documents for single queries, 20k for batches) so a quick run stays
//! short; the 1M-document figures come from the `asym::perf` timing run
//! (`rust/core/src/asym/perf.rs`) and `benches/bench_asym.py`.
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use qama_core::asym::{
    available_kernels, lut_search_blocked_with, lut_search_with, pack_codes, rescore,
    search_blocked_with, search_with, to_blocks, CodeFormat, Kernel, Recon,
};
use qama_core::topk;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

const DIMS: usize = 384;

/// Random codes of `bits` bits (packed rows and their block layout) and a random table.
struct Corpus {
    packed: Vec<u8>,
    blocks: Vec<u8>,
    recon: Recon,
}

fn corpus(seed: u64, n: usize, dims: usize, bits: u32) -> Corpus {
    let mut rng = StdRng::seed_from_u64(seed);
    let format = CodeFormat::new(dims, bits).unwrap();
    let levels = format.levels();
    let codes: Vec<u8> = (0..n * dims)
        .map(|_| rng.random_range(0..levels) as u8)
        .collect();
    let packed = pack_codes(&codes, n, format).unwrap();
    let blocks = to_blocks(&packed, n, format.row_bytes()).unwrap();
    let table: Vec<f32> = (0..dims * levels)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    Corpus {
        packed,
        blocks,
        recon: Recon::new(format, table).unwrap(),
    }
}

fn queries(seed: u64, nq: usize, dims: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..nq * dims)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect()
}

/// The scan rows of one group: Hamming 1-bit, then every asymmetric kernel on its layout.
fn scan_rows(c: &mut Criterion, group_name: &str, nq: usize, n: usize, samples: usize) {
    let k = 10;
    let data = corpus(1, n, DIMS, 2);
    let q = queries(2, nq, DIMS);
    let mut rng = StdRng::seed_from_u64(3);
    let hamming_db: Vec<u64> = (0..n * 6).map(|_| rng.next_u64()).collect();
    let hamming_q: Vec<u64> = (0..nq * 6).map(|_| rng.next_u64()).collect();
    let mut group = c.benchmark_group(group_name);
    group
        .throughput(Throughput::Elements((nq * n) as u64))
        .sample_size(samples);
    let label = format!("{nq}q_{n}x384d");
    group.bench_function(BenchmarkId::new("hamming_1bit_384b", &label), |b| {
        b.iter(|| topk::search(black_box(&hamming_q), nq, &hamming_db, n, 6, 384, k).unwrap())
    });
    for kernel in available_kernels() {
        if kernel.scans_blocks() {
            let name = format!("2bit_blocks_{}", kernel.name());
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| {
                    search_blocked_with(
                        kernel,
                        black_box(&q),
                        nq,
                        &data.recon,
                        &data.blocks,
                        n,
                        None,
                        k,
                    )
                    .unwrap()
                })
            });
        }
        if kernel.scans_rows() {
            let name = format!("2bit_rows_{}", kernel.name());
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| {
                    search_with(
                        kernel,
                        black_box(&q),
                        nq,
                        &data.recon,
                        &data.packed,
                        n,
                        None,
                        k,
                    )
                    .unwrap()
                })
            });
        }
    }
    group.finish();
}

/// Memory-bound regime: one query against codes larger than L2 (19 MB of 2-bit codes).
fn bench_single(c: &mut Criterion) {
    scan_rows(c, "asym_single", 1, 200_000, 10);
}

/// Compute-bound regime: a batch of queries against a few tiles of codes.
fn bench_batch(c: &mut Criterion) {
    scan_rows(c, "asym_batch", 32, 20_000, 10);
}

/// Every code width on its fastest layout, with a ragged dimension count (383: a partial last byte).
fn bench_widths(c: &mut Criterion) {
    let n = 100_000;
    let mut group = c.benchmark_group("asym_widths");
    group
        .throughput(Throughput::Elements(n as u64))
        .sample_size(10);
    for bits in [1, 2, 4, 8] {
        let data = corpus(4, n, 383, bits);
        let q = queries(5, 1, 383);
        let label = format!("{bits}bit_383d");
        if bits <= 4 {
            let kernel = Kernel::best_blocks();
            group.bench_function(BenchmarkId::new(kernel.name(), &label), |b| {
                b.iter(|| {
                    search_blocked_with(
                        kernel,
                        black_box(&q),
                        1,
                        &data.recon,
                        &data.blocks,
                        n,
                        None,
                        10,
                    )
                    .unwrap()
                })
            });
        }
        let kernel = Kernel::best_rows();
        group.bench_function(BenchmarkId::new(kernel.name(), &label), |b| {
            b.iter(|| {
                search_with(
                    kernel,
                    black_box(&q),
                    1,
                    &data.recon,
                    &data.packed,
                    n,
                    None,
                    10,
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

/// Second stage of a two-stage search: 100 queries x 1,000 candidates each.
fn bench_rescore(c: &mut Criterion) {
    let (n, nq, kc) = (200_000, 100, 1000);
    let data = corpus(6, n, DIMS, 2);
    let q = queries(7, nq, DIMS);
    // Distinct rows per query, spread over the corpus (kc * 197 < n).
    let candidates: Vec<i64> = (0..nq)
        .flat_map(|i| (0..kc).map(move |c| ((c * 197 + i * 31_337) % n) as i64))
        .collect();
    let mut group = c.benchmark_group("asym_rescore");
    group
        .throughput(Throughput::Elements((nq * kc) as u64))
        .sample_size(10);
    group.bench_function(
        BenchmarkId::new("2bit_codes", format!("{nq}q_{kc}c")),
        |b| {
            b.iter(|| {
                rescore(
                    black_box(&q),
                    nq,
                    &data.recon,
                    &data.packed,
                    n,
                    None,
                    &candidates,
                    kc,
                    10,
                )
                .unwrap()
            })
        },
    );
    group.finish();
}

/// Byte-LUT codes (48 bytes a row, one query): the float row kernels against the quantized block
/// kernels on nibble-separable tables (what `pca_nibble` codecs hand over).
fn bench_lut(c: &mut Criterion) {
    let (n, m) = (200_000, 48);
    let mut rng = StdRng::seed_from_u64(8);
    let codes: Vec<u8> = (0..n * m).map(|_| rng.random_range(0..=255u8)).collect();
    let blocks = to_blocks(&codes, n, m).unwrap();
    let mut luts = Vec::with_capacity(m * 256);
    for _ in 0..m {
        let lo: Vec<f32> = (0..16).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let hi: Vec<f32> = (0..16).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        luts.extend((0..256).map(|v| lo[v & 15] + hi[v >> 4]));
    }
    let mut group = c.benchmark_group("lut_single");
    group
        .throughput(Throughput::Elements(n as u64))
        .sample_size(10);
    let label = format!("{n}x{m}B");
    for kernel in available_kernels() {
        if kernel.scans_rows() {
            group.bench_function(
                BenchmarkId::new(format!("rows_{}", kernel.name()), &label),
                |b| {
                    b.iter(|| {
                        lut_search_with(kernel, black_box(&luts), 1, m, &codes, n, None, 10)
                            .unwrap()
                    })
                },
            );
        }
        if kernel.scans_blocks() {
            group.bench_function(
                BenchmarkId::new(format!("blocks_{}", kernel.name()), &label),
                |b| {
                    b.iter(|| {
                        lut_search_blocked_with(
                            kernel,
                            black_box(&luts),
                            1,
                            m,
                            &blocks,
                            n,
                            None,
                            10,
                        )
                        .unwrap()
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench_single, bench_batch, bench_widths, bench_rescore, bench_lut
}

fn main() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.replace("model name\t: ", ""))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let names: Vec<&str> = available_kernels().iter().map(|k| k.name()).collect();
    println!(
        "qama-core asym bench: {cpu}, {} rayon threads, kernels {names:?}",
        rayon::current_num_threads()
    );
    benches();
    Criterion::default().configure_from_args().final_summary();
}
