//! The codecs as Python objects: `HammingCodec`, `TableCodec`, `FloatCodec`, `Float16Codec`,
//! `Affine8Codec`.
//!
//! Each is built once (its kernels picked from the CPU, or from `isa=`) and answers the same calls
//! over a [`Store`] (see [`crate::calls`]): `search` (every row), `search_lists` (each query its own
//! lists, by a [`Plan`]), `score` (given rows, in order) and `rescore` (the best of given rows), with
//! an optional [`Filter`] of allowed labels. Results are `(scores float32, ids int64)`, scores
//! higher-is-better (Hamming: `-distance`), ids the store's labels (or positions), `-1` / `-inf`
//! where a query has fewer results than asked.
use numpy::prelude::*;
use numpy::{Ix2, PyArray2};
use pyo3::prelude::*;
use qama_core::codec::float::FloatCodec as CoreFloat;
use qama_core::codec::hamming::HammingCodec as CoreHamming;
use qama_core::codec::table::{
    Bounds, CodeFormat, Layout, Projection, Recon, TableCodec as CoreTable, Tables,
};
use qama_core::codec::Codec;
use qama_core::Isa;

use crate::args::{
    array_arg, copied, count_arg, isa_arg, k_arg, object_arg, opt_int_arg, opt_str_arg, rows_cols,
};
use crate::args::{float_queries, query_rows, Queries};
use crate::calls::{self, Binding, Call, Filter, Plan, Scored};
use crate::errors::{core_error, value_error};
use crate::store::{Store, Unit};

/// The calls every codec class answers, and its common getters; `$extra` are its own methods.
macro_rules! codec_class {
    ($class:ident { $($extra:tt)* }) => {
        #[pymethods]
        impl $class {
            $($extra)*

            /// Top-`k` over every stored row: `(scores float32, ids int64)`, both `(nq, min(k, rows))`.
            #[pyo3(signature = (queries, store, k, filter=None))]
            fn search<'py>(&self, py: Python<'py>, queries: &Bound<'py, PyAny>, store: &Bound<'py, PyAny>, k: &Bound<'py, PyAny>, filter: Option<&Bound<'py, PyAny>>) -> PyResult<Scored<'py>> {
                let (store, filter, k) = (calls::store_arg(self, store)?, calls::filter_arg(filter)?, k_arg(k)?);
                Call::new(self, py, queries, store)?.search(k, filter)
            }

            /// Top-`k` of each query over its lists in `plan` (the first `nprobe`, then more while
            /// fewer than `k` results are found).
            #[pyo3(signature = (queries, store, k, plan, filter=None))]
            fn search_lists<'py>(&self, py: Python<'py>, queries: &Bound<'py, PyAny>, store: &Bound<'py, PyAny>, k: &Bound<'py, PyAny>, plan: &Bound<'py, PyAny>, filter: Option<&Bound<'py, PyAny>>) -> PyResult<Scored<'py>> {
                let plan = object_arg::<Plan>(plan, "plan")?.get();
                let (store, filter, k) = (calls::store_arg(self, store)?, calls::filter_arg(filter)?, k_arg(k)?);
                Call::new(self, py, queries, store)?.search_lists(k, plan, filter)
            }

            /// Scores `float32 (nq, kc)` of candidate rows (positions, `int64 (nq, kc)` or `(kc,)`), in order.
            fn score<'py>(&self, py: Python<'py>, queries: &Bound<'py, PyAny>, store: &Bound<'py, PyAny>, candidates: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray2<f32>>> {
                Call::new(self, py, queries, calls::store_arg(self, store)?)?.score(candidates)
            }

            /// The best `min(k, kc)` of distinct candidate rows (positions): `(scores, ids)`.
            #[pyo3(signature = (queries, store, candidates, k, filter=None))]
            fn rescore<'py>(&self, py: Python<'py>, queries: &Bound<'py, PyAny>, store: &Bound<'py, PyAny>, candidates: &Bound<'py, PyAny>, k: &Bound<'py, PyAny>, filter: Option<&Bound<'py, PyAny>>) -> PyResult<Scored<'py>> {
                let (store, filter, k) = (calls::store_arg(self, store)?, calls::filter_arg(filter)?, k_arg(k)?);
                Call::new(self, py, queries, store)?.rescore(candidates, k, filter)
            }

            /// Units per stored row (`uint64` words, code bytes, floats).
            #[getter]
            fn row_units(&self) -> usize {
                Binding::codec(self).row_units()
            }

            /// Rows per block of the layout (1 row-major, 32 blocks).
            #[getter]
            fn block_rows(&self) -> usize {
                Binding::codec(self).block_rows()
            }

            /// The instruction-set level of the kernels.
            #[getter]
            fn isa(&self) -> &'static str {
                self.isa.name()
            }
        }
    };
}

