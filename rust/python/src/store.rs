//! Stored rows as the codecs read them: `Store`, a view over the index's own NumPy arrays, and the
//! in-place block-layout operations the index uses to append and compact without rebuilding.
//!
//! A store is `S` segments (the index uses two: a base, possibly memory-mapped, and an in-memory
//! tail) and a table of lists: list `l` has `count[l][s]` rows at row `offset[l][s]` of segment `s`
//! (block-aligned in the block layout). Each segment may carry labels (`uint64`, returned by
//! searches; without them rows are numbered by their position: lists in order, each list's
//! segments in order) and per-row scales (`float32`). The store keeps references to the arrays and
//! reads them in place, without the GIL, on every search: the index writes into them only under
//! its own lock, never during a call, and replaces the store whenever an array is reallocated.
use std::sync::atomic::{AtomicU64, Ordering};

use numpy::prelude::*;
use numpy::{Element, PyUntypedArray};
use pyo3::prelude::*;
use qama_core::codec::Extent;
use qama_core::select::{AdmittedRows, Allowed, Labels};

use crate::args::{array_arg, rows_cols, shared};
use crate::errors::{type_error, value_error};

/// Element types a segment may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `uint8` (table codes).
    U8,
    /// `uint64` (Hamming codes).
    U64,
    /// `float32` (float rows).
    F32,
    /// `uint16` (float16 bits).
    U16,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::U8 => "uint8",
            Unit::U64 => "uint64",
            Unit::F32 => "float32",
            Unit::U16 => "uint16 (float16 bits)",
        }
    }
}

/// A contiguous array kept alive by a reference, read through its raw parts.
struct Raw {
    _owner: Py<PyAny>,
    ptr: usize,
    len: usize,
}

impl Raw {
    /// Validates `obj` as a C-contiguous, aligned array of `T` (any rank) named `name`.
    fn of<T: Element>(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Self> {
        let py = obj.py();
        let Ok(array) = obj.cast::<PyUntypedArray>() else {
            return Err(type_error(py, format!("{name} must be a NumPy array")));
        };
        let expected = numpy::dtype::<T>(py);
        if !array.dtype().is_equiv_to(&expected) {
            return Err(type_error(
                py,
                format!("{name} must have dtype {expected}, got {}", array.dtype()),
            ));
        }
        if !array.is_c_contiguous() || !array.is_aligned() {
            return Err(type_error(
                py,
                format!("{name} must be C-contiguous and aligned"),
            ));
        }
        let len = array.len();
        // SAFETY: a C-contiguous array of `len` elements of `T` starts at its data pointer.
        let ptr = unsafe { (*array.as_array_ptr()).fields.data } as usize;
        Ok(Self {
            _owner: obj.clone().unbind(),
            ptr,
            len,
        })
    }

    /// The elements. The owner keeps the buffer alive; the index never writes it during a call.
    fn slice<T>(&self) -> &[T] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `of::<T>` checked the dtype, contiguity and alignment; `_owner` keeps the
        // buffer alive and NumPy cannot reallocate a buffer that is referenced.
        unsafe { std::slice::from_raw_parts(self.ptr as *const T, self.len) }
    }
}

/// Rows of one codec family, read in place (see the module docs).
#[pyclass(frozen, module = "qama_rs._core")]
pub struct Store {
    unit: Unit,
    segments: Vec<Raw>,
    labels: Option<Vec<Raw>>,
    scales: Option<Vec<Raw>>,
    /// Per list and segment: `(row offset, rows)`.
    table: Vec<Vec<(usize, usize)>>,
    rows: usize,
    /// An upper bound of `|row_scale|` (1 without scales): the table codecs' overflow check.
    max_scale: f64,
    /// Position of each list's first row (labels by position: lists in order).
    starts: Vec<u64>,
    /// Units per row when the segments say it (2-D row-major arrays), checked against the codec.
    row_units: Option<usize>,
    /// This store among all made in the process: whose rows a filter's admitted rows are
    /// for (a store's rows never change; the index makes a new store when they do).
    serial: u64,
}

/// The serial number of the next store.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(0);

