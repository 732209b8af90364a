//! The exception classes of qama_rs and the one mapping from core errors to them.
//!
//! `QamaError(ValueError)` is the base of every qama_rs error; `QamaTypeError(QamaError, TypeError)`
//! marks wrong dtypes, non-arrays, layouts and argument types (so `except TypeError` keeps
//! working). PyO3's `create_exception!` takes one base, so the two-base class is made with
//! `type(...)` once, at module import. Failed allocations raise `MemoryError`. Both classes live
//! in `qama_rs._core` and are re-exported (with `__module__ = "qama_rs.errors"`) by
//! `python/qama_rs/errors.py`.
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

pyo3::create_exception!(
    qama_rs.errors,
    QamaError,
    PyValueError,
    "Base class of every qama_rs error (a ValueError): bad shapes, values, corrupt files."
);

static TYPE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `QamaTypeError`, created on first use.
pub fn qama_type_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    TYPE_ERROR
        .get_or_try_init(py, || {
            let bases = PyTuple::new(
                py,
                [py.get_type::<QamaError>(), py.get_type::<PyTypeError>()],
            )?;
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "qama_rs.errors")?;
            namespace.set_item(
                "__doc__",
                "A qama_rs error about a type: wrong dtype, not an array, wrong memory layout, \
                 wrong argument type. Both a QamaError and a TypeError.",
            )?;
            let class = py
                .get_type::<PyType>()
                .call1(("QamaTypeError", bases, namespace))?;
            Ok(class.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

/// A `QamaError` (shape or value problem).
pub fn value_error(msg: impl Into<String>) -> PyErr {
    QamaError::new_err(msg.into())
}

/// A `QamaTypeError` (dtype, layout or argument type problem).
pub fn type_error(py: Python<'_>, msg: impl Into<String>) -> PyErr {
    match qama_type_error(py) {
        Ok(class) => PyErr::from_type(class.clone(), msg.into()),
        Err(e) => e,
    }
}

/// The Python exception of a core error.
pub fn core_error(e: qama_core::QamaError) -> PyErr {
    match e {
        qama_core::QamaError::Shape(m) | qama_core::QamaError::Value(m) => QamaError::new_err(m),
        qama_core::QamaError::Memory(m) => PyMemoryError::new_err(m),
    }
}
