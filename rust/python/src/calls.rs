//! The calls every codec class answers (`search`, `search_lists`, `score`, `rescore`), written once
//! against [`Binding`] as the methods of a [`Call`], and their argument objects: [`Filter`]
//! (allowed labels), [`Coarse`] (a partition's centroids) and [`Plan`] (each query's lists).
use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use numpy::{Ix1, Ix2, PyArray2};
use pyo3::prelude::*;
use qama_core::coarse::{Coarse as CoreCoarse, QUERY_BLOCK};
use qama_core::codec::table::Bounds;
use qama_core::codec::{Codec, Extent};
use qama_core::driver::{self, Candidates};
use qama_core::select::{AdmittedRows, Allowed, Hits, MISSING};
use qama_core::share::Helpers;

use crate::args::{
    array_arg, bool_arg, copied, count_arg, dtype_arg, isa_arg, object_arg, opt_float_arg,
    query_rows, rows_cols, Queries,
};
use crate::errors::{core_error, value_error};
use crate::store::{Store, Unit};
use crate::{into_2d, run_sized, Pair};

/// `(scores float32, ids int64)`.
pub type Scored<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<i64>>);

/// `(scores, ids)` arrays of a core result (missing slots: id -1).
fn scored<'py>(py: Python<'py>, hits: Hits, nq: usize) -> PyResult<Scored<'py>> {
    let ids: Vec<i64> = hits
        .ids
        .into_iter()
        .map(|v| if v == MISSING { -1 } else { v as i64 })
        .collect();
    Ok((
        into_2d(py, hits.scores, nq, hits.k)?,
        into_2d(py, ids, nq, hits.k)?,
    ))
}

/// What each codec class supplies to the shared calls.
pub trait Binding: Sync {
    type C: Codec + Sync;
    type In: Copy + Send + Sync + numpy::Element;
    fn codec(&self) -> &Self::C;
    fn unit(&self) -> Unit;
    /// Reads the queries argument.
    fn queries(&self, q: &Bound<'_, PyAny>) -> PyResult<Queries<Self::In>>;
    /// Makes query `i` ready for rows whose scales and biases are bounded by `bounds`.
    fn prepare(
        &self,
        q: &[Self::In],
        i: usize,
        bounds: Bounds,
    ) -> qama_core::Result<<Self::C as Codec>::Query>;
    /// Makes the queries of `range` ready, in order (a codec may do several at once).
    fn prepare_range(
        &self,
        q: &Queries<Self::In>,
        range: Range<usize>,
        bounds: Bounds,
    ) -> qama_core::Result<Vec<<Self::C as Codec>::Query>> {
        range.map(|i| self.prepare(q.row(i), i, bounds)).collect()
    }
}

/// Labels a search may return: `Filter.bits(words)` (a `uint64` bitmap over labels) or
/// `Filter.labels(sorted)` (ascending `uint64` labels); `filter.admitting(store)` the same labels
/// with the rows of a store they admit, for many searches of that store.
#[pyclass(frozen, module = "qama_rs._core")]
pub struct Filter {
    words: Vec<u64>,
    sorted: bool,
    /// The rows of one store (its serial number) these labels admit.
    admitted: Option<(u64, AdmittedRows)>,
}

#[pymethods]
impl Filter {
    /// Label `l` allowed iff bit `l % 64` of `words[l / 64]` is set.
    #[staticmethod]
    fn bits(words: &Bound<'_, PyAny>) -> PyResult<Self> {
        let a = array_arg::<u64, Ix1>(words, "words")?;
        Ok(Self {
            words: copied(&a, "words")?,
            sorted: false,
            admitted: None,
        })
    }

    /// The allowed labels, ascending: held as a bitmap when that is at most about 16 times their
    /// size (a test per row instead of a binary search; built here, not in NumPy), else as they are.
    #[staticmethod]
    fn labels(labels: &Bound<'_, PyAny>) -> PyResult<Self> {
        let a = array_arg::<u64, Ix1>(labels, "labels")?;
        let owned;
        let labels = match a.as_slice() {
            Ok(s) => s,
            Err(_) => {
                owned = copied(&a, "labels")?;
                &owned[..]
            }
        };
        if labels.windows(2).any(|w| w[0] > w[1]) {
            return Err(value_error("labels must be sorted ascending"));
        }
        let words = labels.last().map_or(0, |&top| top / 64 + 1);
        if words > 16 * labels.len() as u64 + 4096 {
            return Ok(Self {
                words: labels.to_vec(),
                sorted: true,
                admitted: None,
            });
        }
        let mut bits = vec![0u64; words as usize];
        for &l in labels {
            bits[(l / 64) as usize] |= 1 << (l % 64);
        }
        Ok(Self {
            words: bits,
            sorted: false,
            admitted: None,
        })
    }

