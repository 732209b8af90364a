//! The codecs as Python objects: `HammingCodec`, `TableCodec`, `FloatCodec`.
//!
//! Each is built once (its kernels picked from the CPU, or from `isa=`) and answers the same calls
//! over a [`Store`]: `search` (every list), `search_lists` (each query its own lists, in the order
//! given, e.g. by a coarse quantizer), `score` (given rows, in order) and `rescore` (the best of given
//! rows). Results are `(scores float32, ids int64)`, scores higher-is-better (Hamming:
//! `-distance`), ids the store's labels (or positions), `-1` / `-inf` where a query has fewer
//! results than asked (a filter). The calls only convert arguments; the driver of
//! `qama_core::driver` runs the search, without the GIL.
use numpy::prelude::*;
use numpy::{Ix1, Ix2, PyArray2};
use pyo3::prelude::*;
use qama_core::codec::float::FloatCodec as CoreFloat;
use qama_core::codec::hamming::HammingCodec as CoreHamming;
use qama_core::codec::table::{Bounds, Layout, Recon, TableCodec as CoreTable, Tables};
use qama_core::codec::{Codec, Extent};
use qama_core::driver::{self, Candidates, Plan};
use qama_core::select::{Allowed, Hits, MISSING};
use qama_core::Isa;

use crate::args::{array_arg, copied, count_arg, isa_arg, k_arg, opt_int_arg, opt_str_arg, rows_cols};
use crate::errors::{core_error, value_error};
use crate::store::{Store, Unit};
use crate::{into_2d, run_core};

type Scored<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<i64>>);

/// `(scores, ids)` arrays of a core result (missing slots: id -1).
fn scored<'py>(py: Python<'py>, hits: Hits, nq: usize) -> PyResult<Scored<'py>> {
    let ids: Vec<i64> = hits
        .ids
        .into_iter()
        .map(|v| if v == MISSING { -1 } else { v as i64 })
        .collect();
    Ok((into_2d(py, hits.scores, nq, hits.k)?, into_2d(py, ids, nq, hits.k)?))
}

/// Queries as the codec reads them: `values` row-major, `len` values per query.
struct Queries<T> {
    values: Vec<T>,
    nq: usize,
    len: usize,
}

impl<T> Queries<T> {
    fn row(&self, i: usize) -> &[T] {
        &self.values[i * self.len..(i + 1) * self.len]
    }
}

/// The allowed-labels argument: a `uint64` bitmap (`allowed_bits`) or sorted labels
/// (`allowed_labels`), at most one.
struct AllowedArg {
    words: Vec<u64>,
    sorted: bool,
}

impl AllowedArg {
    fn parse(bits: Option<&Bound<'_, PyAny>>, labels: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Self>> {
        fn given<'a, 'py>(o: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
            o.filter(|o| !o.is_none())
        }
        match (given(bits), given(labels)) {
            (Some(_), Some(_)) => Err(value_error("give allowed_bits or allowed_labels, not both")),
            (Some(b), None) => {
                let a = array_arg::<u64, Ix1>(b, "allowed_bits")?;
                Ok(Some(Self { words: copied(&a, "allowed_bits")?, sorted: false }))
            }
            (None, Some(l)) => {
                let a = array_arg::<u64, Ix1>(l, "allowed_labels")?;
                let words = copied(&a, "allowed_labels")?;
                if words.windows(2).any(|w| w[0] > w[1]) {
                    return Err(value_error("allowed_labels must be sorted ascending"));
                }
                Ok(Some(Self { words, sorted: true }))
            }
            (None, None) => Ok(None),
        }
    }

    fn get(&self) -> Allowed<'_> {
        if self.sorted {
            Allowed::Sorted(&self.words)
        } else {
            Allowed::Bitmap(&self.words)
        }
    }
}

