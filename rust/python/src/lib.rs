//! PyO3 binding of qama-core, built by maturin into `qama_rs._core`.
//!
//! Each function or codec method converts its arguments (dtype, rank, C-contiguity, integers: see
//! [`args`]), runs the core with the GIL released ([`run_core`]), and hands the result vector to
//! NumPy without copying it (`into_pyarray`). No logic lives here. Errors: see [`errors`]
//! (`QamaError`, `QamaTypeError`, `MemoryError`); a panic inside the core (a bug) is caught and
//! becomes `RuntimeError`, so none reaches Python as a `PanicException`.
//!
//! Modules: [`thermo`] (thermometer codes), [`codecs`] (the codec classes), [`store`] (stored rows
//! and the block layout), [`kmeans`]. Threads: every core call runs in the process's own pool
//! ([`pool`]: rebuilt in a forked child, so `fork` after a search is safe), sized by
//! `RAYON_NUM_THREADS` (default: all cores). Arguments another thread may write during a call are
//! copied first (see [`args`]).
mod args;
mod calls;
mod codecs;
mod errors;
mod kmeans;
mod layout;
mod pool;
mod store;
mod thermo;

use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use qama_core::Isa;

use errors::core_error;

#[cfg(not(windows))]
extern "C" {
    /// 1 iff this thread holds the GIL. Not in the limited API's headers (hence the declaration)
    /// nor in `python3.dll`, so it is only linked where symbols resolve against the running
    /// interpreter (Linux, macOS); Windows builds count nothing.
    fn PyGILState_Check() -> c_int;
}

/// Whether this thread holds the GIL (`None` where that cannot be asked: Windows abi3 builds).
fn gil_held() -> Option<bool> {
    #[cfg(not(windows))]
    {
        // SAFETY: `PyGILState_Check` only reads the calling thread's state.
        Some(unsafe { PyGILState_Check() } != 0)
    }
    #[cfg(windows)]
    {
        None
    }
}

/// Core calls that found the GIL released / held inside their detached closure (see
/// `_gil_checks`): the GIL test reads these instead of timing threads.
static GIL_RELEASED: AtomicU64 = AtomicU64::new(0);
static GIL_HELD: AtomicU64 = AtomicU64::new(0);

/// Work (values, roughly: rows x values of an encoding, an eighth of the bytes a scan reads)
/// below which a call runs on the calling thread: waking the pool's threads costs tens of
/// microseconds, more than a small call's work (a scan of 2 MB of codes takes about 0.2-0.5 ms).
pub(crate) const PARALLEL_WORK: usize = 1 << 18;

/// Runs a core call without the GIL, in this process's pool (every binding call goes through
/// here); core errors become Python exceptions ([`core_error`]), panics `RuntimeError`.
fn run_core<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> qama_core::Result<T> + Send,
{
    run_sized(py, usize::MAX, f)
}

/// [`run_core`] for a call of about `work` units: below [`PARALLEL_WORK`] on the calling thread.
fn run_sized<T, F>(py: Python<'_>, work: usize, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> qama_core::Result<T> + Send,
{
    // A thread already in another rayon pool (Python called from a rayon worker) cannot have a
    // local pool: it takes the process pool.
    let pool = if work < PARALLEL_WORK {
        pool::local().or_else(|_| pool::pool())
    } else {
        pool::pool()
    }
    .map_err(PyRuntimeError::new_err)?;
    let outcome = py.detach(|| {
        match gil_held() {
            Some(false) => GIL_RELEASED.fetch_add(1, Ordering::Relaxed),
            Some(true) => GIL_HELD.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
        catch_unwind(AssertUnwindSafe(|| pool.install(f)))
    });
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(core_error(e)),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(PyRuntimeError::new_err(format!(
                "internal error in qama-core (please report): {what}"
            )))
        }
    }
}

/// Two arrays returned together (ids and scores, assignments and distances).
type Pair<'py, A, B> = (Bound<'py, A>, Bound<'py, B>);

