//! Argument conversion at the Python boundary. The binding only converts: the core validates
//! sizes and values. Conversion problems raise `QamaTypeError` (dtype, non-array, byte order,
//! layout, argument type) or `QamaError` (rank), each naming the argument.
//!
//! Thread safety (the GIL is released while the core runs, so another Python thread may write an
//! argument meanwhile): the small query-side arrays (queries, tables, candidates, thresholds) are
//! always copied before the call, so what the core validated is what it uses; every other array
//! is read in place when it is read-only (`flags.writeable == False`: the engine's indexes pass
//! read-only views of buffers they own and only append to) and copied when it is writeable.
//! Copies are allocated with `try_reserve` (failure: `MemoryError`).
use std::borrow::Cow;

use numpy::ndarray::Dimension;
use numpy::prelude::*;
use numpy::{Element, Ix2, PyArray, PyReadonlyArray, PyUntypedArray};
use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::errors::{type_error, value_error};

/// Borrows `obj` as a read-only `T` array of rank `D`.
pub fn array_arg<'py, T: Element, D: Dimension>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray<'py, T, D>> {
    let py = obj.py();
    let expected = numpy::dtype::<T>(py);
    let Ok(untyped) = obj.cast::<PyUntypedArray>() else {
        return Err(type_error(
            py,
            format!(
                "{name} must be a NumPy array of dtype {expected}, got {}",
                type_name(obj)
            ),
        ));
    };
    let rank = D::NDIM.unwrap_or(untyped.ndim());
    if untyped.ndim() != rank {
        return Err(value_error(format!(
            "{name} must be a {rank}-D array, got shape {:?}",
            untyped.shape()
        )));
    }
    let actual = untyped.dtype();
    // `is_equiv_to` also rejects a non-native byte order ('>f4'), which the kernels cannot read.
    if !actual.is_equiv_to(&expected) {
        return Err(type_error(
            py,
            format!("{name} must have dtype {expected} (native byte order), got {actual}"),
        ));
    }
    // `as_slice` alone would accept a Fortran-ordered 2-D array and read it in the wrong order.
    if !untyped.is_c_contiguous() || !untyped.is_aligned() {
        return Err(type_error(
            py,
            format!("{name} must be C-contiguous and aligned; pass np.ascontiguousarray({name})"),
        ));
    }
    let typed = obj.cast::<PyArray<T, D>>().map_err(|_| {
        type_error(
            py,
            format!("{name} must be a NumPy array of dtype {expected}"),
        )
    })?;
    typed
        .try_readonly()
        .map_err(|e| value_error(format!("{name} cannot be read: {e}")))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .qualname()
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Checks that `obj` is a NumPy array of dtype `T` (before its rank: an argument that may take two
/// ranks then reports a wrong dtype as one).
pub fn dtype_arg<T: Element>(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<()> {
    let py = obj.py();
    let expected = numpy::dtype::<T>(py);
    match obj.cast::<PyUntypedArray>() {
        Ok(a) if a.dtype().is_equiv_to(&expected) => Ok(()),
        Ok(a) => Err(type_error(
            py,
            format!(
                "{name} must have dtype {expected} (native byte order), got {}",
                a.dtype()
            ),
        )),
        Err(_) => Err(type_error(
            py,
            format!(
                "{name} must be a NumPy array of dtype {expected}, got {}",
                type_name(obj)
            ),
        )),
    }
}

/// `obj` as the `T` object argument `name` (a `QamaTypeError` naming it otherwise).
pub fn object_arg<'a, 'py, T: pyo3::PyClass>(
    obj: &'a Bound<'py, PyAny>,
    name: &str,
) -> PyResult<&'a Bound<'py, T>> {
    obj.cast::<T>().map_err(|_| {
        type_error(
            obj.py(),
            format!(
                "{name} must be a qama_rs._core.{}, got {}",
                T::NAME,
                type_name(obj)
            ),
        )
    })
}

/// An optional finite float argument (`None` stays `None`).
pub fn opt_float_arg(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<f64>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => {
            let v: f64 = o.extract().map_err(|_| {
                if o.hasattr("__index__").unwrap_or(false) {
                    value_error(format!("{name} = {o}; too large for a float"))
                } else {
                    type_error(
                        o.py(),
                        format!("{name} must be a float, got {}", type_name(o)),
                    )
                }
            })?;
            Ok(Some(v))
        }
    }
}

/// The contiguous data of an array returned by [`array_arg`].
fn slice_of<'a, T: Element, D: Dimension>(
    array: &'a PyReadonlyArray<'_, T, D>,
    name: &str,
) -> PyResult<&'a [T]> {
    array
        .as_slice()
        .map_err(|e| type_error(array.py(), format!("{name}: {e}")))
}