    /// The serial number of the store whose admitted rows this holds ([`Filter::admitting`]), or None.
    #[getter]
    fn store_serial(&self) -> Option<u64> {
        self.admitted.as_ref().map(|(serial, _)| *serial)
    }

    /// These labels with the rows of `store` they admit, found now (a test per stored row: a bit, or
    /// a binary search of sorted labels; without the GIL): block scans of that store then skip the
    /// blocks they admit no row of. Searches of any other store (the index makes a new one when its
    /// rows change) use the labels alone.
    fn admitting(&self, py: Python<'_>, store: &Bound<'_, PyAny>) -> PyResult<Self> {
        let store = object_arg::<Store>(store, "store")?.get();
        let rows = run_sized(py, 0, || Ok(store.admitted(self.get())))?;
        Ok(Self {
            words: self.words.clone(),
            sorted: self.sorted,
            admitted: Some((store.serial(), rows)),
        })
    }
}

impl Filter {
    /// The admitted rows of `store` ([`Filter::admitting`]), if these are for that store.
    fn admitted_for(&self, store: &Store) -> Option<&AdmittedRows> {
        self.admitted
            .as_ref()
            .filter(|(serial, _)| *serial == store.serial())
            .map(|(_, rows)| rows)
    }

    fn get(&self) -> Allowed<'_> {
        if self.sorted {
            Allowed::Sorted(&self.words)
        } else {
            Allowed::Bitmap(&self.words)
        }
    }
}

/// The optional `filter` argument.
pub fn filter_arg<'a, 'py>(
    filter: Option<&'a Bound<'py, PyAny>>,
) -> PyResult<Option<&'a Bound<'py, Filter>>> {
    filter
        .filter(|f| !f.is_none())
        .map(|f| object_arg::<Filter>(f, "filter"))
        .transpose()
}

fn allowed<'a>(filter: Option<&'a Bound<'_, Filter>>) -> Option<Allowed<'a>> {
    filter.map(|f| f.get().get())
}

/// A partition's centroids `float32 (nlist, dims)`: `Coarse(centroids)`; `plan` ranks its lists.
#[pyclass(frozen, module = "qama_rs._core")]
pub struct Coarse {
    inner: Arc<CoreCoarse>,
}

#[pymethods]
impl Coarse {
    /// With `radius` (the rows' typical norm), lists rank by the cell ranking: how near their
    /// centroid is to the query scaled to that norm; without, by `<q, centroid>`.
    #[new]
    #[pyo3(signature = (centroids, isa=None, radius=None))]
    fn new(
        centroids: &Bound<'_, PyAny>,
        isa: Option<&Bound<'_, PyAny>>,
        radius: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let c = array_arg::<f32, Ix2>(centroids, "centroids")?;
        let dims = rows_cols(&c).1;
        let radius = opt_float_arg(radius, "radius")?;
        let mut inner =
            CoreCoarse::new(copied(&c, "centroids")?, dims, isa_arg(isa)?).map_err(core_error)?;
        if let Some(r) = radius {
            inner = inner.with_radius(r).map_err(core_error)?;
        }
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The rows' typical norm that the cell ranking scales queries to, or None (lists rank by
    /// `<q, centroid>`).
    #[getter]
    fn radius(&self) -> Option<f64> {
        self.inner.radius()
    }

    /// Each query's `width` best lists (`queries`: `float32 (nq, dims)`; ranked as `new` says), the first
    /// `nprobe` scanned whatever happens; with `residual`, a list's product is the bias of its scores.
    /// The ranking is made where the plan is used (`search_lists`: each query's lists beside its
    /// scan, in parallel over a batch; the lists past `nprobe` only for a query they leave short),
    /// not here.
    fn plan(
        &self,
        queries: &Bound<'_, PyAny>,
        nprobe: &Bound<'_, PyAny>,
        width: &Bound<'_, PyAny>,
        residual: &Bound<'_, PyAny>,
    ) -> PyResult<Plan> {
        let residual = bool_arg(residual, "residual")?;
        let dims = self.inner.dims();
        let q = query_rows::<f32>(queries, dims, |cols| {
            format!("queries has {cols} columns; the centroids have {dims}")
        })?;
        let (nprobe, width) = (count_arg(nprobe, "nprobe")?, count_arg(width, "width")?);
        qama_core::codec::check_queries(&q.values, dims).map_err(core_error)?;
        let ranked = Ranked {
            coarse: self.inner.clone(),
            points: q.values,
            nq: q.nq,
            width: width.max(nprobe),
            residual,
        };
        Ok(Plan {
            lists: Lists::Ranked(ranked),
            nprobe,
        })
    }

    /// Whether the centroids are held as float16 (every value is one).
    #[getter]
    fn is_half(&self) -> bool {
        self.inner.is_half()
    }

    #[getter]
    fn nlist(&self) -> usize {
        self.inner.nlist()
    }

    /// Bytes the engine holds for the centroids (their values, and their int8 copy on AVX-512).
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.nbytes()
    }