/// Moves a row-major result vector into a `(rows, cols)` NumPy array without copying.
fn into_2d<'py, T: numpy::Element>(
    py: Python<'py>,
    data: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let array = Array2::from_shape_vec((rows, cols), data).map_err(|e| {
        PyRuntimeError::new_err(format!(
            "internal error: result is not ({rows}, {cols}): {e}"
        ))
    })?;
    Ok(array.into_pyarray(py))
}

/// Names of the instruction-set levels this CPU runs, fastest first (always ends with "scalar").
#[pyfunction]
fn available_isas() -> Vec<&'static str> {
    Isa::available().into_iter().map(Isa::name).collect()
}

/// Name of the level the codecs use by default (the fastest this CPU runs).
#[pyfunction]
fn best_isa() -> &'static str {
    Isa::detect().name()
}

/// The architecture and the CPU features the kernels care about, as detected at run time
/// (e.g. "x86_64: popcnt avx2 avx512f avx512vpopcntdq"), for benchmark records.
#[pyfunction]
fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let detected = [
            ("popcnt", std::arch::is_x86_feature_detected!("popcnt")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("bmi2", std::arch::is_x86_feature_detected!("bmi2")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
            (
                "avx512vpopcntdq",
                std::arch::is_x86_feature_detected!("avx512vpopcntdq"),
            ),
        ];
        let names: Vec<&str> = detected
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect();
        format!("x86_64: {}", names.join(" "))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        format!("{}: (no feature probe)", std::env::consts::ARCH)
    }
}

/// Threads of this process's engine pool (`RAYON_NUM_THREADS` before the first call).
#[pyfunction]
fn num_threads() -> PyResult<usize> {
    Ok(pool::pool()
        .map_err(PyRuntimeError::new_err)?
        .current_num_threads())
}

/// `(released, held)`: how many core calls, since import, found the GIL released / held inside
/// their detached closure (`PyGILState_Check`). For the GIL test; `held` stays 0.
#[pyfunction]
fn _gil_checks() -> (u64, u64) {
    (
        GIL_RELEASED.load(Ordering::Relaxed),
        GIL_HELD.load(Ordering::Relaxed),
    )
}

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("QamaError", m.py().get_type::<errors::QamaError>())?;
    m.add("QamaTypeError", errors::qama_type_error(m.py())?)?;
    for f in [
        wrap_pyfunction!(thermo::quantize, m)?,
        wrap_pyfunction!(thermo::expand, m)?,
        wrap_pyfunction!(thermo::collapse, m)?,
        wrap_pyfunction!(thermo::encode, m)?,
        wrap_pyfunction!(thermo::pack_bits, m)?,
        wrap_pyfunction!(thermo::unpack_bits, m)?,
        wrap_pyfunction!(thermo::hamming_distances, m)?,
        wrap_pyfunction!(layout::pack_codes, m)?,
        wrap_pyfunction!(layout::unpack_codes, m)?,
        wrap_pyfunction!(layout::to_blocks, m)?,
        wrap_pyfunction!(layout::from_blocks, m)?,
        wrap_pyfunction!(layout::write_block_rows, m)?,
        wrap_pyfunction!(layout::keep_block_rows, m)?,
        wrap_pyfunction!(kmeans::kmeans_iterate, m)?,
        wrap_pyfunction!(kmeans::kmeans_assign, m)?,
        wrap_pyfunction!(args::peak_abs, m)?,
        wrap_pyfunction!(available_isas, m)?,
        wrap_pyfunction!(best_isa, m)?,
        wrap_pyfunction!(cpu_features, m)?,
        wrap_pyfunction!(num_threads, m)?,
        wrap_pyfunction!(_gil_checks, m)?,
    ] {
        m.add_function(f)?;
    }
    m.add_class::<thermo::PyThresholds>()?;
    codecs::register(m)?;
    Ok(())
}
