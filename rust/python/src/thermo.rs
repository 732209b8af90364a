//! Thermometer codes: threshold quantization, expansion, bit packing (`qama_core::{quantize,
//! expand, pack}`), and the all-pairs Hamming distance matrix.
use numpy::{Ix1, Ix2, PyArray2};
use pyo3::prelude::*;
use qama_core::codec::hamming::HammingCodec;
use qama_core::codec::Extent;
use qama_core::driver::{self, Candidates};
use qama_core::quantize::Thresholds;
use qama_core::{pack, CodeLayout};

use crate::args::{
    array_arg, copied, isa_arg, opt_int_arg, rows_cols, same_width, shared, ArrayPair,
};
use crate::errors::{core_error, value_error};
use crate::{into_2d, run_core, run_sized};

/// Builds the code layout from a `uint16` array of per-dimension level counts.
pub fn layout_arg(levels: &Bound<'_, PyAny>) -> PyResult<CodeLayout> {
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

/// Number of compared bits: `None` means every bit of a row (padding bits are zero); the core
/// checks the range.
pub fn nbits_arg(nbits: Option<&Bound<'_, PyAny>>, words: usize) -> PyResult<usize> {
    match opt_int_arg(nbits, "nbits")? {
        None => Ok(words.saturating_mul(64)),
        Some(b) => {
            usize::try_from(b).map_err(|_| value_error(format!("nbits = {b}; must be positive")))
        }
    }
}

/// Reads query and database codes and checks that their rows have the same width.
pub fn code_pair<'py>(
    queries: &Bound<'py, PyAny>,
    database: &Bound<'py, PyAny>,
) -> PyResult<ArrayPair<'py, u64>> {
    same_width((queries, "queries"), (database, "database"), |qw, dbw| {
        format!("queries has {qw} words per row but database has {dbw}")
    })
}

/// Distances are at most `nbits`; refuse widths whose counts would not fit an int32.
pub fn check_int32_range(nbits: usize) -> PyResult<()> {
    if nbits > i32::MAX as usize {
        return Err(value_error(format!(
            "nbits = {nbits} exceeds the int32 distance range"
        )));
    }
    Ok(())
}

/// Per-dimension ascending thresholds, checked once: `Thresholds(thresholds, levels)` with
/// `thresholds` the `float32` thresholds of every dimension concatenated in order and `levels` the
/// `uint16` level count of each dimension. A quantizer keeps one and encodes many batches with it.
#[pyclass(frozen, module = "qama_rs._core", name = "Thresholds")]
pub struct PyThresholds {
    inner: Thresholds,
}

#[pymethods]
impl PyThresholds {
    #[new]
    fn new(thresholds: &Bound<'_, PyAny>, levels: &Bound<'_, PyAny>) -> PyResult<Self> {
        let layout = layout_arg(levels)?;
        Ok(Self {
            inner: thresholds_arg(thresholds, layout)?,
        })
    }

    /// Codes `uint8 (n, d)` of `float32 (n, d)` rows: per value, the number of its dimension's
    /// thresholds it strictly exceeds.
    fn quantize<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<u8>>> {
        let x = array_arg::<f32, Ix2>(x, "x")?;
        let (n, cols) = rows_cols(&x);
        check_columns("x", cols, self.inner.layout())?;
        let data = shared(&x, "x")?;
        let codes = run_sized(py, n * cols, || {
            qama_core::quantize::quantize(&data, n, &self.inner)
        })?;
        into_2d(py, codes, n, cols)
    }

    /// Fused `quantize` + `expand`: packed `uint64 (n, words)` thermometer codes.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<u64>>> {
        let x = array_arg::<f32, Ix2>(x, "x")?;
        let (n, cols) = rows_cols(&x);
        check_columns("x", cols, self.inner.layout())?;
        let data = shared(&x, "x")?;
        let words = self.inner.layout().words();
        let packed = run_sized(py, n * cols, || {
            qama_core::expand::encode(&data, n, &self.inner)
        })?;
        into_2d(py, packed, n, words)
    }

    /// Quantized values (dimensions) per row.
    #[getter]
    fn dims(&self) -> usize {
        self.inner.layout().dims()
    }

    /// `uint64` words of a packed code.
    #[getter]
    fn words(&self) -> usize {
        self.inner.layout().words()
    }
}

/// `Thresholds(thresholds, levels).quantize(x)`, for one call.
#[pyfunction]
pub fn quantize<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    thresholds: &Bound<'py, PyAny>,
    levels: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    PyThresholds::new(thresholds, levels)?.quantize(py, x)
}

/// Packs `uint8 (n, d)` codes as thermometer bits into `uint64 (n, words)`.
#[pyfunction]
pub fn expand<'py>(
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
pub fn collapse<'py>(
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

/// `Thresholds(thresholds, levels).encode(x)`, for one call.
#[pyfunction]
pub fn encode<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    thresholds: &Bound<'py, PyAny>,
    levels: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    PyThresholds::new(thresholds, levels)?.encode(py, x)
}

/// Packs `uint8 (n, nbits)` 0/1 bytes into `uint64 (n, ceil(nbits / 64))`, stream bit `b` at
/// word `b // 64`, bit `b % 64` (= `np.packbits(bits, bitorder="little")` read as `<u8`).
#[pyfunction]
pub fn pack_bits<'py>(
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
pub fn unpack_bits<'py>(
    py: Python<'py>,
    words: &Bound<'py, PyAny>,
    nbits: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let nbits = crate::args::int_arg(nbits, "nbits")?;
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
#[pyo3(signature = (queries, database, nbits=None, isa=None))]
pub fn hamming_distances<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    database: &Bound<'py, PyAny>,
    nbits: Option<&Bound<'py, PyAny>>,
    isa: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray2<i32>>> {
    let isa = isa_arg(isa)?;
    let (q, db) = code_pair(queries, database)?;
    let (nq, words) = rows_cols(&q);
    let n = rows_cols(&db).0;
    let nbits = nbits_arg(nbits, words)?;
    check_int32_range(nbits)?;
    let (qs, dbs) = (copied(&q, "queries")?, shared(&db, "database")?);
    let distances = run_core(py, || {
        let codec = HammingCodec::new(words, nbits, isa)?;
        let all: Vec<i64> = (0..n as i64).collect();
        let extent = Extent::new(&dbs[..], n, 0);
        let scores = driver::score_rows(
            &codec,
            nq,
            |r: std::ops::Range<usize>| {
                r.map(|i| codec.prepare(&qs[i * words..(i + 1) * words]))
                    .collect()
            },
            &[extent],
            Candidates::Shared(&all),
        )?;
        // Scores are -distance, exact in float32 (distances < 2^24).
        Ok(scores.into_iter().map(|s| -s as i32).collect::<Vec<i32>>())
    })?;
    into_2d(py, distances, nq, n)
}