/// The parts of a [`Binding`] every codec class shares (its core codec is `inner`); `$own` are the
/// methods it supplies itself.
macro_rules! binding {
    ($class:ident: $core:ty, $input:ty, $unit:expr, { $($own:tt)* }) => {
        impl Binding for $class {
            type C = $core;
            type In = $input;
            fn codec(&self) -> &$core {
                &self.inner
            }
            fn unit(&self) -> Unit {
                $unit
            }
            $($own)*
        }
    };
}

/// Symmetric Hamming over `words`-word codes, the first `nbits` bits compared; queries are codes
/// (`uint64 (nq, words)`), scores `-distance`.
#[pyclass(frozen, module = "qama_rs._core")]
pub struct HammingCodec {
    inner: CoreHamming,
    isa: Isa,
}

binding!(HammingCodec: CoreHamming, u64, Unit::U64, {
    fn queries(&self, q: &Bound<'_, PyAny>) -> PyResult<Queries<u64>> {
        let words = self.inner.words();
        query_rows(q, words, |cols| format!("queries has {cols} words per row; the codec reads {words}"))
    }
    fn prepare(&self, q: &[u64], _i: usize, _b: Bounds) -> qama_core::Result<Vec<u64>> {
        self.inner.prepare(q)
    }
});

codec_class!(HammingCodec {
    #[new]
    #[pyo3(signature = (words, nbits=None, isa=None))]
    fn new(words: &Bound<'_, PyAny>, nbits: Option<&Bound<'_, PyAny>>, isa: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let words = count_arg(words, "words")?;
        let nbits = match opt_int_arg(nbits, "nbits")? {
            None => words.saturating_mul(64),
            Some(b) => usize::try_from(b).map_err(|_| value_error(format!("nbits = {b}; must be positive")))?,
        };
        let isa = isa_arg(isa)?;
        Ok(Self { inner: CoreHamming::new(words, nbits, isa).map_err(core_error)?, isa })
    }

    /// Compared bits.
    #[getter]
    fn nbits(&self) -> usize {
        self.inner.nbits()
    }
});

/// Codes scored through per-query byte tables, stored `"rows"` or in `"blocks"` of 32 (the quantized
/// kernel): `TableCodec.recon(recon)` (per-dimension values `float32 (dims, 2^bits)`; queries
/// `float32 (nq, dims)`), `TableCodec.given(m)` (queries are tables `float32 (nq, m, 256)`) or
/// `TableCodec.projected(basis, slot_dims, slot_values)` (tables built from `float32 (nq, dims)`
/// queries: `q' = q basis`, then per-byte slots; `slot_values (m, T, 256)` byte slots or `(m, 2, T,
/// 16)` nibble slots, `slot_dims` the matching `int64 (m, T)` / `(m, 2, T)`, -1 for an empty slot).
#[pyclass(frozen, module = "qama_rs._core")]
pub struct TableCodec {
    inner: CoreTable,
    isa: Isa,
}

fn layout_arg(layout: Option<&Bound<'_, PyAny>>) -> PyResult<Layout> {
    match opt_str_arg(layout, "layout")?.as_deref() {
        None | Some("blocks") => Ok(Layout::Blocks),
        Some("rows") => Ok(Layout::Rows),
        Some(other) => Err(value_error(format!(
            "layout = {other:?}; must be 'rows' or 'blocks'"
        ))),
    }
}

