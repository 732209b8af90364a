//! Binding of `qama_core::asym`: compact b-bit codes scored against float32 queries, and
//! byte-LUT codecs (product codes, PQ, packed trits) scored from the caller's tables.
//!
//! Reconstruction tables arrive as `float32 (dims, 2^bits)`; their column count gives `bits`
//! (2, 4, 16 or 256 columns for 1, 2, 4 or 8 bits). Codes are `uint8 (n, row_bytes)` in the
//! packed row layout, or a 1-D `uint8` array in the block layout (`asym_to_blocks`). Byte-LUT
//! tables are `float32 (nq, m, 256)` against `uint8 (n, m)` codes. `row_scale` (optional, float32
//! `(n,)`) multiplies row `i`'s score.
use numpy::prelude::*;
use numpy::{IntoPyArray, Ix1, Ix2, Ix3, PyArray1, PyArray2};
use pyo3::prelude::*;
use qama_core::asym::{self, CodeFormat, Kernel, Recon, TopScores};

use crate::args::{array_arg, copied, count_arg, int_arg, k_arg, opt_str_arg, rows_cols, shared};
use crate::errors::{core_error, value_error};
use crate::{into_2d, run_core};

type Scored<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<i64>>);

/// `bits` of a code array from the column count of its reconstruction table.
fn bits_of_columns(cols: usize) -> PyResult<u32> {
    match cols {
        2 => Ok(1),
        4 => Ok(2),
        16 => Ok(4),
        256 => Ok(8),
        _ => Err(value_error(format!(
            "recon has {cols} columns; it must have 2^bits columns: 2, 4, 16 or 256 (bits 1, 2, 4, 8)"
        ))),
    }
}

fn format_arg(dims: usize, bits: i64) -> PyResult<CodeFormat> {
    let bits = u32::try_from(bits)
        .map_err(|_| value_error(format!("bits = {bits}; must be one of 1, 2, 4, 8")))?;
    CodeFormat::new(dims, bits).map_err(|e| value_error(format!("dims/bits: {e}")))
}

/// The validated reconstruction table `float32 (dims, 2^bits)` (copied: a small query-side table).
fn recon_arg(recon: &Bound<'_, PyAny>) -> PyResult<Recon> {
    let array = array_arg::<f32, Ix2>(recon, "recon")?;
    let (dims, cols) = rows_cols(&array);
    let format = CodeFormat::new(dims, bits_of_columns(cols)?)
        .map_err(|e| value_error(format!("recon: {e}")))?;
    Recon::new(format, copied(&array, "recon")?).map_err(core_error)
}

fn kernel_arg(name: Option<&Bound<'_, PyAny>>, blocks: bool) -> PyResult<Kernel> {
    let Some(name) = opt_str_arg(name, "kernel")? else {
        return Ok(if blocks {
            Kernel::best_blocks()
        } else {
            Kernel::best_rows()
        });
    };
    let kernel = Kernel::from_name(&name).ok_or_else(|| {
        value_error(format!(
            "kernel = {name:?}; known kernels are 'scalar', 'interleaved', 'avx2'"
        ))
    })?;
    let (fits, layout) = if blocks {
        (kernel.scans_blocks(), "the block layout ('scalar', 'avx2')")
    } else {
        (
            kernel.scans_rows(),
            "the row layout ('scalar', 'interleaved')",
        )
    };
    if !fits {
        return Err(value_error(format!(
            "kernel {name:?} does not scan {layout}"
        )));
    }
    if !kernel.is_available() {
        return Err(value_error(format!(
            "kernel {name:?} is not available on this CPU"
        )));
    }
    Ok(kernel)
}

/// Queries `float32 (q, dims)` for a table of `dims` rows.
fn queries_arg<'py>(
    queries: &Bound<'py, PyAny>,
    dims: usize,
) -> PyResult<numpy::PyReadonlyArray2<'py, f32>> {
    let q = array_arg::<f32, Ix2>(queries, "queries")?;
    let cols = rows_cols(&q).1;
    if cols != dims {
        return Err(value_error(format!(
            "queries has {cols} columns but recon has {dims} rows (dimensions)"
        )));
    }
    Ok(q)
}

