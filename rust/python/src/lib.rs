//! PyO3 binding of qama-core, built by maturin into `qama_rs._core`.
//!
//! Each function converts its arguments (dtype, rank, C-contiguity, integers: see [`args`]), runs
//! the core with the GIL released ([`run_core`]), and hands the result vector to NumPy without
//! copying it (`into_pyarray`). No logic lives here. Errors: see [`errors`] (`QamaError`,
//! `QamaTypeError`, `MemoryError`); a panic inside the core (a bug) is caught and becomes
//! `RuntimeError`, so none reaches Python as a `PanicException`.
//!
//! Threads: the core runs on rayon's global pool, sized by `RAYON_NUM_THREADS` (default: all
//! cores). As with every rayon user, do not fork (e.g. PyTorch DataLoader workers) after a
//! parallel call and then call the engine in the child; use spawn, or set `RAYON_NUM_THREADS=1`.
//! Arguments another thread may write during a call are copied first (see [`args`]).
mod args;
mod asym;
mod errors;

use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, Ix1, Ix2, PyArray2};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use qama_core::hamming::{self, Backend};
use qama_core::quantize::Thresholds;
use qama_core::{pack, topk, CodeLayout};

use args::{array_arg, copied, k_arg, opt_int_arg, opt_str_arg, rows_cols, shared};
use errors::{core_error, value_error};

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

/// Runs a core call without the GIL (every binding function goes through here); core errors
/// become Python exceptions ([`core_error`]), panics `RuntimeError`.
fn run_core<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> qama_core::Result<T> + Send,
{
    let outcome = py.detach(|| {
        match gil_held() {
            Some(false) => GIL_RELEASED.fetch_add(1, Ordering::Relaxed),
            Some(true) => GIL_HELD.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
        catch_unwind(AssertUnwindSafe(f))
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

/// Builds the code layout from a `uint16` array of per-dimension level counts.
fn layout_arg(levels: &Bound<'_, PyAny>) -> PyResult<CodeLayout> {
    let levels = array_arg::<u16, Ix1>(levels, "levels")?;
    CodeLayout::new(&copied(&levels, "levels")?).map_err(|e| value_error(format!("levels: {e}")))
}

/// Thresholds (`float32`, concatenated per dimension) for a layout, validated by the core.
fn thresholds_arg(thresholds: &Bound<'_, PyAny>, layout: CodeLayout) -> PyResult<Thresholds> {
    let values = array_arg::<f32, Ix1>(thresholds, "thresholds")?;
    Thresholds::new(layout, copied(&values, "thresholds")?).map_err(core_error)
}

fn check_columns(name: &str, cols: usize, layout: &CodeLayout) -> PyResult<()> {
    if cols != layout.dims() {
        return Err(value_error(format!(
            "{name} has {cols} columns but levels names {} dimensions",
            layout.dims()
        )));
    }
    Ok(())
}

/// Resolves an optional backend name; `None` means the fastest one this CPU runs.
fn backend_arg(name: Option<&Bound<'_, PyAny>>) -> PyResult<Backend> {
    let Some(name) = opt_str_arg(name, "backend")? else {
        return Ok(hamming::best_backend());
    };
    let backend = Backend::from_name(&name).ok_or_else(|| {
        value_error(format!(
            "backend = {name:?}; known backends are 'scalar', 'avx2', 'avx512vpopcntdq'"
        ))
    })?;
    if !backend.is_available() {
        return Err(value_error(format!(
            "backend {name:?} is not available on this CPU"
        )));
    }
    Ok(backend)
}

/// Number of compared bits: `None` means every bit of a row (padding bits are zero); the core
/// checks the range.
fn nbits_arg(nbits: Option<&Bound<'_, PyAny>>, words: usize) -> PyResult<usize> {
    match opt_int_arg(nbits, "nbits")? {
        None => Ok(words.saturating_mul(64)),
        Some(b) => {
            usize::try_from(b).map_err(|_| value_error(format!("nbits = {b}; must be positive")))
        }
    }
}

/// Reads query and database codes and checks that their rows have the same width.
fn code_pair<'py>(
    queries: &Bound<'py, PyAny>,
    database: &Bound<'py, PyAny>,
) -> PyResult<(
    numpy::PyReadonlyArray2<'py, u64>,
    numpy::PyReadonlyArray2<'py, u64>,
)> {
    let q = array_arg::<u64, Ix2>(queries, "queries")?;
    let db = array_arg::<u64, Ix2>(database, "database")?;
    let (qw, dbw) = (rows_cols(&q).1, rows_cols(&db).1);
    if qw != dbw {
        return Err(value_error(format!(
            "queries has {qw} words per row but database has {dbw}"
        )));
    }
    Ok((q, db))
}

/// Distances are at most `nbits`; refuse widths whose counts would not fit an int32.
fn check_int32_range(nbits: usize) -> PyResult<()> {
    if nbits > i32::MAX as usize {
        return Err(value_error(format!(
            "nbits = {nbits} exceeds the int32 distance range"
        )));
    }
    Ok(())
}

/// Codes `uint8 (n, d)`: per value, the number of its dimension's thresholds it strictly exceeds.
/// `x` is `float32 (n, d)`; `thresholds` the `float32` thresholds of every dimension concatenated
/// in order (ascending within a dimension); `levels` the `uint16` level count of each dimension.
#[pyfunction]
fn quantize<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    thresholds: &Bound<'py, PyAny>,
    levels: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let layout = layout_arg(levels)?;
    let thresholds = thresholds_arg(thresholds, layout)?;
    let x = array_arg::<f32, Ix2>(x, "x")?;
    let (n, cols) = rows_cols(&x);
    check_columns("x", cols, thresholds.layout())?;
    let data = shared(&x, "x")?;
    let codes = run_core(py, || qama_core::quantize::quantize(&data, n, &thresholds))?;
    into_2d(py, codes, n, cols)
}

/// Packs `uint8 (n, d)` codes as thermometer bits into `uint64 (n, words)`.
#[pyfunction]
fn expand<'py>(
    py: Python<'py>,
    codes: &Bound<'py, PyAny>,
    levels: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    let layout = layout_arg(levels)?;
    let codes = array_arg::<u8, Ix2>(codes, "codes")?;
    let (n, cols) = rows_cols(&codes);
    check_columns("codes", cols, &layout)?;
    let data = shared(&codes, "codes")?;
    let packed = run_core(py, || qama_core::expand::expand(&data, n, &layout))?;
    into_2d(py, packed, n, layout.words())
}

/// Inverse of `expand`: `uint64 (n, words)` thermometer codes back to `uint8 (n, d)` levels.
#[pyfunction]
fn collapse<'py>(
    py: Python<'py>,
    packed: &Bound<'py, PyAny>,
    levels: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let layout = layout_arg(levels)?;
    let packed = array_arg::<u64, Ix2>(packed, "packed")?;
    let (n, words) = rows_cols(&packed);
    if words != layout.words() {
        return Err(value_error(format!(
            "packed has {words} words per row but levels needs {}",
            layout.words()
        )));
    }
    let data = shared(&packed, "packed")?;
    let dims = layout.dims();
    let codes = run_core(py, || qama_core::expand::collapse(&data, n, &layout))?;
    into_2d(py, codes, n, dims)
}