/// A copy of `data`, or `MemoryError`. Made while the GIL is held (no Python thread can write the
/// array meanwhile).
fn copy_of<T: Clone + Send + Sync>(data: &[T], name: &str) -> PyResult<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(data.len()).map_err(|_| {
        PyMemoryError::new_err(format!(
            "cannot copy {name} ({} values): out of memory",
            data.len()
        ))
    })?;
    v.extend_from_slice(data);
    Ok(v)
}

/// The data of a query-side array, always copied (see the module docs).
pub fn copied<T: Element + Clone + Send + Sync, D: Dimension>(
    array: &PyReadonlyArray<'_, T, D>,
    name: &str,
) -> PyResult<Vec<T>> {
    copy_of(slice_of(array, name)?, name)
}

/// The data of a stored-side array: in place when read-only, else a copy (see the module docs).
pub fn shared<'a, T: Element + Clone + Send + Sync, D: Dimension>(
    array: &'a PyReadonlyArray<'_, T, D>,
    name: &str,
) -> PyResult<Cow<'a, [T]>> {
    let data = slice_of(array, name)?;
    let writeable = array
        .as_any()
        .getattr("flags")?
        .getattr("writeable")?
        .is_truthy()?;
    Ok(if writeable {
        Cow::Owned(copy_of(data, name)?)
    } else {
        Cow::Borrowed(data)
    })
}

/// `(rows, columns)` of a 2-D array.
pub fn rows_cols<T: Element>(array: &PyReadonlyArray<'_, T, Ix2>) -> (usize, usize) {
    let shape = array.shape();
    (shape[0], shape[1])
}

/// Two read-only 2-D arrays of the same row width.
pub type ArrayPair<'py, T> = (PyReadonlyArray<'py, T, Ix2>, PyReadonlyArray<'py, T, Ix2>);

/// Two 2-D `T` array arguments `(obj, name)` whose rows must have the same width;
/// `mismatch(a_cols, b_cols)` is the error message otherwise.
pub fn same_width<'py, T: Element>(
    a: (&Bound<'py, PyAny>, &str),
    b: (&Bound<'py, PyAny>, &str),
    mismatch: impl FnOnce(usize, usize) -> String,
) -> PyResult<ArrayPair<'py, T>> {
    let a = array_arg::<T, Ix2>(a.0, a.1)?;
    let b = array_arg::<T, Ix2>(b.0, b.1)?;
    let (ac, bc) = (rows_cols(&a).1, rows_cols(&b).1);
    if ac != bc {
        return Err(value_error(mismatch(ac, bc)));
    }
    Ok((a, b))
}

/// An integer argument (anything with `__index__`: int, bool, NumPy integers), saturated to the
/// `i64` range (a huge `k` means "all rows"; a huge negative value is refused by the caller).
pub fn int_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<i64> {
    let py = obj.py();
    let index = obj
        .call_method0("__index__")
        .map_err(|_| type_error(py, format!("{name} must be an int, got {}", type_name(obj))))?;
    match index.extract::<i64>() {
        Ok(v) => Ok(v),
        Err(_) => Ok(if index.gt(0)? { i64::MAX } else { i64::MIN }),
    }
}

/// An optional integer argument (`None` stays `None`).
pub fn opt_int_arg(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<i64>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => int_arg(o, name).map(Some),
    }
}

/// A count (`n`, `dims`, `row_bytes`): a non-negative integer.
pub fn count_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<usize> {
    let v = int_arg(obj, name)?;
    usize::try_from(v).map_err(|_| value_error(format!("{name} = {v}; must not be negative")))
}

/// `k`: a positive integer; values past `usize` saturate (`k > n` returns `n` results).
pub fn k_arg(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let k = int_arg(obj, "k")?;
    if k <= 0 {
        return Err(value_error(format!("k = {k}; must be positive")));
    }
    Ok(usize::try_from(k).unwrap_or(usize::MAX))
}