/// Candidate rows `int64 (nq, kc)` (or `(kc,)`, the same for every query).
fn candidates_arg(candidates: &Bound<'_, PyAny>, nq: usize) -> PyResult<(Vec<i64>, Option<usize>)> {
    if let Ok(c) = array_arg::<i64, Ix2>(candidates, "candidates") {
        let (rows, kc) = rows_cols(&c);
        if rows != nq {
            return Err(value_error(format!("candidates has {rows} rows but there are {nq} queries")));
        }
        return Ok((copied(&c, "candidates")?, Some(kc)));
    }
    let c = array_arg::<i64, Ix1>(candidates, "candidates")?;
    Ok((copied(&c, "candidates")?, None))
}

/// What each Python codec class supplies to the shared calls below.
trait Binding: Sync {
    type C: Codec + Sync;
    type In: Copy + Send + Sync + numpy::Element;
    fn codec(&self) -> &Self::C;
    fn unit(&self) -> Unit;
    /// Reads the queries argument.
    fn queries(&self, q: &Bound<'_, PyAny>) -> PyResult<Queries<Self::In>>;
    /// Makes query `i` ready for extents bounded by `bounds`.
    fn prepare(&self, q: &[Self::In], i: usize, bounds: Bounds) -> qama_core::Result<<Self::C as Codec>::Query>;
    /// Scale and bias bounds of `extents` (only table codecs use them).
    fn bounds(&self, _extents: &[Extent<'_, <Self::C as Codec>::Unit>]) -> Bounds {
        Bounds::default()
    }
}

fn search<'py, B: Binding>(
    b: &B,
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    store: &Store,
    k: &Bound<'py, PyAny>,
    allowed: Option<AllowedArg>,
) -> PyResult<Scored<'py>> {
    store.check_unit(b.unit())?;
    let k = k_arg(k)?;
    let q = b.queries(queries)?;
    let hits = run_core(py, || {
        let codec = b.codec();
        let extents = store.all(codec.row_units(), codec.block_rows())?;
        let bounds = b.bounds(&extents);
        driver::search(codec, q.nq, k, |i| b.prepare(q.row(i), i, bounds), &extents, allowed.as_ref().map(AllowedArg::get))
    })?;
    scored(py, hits, q.nq)
}

#[allow(clippy::too_many_arguments)]
fn search_lists<'py, B: Binding>(
    b: &B,
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    store: &Store,
    k: &Bound<'py, PyAny>,
    lists: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    probe: &Bound<'py, PyAny>,
    allowed: Option<AllowedArg>,
) -> PyResult<Scored<'py>> {
    store.check_unit(b.unit())?;
    let k = k_arg(k)?;
    let probe = count_arg(probe, "nprobe")?;
    let q = b.queries(queries)?;
    let order = array_arg::<i64, Ix2>(lists, "lists")?;
    let (rows, width) = rows_cols(&order);
    if rows != q.nq {
        return Err(value_error(format!("lists has {rows} rows but there are {} queries", q.nq)));
    }
    let order = copied(&order, "lists")?;
    if let Some(at) = order.iter().position(|&l| l < 0 || l as u64 >= store.list_count() as u64) {
        return Err(value_error(format!(
            "lists[{}, {}] = {} is not a list (must be in 0..{})",
            at / width.max(1),
            at % width.max(1),
            order[at],
            store.list_count()
        )));
    }
    let bias = match bias.filter(|b| !b.is_none()) {
        Some(arr) => {
            let a = array_arg::<f32, Ix2>(arr, "bias")?;
            if rows_cols(&a) != (rows, width) {
                return Err(value_error(format!("bias must have the shape of lists ({rows}, {width})")));
            }
            Some(copied(&a, "bias")?)
        }
        None => None,
    };
    let hits = run_core(py, || {
        let codec = b.codec();
        let all = store.all::<<B::C as Codec>::Unit>(codec.row_units(), codec.block_rows())?;
        let mut bounds = b.bounds(&all);
        if let Some(bias) = &bias {
            bounds.max_bias = bias.iter().fold(0f64, |m, &v| m.max(f64::from(v).abs()));
        }
        driver::search_lists(
            codec,
            q.nq,
            k,
            store.total(),
            |i| b.prepare(q.row(i), i, bounds),
            |i, _| {
                let lists = order[i * width..(i + 1) * width]
                    .iter()
                    .enumerate()
                    .map(|(j, &l)| {
                        let bias = bias.as_ref().map_or(0.0, |b| b[i * width + j]);
                        store.list(l as usize, codec.row_units(), codec.block_rows(), bias, 0)
                    })
                    .collect::<qama_core::Result<Vec<_>>>()?;
                Ok(Plan { lists, probe })
            },
            allowed.as_ref().map(AllowedArg::get),
        )
    })?;
    scored(py, hits, q.nq)
}