/// Fused `quantize` + `expand`: `float32 (n, d)` to packed `uint64 (n, words)` codes.
#[pyfunction]
fn encode<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    thresholds: &Bound<'py, PyAny>,
    levels: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    let layout = layout_arg(levels)?;
    let thresholds = thresholds_arg(thresholds, layout)?;
    let x = array_arg::<f32, Ix2>(x, "x")?;
    let (n, cols) = rows_cols(&x);
    check_columns("x", cols, thresholds.layout())?;
    let data = shared(&x, "x")?;
    let words = thresholds.layout().words();
    let packed = run_core(py, || qama_core::expand::encode(&data, n, &thresholds))?;
    into_2d(py, packed, n, words)
}

/// Packs `uint8 (n, nbits)` 0/1 bytes into `uint64 (n, ceil(nbits / 64))`, stream bit `b` at
/// word `b // 64`, bit `b % 64` (= `np.packbits(bits, bitorder="little")` read as `<u8`).
#[pyfunction]
fn pack_bits<'py>(
    py: Python<'py>,
    bits: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    let bits = array_arg::<u8, Ix2>(bits, "bits")?;
    let (n, nbits) = rows_cols(&bits);
    let data = shared(&bits, "bits")?;
    let packed = run_core(py, || pack::pack_bits(&data, n, nbits))?;
    into_2d(py, packed, n, pack::words_for(nbits))
}

