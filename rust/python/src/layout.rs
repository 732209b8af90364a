//! Code layouts the index converts between: bit-packed rows (`pack_codes`/`unpack_codes`) and the
//! 32-row block layout of the FastScan kernel, including its in-place append and compaction.

use numpy::prelude::*;
use numpy::{Element, PyArray2};
use pyo3::prelude::*;
use qama_core::codec::table::{self, CodeFormat};

use crate::args::{array_arg, count_arg, int_arg, rows_cols, shared};
use crate::errors::{type_error, value_error};
use crate::{into_2d, run_core, run_sized};

/// Packs `uint8 (n, dims)` codes (each `< 2^bits`) into `uint8 (n, ceil(dims * bits / 8))`: field
/// `j` at bit `j * bits` of the row's little-endian byte stream, rows zero-padded to whole bytes.
#[pyfunction]
pub fn pack_codes<'py>(
    py: Python<'py>,
    codes: &Bound<'py, PyAny>,
    bits: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let bits = int_arg(bits, "bits")?;
    let codes = array_arg::<u8, numpy::Ix2>(codes, "codes")?;
    let (n, dims) = rows_cols(&codes);
    let format = format_arg(dims, bits)?;
    let data = shared(&codes, "codes")?;
    let packed = run_core(py, || table::pack_codes(&data, n, format))?;
    into_2d(py, packed, n, format.row_bytes())
}

/// Inverse of `pack_codes`: `uint8 (n, row_bytes)` back to `uint8 (n, dims)` codes.
#[pyfunction]
pub fn unpack_codes<'py>(
    py: Python<'py>,
    packed: &Bound<'py, PyAny>,
    dims: &Bound<'py, PyAny>,
    bits: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let format = format_arg(count_arg(dims, "dims")?, int_arg(bits, "bits")?)?;
    let packed = array_arg::<u8, numpy::Ix2>(packed, "packed")?;
    let (n, cols) = rows_cols(&packed);
    if cols != format.row_bytes() {
        return Err(value_error(format!(
            "packed has {cols} bytes per row; {} dims of {} bits need {}",
            format.dims(),
            format.bits(),
            format.row_bytes()
        )));
    }
    let data = shared(&packed, "packed")?;
    let codes = run_core(py, || table::unpack_codes(&data, n, format))?;
    into_2d(py, codes, n, format.dims())
}

fn format_arg(dims: usize, bits: i64) -> PyResult<CodeFormat> {
    let bits = u32::try_from(bits)
        .map_err(|_| value_error(format!("bits = {bits}; must be one of 1, 2, 4, 8")))?;
    CodeFormat::new(dims, bits).map_err(|e| value_error(format!("dims/bits: {e}")))
}

/// Row-major rows `uint8 (n, row_bytes)` to the block layout (1-D `uint8`): blocks of 32 rows,
/// byte `i` of row `r` of a block at `i * 32 + r`, the last block zero-padded.
#[pyfunction]
pub fn to_blocks<'py>(
    py: Python<'py>,
    codes: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, numpy::PyArray1<u8>>> {
    let codes = array_arg::<u8, numpy::Ix2>(codes, "codes")?;
    let (n, row_bytes) = rows_cols(&codes);
    let data = shared(&codes, "codes")?;
    let blocks = run_core(py, || table::to_blocks(&data, n, row_bytes))?;
    Ok(blocks.into_pyarray(py))
}

/// Inverse of `to_blocks`: the first `n` rows of a block-layout array, `uint8 (n, row_bytes)`.
#[pyfunction]
pub fn from_blocks<'py>(
    py: Python<'py>,
    blocks: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
    row_bytes: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let (n, row_bytes) = (count_arg(n, "n")?, count_arg(row_bytes, "row_bytes")?);
    let blocks = array_arg::<u8, numpy::Ix1>(blocks, "blocks")?;
    let data = shared(&blocks, "blocks")?;
    let rows = run_core(py, || table::from_blocks(&data, n, row_bytes))?;
    into_2d(py, rows, n, row_bytes)
}

/// Writes rows `uint8 (m, row_bytes)` into the block-layout array `blocks` (1-D `uint8`, written
/// in place) at rows `at..at + m`.
#[pyfunction]
pub fn write_block_rows(
    py: Python<'_>,
    blocks: &Bound<'_, PyAny>,
    at: &Bound<'_, PyAny>,
    rows: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let at = count_arg(at, "at")?;
    let rows = array_arg::<u8, numpy::Ix2>(rows, "rows")?;
    let row_bytes = rows_cols(&rows).1;
    let src = shared(&rows, "rows")?;
    let mut dst = writable::<u8>(blocks, "blocks")?;
    let out = dst
        .as_slice_mut()
        .map_err(|e| value_error(format!("blocks: {e}")))?;
    // Small writes (a list's share of an add) run on the calling thread: no pool hop.
    run_sized(py, src.len(), || {
        table::write_rows(out, row_bytes, at, &src)
    })
}

/// Keeps the rows `r < n` of a block-layout array (written in place) whose `keep[r]` is true,
/// moved to the front in order; returns how many were kept.
#[pyfunction]
pub fn keep_block_rows(
    py: Python<'_>,
    blocks: &Bound<'_, PyAny>,
    row_bytes: &Bound<'_, PyAny>,
    keep: &Bound<'_, PyAny>,
) -> PyResult<usize> {
    let row_bytes = count_arg(row_bytes, "row_bytes")?;
    let keep = array_arg::<bool, numpy::Ix1>(keep, "keep")?;
    let flags = shared(&keep, "keep")?;
    let mut dst = writable::<u8>(blocks, "blocks")?;
    let out = dst
        .as_slice_mut()
        .map_err(|e| value_error(format!("blocks: {e}")))?;
    run_sized(py, out.len(), || {
        table::keep_rows(out, row_bytes, flags.len(), &flags)
    })
}

fn writable<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<numpy::PyReadwriteArray1<'py, T>> {
    let array = obj.cast::<numpy::PyArray1<T>>().map_err(|_| {
        type_error(
            obj.py(),
            format!(
                "{name} must be a 1-D NumPy array of {}",
                numpy::dtype::<T>(obj.py())
            ),
        )
    })?;
    array
        .try_readwrite()
        .map_err(|e| value_error(format!("{name} cannot be written: {e}")))
}