/// Packed codes `uint8 (n, row_bytes)` for a format.
fn codes_arg<'py>(
    codes: &Bound<'py, PyAny>,
    name: &str,
    format: CodeFormat,
) -> PyResult<numpy::PyReadonlyArray2<'py, u8>> {
    let codes = array_arg::<u8, Ix2>(codes, name)?;
    let cols = rows_cols(&codes).1;
    if cols != format.row_bytes() {
        return Err(value_error(format!(
            "{name} has {cols} bytes per row; {} dims of {} bits need {}",
            format.dims(),
            format.bits(),
            format.row_bytes()
        )));
    }
    Ok(codes)
}

/// Candidate rows `int64 (q, kc)` for `nq` queries (copied: validated, then used).
fn candidates_arg(candidates: &Bound<'_, PyAny>, nq: usize) -> PyResult<(Vec<i64>, usize)> {
    let c = array_arg::<i64, Ix2>(candidates, "candidates")?;
    let (rows, kc) = rows_cols(&c);
    if rows != nq {
        return Err(value_error(format!(
            "candidates has {rows} rows but there are {nq} queries"
        )));
    }
    Ok((copied(&c, "candidates")?, kc))
}

/// Optional per-row scales `float32 (n,)`.
fn row_scale_arg<'py>(
    row_scale: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<numpy::PyReadonlyArray1<'py, f32>>> {
    match row_scale {
        Some(s) if !s.is_none() => Ok(Some(array_arg::<f32, Ix1>(s, "row_scale")?)),
        _ => Ok(None),
    }
}

/// `(scores float32 (q, k), ids int64 (q, k))` of a core result.
fn scored<'py>(py: Python<'py>, top: TopScores, nq: usize) -> PyResult<Scored<'py>> {
    // In place (same size and alignment); ids < n <= 2^48.
    let ids: Vec<i64> = top.ids.into_iter().map(|v| v as i64).collect();
    Ok((
        into_2d(py, top.scores, nq, top.k)?,
        into_2d(py, ids, nq, top.k)?,
    ))
}

/// Packs `uint8 (n, dims)` codes (each `< 2^bits`) into `uint8 (n, ceil(dims * bits / 8))`: field
/// `j` at bit `j * bits` of the row's little-endian byte stream, rows zero-padded to whole bytes.
#[pyfunction]
fn asym_pack<'py>(
    py: Python<'py>,
    codes: &Bound<'py, PyAny>,
    bits: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let bits = int_arg(bits, "bits")?;
    let codes = array_arg::<u8, Ix2>(codes, "codes")?;
    let (n, dims) = rows_cols(&codes);
    let format = format_arg(dims, bits)?;
    let data = shared(&codes, "codes")?;
    let packed = run_core(py, || asym::pack_codes(&data, n, format))?;
    into_2d(py, packed, n, format.row_bytes())
}

/// Inverse of `asym_pack`: `uint8 (n, row_bytes)` back to `uint8 (n, dims)` codes.
#[pyfunction]
fn asym_unpack<'py>(
    py: Python<'py>,
    packed: &Bound<'py, PyAny>,
    dims: &Bound<'py, PyAny>,
    bits: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let format = format_arg(count_arg(dims, "dims")?, int_arg(bits, "bits")?)?;
    let packed = codes_arg(packed, "packed", format)?;
    let n = rows_cols(&packed).0;
    let data = shared(&packed, "packed")?;
    let codes = run_core(py, || asym::unpack_codes(&data, n, format))?;
    into_2d(py, codes, n, format.dims())
}