/// A 1-D empty segment says nothing of the row width.
fn items_len_zero(width: &Option<usize>) -> bool {
    width.is_none()
}

/// A parsed segment table: per list, per segment `(offset, rows)`, and the total rows.
type Table = (Vec<Vec<(usize, usize)>>, usize);

fn table_arg(table: &Bound<'_, PyAny>, segments: usize) -> PyResult<Table> {
    let t = array_arg::<u64, numpy::Ix2>(table, "table")?;
    let (lists, cols) = rows_cols(&t);
    if cols != 2 * segments {
        return Err(value_error(format!(
            "table has {cols} columns; {segments} segments need {} (offset, rows per segment)",
            2 * segments
        )));
    }
    let values = shared(&t, "table")?;
    let mut rows = 0usize;
    let mut out = Vec::with_capacity(lists);
    for l in 0..lists {
        let mut list = Vec::with_capacity(segments);
        for s in 0..segments {
            let (off, n) = (values[l * cols + 2 * s], values[l * cols + 2 * s + 1]);
            let (Ok(off), Ok(n)) = (usize::try_from(off), usize::try_from(n)) else {
                return Err(value_error(format!(
                    "table[{l}] does not fit this platform"
                )));
            };
            rows = rows
                .checked_add(n)
                .ok_or_else(|| value_error("table: too many rows"))?;
            list.push((off, n));
        }
        out.push(list);
    }
    Ok((out, rows))
}