/// Inverse of `pack_bits`: `uint64 (n, ceil(nbits / 64))` to `uint8 (n, nbits)` 0/1 bytes.
#[pyfunction]
fn unpack_bits<'py>(
    py: Python<'py>,
    words: &Bound<'py, PyAny>,
    nbits: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let nbits = args::int_arg(nbits, "nbits")?;
    let words = array_arg::<u64, Ix2>(words, "words")?;
    let (n, w) = rows_cols(&words);
    let Some(nbits) = usize::try_from(nbits)
        .ok()
        .filter(|&b| pack::words_for(b) == w)
    else {
        return Err(value_error(format!(
            "nbits = {nbits} does not match words, which has {w} words per row (nbits must be in {}..={})",
            w.saturating_mul(64).saturating_sub(63),
            w.saturating_mul(64)
        )));
    };
    let data = shared(&words, "words")?;
    let bits = run_core(py, || pack::unpack_bits(&data, n, nbits))?;
    into_2d(py, bits, n, nbits)
}

/// All-pairs Hamming distances `int32 (q, n)` between `uint64 (q, words)` and `uint64 (n, words)`
/// codes over the first `nbits` stream bits (default: all).
#[pyfunction]
#[pyo3(signature = (queries, database, nbits=None, backend=None))]
fn hamming_distances<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    database: &Bound<'py, PyAny>,
    nbits: Option<&Bound<'py, PyAny>>,
    backend: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray2<i32>>> {
    let backend = backend_arg(backend)?;
    let (q, db) = code_pair(queries, database)?;
    let (nq, words) = rows_cols(&q);
    let n = rows_cols(&db).0;
    let nbits = nbits_arg(nbits, words)?;
    check_int32_range(nbits)?;
    let (qs, dbs) = (copied(&q, "queries")?, shared(&db, "database")?);
    let distances = run_core(py, || {
        hamming::hamming_distances_with(backend, &qs, nq, &dbs, n, words, nbits)
            // In place (same size and alignment): no second allocation; values <= nbits.
            .map(|d| d.into_iter().map(|v| v as i32).collect::<Vec<i32>>())
    })?;
    into_2d(py, distances, nq, n)
}

/// Exact Hamming top-k over the first `nbits` bits (default: all). Returns `(distances int32
/// (q, min(k, n)), ids int64 (q, min(k, n)))`, ascending by distance, ties by lower row number.
#[pyfunction]
#[pyo3(signature = (queries, database, k, nbits=None, backend=None))]
#[allow(clippy::type_complexity)]
fn search<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    database: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    nbits: Option<&Bound<'py, PyAny>>,
    backend: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyArray2<i32>>, Bound<'py, PyArray2<i64>>)> {
    let backend = backend_arg(backend)?;
    let k = k_arg(k)?;
    let (q, db) = code_pair(queries, database)?;
    let (nq, words) = rows_cols(&q);
    let n = rows_cols(&db).0;
    let nbits = nbits_arg(nbits, words)?;
    check_int32_range(nbits)?;
    let (qs, dbs) = (copied(&q, "queries")?, shared(&db, "database")?);
    let (kk, distances, ids) = run_core(py, || {
        topk::search_with(backend, &qs, nq, &dbs, n, words, nbits, k).map(|r| {
            // Both conversions run in place (same size and alignment); ids < n <= i64::MAX.
            let d: Vec<i32> = r.distances.into_iter().map(|v| v as i32).collect();
            let i: Vec<i64> = r.ids.into_iter().map(|v| v as i64).collect();
            (r.k, d, i)
        })
    })?;
    Ok((into_2d(py, distances, nq, kk)?, into_2d(py, ids, nq, kk)?))
}

/// Names of the distance backends this CPU runs, fastest first (always ends with "scalar").
#[pyfunction]
fn available_backends() -> Vec<&'static str> {
    hamming::available_backends()
        .into_iter()
        .map(Backend::name)
        .collect()
}

/// Name of the backend `search` uses by default.
#[pyfunction]
fn best_backend() -> &'static str {
    hamming::best_backend().name()
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

/// Threads of the engine's rayon pool (set by `RAYON_NUM_THREADS` before the first call).
#[pyfunction]
fn num_threads() -> usize {
    rayon::current_num_threads()
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
    m.add_function(wrap_pyfunction!(quantize, m)?)?;
    m.add_function(wrap_pyfunction!(expand, m)?)?;
    m.add_function(wrap_pyfunction!(collapse, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(pack_bits, m)?)?;
    m.add_function(wrap_pyfunction!(unpack_bits, m)?)?;
    m.add_function(wrap_pyfunction!(hamming_distances, m)?)?;
    m.add_function(wrap_pyfunction!(search, m)?)?;
    m.add_function(wrap_pyfunction!(available_backends, m)?)?;
    m.add_function(wrap_pyfunction!(best_backend, m)?)?;
    m.add_function(wrap_pyfunction!(cpu_features, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_gil_checks, m)?)?;
    asym::register(m)?;
    Ok(())
}