    /// The centroids, `float32 (nlist, dims)` (a copy).
    fn centroids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        into_2d(
            py,
            self.inner.centroids(),
            self.inner.nlist(),
            self.inner.dims(),
        )
    }
}

/// Each query's lists, best first, with the bias of each (made by `Coarse.plan`, or given:
/// `Plan(lists int64 (nq, w), nprobe, bias float32 (nq, w) or None)`).
#[pyclass(frozen, module = "qama_rs._core")]
pub struct Plan {
    lists: Lists,
    nprobe: usize,
}

/// A plan's lists: given, or ranked by a coarse quantizer when a query is searched.
enum Lists {
    Given(Vec<Vec<(usize, f32)>>),
    Ranked(Ranked),
}

/// Queries to rank lists for: `width` best of `coarse` (its ranking; the product `<point, centroid>`
/// is the bias when `residual`).
struct Ranked {
    coarse: Arc<CoreCoarse>,
    points: Vec<f32>,
    nq: usize,
    width: usize,
    residual: bool,
}

impl Lists {
    fn queries(&self) -> usize {
        match self {
            Lists::Given(l) => l.len(),
            Lists::Ranked(r) => r.nq,
        }
    }

    /// The lists of each query in `range` (at most [`QUERY_BLOCK`]), best first; a coarse quantizer
    /// scores the queries together, and ranks only the first `width` (at most its plan's width:
    /// the lists past the probed ones are ranked for a query that needs them).
    fn of(&self, range: Range<usize>, width: usize) -> Vec<Cow<'_, [(usize, f32)]>> {
        match self {
            Lists::Given(l) => l[range].iter().map(|l| Cow::Borrowed(&l[..])).collect(),
            Lists::Ranked(r) => {
                let dims = r.coarse.dims();
                r.coarse
                    .best_block(
                        &r.points[range.start * dims..range.end * dims],
                        width.min(r.width),
                    )
                    .into_iter()
                    .map(|mut best| {
                        if !r.residual {
                            best.iter_mut().for_each(|(_, b)| *b = 0.0);
                        }
                        Cow::Owned(best)
                    })
                    .collect()
            }
        }
    }

    /// Whether lists past the first `n` are ranked only on demand (`of` with a width of `n`).
    fn ranked_past(&self, n: usize) -> bool {
        matches!(self, Lists::Ranked(r) if r.width > n)
    }

    /// The largest list a query can name, plus one.
    fn bound(&self) -> usize {
        match self {
            Lists::Given(l) => l.iter().flatten().map(|&(l, _)| l + 1).max().unwrap_or(0),
            Lists::Ranked(r) => r.coarse.nlist(),
        }
    }

    /// The largest `|bias|` a query's list can carry.
    fn max_bias(&self) -> f64 {
        match self {
            Lists::Given(l) => l
                .iter()
                .flatten()
                .fold(0f64, |m, &(_, b)| m.max(f64::from(b).abs())),
            // |<q, c>| <= |q| |c|: bounded by the largest of those products.
            Lists::Ranked(r) if r.residual => r.coarse.max_product(&r.points),
            Lists::Ranked(_) => 0.0,
        }
    }
}