fn raws<T: Element>(arrays: &Bound<'_, PyAny>, name: &str, count: usize) -> PyResult<Vec<Raw>> {
    let items: Vec<Bound<'_, PyAny>> = arrays.extract().map_err(|_| {
        type_error(
            arrays.py(),
            format!("{name} must be a list of NumPy arrays"),
        )
    })?;
    if items.len() != count {
        return Err(value_error(format!(
            "{name} has {} arrays; expected one per segment ({count})",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, a)| Raw::of::<T>(a, &format!("{name}[{i}]")))
        .collect()
}

#[pymethods]
impl Store {
    /// `Store(segments, table, labels=None, row_scale=None, max_scale=None)`: `segments` a list of
    /// arrays of one dtype (`uint8`, `uint64`, `float32` or `uint16` for float16 bits); `table` `uint64
    /// (lists, 2 * len(segments))`, per list and segment its row offset and row count; `labels` one
    /// `uint64` array per segment or None (rows numbered by position); `row_scale` one `float32` array
    /// per segment or None; `max_scale` an upper bound of `|row_scale|` the caller keeps and vouches
    /// for (the index tracks it as it writes finite scales): the scales are then not read, so a
    /// wrong bound gives wrong scores. Without it the scales are read and checked (O(rows)).
    #[new]
    #[pyo3(signature = (segments, table, labels=None, row_scale=None, max_scale=None))]
    fn new(
        segments: &Bound<'_, PyAny>,
        table: &Bound<'_, PyAny>,
        labels: Option<&Bound<'_, PyAny>>,
        row_scale: Option<&Bound<'_, PyAny>>,
        max_scale: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let max_scale = crate::args::opt_float_arg(max_scale, "max_scale")?;
        let items: Vec<Bound<'_, PyAny>> = segments.extract().map_err(|_| {
            type_error(
                segments.py(),
                "segments must be a list of NumPy arrays".to_string(),
            )
        })?;
        let Some(first) = items.first() else {
            return Err(value_error(
                "segments is empty; a store needs at least one array",
            ));
        };
        let dtype = first
            .cast::<PyUntypedArray>()
            .map_err(|_| {
                type_error(
                    segments.py(),
                    "segments[0] must be a NumPy array".to_string(),
                )
            })?
            .dtype();
        let py = segments.py();
        let unit = if dtype.is_equiv_to(&numpy::dtype::<u8>(py)) {
            Unit::U8
        } else if dtype.is_equiv_to(&numpy::dtype::<u64>(py)) {
            Unit::U64
        } else if dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
            Unit::F32
        } else if dtype.is_equiv_to(&numpy::dtype::<u16>(py)) {
            Unit::U16
        } else {
            return Err(type_error(
                py,
                format!("segments must be uint8, uint64, float32 or uint16 arrays, got {dtype}"),
            ));
        };
        let segs = match unit {
            Unit::U8 => raws::<u8>(segments, "segments", items.len())?,
            Unit::U64 => raws::<u64>(segments, "segments", items.len())?,
            Unit::F32 => raws::<f32>(segments, "segments", items.len())?,
            Unit::U16 => raws::<u16>(segments, "segments", items.len())?,
        };
        let (table, rows) = table_arg(table, segs.len())?;
        let labels = match labels {
            Some(l) if !l.is_none() => Some(raws::<u64>(l, "labels", segs.len())?),
            _ => None,
        };
        let scales = match row_scale {
            Some(s) if !s.is_none() => Some(raws::<f32>(s, "row_scale", segs.len())?),
            _ => None,
        };
        for (l, list) in table.iter().enumerate() {
            for (s, &(off, n)) in list.iter().enumerate() {
                let fits = |len: usize| off.checked_add(n).is_some_and(|end| end <= len);
                if let Some(labels) = &labels {
                    if !fits(labels[s].len) {
                        return Err(value_error(format!("table[{l}] runs past labels[{s}]")));
                    }
                }
                if let Some(scales) = &scales {
                    if !fits(scales[s].len) {
                        return Err(value_error(format!("table[{l}] runs past row_scale[{s}]")));
                    }
                }
            }
        }
        let max_scale = match (&scales, max_scale) {
            (None, _) => 1.0,
            (Some(_), Some(m)) if m.is_finite() && m >= 0.0 => m,
            (Some(_), Some(m)) => {
                return Err(value_error(format!(
                    "max_scale = {m}; must be finite and >= 0"
                )))
            }
            (Some(s), None) => {
                let mut m = 0f64;
                for (i, r) in s.iter().enumerate() {
                    let v = r.slice::<f32>();
                    if let Some(at) = v.iter().position(|x| !x.is_finite()) {
                        return Err(value_error(format!(
                            "row_scale[{i}][{at}] = {} is not finite",
                            v[at]
                        )));
                    }
                    m = v.iter().fold(m, |m, &x| m.max(f64::from(x).abs()));
                }
                m
            }
        };
        let widths: Vec<Option<usize>> = items
            .iter()
            .map(|a| {
                a.cast::<PyUntypedArray>()
                    .ok()
                    .filter(|a| a.ndim() == 2)
                    .map(|a| a.shape()[1])
            })
            .collect();
        let row_units = match widths.first() {
            Some(Some(w)) if widths.iter().all(|x| *x == Some(*w) || items_len_zero(x)) => Some(*w),
            _ => None,
        };
        let mut starts = Vec::with_capacity(table.len());
        let mut at = 0u64;
        for list in &table {
            starts.push(at);
            at += list.iter().map(|&(_, n)| n as u64).sum::<u64>();
        }
        Ok(Self {
            unit,
            segments: segs,
            labels,
            scales,
            table,
            rows,
            max_scale,
            starts,
            row_units,
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Rows stored in all lists.
    #[getter]
    fn rows(&self) -> usize {
        self.rows
    }

    /// Lists in the table.
    #[getter]
    fn lists(&self) -> usize {
        self.table.len()
    }

    /// This store's serial number in the process (a new store, a new number; see
    /// [`Store::admitted`]).
    #[getter]
    pub fn serial(&self) -> u64 {
        self.serial
    }
}

impl Store {
    /// Total rows.
    pub fn total(&self) -> usize {
        self.rows
    }

    /// An upper bound of `|row_scale|` (1 without scales).
    pub fn max_scale(&self) -> f64 {
        self.max_scale
    }

    /// Rows of list `l`.
    pub fn list_rows(&self, l: usize) -> usize {
        self.table
            .get(l)
            .map_or(0, |list| list.iter().map(|&(_, n)| n).sum())
    }

    /// Number of lists.
    pub fn list_count(&self) -> usize {
        self.table.len()
    }

    /// Checks that the store holds rows of `unit` (and of `row_units` where its arrays say).
    pub fn check_rows(&self, unit: Unit, row_units: usize) -> PyResult<()> {
        if self.unit != unit {
            return Err(value_error(format!(
                "the store holds {} rows; this codec reads {}",
                self.unit.name(),
                unit.name()
            )));
        }
        if let Some(w) = self.row_units.filter(|&w| w != row_units) {
            return Err(value_error(format!(
                "the store's rows have {w} values; this codec reads rows of {row_units}"
            )));
        }
        Ok(())
    }

    /// Position of list `l`'s first row.
    pub fn list_start(&self, l: usize) -> u64 {
        self.starts.get(l).copied().unwrap_or(0)
    }

    /// The rows of each extent (per list, per segment, empty ones included) that `allowed` admits.
    pub fn admitted(&self, allowed: Allowed<'_>) -> AdmittedRows {
        let mut out = AdmittedRows::default();
        let mut at = 0u64;
        for list in &self.table {
            for (s, &(off, n)) in list.iter().enumerate() {
                out.push(allowed, self.labels(s, off, n, at), n);
                at += n as u64;
            }
        }
        out
    }

    /// The labels of rows `off..off + n` of segment `s`, at position `at` among all rows (the labels
    /// when rows are numbered by position).
    fn labels(&self, s: usize, off: usize, n: usize, at: u64) -> Labels<'_> {
        match &self.labels {
            Some(labels) => Labels::Given(&labels[s].slice::<u64>()[off..off + n]),
            None => Labels::From(at),
        }
    }

    /// The extents of list `l` (`row_units` units per row, `block_rows` rows per block), each with
    /// `bias`. `position` is the label of the list's first row when rows are numbered by position.
    /// `admitted`: a filter's admitted rows of this store ([`Store::admitted`]), or None.
    pub fn list<'a, T: Copy>(
        &'a self,
        l: usize,
        row_units: usize,
        block_rows: usize,
        bias: f32,
        position: u64,
        admitted: Option<&'a AdmittedRows>,
    ) -> qama_core::Result<Vec<Extent<'a, T>>> {
        let mut out = Vec::with_capacity(2);
        let mut at = position;
        for (s, &(off, n)) in self.table[l].iter().enumerate() {
            if n == 0 {
                continue;
            }
            let seg: &[T] = self.segments[s].slice();
            if off % block_rows != 0 {
                return Err(qama_core::QamaError::Value(format!(
                    "list {l}: segment {s} starts at row {off}, not a multiple of {block_rows}"
                )));
            }
            let units = |rows: usize| qama_core::codec::stored_units(rows, row_units, block_rows);
            let (Some(start), Some(len)) = (units(off), units(n)) else {
                return Err(qama_core::QamaError::Shape(format!(
                    "list {l}: too many rows"
                )));
            };
            let Some(data) = seg.get(start..start + len) else {
                return Err(qama_core::QamaError::Shape(format!(
                    "list {l}: rows {off}..{} run past segment {s} ({} values)",
                    off + n,
                    seg.len()
                )));
            };
            let labels = self.labels(s, off, n, at);
            let row_scale = self
                .scales
                .as_ref()
                .map(|sc| &sc[s].slice::<f32>()[off..off + n]);
            out.push(Extent {
                data,
                rows: n,
                labels,
                row_scale,
                bias,
                admitted: admitted.and_then(|a| a.get(l * self.segments.len() + s)),
            });
            at += n as u64;
        }
        Ok(out)
    }

    /// Every list's extents, in order (a flat scan).
    pub fn all<'a, T: Copy>(
        &'a self,
        row_units: usize,
        block_rows: usize,
        admitted: Option<&'a AdmittedRows>,
    ) -> qama_core::Result<Vec<Extent<'a, T>>> {
        let mut out = Vec::new();
        let mut at = 0u64;
        for l in 0..self.table.len() {
            let list = self.list(l, row_units, block_rows, 0.0, at, admitted)?;
            at += list.iter().map(|e| e.rows as u64).sum::<u64>();
            out.extend(list);
        }
        Ok(out)
    }
}