/// Packed rows `uint8 (n, row_bytes)` to the block layout of the quantized kernel (1-D `uint8`):
/// blocks of 32 rows, byte `i` of row `r` of a block at `i * 32 + r`, the last block zero-padded.
#[pyfunction]
fn asym_to_blocks<'py>(
    py: Python<'py>,
    codes: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<u8>>> {
    let codes = array_arg::<u8, Ix2>(codes, "codes")?;
    let (n, row_bytes) = rows_cols(&codes);
    let data = shared(&codes, "codes")?;
    let blocks = run_core(py, || asym::to_blocks(&data, n, row_bytes))?;
    Ok(blocks.into_pyarray(py))
}

/// Inverse of `asym_to_blocks`: the first `n` rows of a block-layout array, `uint8 (n, row_bytes)`.
#[pyfunction]
fn asym_from_blocks<'py>(
    py: Python<'py>,
    blocks: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
    row_bytes: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let (n, row_bytes) = (count_arg(n, "n")?, count_arg(row_bytes, "row_bytes")?);
    let blocks = array_arg::<u8, Ix1>(blocks, "blocks")?;
    let data = shared(&blocks, "blocks")?;
    let rows = run_core(py, || asym::from_blocks(&data, n, row_bytes))?;
    into_2d(py, rows, n, row_bytes)
}

/// Exact top-k by asymmetric score `row_scale_i * Σ_j q_j · recon[j][c_ij]` of `float32 (q, dims)`
/// queries against packed rows `uint8 (n, row_bytes)`: `(scores float32, ids int64)`, both
/// `(q, min(k, n))`, scores descending, ties by lower row. `kernel`: "scalar" or "interleaved".
#[pyfunction]
#[pyo3(signature = (queries, recon, codes, k, kernel=None, row_scale=None))]
fn asym_search<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    recon: &Bound<'py, PyAny>,
    codes: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    kernel: Option<&Bound<'py, PyAny>>,
    row_scale: Option<&Bound<'py, PyAny>>,
) -> PyResult<Scored<'py>> {
    let kernel = kernel_arg(kernel, false)?;
    let k = k_arg(k)?;
    let recon = recon_arg(recon)?;
    let format = recon.format();
    let q = queries_arg(queries, format.dims())?;
    let codes = codes_arg(codes, "codes", format)?;
    let scale = row_scale_arg(row_scale)?;
    let (nq, n) = (rows_cols(&q).0, rows_cols(&codes).0);
    let (qs, cs) = (copied(&q, "queries")?, shared(&codes, "codes")?);
    let scale = scale.as_ref().map(|s| shared(s, "row_scale")).transpose()?;
    let top = run_core(py, || {
        asym::search_with(kernel, &qs, nq, &recon, &cs, n, scale.as_deref(), k)
    })?;
    scored(py, top, nq)
}

/// `asym_search` on codes in the block layout (`asym_to_blocks` of `n` rows; bits 1, 2 or 4):
/// quantized lookups, then exact re-scoring, so results equal `asym_search`'s (with or without
/// `row_scale`). `kernel`: "scalar" or "avx2".
#[pyfunction]
#[pyo3(signature = (queries, recon, blocks, n, k, kernel=None, row_scale=None))]
#[allow(clippy::too_many_arguments)]
fn asym_search_blocked<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    recon: &Bound<'py, PyAny>,
    blocks: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    kernel: Option<&Bound<'py, PyAny>>,
    row_scale: Option<&Bound<'py, PyAny>>,
) -> PyResult<Scored<'py>> {
    let n = count_arg(n, "n")?;
    let kernel = kernel_arg(kernel, true)?;
    let k = k_arg(k)?;
    let recon = recon_arg(recon)?;
    let q = queries_arg(queries, recon.format().dims())?;
    let blocks = array_arg::<u8, Ix1>(blocks, "blocks")?;
    let scale = row_scale_arg(row_scale)?;
    let nq = rows_cols(&q).0;
    let (qs, bs) = (copied(&q, "queries")?, shared(&blocks, "blocks")?);
    let scale = scale.as_ref().map(|s| shared(s, "row_scale")).transpose()?;
    let top = run_core(py, || {
        asym::search_blocked_with(kernel, &qs, nq, &recon, &bs, n, scale.as_deref(), k)
    })?;
    scored(py, top, nq)
}