fn score<'py, B: Binding>(
    b: &B,
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    store: &Store,
    candidates: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    store.check_unit(b.unit())?;
    let q = b.queries(queries)?;
    let (cands, kc) = candidates_arg(candidates, q.nq)?;
    let width = kc.unwrap_or(cands.len());
    let scores = run_core(py, || {
        let codec = b.codec();
        let extents = store.all(codec.row_units(), codec.block_rows())?;
        let bounds = b.bounds(&extents);
        let c = kc.map_or(Candidates::Shared(&cands), |kc| Candidates::PerQuery(&cands, kc));
        driver::score_rows(codec, q.nq, |i| b.prepare(q.row(i), i, bounds), &extents, c)
    })?;
    into_2d(py, scores, q.nq, width)
}

fn rescore<'py, B: Binding>(
    b: &B,
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    store: &Store,
    candidates: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    allowed: Option<AllowedArg>,
) -> PyResult<Scored<'py>> {
    store.check_unit(b.unit())?;
    let k = k_arg(k)?;
    let q = b.queries(queries)?;
    let (cands, kc) = candidates_arg(candidates, q.nq)?;
    let hits = run_core(py, || {
        let codec = b.codec();
        let extents = store.all(codec.row_units(), codec.block_rows())?;
        let bounds = b.bounds(&extents);
        let c = kc.map_or(Candidates::Shared(&cands), |kc| Candidates::PerQuery(&cands, kc));
        driver::rescore(codec, q.nq, k, |i| b.prepare(q.row(i), i, bounds), &extents, c, allowed.as_ref().map(AllowedArg::get))
    })?;
    scored(py, hits, q.nq)
}

/// Float queries `float32 (nq, len)` (`len` columns, or `(nq, m, 256)` tables flattened).
fn float_queries(q: &Bound<'_, PyAny>, len: usize, what: &str) -> PyResult<Queries<f32>> {
    if let Ok(t) = array_arg::<f32, numpy::Ix3>(q, "queries") {
        let shape = t.shape().to_vec();
        if shape[1] * shape[2] != len {
            return Err(value_error(format!("queries has shape {shape:?}; {what}")));
        }
        return Ok(Queries { values: copied(&t, "queries")?, nq: shape[0], len });
    }
    let a = array_arg::<f32, Ix2>(q, "queries")?;
    let (nq, cols) = rows_cols(&a);
    if cols != len {
        return Err(value_error(format!("queries has {cols} columns; {what}")));
    }
    Ok(Queries { values: copied(&a, "queries")?, nq, len })
}