/// `bits` of a reconstruction table from its column count.
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

binding!(TableCodec: CoreTable, f32, Unit::U8, {
    fn queries(&self, q: &Bound<'_, PyAny>) -> PyResult<Queries<f32>> {
        let what = match self.inner.tables() {
            Tables::Recon(r) => format!("the codec has {} dimensions", r.format().dims()),
            Tables::Given { m } => format!("the codec takes tables (nq, {m}, 256)"),
            Tables::Projected(p) => format!("the codec projects {} dimensions", p.dims()),
        };
        let tables = matches!(self.inner.tables(), Tables::Given { .. });
        float_queries(q, self.inner.query_len(), tables, &what)
    }
    fn prepare(&self, q: &[f32], i: usize, bounds: Bounds) -> qama_core::Result<qama_core::codec::table::Prepared> {
        self.inner.prepare(q, i, bounds)
    }
    fn prepare_range(
        &self,
        q: &Queries<f32>,
        range: std::ops::Range<usize>,
        bounds: Bounds,
    ) -> qama_core::Result<Vec<qama_core::codec::table::Prepared>> {
        self.inner.prepare_block(&q.values[range.start * q.len..range.end * q.len], range.start, bounds)
    }
});

codec_class!(TableCodec {
    /// A codec of per-dimension reconstruction values `float32 (dims, 2^bits)`.
    #[staticmethod]
    #[pyo3(signature = (recon, layout=None, isa=None))]
    fn recon(recon: &Bound<'_, PyAny>, layout: Option<&Bound<'_, PyAny>>, isa: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let array = array_arg::<f32, Ix2>(recon, "recon")?;
        let (dims, cols) = rows_cols(&array);
        let format = CodeFormat::new(dims, bits_of_columns(cols)?).map_err(|e| value_error(format!("recon: {e}")))?;
        let table = Recon::new(format, copied(&array, "recon")?).map_err(core_error)?;
        let isa = isa_arg(isa)?;
        Ok(Self { inner: CoreTable::recon(table, layout_arg(layout)?, isa).map_err(core_error)?, isa })
    }

    /// A codec of `m`-byte codes scored with the caller's tables.
    #[staticmethod]
    #[pyo3(signature = (m, layout=None, isa=None))]
    fn given(m: &Bound<'_, PyAny>, layout: Option<&Bound<'_, PyAny>>, isa: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let m = count_arg(m, "m")?;
        let isa = isa_arg(isa)?;
        Ok(Self { inner: CoreTable::given(m, layout_arg(layout)?, isa).map_err(core_error)?, isa })
    }

    /// A codec building its tables from float queries (see the class docs).
    #[staticmethod]
    #[pyo3(signature = (basis, slot_dims, slot_values, layout=None, isa=None))]
    fn projected(basis: &Bound<'_, PyAny>, slot_dims: &Bound<'_, PyAny>, slot_values: &Bound<'_, PyAny>, layout: Option<&Bound<'_, PyAny>>, isa: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let b = array_arg::<f32, Ix2>(basis, "basis")?;
        let dims = rows_cols(&b).0;
        let values = array_arg::<f32, numpy::IxDyn>(slot_values, "slot_values")?;
        let shape = values.shape().to_vec();
        let split = match shape.as_slice() {
            [_, _, 256] => false,
            [_, 2, _, 16] => true,
            _ => return Err(value_error(format!("slot_values has shape {shape:?}; expected (m, T, 256) or (m, 2, T, 16)"))),
        };
        let d = array_arg::<i64, numpy::IxDyn>(slot_dims, "slot_dims")?;
        if d.shape() != &shape[..shape.len() - 1] {
            return Err(value_error(format!("slot_dims has shape {:?}; slot_values needs {:?}", d.shape(), &shape[..shape.len() - 1])));
        }
        let dim_of = copied(&d, "slot_dims")?
            .into_iter()
            .map(|v| if v < 0 { Ok(u32::MAX) } else { u32::try_from(v).map_err(|_| value_error(format!("slot_dims value {v} is too large"))) })
            .collect::<PyResult<Vec<u32>>>()?;
        let projection = Projection::new(copied(&b, "basis")?, dims, dim_of, copied(&values, "slot_values")?, shape[0], split).map_err(core_error)?;
        let isa = isa_arg(isa)?;
        Ok(Self { inner: CoreTable::projected(projection, layout_arg(layout)?, isa).map_err(core_error)?, isa })
    }

    /// `"rows"` or `"blocks"`.
    #[getter]
    fn layout(&self) -> &'static str {
        match self.inner.layout() {
            Layout::Rows => "rows",
            Layout::Blocks => "blocks",
        }
    }
});