/// Asymmetric scores `float32 (q, kc)` of each query's candidate rows `int64 (q, kc)` (in the
/// given order) against packed rows: equal to `asym_search`'s scores bit for bit.
#[pyfunction]
#[pyo3(signature = (queries, recon, codes, candidates, row_scale=None))]
fn asym_score_candidates<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    recon: &Bound<'py, PyAny>,
    codes: &Bound<'py, PyAny>,
    candidates: &Bound<'py, PyAny>,
    row_scale: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let recon = recon_arg(recon)?;
    let format = recon.format();
    let q = queries_arg(queries, format.dims())?;
    let codes = codes_arg(codes, "codes", format)?;
    let nq = rows_cols(&q).0;
    let (cands, kc) = candidates_arg(candidates, nq)?;
    let scale = row_scale_arg(row_scale)?;
    let n = rows_cols(&codes).0;
    let (qs, cs) = (copied(&q, "queries")?, shared(&codes, "codes")?);
    let scale = scale.as_ref().map(|s| shared(s, "row_scale")).transpose()?;
    let scores = run_core(py, || {
        asym::score_candidates(&qs, nq, &recon, &cs, n, scale.as_deref(), &cands, kc)
    })?;
    into_2d(py, scores, nq, kc)
}

/// The best `min(k, kc)` of each query's distinct candidate rows `int64 (q, kc)` by asymmetric
/// score: `(scores float32, ids int64)` (row numbers), descending, ties by lower row.
#[pyfunction]
#[pyo3(signature = (queries, recon, codes, candidates, k, row_scale=None))]
fn asym_rescore<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    recon: &Bound<'py, PyAny>,
    codes: &Bound<'py, PyAny>,
    candidates: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    row_scale: Option<&Bound<'py, PyAny>>,
) -> PyResult<Scored<'py>> {
    let k = k_arg(k)?;
    let recon = recon_arg(recon)?;
    let format = recon.format();
    let q = queries_arg(queries, format.dims())?;
    let codes = codes_arg(codes, "codes", format)?;
    let nq = rows_cols(&q).0;
    let (cands, kc) = candidates_arg(candidates, nq)?;
    let scale = row_scale_arg(row_scale)?;
    let n = rows_cols(&codes).0;
    let (qs, cs) = (copied(&q, "queries")?, shared(&codes, "codes")?);
    let scale = scale.as_ref().map(|s| shared(s, "row_scale")).transpose()?;
    let top = run_core(py, || {
        asym::rescore(&qs, nq, &recon, &cs, n, scale.as_deref(), &cands, kc, k)
    })?;
    scored(py, top, nq)
}

/// The best `min(k, kc)` of each query's distinct candidate rows `int64 (q, kc)` by dot product
/// with `float32 (n, dims)` vectors (read in place when read-only: a `np.load(..., mmap_mode="r")`
/// array reads only the candidates' rows): `(scores float32, ids int64)`, descending, ties by
/// lower row.
#[pyfunction]
fn float_rescore<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    vectors: &Bound<'py, PyAny>,
    candidates: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
) -> PyResult<Scored<'py>> {
    let k = k_arg(k)?;
    let vectors = array_arg::<f32, Ix2>(vectors, "vectors")?;
    let (n, dims) = rows_cols(&vectors);
    let q = array_arg::<f32, Ix2>(queries, "queries")?;
    let (nq, qd) = rows_cols(&q);
    if qd != dims {
        return Err(value_error(format!(
            "queries has {qd} columns but vectors has {dims}"
        )));
    }
    let (cands, kc) = candidates_arg(candidates, nq)?;
    let (qs, vs) = (copied(&q, "queries")?, shared(&vectors, "vectors")?);
    let top = run_core(py, || {
        asym::rescore_float(&qs, nq, dims, &vs, n, &cands, kc, k)
    })?;
    scored(py, top, nq)
}