macro_rules! codec_methods {
    ($class:ident { $($extra:tt)* }) => {
        #[pymethods]
        impl $class {
            $($extra)*

            /// Top-`k` over every stored row: `(scores float32, ids int64)`, both `(nq, min(k, rows))`.
            #[pyo3(signature = (queries, store, k, allowed_bits=None, allowed_labels=None))]
            fn search<'py>(
                &self,
                py: Python<'py>,
                queries: &Bound<'py, PyAny>,
                store: &Store,
                k: &Bound<'py, PyAny>,
                allowed_bits: Option<&Bound<'py, PyAny>>,
                allowed_labels: Option<&Bound<'py, PyAny>>,
            ) -> PyResult<Scored<'py>> {
                search(self, py, queries, store, k, AllowedArg::parse(allowed_bits, allowed_labels)?)
            }

            /// Top-`k` of each query over its lists `lists[i]` (int64, best first): the first
            /// `nprobe`, then more while fewer than `k` results are found. `bias` (float32, the shape
            /// of `lists`) is added to every score of a list.
            #[pyo3(signature = (queries, store, k, lists, nprobe, bias=None, allowed_bits=None, allowed_labels=None))]
            #[allow(clippy::too_many_arguments)]
            fn search_lists<'py>(
                &self,
                py: Python<'py>,
                queries: &Bound<'py, PyAny>,
                store: &Store,
                k: &Bound<'py, PyAny>,
                lists: &Bound<'py, PyAny>,
                nprobe: &Bound<'py, PyAny>,
                bias: Option<&Bound<'py, PyAny>>,
                allowed_bits: Option<&Bound<'py, PyAny>>,
                allowed_labels: Option<&Bound<'py, PyAny>>,
            ) -> PyResult<Scored<'py>> {
                let allowed = AllowedArg::parse(allowed_bits, allowed_labels)?;
                search_lists(self, py, queries, store, k, lists, bias, nprobe, allowed)
            }

            /// Scores `float32 (nq, kc)` of candidate rows (positions in the store, `int64 (nq, kc)`
            /// or `(kc,)` for all queries), in order.
            fn score<'py>(
                &self,
                py: Python<'py>,
                queries: &Bound<'py, PyAny>,
                store: &Store,
                candidates: &Bound<'py, PyAny>,
            ) -> PyResult<Bound<'py, PyArray2<f32>>> {
                score(self, py, queries, store, candidates)
            }

            /// The best `min(k, kc)` of distinct candidate rows (positions, `int64 (nq, kc)` or
            /// `(kc,)`): `(scores float32, ids int64)`.
            #[pyo3(signature = (queries, store, candidates, k, allowed_bits=None, allowed_labels=None))]
            #[allow(clippy::too_many_arguments)]
            fn rescore<'py>(
                &self,
                py: Python<'py>,
                queries: &Bound<'py, PyAny>,
                store: &Store,
                candidates: &Bound<'py, PyAny>,
                k: &Bound<'py, PyAny>,
                allowed_bits: Option<&Bound<'py, PyAny>>,
                allowed_labels: Option<&Bound<'py, PyAny>>,
            ) -> PyResult<Scored<'py>> {
                rescore(self, py, queries, store, candidates, k, AllowedArg::parse(allowed_bits, allowed_labels)?)
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

/// Symmetric Hamming over `words`-word codes, the first `nbits` bits compared; queries are codes
/// (`uint64 (nq, words)`), scores `-distance`.
#[pyclass(frozen, module = "qama_rs._core")]
pub struct HammingCodec {
    inner: CoreHamming,
    isa: Isa,
}

impl Binding for HammingCodec {
    type C = CoreHamming;
    type In = u64;
    fn codec(&self) -> &CoreHamming {
        &self.inner
    }
    fn unit(&self) -> Unit {
        Unit::U64
    }
    fn queries(&self, q: &Bound<'_, PyAny>) -> PyResult<Queries<u64>> {
        let a = array_arg::<u64, Ix2>(q, "queries")?;
        let (nq, words) = rows_cols(&a);
        if words != self.inner.words() {
            return Err(value_error(format!(
                "queries has {words} words per row; the codec reads {}",
                self.inner.words()
            )));
        }
        Ok(Queries { values: copied(&a, "queries")?, nq, len: words })
    }
    fn prepare(&self, q: &[u64], _i: usize, _b: Bounds) -> qama_core::Result<Vec<u64>> {
        self.inner.prepare(q)
    }
}

