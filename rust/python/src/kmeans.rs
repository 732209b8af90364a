//! k-means for the coarse quantizer and codebooks (`qama_core::kmeans`): the Python side samples
//! rows, seeds the centroids and loops over iterations with a progress bar.
use numpy::{IntoPyArray, Ix2, PyArray1, PyArray2};
use pyo3::prelude::*;

use crate::args::{array_arg, copied, rows_cols, shared};
use crate::errors::value_error;
use crate::{into_2d, run_core, Pair};

/// One Lloyd iteration of `float32 (n, d)` rows from `float32 (k, d)` centroids: returns
/// `(centroids, counts uint64 (k,), inertia)` (empty clusters refilled by splitting the largest).
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn kmeans_iterate<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centroids: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyArray2<f32>>, Bound<'py, PyArray1<u64>>, f64)> {
    let x = array_arg::<f32, Ix2>(x, "x")?;
    let c = array_arg::<f32, Ix2>(centroids, "centroids")?;
    let ((n, dims), (k, cd)) = (rows_cols(&x), rows_cols(&c));
    if cd != dims {
        return Err(value_error(format!(
            "centroids have {cd} columns but x has {dims}"
        )));
    }
    let data = shared(&x, "x")?;
    let mut cent = copied(&c, "centroids")?;
    let (counts, inertia) = run_core(py, || {
        qama_core::kmeans::iterate(&data, n, dims, &mut cent, k)
            .map(|(_, counts, inertia)| (counts, inertia))
    })?;
    Ok((
        into_2d(py, cent, k, dims)?,
        counts.into_pyarray(py),
        inertia,
    ))
}

/// The nearest of `float32 (k, d)` centroids to each `float32 (n, d)` row (squared Euclidean):
/// `(assignment int64 (n,), squared distances float32 (n,))`.
#[pyfunction]
pub fn kmeans_assign<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centroids: &Bound<'py, PyAny>,
) -> PyResult<Pair<'py, PyArray1<i64>, PyArray1<f32>>> {
    let x = array_arg::<f32, Ix2>(x, "x")?;
    let c = array_arg::<f32, Ix2>(centroids, "centroids")?;
    let ((n, dims), (k, cd)) = (rows_cols(&x), rows_cols(&c));
    if cd != dims {
        return Err(value_error(format!(
            "centroids have {cd} columns but x has {dims}"
        )));
    }
    let (data, cent) = (shared(&x, "x")?, shared(&c, "centroids")?);
    let (assign, dist) = run_core(py, || {
        qama_core::kmeans::nearest(&data, n, dims, &cent, k)
            .map(|(a, d)| (a.into_iter().map(i64::from).collect::<Vec<i64>>(), d))
    })?;
    Ok((assign.into_pyarray(py), dist.into_pyarray(py)))
}
