//! Criterion benchmarks of asymmetric scoring: float32 queries against compact codes through the
//! table codec (`codec::table::TableCodec`: per-query byte tables, row layout scanned with float
//! tables, 32-row block layout scanned by the quantized FastScan-style kernel), all through the one
//! search driver (`driver::{search, search_lists, rescore}`).
//!
//! Groups: each level this CPU runs (`Isa::available()`) and layout on 384-d 2-bit codes next to
//! the 1-bit Hamming scan of the same corpus (384 bits, `codec::hamming::HammingCodec`), for one
//! query (`asym_single`) and a batch (`asym_batch`); the exact float32 scan on every level
//! (`float_scan`); every code width on its fastest layout
//! (`asym_widths`); second-stage rescoring of candidates (`asym_rescore`); byte codes scored with
//! the caller's tables (`lut_single`); and a partitioned search, one query probing 16 of 256 lists
//! (`ivf`).
//!
//! ```text
//! cargo bench -p qama-core --bench asym                 # full run
//! cargo bench -p qama-core --bench asym -- --quick      # a few minutes on 2 cores
//! cargo bench -p qama-core --bench asym -- asym_single  # one group
//! ```
//!
//! Sizes are modest (200k documents for single queries, 20k for batches) so a quick run stays
//! short; the 1M-document figures, next to faiss, come from `benches/bench_asym.py`.
mod common;

use std::hint::black_box;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use qama_core::coarse::{best, Coarse};
use qama_core::codec::float::FloatCodec;
use qama_core::codec::hamming::HammingCodec;
use qama_core::codec::table::{
    pack_codes, to_blocks, Bounds, CodeFormat, Layout, Recon, TableCodec,
};
use qama_core::codec::Extent;
use qama_core::driver::{self, Candidates, Plan};
use qama_core::select::Hits;
use qama_core::Isa;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

const DIMS: usize = 384;

/// Both layouts, in the order the old kernels were listed (blocks first).
const LAYOUTS: [Layout; 2] = [Layout::Blocks, Layout::Rows];

fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Rows => "rows",
        Layout::Blocks => "blocks",
    }
}

/// Random codes of `bits` bits (packed rows and their block layout) and a random table.
struct Corpus {
    rows: Vec<u8>,
    blocks: Vec<u8>,
    recon: Recon,
}

impl Corpus {
    fn new(seed: u64, n: usize, dims: usize, bits: u32) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let format = CodeFormat::new(dims, bits).unwrap();
        let levels = format.levels();
        let codes: Vec<u8> = (0..n * dims)
            .map(|_| rng.random_range(0..levels) as u8)
            .collect();
        let rows = pack_codes(&codes, n, format).unwrap();
        let blocks = to_blocks(&rows, n, format.row_bytes()).unwrap();
        let table: Vec<f32> = (0..dims * levels)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        Self {
            rows,
            blocks,
            recon: Recon::new(format, table).unwrap(),
        }
    }

    /// The codes as a codec of `layout` stores them.
    fn stored(&self, layout: Layout) -> &[u8] {
        match layout {
            Layout::Rows => &self.rows,
            Layout::Blocks => &self.blocks,
        }
    }
}

fn queries(seed: u64, nq: usize, dims: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..nq * dims)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect()
}

/// Top-`k` of the queries `q` (`query_len()` floats each) over `n` rows of `data`.
fn table_search(codec: &TableCodec, q: &[f32], data: &[u8], n: usize, k: usize) -> Hits {
    let extent = Extent::new(data, n, 0);
    let bounds = codec.bounds([&extent]).unwrap();
    let len = codec.query_len();
    driver::search(
        codec,
        q.len() / len,
        k,
        // As the binding makes queries ready: a block at a time.
        |r: std::ops::Range<usize>| {
            codec.prepare_block(&q[r.start * len..r.end * len], r.start, bounds)
        },
        &[extent],
        None,
    )
    .unwrap()
}

/// Top-`k` of the 6-word queries `q` over every row of `db` (384 compared bits).
fn hamming_search(codec: &HammingCodec, q: &[u64], db: &[u64], k: usize) -> Hits {
    let extent = Extent::new(db, db.len() / 6, 0);
    driver::search(
        codec,
        q.len() / 6,
        k,
        |r: std::ops::Range<usize>| r.map(|i| codec.prepare(&q[i * 6..(i + 1) * 6])).collect(),
        &[extent],
        None,
    )
    .unwrap()
}

