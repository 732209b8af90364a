//! The one error type of the core; the binding maps every variant to a Python exception.
use thiserror::Error;

/// Errors returned by core functions. Nothing in the core panics on bad input.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum QamaError {
    /// An argument has the wrong length, width or shape; the message names it.
    #[error("{0}")]
    Shape(String),
    /// An argument has a value outside its domain (NaN, unsorted thresholds, k = 0, ...).
    #[error("{0}")]
    Value(String),
}

/// Result alias used across the core.
pub type Result<T> = std::result::Result<T, QamaError>;

pub(crate) fn shape_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(QamaError::Shape(msg.into()))
}

pub(crate) fn value_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(QamaError::Value(msg.into()))
}
