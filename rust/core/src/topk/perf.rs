//! Timing runs, not unit tests (ignored by default). Run with fat LTO:
//!
//! ```text
//! cargo test --release -p qama-core --lib perf -- --ignored --nocapture --test-threads=1
//! cargo test --release -p qama-core --lib perf_1m -- --ignored --nocapture   # one of them
//! ```
//!
//! - `perf_1m_codes`: 1,000 queries and single queries against 1M random codes
//!   (`QAMA_PERF_N` overrides), k = 10, 6 and 18 words, for the dispatched backend and for each
//!   x86 kernel forced, so the dispatch choice can be checked on the machine at hand. Filters:
//!   `QAMA_PERF_WORDS=6`, `QAMA_PERF_VARIANT=dispatched`, `QAMA_PERF_SCALAR=1` (scalar batch).
//! - `perf_single_query`: one query, many repetitions, next to a plain read of the same bytes.
//! - `perf_few_queries`: row kernel against interleaved kernel for 1..16 queries.
//! - `perf_kernels_in_cache`, `perf_interleave`, `perf_encode`: per-row costs of the parts.
//!
//! Wall times on a shared machine depend on the neighbours; the batch run also prints the CPU
//! time the process used, which depends on them much less.
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{search_kernels, TopK};
use crate::hamming::{available_backends, best_backend, Backend, Kernels};

fn random_words(seed: u64, len: usize) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.next_u64()).collect()
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The kernel variants worth timing on this CPU: dispatched, row kernel only, batch kernel only.
fn variants(words: usize, nbits: usize) -> Vec<(String, Kernels)> {
    let mut out = Vec::new();
    for backend in available_backends() {
        let name = backend.name();
        let make = || Kernels::new(backend, words, nbits).unwrap();
        out.push((format!("{name} (dispatched)"), make()));
        if backend != Backend::Scalar {
            out.push((format!("{name} popcnt rows only"), make().without_tiles()));
            out.push((
                format!("{name} interleaved tiles always"),
                make().always_tiled(),
            ));
            if backend == Backend::Avx2 {
                out.push((
                    format!("{name} vector-only tiles always"),
                    make().always_tiled().vector_only(),
                ));
            }
        }
    }
    out
}

/// CPU seconds (user + system, all threads) this process has used: on a shared machine the
/// wall time depends on the neighbours, the CPU time much less.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 0, utime 11, stime 12 (clock ticks of 1/100 s).
    (ticks(11) + ticks(12)) / 100.0
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "timing run; see the module doc"]
fn perf_1m_codes() {
    let n: usize = env_or("QAMA_PERF_N", 1_000_000);
    let (nq, k) = (1000, 10);
    // Optional filters: QAMA_PERF_WORDS=6, QAMA_PERF_VARIANT=dispatched, QAMA_PERF_SCALAR=1.
    let only_words: usize = env_or("QAMA_PERF_WORDS", 0);
    let only_variant: String = env_or("QAMA_PERF_VARIANT", String::new());
    println!(
        "{}; {} rayon threads; best backend {}; n = {n}, nq = {nq}, k = {k}",
        cpu_model(),
        rayon::current_num_threads(),
        best_backend().name()
    );
    for words in [6, 18]
        .into_iter()
        .filter(|&w| only_words == 0 || w == only_words)
    {
        let nbits = 64 * words;
        let db = random_words(1, n * words);
        let q = random_words(2, nq * words);
        let mut reference: Option<TopK> = None;
        for (label, kernels) in variants(words, nbits) {
            if !label.contains(&only_variant) {
                continue;
            }
            if label.starts_with("scalar") && std::env::var("QAMA_PERF_SCALAR").is_err() {
                println!("{words:>2} words  {label:<34} batch skipped (set QAMA_PERF_SCALAR=1)");
            } else {
                let cpu_before = cpu_seconds();
                let (top, batch) = timed(|| search_kernels(&kernels, &q, &db, n, k).unwrap());
                let cpu = cpu_seconds() - cpu_before;
                match &reference {
                    Some(r) => assert!(r == &top, "{label} disagrees"),
                    None => reference = Some(top),
                }
                println!(
                    "{words:>2} words  {label:<34} batch {:>7.3} s ({:>4.0} QPS), {cpu:>6.2} CPU s = {:.2} CPU ns/pair",
                    batch.as_secs_f64(),
                    nq as f64 / batch.as_secs_f64(),
                    cpu * 1e9 / (nq * n) as f64
                );
            }
            let mut singles: Vec<Duration> = (0..30)
                .map(|i| {
                    timed(|| search_kernels(&kernels, &q[i * words..(i + 1) * words], &db, n, k)).1
                })
                .collect();
            singles.sort();
            println!(
                "{words:>2} words  {label:<34} 1 query median {:>6.2} ms, min {:>6.2} ms",
                singles[singles.len() / 2].as_secs_f64() * 1e3,
                singles[0].as_secs_f64() * 1e3
            );
        }
    }
}