/// A flag: `True` or `False` (NumPy's `bool_` too); anything else is refused, not coerced.
pub fn bool_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<bool> {
    if let Ok(b) = obj.cast::<pyo3::types::PyBool>() {
        return Ok(b.is_true());
    }
    if obj.get_type().name()?.to_str()? == "bool" {
        return obj.is_truthy(); // numpy.bool_
    }
    Err(type_error(
        obj.py(),
        format!("{name} must be a bool, got {}", type_name(obj)),
    ))
}

/// An optional string argument.
pub fn opt_str_arg(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<String>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => match o.cast::<PyString>() {
            Ok(s) => Ok(Some(s.to_str()?.to_owned())),
            Err(_) => Err(type_error(
                o.py(),
                format!("{name} must be a str or None, got {}", type_name(o)),
            )),
        },
    }
}

/// An instruction-set level by name (`None`: the fastest this CPU runs); unknown or unavailable
/// names are a `QamaError`.
pub fn isa_arg(name: Option<&Bound<'_, PyAny>>) -> PyResult<qama_core::Isa> {
    let Some(name) = opt_str_arg(name, "isa")? else {
        return Ok(qama_core::Isa::detect());
    };
    let isa = qama_core::Isa::from_name(&name).ok_or_else(|| {
        value_error(format!(
            "isa = {name:?}; known levels are 'scalar', 'avx2', 'avx512'"
        ))
    })?;
    if !isa.is_available() {
        return Err(value_error(format!(
            "isa {name:?} is not available on this CPU"
        )));
    }
    Ok(isa)
}

/// Queries as a codec reads them: `values` row-major, `len` values per query.
pub struct Queries<T> {
    pub values: Vec<T>,
    pub nq: usize,
    pub len: usize,
}

impl<T> Queries<T> {
    pub fn row(&self, i: usize) -> &[T] {
        &self.values[i * self.len..(i + 1) * self.len]
    }
}

/// Float queries `float32 (nq, len)`; with `tables`, also `(nq, m, 256)` tables (flattened).
pub fn float_queries(
    q: &Bound<'_, PyAny>,
    len: usize,
    tables: bool,
    what: &str,
) -> PyResult<Queries<f32>> {
    dtype_arg::<f32>(q, "queries")?;
    if !tables {
        // A 3-D array must not pass as `(nq, len)` by flattening.
    } else if let Ok(t) = array_arg::<f32, numpy::Ix3>(q, "queries") {
        let shape = t.shape().to_vec();
        if shape[1] * shape[2] != len {
            return Err(value_error(format!("queries has shape {shape:?}; {what}")));
        }
        return Ok(Queries {
            values: copied(&t, "queries")?,
            nq: shape[0],
            len,
        });
    }
    query_rows(q, len, |cols| format!("queries has {cols} columns; {what}"))
}

/// Queries `T (nq, len)`, copied; `mismatch(cols)` is the message for rows of another width.
pub fn query_rows<T: Element + Clone + Send + Sync>(
    q: &Bound<'_, PyAny>,
    len: usize,
    mismatch: impl FnOnce(usize) -> String,
) -> PyResult<Queries<T>> {
    let a = array_arg::<T, Ix2>(q, "queries")?;
    let (nq, cols) = rows_cols(&a);
    if cols != len {
        return Err(value_error(mismatch(cols)));
    }
    Ok(Queries {
        values: copied(&a, "queries")?,
        nq,
        len,
    })
}

/// The largest magnitude in a C-contiguous float32 array `x` (0 when empty), NaN where a value is
/// not finite: the argument check of small query arrays in one pass (NumPy's `max` and `min` cost
/// about 3.5 us together, as much as scanning a short list). Runs with the GIL held, so Python
/// calls it for small arrays only.
#[pyfunction]
pub fn peak_abs(x: &Bound<'_, PyAny>) -> PyResult<f64> {
    let array = array_arg::<f32, numpy::IxDyn>(x, "x")?;
    let (mut peak, mut finite) = (0f32, true);
    for &v in slice_of(&array, "x")? {
        peak = peak.max(v.abs());
        finite &= v.abs() <= f32::MAX; // false for inf and NaN
    }
    Ok(if finite { f64::from(peak) } else { f64::NAN })
}
