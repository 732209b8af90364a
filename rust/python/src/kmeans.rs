//! k-means for the coarse quantizer and codebooks (`qama_core::kmeans`): the Python side samples
//! rows, seeds the centroids and loops over iterations with a progress bar.
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::prelude::*;

use numpy::PyReadonlyArray2;

use crate::args::{array_arg, copied, count_arg, rows_cols, same_width, shared, ArrayPair};
use crate::{into_2d, run_core, Pair};

/// One Lloyd iteration of `float32 (n, d)` rows from `float32 (k, d)` centroids: returns
/// `(centroids, counts uint64 (k,), inertia)` (empty clusters refilled by splitting the largest).
/// `basis` (`float32 (rank, d)`, orthonormal rows) and `candidates`: assign through a shortlist.
#[pyfunction]
#[pyo3(signature = (x, centroids, basis=None, candidates=None))]
#[allow(clippy::type_complexity)]
pub fn kmeans_iterate<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centroids: &Bound<'py, PyAny>,
    basis: Option<&Bound<'py, PyAny>>,
    candidates: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyArray2<f32>>, Bound<'py, PyArray1<u64>>, f64)> {
    let (x, c) = rows_and_centroids(x, centroids)?;
    let ((n, dims), k) = (rows_cols(&x), rows_cols(&c).0);
    let data = shared(&x, "x")?;
    let mut cent = copied(&c, "centroids")?;
    let (basis, candidates) = shortlist_args(basis, candidates, dims)?;
    let (counts, inertia) = run_core(py, || {
        let s = shortlist(&basis, candidates);
        qama_core::kmeans::iterate(&data, n, dims, &mut cent, k, s.as_ref())
            .map(|(_, counts, inertia)| (counts, inertia))
    })?;
    Ok((
        into_2d(py, cent, k, dims)?,
        counts.into_pyarray(py),
        inertia,
    ))
}

/// The nearest of `float32 (k, d)` centroids to each `float32 (n, d)` row (squared Euclidean):
/// `(assignment int64 (n,), squared distances float32 (n,))`. With `basis` (`float32 (rank, d)`,
/// orthonormal rows): the exactly nearest of each row's `candidates` best in those directions.
#[pyfunction]
#[pyo3(signature = (x, centroids, basis=None, candidates=None))]
pub fn kmeans_assign<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centroids: &Bound<'py, PyAny>,
    basis: Option<&Bound<'py, PyAny>>,
    candidates: Option<&Bound<'py, PyAny>>,
) -> PyResult<Pair<'py, PyArray1<i64>, PyArray1<f32>>> {
    let (x, c) = rows_and_centroids(x, centroids)?;
    let ((n, dims), k) = (rows_cols(&x), rows_cols(&c).0);
    let (data, cent) = (shared(&x, "x")?, shared(&c, "centroids")?);
    let (basis, candidates) = shortlist_args(basis, candidates, dims)?;
    let (assign, dist) = run_core(py, || {
        let s = shortlist(&basis, candidates);
        qama_core::kmeans::nearest(&data, n, dims, &cent, k, s.as_ref())
            .map(|(a, d)| (a.into_iter().map(i64::from).collect::<Vec<i64>>(), d))
    })?;
    Ok((assign.into_pyarray(py), dist.into_pyarray(py)))
}

/// `x float32 (n, d)` and `centroids float32 (k, d)`, checked to have the same columns.
fn rows_and_centroids<'py>(
    x: &Bound<'py, PyAny>,
    centroids: &Bound<'py, PyAny>,
) -> PyResult<ArrayPair<'py, f32>> {
    same_width((x, "x"), (centroids, "centroids"), |dims, cd| {
        format!("centroids have {cd} columns but x has {dims}")
    })
}

/// A shortlist's basis values and rank, when one is given.
type Basis = Option<(Vec<f32>, usize)>;

/// The optional `basis` and `candidates` (default 16) arguments.
fn shortlist_args(
    basis: Option<&Bound<'_, PyAny>>,
    candidates: Option<&Bound<'_, PyAny>>,
    dims: usize,
) -> PyResult<(Basis, usize)> {
    let candidates = match candidates.filter(|c| !c.is_none()) {
        Some(c) => count_arg(c, "candidates")?,
        None => 16,
    };
    if candidates == 0 {
        return Err(crate::errors::value_error(
            "candidates must be at least 1, got 0",
        ));
    }
    let Some(basis) = basis.filter(|b| !b.is_none()) else {
        return Ok((None, candidates));
    };
    let b: PyReadonlyArray2<f32> = array_arg(basis, "basis")?;
    let (rank, cols) = rows_cols(&b);
    if cols != dims {
        return Err(crate::errors::value_error(format!(
            "basis has {cols} columns but x has {dims}"
        )));
    }
    Ok((Some((copied(&b, "basis")?, rank)), candidates))
}

fn shortlist(basis: &Basis, candidates: usize) -> Option<qama_core::kmeans::Shortlist<'_>> {
    basis
        .as_ref()
        .map(|(b, rank)| qama_core::kmeans::Shortlist {
            basis: b,
            rank: *rank,
            candidates,
        })
}