/// Byte tables `float32 (nq, m, 256)`: `(values, nq, m)`.
fn luts_arg(luts: &Bound<'_, PyAny>) -> PyResult<(Vec<f32>, usize, usize)> {
    let luts = array_arg::<f32, Ix3>(luts, "luts")?;
    let shape = luts.shape().to_vec();
    let (nq, m, values) = (shape[0], shape[1], shape[2]);
    if values != 256 {
        return Err(value_error(format!(
            "luts must have shape (nq, m, 256); got {:?}",
            shape
        )));
    }
    Ok((copied(&luts, "luts")?, nq, m))
}

/// Byte tables `float32 (nq, m, 256)` and codes `uint8 (n, m)` with matching `m`.
fn lut_args<'py>(
    luts: &Bound<'py, PyAny>,
    codes: &Bound<'py, PyAny>,
) -> PyResult<(Vec<f32>, usize, usize, numpy::PyReadonlyArray2<'py, u8>)> {
    let (tables, nq, m) = luts_arg(luts)?;
    let codes = array_arg::<u8, Ix2>(codes, "codes")?;
    let cols = rows_cols(&codes).1;
    if cols != m {
        return Err(value_error(format!(
            "codes has {cols} bytes per row but luts has m = {m} tables per query"
        )));
    }
    Ok((tables, nq, m, codes))
}

/// Exact top-k by byte-LUT score `row_scale_i * Σ_b luts[q, b, codes[i, b]]` (float32 sum over
/// `b` in order): `(scores float32, ids int64)`, both `(nq, min(k, n))`, descending, ties by lower
/// row. `kernel`: "scalar" or "interleaved" (default: the fastest).
#[pyfunction]
#[pyo3(signature = (luts, codes, k, row_scale=None, kernel=None))]
fn lut_search<'py>(
    py: Python<'py>,
    luts: &Bound<'py, PyAny>,
    codes: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    row_scale: Option<&Bound<'py, PyAny>>,
    kernel: Option<&Bound<'py, PyAny>>,
) -> PyResult<Scored<'py>> {
    let kernel = kernel_arg(kernel, false)?;
    let k = k_arg(k)?;
    let (tables, nq, m, codes) = lut_args(luts, codes)?;
    let scale = row_scale_arg(row_scale)?;
    let n = rows_cols(&codes).0;
    let cs = shared(&codes, "codes")?;
    let scale = scale.as_ref().map(|s| shared(s, "row_scale")).transpose()?;
    let top = run_core(py, || {
        asym::lut_search_with(kernel, &tables, nq, m, &cs, n, scale.as_deref(), k)
    })?;
    scored(py, top, nq)
}

/// `lut_search` on codes in the block layout (`asym_to_blocks` of `n` rows of `m` bytes): each
/// byte table is split into two quantized nibble tables that prune, then the surviving rows are
/// scored from the float tables, so results equal `lut_search`'s for any tables; fast when the
/// tables are nibble-separable (`pca_alloc` with nibble packing). `kernel`: "scalar" or "avx2".
#[pyfunction]
#[pyo3(signature = (luts, blocks, n, k, row_scale=None, kernel=None))]
fn lut_search_blocked<'py>(
    py: Python<'py>,
    luts: &Bound<'py, PyAny>,
    blocks: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    row_scale: Option<&Bound<'py, PyAny>>,
    kernel: Option<&Bound<'py, PyAny>>,
) -> PyResult<Scored<'py>> {
    let n = count_arg(n, "n")?;
    let kernel = kernel_arg(kernel, true)?;
    let k = k_arg(k)?;
    let (tables, nq, m) = luts_arg(luts)?;
    let blocks = array_arg::<u8, Ix1>(blocks, "blocks")?;
    let scale = row_scale_arg(row_scale)?;
    let bs = shared(&blocks, "blocks")?;
    let scale = scale.as_ref().map(|s| shared(s, "row_scale")).transpose()?;
    let top = run_core(py, || {
        asym::lut_search_blocked_with(kernel, &tables, nq, m, &bs, n, scale.as_deref(), k)
    })?;
    scored(py, top, nq)
}