#[pymethods]
impl Plan {
    #[new]
    #[pyo3(signature = (lists, nprobe, bias=None))]
    fn new(
        lists: &Bound<'_, PyAny>,
        nprobe: &Bound<'_, PyAny>,
        bias: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let order = array_arg::<i64, Ix2>(lists, "lists")?;
        let (rows, width) = rows_cols(&order);
        let order = copied(&order, "lists")?;
        if let Some(at) = order.iter().position(|&l| l < 0) {
            return Err(value_error(format!(
                "lists[{}, {}] = {} is negative",
                at / width.max(1),
                at % width.max(1),
                order[at]
            )));
        }
        let bias = match bias.filter(|b| !b.is_none()) {
            Some(b) => {
                let a = array_arg::<f32, Ix2>(b, "bias")?;
                if rows_cols(&a) != (rows, width) {
                    return Err(value_error(format!(
                        "bias must have the shape of lists ({rows}, {width})"
                    )));
                }
                copied(&a, "bias")?
            }
            None => vec![0.0; order.len()],
        };
        if let Some(at) = bias.iter().position(|b| !b.is_finite()) {
            return Err(value_error(format!(
                "bias[{}, {}] = {} is not finite",
                at / width.max(1),
                at % width.max(1),
                bias[at]
            )));
        }
        for (i, row) in order.chunks(width.max(1)).enumerate() {
            let mut seen = row.to_vec();
            seen.sort_unstable();
            if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
                return Err(value_error(format!("lists[{i}] names list {} twice", w[0])));
            }
        }
        let lists = (0..rows)
            .map(|i| {
                (0..width)
                    .map(|j| (order[i * width + j] as usize, bias[i * width + j]))
                    .collect()
            })
            .collect();
        Ok(Self {
            lists: Lists::Given(lists),
            nprobe: count_arg(nprobe, "nprobe")?,
        })
    }

    /// `(lists int64 (nq, w), bias float32 (nq, w))` (for tests and inspection; rows padded with -1 / 0;
    /// a plan of `Coarse.plan` ranks the lists now).
    fn arrays<'py>(&self, py: Python<'py>) -> PyResult<Pair<'py, PyArray2<i64>, PyArray2<f32>>> {
        let nq = self.lists.queries();
        // A coarse plan ranks its lists here (detached, like a search would).
        let rows: Vec<Vec<(usize, f32)>> = run_sized(py, nq * self.lists.bound(), || {
            Ok((0..nq)
                .step_by(QUERY_BLOCK)
                .flat_map(|i| self.lists.of(i..nq.min(i + QUERY_BLOCK), usize::MAX))
                .map(Cow::into_owned)
                .collect())
        })?;
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let (mut l, mut b) = (vec![-1i64; nq * width], vec![0f32; nq * width]);
        for (i, row) in rows.iter().enumerate() {
            for (j, &(list, bias)) in row.iter().enumerate() {
                (l[i * width + j], b[i * width + j]) = (list as i64, bias);
            }
        }
        Ok((into_2d(py, l, nq, width)?, into_2d(py, b, nq, width)?))
    }
}

/// The `store` argument, checked against the codec's rows.
pub fn store_arg<'a, 'py, B: Binding>(b: &B, store: &'a Bound<'py, PyAny>) -> PyResult<&'a Store> {
    let store = object_arg::<Store>(store, "store")?.get();
    store.check_rows(b.unit(), b.codec().row_units())?;
    Ok(store)
}

/// The queries of a range made ready, in order, as the driver calls it.
type Prepare<'a, C> =
    dyn Fn(Range<usize>) -> qama_core::Result<Vec<<C as Codec>::Query>> + Sync + 'a;

/// One call of a codec class over a store: the codec, the queries it read, the checked store.
pub struct Call<'a, 'py, B: Binding> {
    b: &'a B,
    py: Python<'py>,
    q: Queries<B::In>,
    store: &'a Store,
}

