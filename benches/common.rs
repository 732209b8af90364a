//! What the criterion benches share: their settings and their `main` (a line naming the machine,
//! then the groups).
use std::time::Duration;

use criterion::Criterion;
use qama_core::Isa;

/// Short warm-up and measurement, so a quick run of a bench stays a few minutes on 2 cores.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// Prints the machine (CPU, rayon threads, instruction-set levels) for bench `name`, runs
/// `benches` (a `criterion_group!`) and the final summary.
pub fn main(name: &str, benches: fn()) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.replace("model name\t: ", ""))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let names: Vec<&str> = Isa::available().iter().map(|i| i.name()).collect();
    println!(
        "qama-core {name} bench: {cpu}, {} rayon threads, isas {names:?}, dispatched = {}",
        rayon::current_num_threads(),
        Isa::detect().name()
    );
    benches();
    Criterion::default().configure_from_args().final_summary();
}