codec_methods!(HammingCodec {
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

/// Codes scored through per-query byte tables: `TableCodec.recon(recon, layout)` (per-dimension
/// reconstruction values `float32 (dims, 2^bits)`; queries `float32 (nq, dims)`) or
/// `TableCodec.given(m, layout)` (queries are tables `float32 (nq, m, 256)`); `layout` is
/// `"rows"` or `"blocks"` (32-row blocks, the quantized kernel; bits <= 4 for `recon`).
#[pyclass(frozen, module = "qama_rs._core")]
pub struct TableCodec {
    inner: CoreTable,
    isa: Isa,
}

fn layout_arg(layout: Option<&Bound<'_, PyAny>>) -> PyResult<Layout> {
    match opt_str_arg(layout, "layout")?.as_deref() {
        None | Some("blocks") => Ok(Layout::Blocks),
        Some("rows") => Ok(Layout::Rows),
        Some(other) => Err(value_error(format!("layout = {other:?}; must be 'rows' or 'blocks'"))),
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

impl Binding for TableCodec {
    type C = CoreTable;
    type In = f32;
    fn codec(&self) -> &CoreTable {
        &self.inner
    }
    fn unit(&self) -> Unit {
        Unit::U8
    }
    fn queries(&self, q: &Bound<'_, PyAny>) -> PyResult<Queries<f32>> {
        let what = match self.inner.tables() {
            Tables::Recon(r) => format!("the codec has {} dimensions", r.format().dims()),
            Tables::Given { m } => format!("the codec takes tables (nq, {m}, 256)"),
        };
        float_queries(q, self.inner.query_len(), &what)
    }
    fn prepare(&self, q: &[f32], i: usize, bounds: Bounds) -> qama_core::Result<qama_core::codec::table::Prepared> {
        self.inner.prepare(q, i, bounds)
    }
    fn bounds(&self, extents: &[Extent<'_, u8>]) -> Bounds {
        self.inner.bounds(extents)
    }
}

codec_methods!(TableCodec {
    /// A codec of per-dimension reconstruction values `float32 (dims, 2^bits)`.
    #[staticmethod]
    #[pyo3(signature = (recon, layout=None, isa=None))]
    fn recon(recon: &Bound<'_, PyAny>, layout: Option<&Bound<'_, PyAny>>, isa: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let array = array_arg::<f32, Ix2>(recon, "recon")?;
        let (dims, cols) = rows_cols(&array);
        let format = qama_core::codec::table::CodeFormat::new(dims, bits_of_columns(cols)?)
            .map_err(|e| value_error(format!("recon: {e}")))?;
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

    /// `"rows"` or `"blocks"`.
    #[getter]
    fn layout(&self) -> &'static str {
        match self.inner.layout() {
            Layout::Rows => "rows",
            Layout::Blocks => "blocks",
        }
    }
});

/// Float rows scored by inner product: `float32` rows, or float16 bits (`uint16`) with
/// `half=True`; queries `float32 (nq, dims)`.
#[pyclass(frozen, module = "qama_rs._core")]
pub struct FloatCodec {
    f32: CoreFloat<f32>,
    f16: Option<CoreFloat<u16>>,
    isa: Isa,
}

/// The float16 twin of a `FloatCodec(half=True)` (the calls dispatch on the store's unit).
struct Half<'a>(&'a FloatCodec, &'a CoreFloat<u16>);

impl Binding for FloatCodec {
    type C = CoreFloat<f32>;
    type In = f32;
    fn codec(&self) -> &CoreFloat<f32> {
        &self.f32
    }
    fn unit(&self) -> Unit {
        Unit::F32
    }
    fn queries(&self, q: &Bound<'_, PyAny>) -> PyResult<Queries<f32>> {
        float_queries(q, self.f32.dims(), &format!("the codec has {} dimensions", self.f32.dims()))
    }
    fn prepare(&self, q: &[f32], i: usize, _b: Bounds) -> qama_core::Result<Vec<f32>> {
        self.f32.prepare(q, i)
    }
}

impl Binding for Half<'_> {
    type C = CoreFloat<u16>;
    type In = f32;
    fn codec(&self) -> &CoreFloat<u16> {
        self.1
    }
    fn unit(&self) -> Unit {
        Unit::U16
    }
    fn queries(&self, q: &Bound<'_, PyAny>) -> PyResult<Queries<f32>> {
        self.0.queries(q)
    }
    fn prepare(&self, q: &[f32], i: usize, _b: Bounds) -> qama_core::Result<Vec<f32>> {
        self.1.prepare(q, i)
    }
}

#[pymethods]
impl FloatCodec {
    #[new]
    #[pyo3(signature = (dims, half=false, isa=None))]
    fn new(dims: &Bound<'_, PyAny>, half: bool, isa: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let dims = count_arg(dims, "dims")?;
        let f32 = CoreFloat::new(dims).map_err(core_error)?;
        let f16 = if half { Some(CoreFloat::new(dims).map_err(core_error)?) } else { None };
        Ok(Self { f32, f16, isa: isa_arg(isa)? })
    }

    /// Top-`k` over every stored row (see `HammingCodec.search`).
    #[pyo3(signature = (queries, store, k, allowed_bits=None, allowed_labels=None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        store: &Store,
        k: &Bound<'py, PyAny>,
        allowed_bits: Option<&Bound<'py, PyAny>>,
        allowed_labels: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Scored<'py>> {
        let allowed = AllowedArg::parse(allowed_bits, allowed_labels)?;
        match &self.f16 {
            Some(h) => search(&Half(self, h), py, queries, store, k, allowed),
            None => search(self, py, queries, store, k, allowed),
        }
    }

    /// Top-`k` of each query over its lists (see `HammingCodec.search_lists`).
    #[pyo3(signature = (queries, store, k, lists, nprobe, bias=None, allowed_bits=None, allowed_labels=None))]
    #[allow(clippy::too_many_arguments)]
    fn search_lists<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        store: &Store,
        k: &Bound<'py, PyAny>,
        lists: &Bound<'py, PyAny>,
        nprobe: &Bound<'py, PyAny>,
        bias: Option<&Bound<'py, PyAny>>,
        allowed_bits: Option<&Bound<'py, PyAny>>,
        allowed_labels: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Scored<'py>> {
        let allowed = AllowedArg::parse(allowed_bits, allowed_labels)?;
        match &self.f16 {
            Some(h) => search_lists(&Half(self, h), py, queries, store, k, lists, bias, nprobe, allowed),
            None => search_lists(self, py, queries, store, k, lists, bias, nprobe, allowed),
        }
    }

    /// Scores of candidate rows, in order (see `HammingCodec.score`).
    fn score<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        store: &Store,
        candidates: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        match &self.f16 {
            Some(h) => score(&Half(self, h), py, queries, store, candidates),
            None => score(self, py, queries, store, candidates),
        }
    }

    /// The best of distinct candidate rows (see `HammingCodec.rescore`).
    #[pyo3(signature = (queries, store, candidates, k, allowed_bits=None, allowed_labels=None))]
    #[allow(clippy::too_many_arguments)]
    fn rescore<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        store: &Store,
        candidates: &Bound<'py, PyAny>,
        k: &Bound<'py, PyAny>,
        allowed_bits: Option<&Bound<'py, PyAny>>,
        allowed_labels: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Scored<'py>> {
        let allowed = AllowedArg::parse(allowed_bits, allowed_labels)?;
        match &self.f16 {
            Some(h) => rescore(&Half(self, h), py, queries, store, candidates, k, allowed),
            None => rescore(self, py, queries, store, candidates, k, allowed),
        }
    }

    /// Values per stored row.
    #[getter]
    fn row_units(&self) -> usize {
        self.f32.dims()
    }

    /// Rows per block of the layout (1: row-major).
    #[getter]
    fn block_rows(&self) -> usize {
        1
    }

    /// Whether rows are float16.
    #[getter]
    fn half(&self) -> bool {
        self.f16.is_some()
    }

    /// The instruction-set level of the kernels.
    #[getter]
    fn isa(&self) -> &'static str {
        self.isa.name()
    }
}

/// Registers the codec classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<HammingCodec>()?;
    m.add_class::<TableCodec>()?;
    m.add_class::<FloatCodec>()?;
    m.add_class::<Store>()?;
    Ok(())
}