/// Byte-LUT scores `float32 (nq, kc)` of each query's candidate rows `int64 (nq, kc)`, in the
/// given order: equal to `lut_search`'s scores bit for bit.
#[pyfunction]
#[pyo3(signature = (luts, codes, candidates, row_scale=None))]
fn lut_score_candidates<'py>(
    py: Python<'py>,
    luts: &Bound<'py, PyAny>,
    codes: &Bound<'py, PyAny>,
    candidates: &Bound<'py, PyAny>,
    row_scale: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let (tables, nq, m, codes) = lut_args(luts, codes)?;
    let (cands, kc) = candidates_arg(candidates, nq)?;
    let scale = row_scale_arg(row_scale)?;
    let n = rows_cols(&codes).0;
    let cs = shared(&codes, "codes")?;
    let scale = scale.as_ref().map(|s| shared(s, "row_scale")).transpose()?;
    let scores = run_core(py, || {
        asym::lut_score_candidates(&tables, nq, m, &cs, n, scale.as_deref(), &cands, kc)
    })?;
    into_2d(py, scores, nq, kc)
}

/// The best `min(k, kc)` of each query's distinct candidate rows `int64 (nq, kc)` by byte-LUT
/// score: `(scores float32, ids int64)`, descending, ties by lower row.
#[pyfunction]
#[pyo3(signature = (luts, codes, candidates, k, row_scale=None))]
fn lut_rescore<'py>(
    py: Python<'py>,
    luts: &Bound<'py, PyAny>,
    codes: &Bound<'py, PyAny>,
    candidates: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    row_scale: Option<&Bound<'py, PyAny>>,
) -> PyResult<Scored<'py>> {
    let k = k_arg(k)?;
    let (tables, nq, m, codes) = lut_args(luts, codes)?;
    let (cands, kc) = candidates_arg(candidates, nq)?;
    let scale = row_scale_arg(row_scale)?;
    let n = rows_cols(&codes).0;
    let cs = shared(&codes, "codes")?;
    let scale = scale.as_ref().map(|s| shared(s, "row_scale")).transpose()?;
    let top = run_core(py, || {
        asym::lut_rescore(&tables, nq, m, &cs, n, scale.as_deref(), &cands, kc, k)
    })?;
    scored(py, top, nq)
}

/// Names of the asymmetric kernels this CPU runs ("avx2", "interleaved", "scalar").
#[pyfunction]
fn asym_kernels() -> Vec<&'static str> {
    asym::available_kernels()
        .into_iter()
        .map(Kernel::name)
        .collect()
}

/// Registers the functions of this module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(asym_pack, m)?)?;
    m.add_function(wrap_pyfunction!(asym_unpack, m)?)?;
    m.add_function(wrap_pyfunction!(asym_to_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(asym_from_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(asym_search, m)?)?;
    m.add_function(wrap_pyfunction!(asym_search_blocked, m)?)?;
    m.add_function(wrap_pyfunction!(asym_score_candidates, m)?)?;
    m.add_function(wrap_pyfunction!(asym_rescore, m)?)?;
    m.add_function(wrap_pyfunction!(float_rescore, m)?)?;
    m.add_function(wrap_pyfunction!(lut_search, m)?)?;
    m.add_function(wrap_pyfunction!(lut_search_blocked, m)?)?;
    m.add_function(wrap_pyfunction!(lut_score_candidates, m)?)?;
    m.add_function(wrap_pyfunction!(lut_rescore, m)?)?;
    m.add_function(wrap_pyfunction!(asym_kernels, m)?)?;
    Ok(())
}