/// Float rows scored by inner product: `float32` rows (`FloatCodec`) or float16 bits stored as
/// `uint16` (`Float16Codec`); queries `float32 (nq, dims)`.
#[pyclass(frozen, module = "qama_rs._core")]
pub struct FloatCodec {
    inner: CoreFloat<f32>,
    isa: Isa,
}

/// `FloatCodec` over float16 rows (`uint16` bits), widened a tile at a time.
#[pyclass(frozen, module = "qama_rs._core")]
pub struct Float16Codec {
    inner: CoreFloat<u16>,
    isa: Isa,
}

/// The [`Binding`] of a float-rows class: float32 queries of the codec's dimensions, copied.
macro_rules! float_rows_binding {
    ($class:ident, $unit:ty, $tag:expr) => {
        binding!($class: CoreFloat<$unit>, f32, $tag, {
            fn queries(&self, q: &Bound<'_, PyAny>) -> PyResult<Queries<f32>> {
                float_queries(q, self.inner.dims(), false, &format!("the codec has {} dimensions", self.inner.dims()))
            }
            fn prepare(&self, q: &[f32], i: usize, _b: Bounds) -> qama_core::Result<Vec<f32>> {
                self.inner.prepare(q, i)
            }
        });
    };
}

macro_rules! float_binding {
    ($class:ident, $unit:ty, $tag:expr) => {
        float_rows_binding!($class, $unit, $tag);

        codec_class!($class {
            #[new]
            #[pyo3(signature = (dims, isa=None))]
            fn new(dims: &Bound<'_, PyAny>, isa: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
                let dims = count_arg(dims, "dims")?;
                let isa = isa_arg(isa)?;
                Ok(Self { inner: CoreFloat::new(dims).and_then(|c| c.with_isa(isa)).map_err(core_error)?, isa })
            }
        });
    };
}

float_binding!(FloatCodec, f32, Unit::F32);
float_binding!(Float16Codec, u16, Unit::U16);

/// One byte per value (`uint8` rows), value `j` decoded as `base[j] + step[j] * code` (float32: the
/// product rounded, then the sum) and scored as float rows: the scores of `FloatCodec` over the
/// decoded rows, bit for bit; queries `float32 (nq, dims)`.
#[pyclass(frozen, module = "qama_rs._core")]
pub struct Affine8Codec {
    inner: CoreFloat<u8>,
    isa: Isa,
}

float_rows_binding!(Affine8Codec, u8, Unit::U8);

codec_class!(Affine8Codec {
    #[new]
    #[pyo3(signature = (base, step, isa=None))]
    fn new(base: &Bound<'_, PyAny>, step: &Bound<'_, PyAny>, isa: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let base = copied(&array_arg::<f32, numpy::Ix1>(base, "base")?, "base")?;
        let step = copied(&array_arg::<f32, numpy::Ix1>(step, "step")?, "step")?;
        let isa = isa_arg(isa)?;
        let inner = CoreFloat::affine(base, step).and_then(|c| c.with_isa(isa)).map_err(core_error)?;
        Ok(Self { inner, isa })
    }
});

/// Registers the codec classes and their argument objects.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<HammingCodec>()?;
    m.add_class::<TableCodec>()?;
    m.add_class::<FloatCodec>()?;
    m.add_class::<Float16Codec>()?;
    m.add_class::<Affine8Codec>()?;
    m.add_class::<Store>()?;
    m.add_class::<Filter>()?;
    m.add_class::<Plan>()?;
    m.add_class::<calls::Coarse>()?;
    Ok(())
}