/// Per-row cost of each kernel and of the top-k filter on one cache-resident tile, one thread.
#[test]
#[ignore = "timing run; see the module doc"]
fn perf_kernels_in_cache() {
    use super::select::TopKeys;
    use crate::hamming::Scratch;
    let rows: usize = env_or("QAMA_PERF_ROWS", 4096);
    for words in [6, 18] {
        let db = random_words(3, rows * words);
        let q = random_words(4, 16 * words);
        for (label, kernels) in variants(words, 64 * words) {
            if label.starts_with("scalar") {
                continue;
            }
            let mut scratch = Scratch::default();
            let mut best = f64::MAX;
            let mut best_filter = f64::MAX;
            // Warm selections, as deep into a scan: the filter rejects almost everything.
            let mut tops = vec![TopKeys::new(10); 16];
            for _ in 0..3 {
                kernels.scan(&q, &db, &mut scratch, |i, d| tops[i].offer_all(d, 0));
            }
            for _ in 0..50 {
                let (_, t) = timed(|| kernels.scan(&q, &db, &mut scratch, |_, _| {}));
                best = best.min(t.as_secs_f64());
                let (_, t) =
                    timed(|| kernels.scan(&q, &db, &mut scratch, |i, d| tops[i].offer_all(d, 0)));
                best_filter = best_filter.min(t.as_secs_f64());
            }
            let per = |t: f64| t * 1e9 / (16 * rows) as f64;
            println!(
                "{words:>2} words  {label:<34} {:.3} ns/pair kernel, {:.3} ns/pair with top-k filter",
                per(best),
                per(best_filter)
            );
        }
    }
}

/// One query against 1M codes, many times, next to a plain parallel read of the same bytes
/// (the memory-bandwidth floor of any exact scan).
#[test]
#[ignore = "timing run; see the module doc"]
fn perf_single_query() {
    use rayon::prelude::*;
    let n: usize = env_or("QAMA_PERF_N", 1_000_000);
    let reps: usize = env_or("QAMA_PERF_REPS", 200);
    for words in [6, 18] {
        let db = random_words(1, n * words);
        let q = random_words(2, reps * words);
        let kernels = Kernels::new(best_backend(), words, 64 * words).unwrap();
        let stats = |mut t: Vec<Duration>| {
            t.sort();
            (t[0].as_secs_f64() * 1e3, t[t.len() / 2].as_secs_f64() * 1e3)
        };
        let (read_min, read_med) = stats(
            (0..reps)
                .map(|_| {
                    timed(|| {
                        db.par_chunks(1 << 14)
                            .map(|c| c.iter().fold(0, |a, &b| a ^ b))
                            .reduce(|| 0, |a, b| a ^ b)
                    })
                    .1
                })
                .collect(),
        );
        let (min, med) = stats(
            (0..reps)
                .map(|i| {
                    timed(|| search_kernels(&kernels, &q[i * words..(i + 1) * words], &db, n, 10)).1
                })
                .collect(),
        );
        println!(
            "{words:>2} words  1 query: min {min:.2} ms, median {med:.2} ms;  plain read of the {} MB: min {read_min:.2} ms, median {read_med:.2} ms",
            n * words * 8 / 1_000_000
        );
    }
}