impl<'a, 'py, B: Binding> Call<'a, 'py, B> {
    /// Reads the queries argument for `b`, over `store` (from [`store_arg`]).
    pub fn new(
        b: &'a B,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        store: &'a Store,
    ) -> PyResult<Self> {
        Ok(Self {
            b,
            py,
            q: b.queries(queries)?,
            store,
        })
    }

    /// Runs `scan(codec, extents, prepare)` over every stored row on the core (a call reading
    /// `rows` rows in all: see [`Call::scan_work`]), the queries made ready for the store's largest
    /// scale; `admitted` a filter's admitted rows of the store, if any.
    fn over_store<T: Send>(
        &self,
        rows: usize,
        admitted: Option<&AdmittedRows>,
        scan: impl FnOnce(
                &B::C,
                &[Extent<'_, <B::C as Codec>::Unit>],
                &Prepare<'_, B::C>,
            ) -> qama_core::Result<T>
            + Send,
    ) -> PyResult<T> {
        let (b, q, store) = (self.b, &self.q, self.store);
        run_sized(self.py, self.scan_work(rows), || {
            let codec = b.codec();
            let extents = store.all(codec.row_units(), codec.block_rows(), admitted)?;
            let bounds = Bounds {
                max_scale: store.max_scale(),
                max_bias: 0.0,
            };
            scan(codec, &extents, &|range| b.prepare_range(q, range, bounds))
        })
    }

    /// Work units of reading `rows` rows: an eighth of their bytes, so a scan of wide rows goes
    /// parallel at fewer rows than one of narrow rows.
    fn scan_work(&self, rows: usize) -> usize {
        let row_bytes = (self.b.codec().row_units())
            .saturating_mul(std::mem::size_of::<<B::C as Codec>::Unit>());
        rows.saturating_mul(row_bytes) / 8
    }

    /// Top-`k` over every stored row.
    pub fn search(&self, k: usize, filter: Option<&Bound<'_, Filter>>) -> PyResult<Scored<'py>> {
        let (nq, allowed) = (self.q.nq, allowed(filter));
        let rows = nq.saturating_mul(self.store.total());
        let admitted = filter.and_then(|f| f.get().admitted_for(self.store));
        // A call of little work runs on the calling thread (`run_sized`): the process pool's free
        // threads may join it on its tiles (see `qama_core::share`).
        let pool = (self.scan_work(rows) < crate::PARALLEL_WORK)
            .then(crate::pool::pool)
            .and_then(Result::ok);
        let helpers = pool
            .as_deref()
            .map(|p| Helpers::new(p, p.current_num_threads() - 1));
        let hits = self.over_store(rows, admitted, |codec, extents, prepare| {
            driver::search_helped(codec, nq, k, prepare, extents, allowed, helpers)
        })?;
        scored(self.py, hits, nq)
    }

    /// Top-`k` of each query over its lists in `plan`.
    pub fn search_lists(
        &self,
        k: usize,
        plan: &Plan,
        filter: Option<&Bound<'_, Filter>>,
    ) -> PyResult<Scored<'py>> {
        let (b, q, store) = (self.b, &self.q, self.store);
        if plan.lists.queries() != q.nq {
            return Err(value_error(format!(
                "the plan has {} queries; there are {}",
                plan.lists.queries(),
                q.nq
            )));
        }
        if plan.lists.bound() > store.list_count() {
            return Err(value_error(format!(
                "the plan names list {}; the store has {}",
                plan.lists.bound() - 1,
                store.list_count()
            )));
        }
        let allowed = allowed(filter);
        let admitted = filter.and_then(|f| f.get().admitted_for(store));
        let work = match &plan.lists {
            Lists::Given(lists) => self.scan_work(
                lists
                    .iter()
                    .flat_map(|l| l.iter().take(plan.nprobe))
                    .fold(0usize, |n, &(l, _)| n.saturating_add(store.list_rows(l))),
            ),
            // The coarse scores (a multiply-add a value, about what a code byte costs: an eighth
            // of them, like the bytes), and the probed share of the rows.
            Lists::Ranked(r) => {
                let lists = store.list_count().max(1);
                let probed =
                    self.scan_work(store.total().saturating_mul(plan.nprobe.min(lists)) / lists);
                q.nq.saturating_mul(r.coarse.nlist() * r.coarse.dims() / 8 + probed)
            }
        };
        // Fewer queries than threads: the process pool's threads may join the caller on each
        // (see `qama_core::share`), whichever pool the call runs on.
        let pool = crate::pool::pool().ok();
        let helpers = pool
            .as_deref()
            .filter(|p| q.nq < p.current_num_threads())
            .map(|p| Helpers::new(p, p.current_num_threads() - 1));
        let hits = run_sized(self.py, work, || {
            let codec = b.codec();
            let bounds = Bounds {
                max_scale: store.max_scale(),
                max_bias: plan.lists.max_bias(),
            };
            driver::search_lists(
                codec,
                q.nq,
                k,
                store.total(),
                |range| b.prepare_range(q, range, bounds),
                |range, all| {
                    // A ranked plan ranks the probed lists first: a list past them costs its
                    // exact coarse score (most candidates of a wide plan), and most queries
                    // never reach one (1 % filter, nprobe 8, 1,024 lists: 1.5 % of queries).
                    let width = if all { usize::MAX } else { plan.nprobe };
                    plan.lists
                        .of(range, width)
                        .iter()
                        .map(|ranked| {
                            let lists = ranked
                                .iter()
                                .map(|&(l, bias)| {
                                    store.list(
                                        l,
                                        codec.row_units(),
                                        codec.block_rows(),
                                        bias,
                                        store.list_start(l),
                                        admitted,
                                    )
                                })
                                .collect::<qama_core::Result<Vec<_>>>()?;
                            Ok(driver::Plan {
                                lists,
                                keys: ranked.iter().map(|&(l, _)| l).collect(),
                                probe: plan.nprobe,
                                more: !all && plan.lists.ranked_past(plan.nprobe),
                            })
                        })
                        .collect()
                },
                allowed,
                helpers,
            )
        })?;
        scored(self.py, hits, q.nq)
    }

    /// Scores `(nq, kc)` of candidate rows, in order.
    pub fn score(&self, candidates: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let nq = self.q.nq;
        let cands = candidates_arg(candidates, nq)?;
        let width = cands.width();
        let scores =
            self.over_store(nq.saturating_mul(width), None, |codec, extents, prepare| {
                driver::score_rows(codec, nq, prepare, extents, cands.get())
            })?;
        into_2d(self.py, scores, nq, width)
    }

    /// The best `min(k, kc)` of distinct candidate rows.
    pub fn rescore(
        &self,
        candidates: &Bound<'py, PyAny>,
        k: usize,
        filter: Option<&Bound<'_, Filter>>,
    ) -> PyResult<Scored<'py>> {
        let nq = self.q.nq;
        let cands = candidates_arg(candidates, nq)?;
        let allowed = allowed(filter);
        let hits = self.over_store(
            nq.saturating_mul(cands.width()),
            None,
            |codec, extents, prepare| {
                driver::rescore(codec, nq, k, prepare, extents, cands.get(), allowed)
            },
        )?;
        scored(self.py, hits, nq)
    }
}

