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
    /// A result or working buffer could not be allocated (Python: `MemoryError`).
    #[error("{0}")]
    Memory(String),
}

/// Result alias used across the core.
pub type Result<T> = std::result::Result<T, QamaError>;

pub(crate) fn shape_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(QamaError::Shape(msg.into()))
}

pub(crate) fn value_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(QamaError::Value(msg.into()))
}

/// A zeroed vector of `len` entries, or [`QamaError::Memory`] instead of an allocation abort
/// (sizes come from user arrays, so a failed allocation is an input problem, not a crash).
pub(crate) fn try_zeroed<T: Clone + Default>(len: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        QamaError::Memory(format!("{what} would need {len} entries; out of memory"))
    })?;
    v.resize(len, T::default());
    Ok(v)
}

/// Checks `x_len == n * dims`, naming the argument in the error.
pub(crate) fn check_rows(x_len: usize, n: usize, dims: usize, what: &str) -> Result<()> {
    match n.checked_mul(dims) {
        Some(expected) if expected == x_len => Ok(()),
        _ => shape_err(format!(
            "{what} has {x_len} values; expected n * dims = {n} * {dims}"
        )),
    }
}

/// Checks that every value of `values` is finite; the error names the first other one,
/// `{name}[{index(at)}] = {value} is not finite`.
pub(crate) fn check_finite(
    values: &[f32],
    name: &str,
    index: impl FnOnce(usize) -> String,
) -> Result<()> {
    // Branch-free first (an exponent of all ones is inf or NaN; the fold vectorizes), so the
    // common all-finite case reads each block once; the position only on failure.
    const EXP: u32 = 0x7f80_0000;
    let bad = values
        .chunks(64)
        .any(|c| c.iter().fold(false, |b, v| b | (v.to_bits() & EXP == EXP)));
    if !bad {
        return Ok(());
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(at) => value_err(format!(
            "{name}[{}] = {} is not finite",
            index(at),
            values[at]
        )),
        None => Ok(()),
    }
}

/// The index `row, col` of position `at` of a row-major array of `cols` columns (for
/// [`check_finite`]).
pub(crate) fn cell(cols: usize) -> impl Fn(usize) -> String {
    move |at| format!("{}, {}", at / cols, at % cols)
}

/// `a * b`, or a [`QamaError::Shape`] naming what overflowed.
pub(crate) fn checked_size(a: usize, b: usize, what: &str) -> Result<usize> {
    a.checked_mul(b)
        .ok_or_else(|| QamaError::Shape(format!("{what} = {a} * {b} overflows")))
}

/// Elements per parallel task over rows of `width` elements: `rows_per_task` rows, never more than
/// the `n` rows there are (so the product cannot overflow when the `n * width` buffer exists) and
/// never zero (rayon refuses zero-sized chunks).
pub(crate) fn chunk_len(rows_per_task: usize, n: usize, width: usize) -> usize {
    rows_per_task.min(n).max(1).saturating_mul(width).max(1)
}