/// The scan rows of one group: Hamming 1-bit, then the 2-bit table codec on every level and layout.
fn scan_rows(c: &mut Criterion, group_name: &str, nq: usize, n: usize, samples: usize) {
    let k = 10;
    let data = Corpus::new(1, n, DIMS, 2);
    let q = queries(2, nq, DIMS);
    let mut rng = StdRng::seed_from_u64(3);
    let hamming_db: Vec<u64> = (0..n * 6).map(|_| rng.next_u64()).collect();
    let hamming_q: Vec<u64> = (0..nq * 6).map(|_| rng.next_u64()).collect();
    let mut group = c.benchmark_group(group_name);
    group
        .throughput(Throughput::Elements((nq * n) as u64))
        .sample_size(samples);
    let label = format!("{nq}q_{n}x384d");
    let hamming = HammingCodec::new(6, 384, Isa::detect()).unwrap();
    group.bench_function(BenchmarkId::new("hamming_1bit_384b", &label), |b| {
        b.iter(|| hamming_search(&hamming, black_box(&hamming_q), &hamming_db, k))
    });
    for isa in Isa::available() {
        for layout in LAYOUTS {
            let codec = TableCodec::recon(data.recon.clone(), layout, isa).unwrap();
            let name = format!("2bit_{}_{}", layout_name(layout), isa.name());
            let stored = data.stored(layout);
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| table_search(&codec, black_box(&q), stored, n, k))
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

/// The exact float32 scan (`Flat`) on every level: one query over 20,000 rows (31 MB, read once:
/// memory-bound) and a batch of 32 over the same rows (compute-bound), each query x row product
/// the same value on every level.
fn bench_float(c: &mut Criterion) {
    let (n, k) = (20_000, 10);
    let rows = queries(4, n, DIMS);
    let extent = Extent::new(&rows[..], n, 0);
    let mut group = c.benchmark_group("float_scan");
    group.sample_size(10);
    for nq in [1, 32] {
        let q = queries(5, nq, DIMS);
        group.throughput(Throughput::Elements((nq * n) as u64));
        for isa in Isa::available() {
            let codec = FloatCodec::<f32>::new(DIMS).unwrap().with_isa(isa).unwrap();
            let search = || {
                driver::search(
                    &codec,
                    nq,
                    k,
                    |r: std::ops::Range<usize>| {
                        r.map(|i| codec.prepare(&q[i * DIMS..(i + 1) * DIMS], i))
                            .collect()
                    },
                    std::slice::from_ref(&extent),
                    None,
                )
                .unwrap()
            };
            group.bench_function(
                BenchmarkId::new(isa.name(), format!("{nq}q_{n}x384d")),
                |b| b.iter(|| black_box(search())),
            );
        }
    }
    group.finish();
}

/// Every code width on its fastest layout (blocks up to 4 bits, rows for 8) with the detected
/// level, with a ragged dimension count (383: a partial last byte).
fn bench_widths(c: &mut Criterion) {
    let n = 100_000;
    let isa = Isa::detect();
    let mut group = c.benchmark_group("asym_widths");
    group
        .throughput(Throughput::Elements(n as u64))
        .sample_size(10);
    for bits in [1, 2, 4, 8] {
        let data = Corpus::new(4, n, 383, bits);
        let q = queries(5, 1, 383);
        let layout = if bits <= 4 {
            Layout::Blocks
        } else {
            Layout::Rows
        };
        let codec = TableCodec::recon(data.recon.clone(), layout, isa).unwrap();
        let name = format!("{}_{}", layout_name(layout), isa.name());
        let stored = data.stored(layout);
        group.bench_function(BenchmarkId::new(name, format!("{bits}bit_383d")), |b| {
            b.iter(|| table_search(&codec, black_box(&q), stored, n, 10))
        });
    }
    group.finish();
}

/// Second stage of a two-stage search: the best 10 of 1,000 candidates for each of 100 queries
/// (`driver::rescore`), on each layout.
fn bench_rescore(c: &mut Criterion) {
    let (n, nq, kc) = (200_000, 100, 1000);
    let data = Corpus::new(6, n, DIMS, 2);
    let q = queries(7, nq, DIMS);
    // Distinct rows per query, spread over the corpus (kc * 197 < n).
    let candidates: Vec<i64> = (0..nq)
        .flat_map(|i| (0..kc).map(move |c| ((c * 197 + i * 31_337) % n) as i64))
        .collect();
    let mut group = c.benchmark_group("asym_rescore");
    group
        .throughput(Throughput::Elements((nq * kc) as u64))
        .sample_size(10);
    for layout in [Layout::Rows, Layout::Blocks] {
        let codec = TableCodec::recon(data.recon.clone(), layout, Isa::detect()).unwrap();
        let extent = Extent::new(data.stored(layout), n, 0);
        let bounds = codec.bounds([&extent]).unwrap();
        let name = format!("2bit_{}", layout_name(layout));
        group.bench_function(BenchmarkId::new(name, format!("{nq}q_{kc}c")), |b| {
            b.iter(|| {
                driver::rescore(
                    &codec,
                    nq,
                    10,
                    |r: std::ops::Range<usize>| {
                        r.map(|i| {
                            codec.prepare(&black_box(&q)[i * DIMS..(i + 1) * DIMS], i, bounds)
                        })
                        .collect()
                    },
                    &[extent],
                    Candidates::PerQuery(&candidates, kc),
                    None,
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

/// Byte codes scored with the caller's tables (48 bytes a row, one query): the float row scan
/// against the quantized block scan on nibble-separable tables (what `pca_nibble` codecs hand over).
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
    for isa in Isa::available() {
        for layout in [Layout::Rows, Layout::Blocks] {
            let codec = TableCodec::given(m, layout, isa).unwrap();
            let stored = match layout {
                Layout::Rows => &codes,
                Layout::Blocks => &blocks,
            };
            let name = format!("{}_{}", layout_name(layout), isa.name());
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| table_search(&codec, black_box(&luts), stored, n, 10))
            });
        }
    }
    group.finish();
}

/// Partitioned search: one query ranks 256 centroids, then scans its best 16 lists (block layout,
/// residual codes: each list's bias is `<q, centroid>`) through `driver::search_lists`.
fn bench_ivf(c: &mut Criterion) {
    let (n, nlist, nprobe, k) = (200_000, 256, 16, 10);
    let data = Corpus::new(9, n, DIMS, 2);
    let rb = data.recon.format().row_bytes();
    let mut rng = StdRng::seed_from_u64(10);
    let centroids: Vec<f32> = (0..nlist * DIMS)
        .map(|_| rng.random_range(-0.2f32..0.2))
        .collect();
    let q = queries(11, 1, DIMS);
    // List `l` holds rows `starts[l]..starts[l + 1]`, in blocks of its own (as an index stores them).
    let starts: Vec<usize> = (0..=nlist).map(|l| l * n / nlist).collect();
    let lists: Vec<Vec<u8>> = starts
        .windows(2)
        .map(|w| to_blocks(&data.rows[w[0] * rb..w[1] * rb], w[1] - w[0], rb).unwrap())
        .collect();
    let mut group = c.benchmark_group("ivf");
    group.sample_size(20);
    for isa in Isa::available() {
        let codec = TableCodec::recon(data.recon.clone(), Layout::Blocks, isa).unwrap();
        let coarse = Coarse::new(centroids.clone(), DIMS, isa).unwrap();
        let search = |q: &[f32]| {
            let probed = best(&coarse.scores(q), nprobe);
            let bounds = Bounds {
                max_scale: 1.0,
                max_bias: probed
                    .iter()
                    .fold(0f64, |m, &(_, b)| m.max(f64::from(b).abs())),
            };
            driver::search_lists(
                &codec,
                1,
                k,
                n,
                |r: std::ops::Range<usize>| r.map(|i| codec.prepare(q, i, bounds)).collect(),
                |_, _| {
                    let lists = probed
                        .iter()
                        .map(|&(l, bias)| {
                            let rows = starts[l + 1] - starts[l];
                            vec![Extent {
                                bias,
                                ..Extent::new(&lists[l][..], rows, starts[l] as u64)
                            }]
                        })
                        .collect();
                    Ok(vec![Plan {
                        lists,
                        keys: probed.iter().map(|&(l, _)| l).collect(),
                        probe: nprobe,
                        more: false,
                    }])
                },
                None,
                None,
            )
            .unwrap()
        };
        // Rows the probed lists hold (the same every iteration: one fixed query).
        let scanned: usize = best(&coarse.scores(&q), nprobe)
            .iter()
            .map(|&(l, _)| starts[l + 1] - starts[l])
            .sum();
        group.throughput(Throughput::Elements(scanned as u64));
        let name = format!("2bit_blocks_{}", isa.name());
        let label = format!("1q_{n}x384d_{nprobe}of{nlist}");
        group.bench_function(BenchmarkId::new(name, label), |b| {
            b.iter(|| search(black_box(&q)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_single, bench_batch, bench_float, bench_widths, bench_rescore, bench_lut, bench_ivf
}

fn main() {
    common::main("asym", benches);
}
