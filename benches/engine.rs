//! Criterion benchmarks of the qama-core engine: bit packing, fused encode, and the Hamming codec's
//! top-k through the one search driver (`codec::hamming::HammingCodec` + `driver::search`), once
//! per instruction-set level this CPU runs (`Isa::available()`, scalar twin included) and once with
//! the detected level (`Isa::detect()`, the Python binding's default).
//!
//! ```text
//! cargo bench -p qama-core --bench engine                # full run
//! cargo bench -p qama-core --bench engine -- --quick     # a few minutes on 2 cores
//! cargo bench -p qama-core --bench engine -- topk_batch  # one group
//! ```
//!
//! Sizes are modest so a quick run stays short: the top-k groups time both regimes of the driver (a
//! batch of queries over a database of a few tiles, and single queries over a database larger than
//! L2), for 6-word (384-bit), 18-word (1152-bit) and a ragged 7-word / 437-bit prefix code. The
//! 1M-code figures, next to faiss, come from `benches/bench_search.py`.
mod common;

use std::hint::black_box;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use qama_core::codec::hamming::HammingCodec;
use qama_core::codec::Extent;
use qama_core::driver;
use qama_core::expand::encode;
use qama_core::pack::{pack_bits, unpack_bits};
use qama_core::quantize::Thresholds;
use qama_core::select::Hits;
use qama_core::{CodeLayout, Isa};
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

/// `(words, nbits, label)`: the usual 1-bit and 1.5-bit sizes, and an ugly prefix with a tail.
const CODE_SIZES: [(usize, usize, &str); 3] = [
    (6, 384, "6w_384b"),
    (18, 1152, "18w_1152b"),
    (7, 437, "7w_437b"),
];

fn random_words(seed: u64, len: usize) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.next_u64()).collect()
}

/// Rows of the benchmark table: every level this CPU runs, plus the detected one (the default).
fn levels() -> Vec<(String, Isa)> {
    let mut rows: Vec<(String, Isa)> = Isa::available()
        .into_iter()
        .map(|isa| (isa.name().to_string(), isa))
        .collect();
    rows.push(("dispatched".to_string(), Isa::detect()));
    rows
}

/// Top-`k` of the `words`-word queries `q` over every row of `db`.
fn search(codec: &HammingCodec, q: &[u64], db: &[u64], k: usize) -> Hits {
    let words = codec.words();
    let extent = Extent::new(db, db.len() / words, 0);
    driver::search(
        codec,
        q.len() / words,
        k,
        |r: std::ops::Range<usize>| {
            r.map(|i| codec.prepare(&q[i * words..(i + 1) * words]))
                .collect()
        },
        &[extent],
        None,
    )
    .unwrap()
}

fn bench_pack(c: &mut Criterion) {
    let (n, nbits) = (20_000, 624);
    let mut rng = StdRng::seed_from_u64(1);
    let bits: Vec<u8> = (0..n * nbits).map(|_| rng.random_range(0..2u8)).collect();
    let packed = pack_bits(&bits, n, nbits).unwrap();
    let mut group = c.benchmark_group("pack");
    group.throughput(Throughput::Bytes((n * nbits) as u64));
    group.bench_function(BenchmarkId::new("pack_bits", format!("{n}x{nbits}")), |b| {
        b.iter(|| pack_bits(black_box(&bits), n, nbits).unwrap())
    });
    group.bench_function(
        BenchmarkId::new("unpack_bits", format!("{n}x{nbits}")),
        |b| b.iter(|| unpack_bits(black_box(&packed), n, nbits).unwrap()),
    );
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let (n, dims) = (20_000, 384);
    let mut rng = StdRng::seed_from_u64(2);
    let x: Vec<f32> = (0..n * dims)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    // The hybrid scheme: 96 dims at 4 levels, 96 at 3, 192 at 2 (624 bits, 10 words).
    let mut levels = vec![4u16; 96];
    levels.extend([3u16; 96]);
    levels.extend([2u16; 192]);
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(n as u64));
    for (label, levels) in [
        ("1bit_384d", vec![2u16; dims]),
        ("2bit_384d", vec![4u16; dims]),
        ("hybrid_384d", levels),
    ] {
        let layout = CodeLayout::new(&levels).unwrap();
        let values: Vec<f32> = (0..dims)
            .flat_map(|j| {
                let t = layout.thresholds_of(j).unwrap_or(0);
                (0..t).map(move |i| (i as f32 + 1.0) / (t as f32 + 1.0) * 2.0 - 1.0)
            })
            .collect();
        let thresholds = Thresholds::new(layout, values).unwrap();
        group.bench_function(BenchmarkId::new(label, n), |b| {
            b.iter(|| encode(black_box(&x), n, &thresholds).unwrap())
        });
    }
    group.finish();
}

/// Compute-bound regime: a batch of queries against a database of a few tiles.
fn bench_topk_batch(c: &mut Criterion) {
    let (nq, n, k) = (64, 20_000, 10);
    let mut group = c.benchmark_group("topk_batch");
    group
        .throughput(Throughput::Elements((nq * n) as u64))
        .sample_size(10);
    for (words, nbits, label) in CODE_SIZES {
        let db = random_words(3, n * words);
        let q = random_words(4, nq * words);
        for (name, isa) in levels() {
            let codec = HammingCodec::new(words, nbits, isa).unwrap();
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| search(&codec, black_box(&q), &db, k))
            });
        }
    }
    group.finish();
}

/// Memory-bound regime: one query against a database larger than L2 (about 10-30 MB).
fn bench_topk_single(c: &mut Criterion) {
    let (n, k) = (200_000, 10);
    let mut group = c.benchmark_group("topk_single");
    group
        .throughput(Throughput::Elements(n as u64))
        .sample_size(20);
    for (words, nbits, label) in CODE_SIZES {
        let db = random_words(5, n * words);
        let q = random_words(6, words);
        for (name, isa) in levels() {
            let codec = HammingCodec::new(words, nbits, isa).unwrap();
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| search(&codec, black_box(&q), &db, k))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_pack, bench_encode, bench_topk_batch, bench_topk_single
}

fn main() {
    common::main("engine", benches);
}
