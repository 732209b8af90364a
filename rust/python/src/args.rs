//! Argument checks at the Python boundary: every array is read in place (no copy) once it is a
//! NumPy array of exactly the expected dtype and rank, C-contiguous and aligned; anything else is
//! refused with an exception that names the argument.
use numpy::ndarray::Dimension;
use numpy::prelude::*;
use numpy::{Element, PyArray, PyReadonlyArray, PyUntypedArray};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// Borrows `obj` as a read-only `T` array of rank `D`.
///
/// Dtype, non-array, byte-order and memory-layout problems raise `TypeError` (the caller must
/// convert); a wrong rank raises `ValueError` (a shape problem).
pub fn array_arg<'py, T: Element, D: Dimension>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray<'py, T, D>> {
    let py = obj.py();
    let expected = numpy::dtype::<T>(py);
    let Ok(untyped) = obj.cast::<PyUntypedArray>() else {
        let type_name = obj
            .get_type()
            .qualname()
            .map(|s| s.to_string())
            .unwrap_or_default();
        return Err(PyTypeError::new_err(format!(
            "{name} must be a NumPy array of dtype {expected}, got {type_name}"
        )));
    };
    let rank = D::NDIM.unwrap_or(untyped.ndim());
    if untyped.ndim() != rank {
        return Err(PyValueError::new_err(format!(
            "{name} must be a {rank}-D array, got shape {:?}",
            untyped.shape()
        )));
    }
    let actual = untyped.dtype();
    // `is_equiv_to` also rejects a non-native byte order ('>f4'), which the kernels cannot read.
    if !actual.is_equiv_to(&expected) {
        return Err(PyTypeError::new_err(format!(
            "{name} must have dtype {expected} (native byte order), got {actual}"
        )));
    }
    // `as_slice` alone would accept a Fortran-ordered 2-D array and read it in the wrong order.
    if !untyped.is_c_contiguous() || !untyped.is_aligned() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be C-contiguous and aligned; pass np.ascontiguousarray({name})"
        )));
    }
    let typed = obj.cast::<PyArray<T, D>>().map_err(|_| {
        PyTypeError::new_err(format!("{name} must be a NumPy array of dtype {expected}"))
    })?;
    typed
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{name} cannot be read: {e}")))
}

/// The contiguous data of an array returned by [`array_arg`].
pub fn slice_of<'a, T: Element, D: Dimension>(
    array: &'a PyReadonlyArray<'_, T, D>,
    name: &str,
) -> PyResult<&'a [T]> {
    array
        .as_slice()
        .map_err(|e| PyTypeError::new_err(format!("{name}: {e}")))
}

/// `(rows, columns)` of a 2-D array.
pub fn rows_cols<T: Element>(array: &PyReadonlyArray<'_, T, numpy::Ix2>) -> (usize, usize) {
    let shape = array.shape();
    (shape[0], shape[1])
}