/// CPU time per value of the fused encode (1-bit, 2-bit and hybrid layouts of 384 dims).
#[test]
#[ignore = "timing run; see the module doc"]
fn perf_encode() {
    use crate::expand::encode;
    use crate::quantize::Thresholds;
    use crate::CodeLayout;
    let (n, dims) = (100_000, 384);
    let x: Vec<f32> = random_words(9, n * dims / 2)
        .into_iter()
        .flat_map(|w| {
            [
                (w as u32) as f32 / u32::MAX as f32 - 0.5,
                (w >> 32) as f32 / u32::MAX as f32 - 0.5,
            ]
        })
        .collect();
    let mut hybrid = vec![4u16; 96];
    hybrid.extend([3u16; 96]);
    hybrid.extend([2u16; 192]);
    for (label, levels) in [
        ("1-bit", vec![2u16; dims]),
        ("2-bit", vec![4u16; dims]),
        ("hybrid", hybrid),
    ] {
        let layout = CodeLayout::new(&levels).unwrap();
        let values: Vec<f32> = (0..dims)
            .flat_map(|j| {
                let t = layout.thresholds_of(j).unwrap();
                (0..t).map(move |i| (i as f32 + 1.0) / (t as f32 + 1.0) - 0.5)
            })
            .collect();
        let thresholds = Thresholds::new(layout, values).unwrap();
        let mut best = f64::MAX;
        for _ in 0..5 {
            let before = cpu_seconds();
            std::hint::black_box(encode(&x, n, &thresholds).unwrap());
            best = best.min(cpu_seconds() - before);
        }
        println!(
            "encode {label:<7} {:.2} CPU ns per value",
            best * 1e9 / (n * dims) as f64
        );
    }
}

/// Few queries against 1M codes: the row kernel against the interleaved batch kernel, to place
/// `TILED_MIN_QUERIES`.
#[test]
#[ignore = "timing run; see the module doc"]
fn perf_few_queries() {
    let n: usize = env_or("QAMA_PERF_N", 1_000_000);
    let words = 6;
    let db = random_words(1, n * words);
    let q = random_words(2, 64 * words);
    let rows = Kernels::new(best_backend(), words, 64 * words)
        .unwrap()
        .without_tiles();
    let tiled = Kernels::new(best_backend(), words, 64 * words)
        .unwrap()
        .always_tiled();
    for nq in [1, 2, 3, 4, 6, 8, 16] {
        let best = |kernels: &Kernels| {
            (0..7)
                .map(|_| timed(|| search_kernels(kernels, &q[..nq * words], &db, n, 10)).1)
                .min()
                .unwrap_or_default()
                .as_secs_f64()
                * 1e3
        };
        println!(
            "{nq:>2} queries: rows {:.2} ms, tiles {:.2} ms",
            best(&rows),
            best(&tiled)
        );
    }
}

/// Cost of copying a cache-resident block into the interleaved tile layout.
#[test]
#[ignore = "timing run; see the module doc"]
fn perf_interleave() {
    use crate::hamming::tile::{interleave, GroupShape};
    let rows = 4000;
    for words in [6, 18] {
        let db = random_words(1, rows * words);
        let mut tile = Vec::new();
        for shape in [
            GroupShape { lanes: 4, extra: 1 },
            GroupShape { lanes: 8, extra: 0 },
        ] {
            let best = (0..200)
                .map(|_| timed(|| interleave(&db, words, words, u64::MAX >> 3, shape, &mut tile)).1)
                .min()
                .unwrap_or_default();
            println!(
                "{words:>2} words {shape:?}: {:.2} ns per row",
                best.as_secs_f64() * 1e9 / rows as f64
            );
        }
    }
}