/// Candidate rows, `kc` per query (`PerQuery`) or the same for every query.
struct CandidateRows {
    rows: Vec<i64>,
    kc: Option<usize>,
}

impl CandidateRows {
    /// Candidates per query.
    fn width(&self) -> usize {
        self.kc.unwrap_or(self.rows.len())
    }

    fn get(&self) -> Candidates<'_> {
        match self.kc {
            Some(kc) => Candidates::PerQuery(&self.rows, kc),
            None => Candidates::Shared(&self.rows),
        }
    }
}

/// Candidate rows `int64 (nq, kc)` (or `(kc,)`, the same for every query).
fn candidates_arg(candidates: &Bound<'_, PyAny>, nq: usize) -> PyResult<CandidateRows> {
    dtype_arg::<i64>(candidates, "candidates")?;
    if let Ok(c) = array_arg::<i64, Ix2>(candidates, "candidates") {
        let (rows, kc) = rows_cols(&c);
        if rows != nq {
            return Err(value_error(format!(
                "candidates has {rows} rows but there are {nq} queries"
            )));
        }
        return Ok(CandidateRows {
            rows: copied(&c, "candidates")?,
            kc: Some(kc),
        });
    }
    let c = array_arg::<i64, Ix1>(candidates, "candidates")?;
    Ok(CandidateRows {
        rows: copied(&c, "candidates")?,
        kc: None,
    })
}
