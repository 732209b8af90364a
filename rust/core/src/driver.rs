//! The one driver of every search, written once against [`Codec`]: threads, tiles and the top-k.
//!
//! - [`search`] (flat: every query reads every extent), in one of two regimes: *batch* (at least
//!   `threads * queries_per_chunk` queries; compute-bound): each rayon task takes a chunk of
//!   queries, prepares it, and walks the rows tile by tile (a tile stays in L2 while every query of
//!   the chunk scans it); *tiles* (few queries; memory-bound): queries are prepared once and the
//!   tiles of all extents are scanned in parallel, each task keeping partial top-k's that are merged
//!   at the end (the tasks share each query's bound, so a task starting empty prunes like the best);
//!   [`search_helped`] scans them on the calling thread with the helper threads that join it.
//! - [`search_lists`] (partitioned: each query reads its own extents, a list at a time, in the
//!   order a plan gives): one query is parallel over its first lists (on the current pool, or on
//!   the calling thread with the helper threads that join it: [`crate::share`]); a batch is parallel over
//!   chunks of queries, each chunk planned [`PLAN_GROUP`] queries at a time (a coarse quantizer
//!   reads its centroids once a group) and scanned list-major (a list the chunk's queries share is
//!   read once, then scanned for each of them from cache). Lists past the planned count are
//!   scanned while a query has fewer than `k` results (a filter, or lists too small), so a query
//!   gets `k` results whenever `k` allowed rows exist.
//! - [`score_rows`] / [`rescore`]: given candidate rows (positions in the concatenated extents),
//!   parallel over queries.
//!
//! Threads: rayon's global pool (`RAYON_NUM_THREADS`), or the pool a caller installs.
use std::ops::Range;
use std::sync::atomic::AtomicU32;
use std::sync::{Mutex, MutexGuard};

use rayon::prelude::*;

use crate::codec::{Codec, Extent};
use crate::error::{checked_size, shape_err, try_zeroed, value_err, QamaError, Result};
use crate::select::{Allowed, Hits, TopK};
use crate::share::Helpers;

/// A lock that a panic elsewhere left poisoned is still usable (its value is whole).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The value a shared part left in `m` (every part has run when the share returns).
fn taken<T>(m: Mutex<Option<T>>) -> T {
    m.into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .expect("every part ran")
}

/// Largest `k` a search accepts (results are allocated in full).
pub const MAX_K: usize = 1 << 31;

/// Rows a search may address (labels are `u64`, results `int64` in Python).
pub const MAX_ROWS: usize = 1 << 48;

fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        return value_err("k = 0; must be at least 1");
    }
    Ok(())
}

/// [`Codec::check_extent`] with the extent's name formatted only for a failure (a search checks
/// every extent of every query's lists: a name each would cost more than the check).
fn check_named<C: Codec>(
    codec: &C,
    e: &Extent<'_, C::Unit>,
    name: impl FnOnce() -> String,
) -> Result<()> {
    match codec.check_extent(e, "") {
        Ok(()) => Ok(()),
        Err(_) => codec.check_extent(e, &name()),
    }
}

fn check_extents<C: Codec>(codec: &C, extents: &[Extent<'_, C::Unit>]) -> Result<usize> {
    let mut total = 0usize;
    for (i, e) in extents.iter().enumerate() {
        check_named(codec, e, || format!("extent {i}"))?;
        total = total.saturating_add(e.rows);
    }
    if total > MAX_ROWS {
        return value_err(format!("{total} rows; at most {MAX_ROWS} are supported"));
    }
    Ok(total)
}

/// Zeroed result buffers of `nq * k`.
fn results(nq: usize, k: usize) -> Result<(Vec<f32>, Vec<u64>)> {
    let total = checked_size(nq, k, "nq * k results")?;
    Ok((
        try_zeroed::<f32>(total, "the scores")?,
        try_zeroed::<u64>(total, "the ids")?,
    ))
}

fn write_all<C: Codec>(
    codec: &C,
    selects: Vec<TopK<'_>>,
    k: usize,
    scores: &mut [f32],
    ids: &mut [u64],
) {
    for ((s, sc), id) in selects
        .into_iter()
        .zip(scores.chunks_exact_mut(k))
        .zip(ids.chunks_exact_mut(k))
    {
        s.write(sc, id, |c| codec.score_of(c));
    }
}

/// Most queries a task makes ready at once: what a task holds stays bounded whatever the batch
/// (a query of 96 bytes of 2-bit codes holds 96 KiB of tables: 100,000 queries in chunks of an
/// eighth peaked 2.5 GB above the index on 2 threads; 85 MB in chunks of 256, and faster).
const MAX_CHUNK: usize = 256;

/// Query chunk of the batch regime: at least `min` queries (unless [`MAX_CHUNK`] is fewer), a few
/// chunks per thread so the pool balances, and at most [`MAX_CHUNK`].
pub(crate) fn query_chunk(nq: usize, threads: usize, min: usize) -> usize {
    let chunks = (threads * 4).min(nq / min.max(1)).max(1);
    nq.div_ceil(chunks).min(MAX_CHUNK)
}

/// The tiles of an extent: `(start, end)` row ranges of `tile` rows (block-aligned).
fn tiles(rows: usize, tile: usize) -> impl Iterator<Item = Range<usize>> {
    let tile = tile.max(1);
    (0..rows.div_ceil(tile)).map(move |t| t * tile..rows.min((t + 1) * tile))
}

/// The queries of `range` made ready by `prepare` (a codec may prepare several at once: a
/// projection reads its basis once for four), one per query, checked.
fn prepared<Q>(
    prepare: &impl Fn(Range<usize>) -> Result<Vec<Q>>,
    range: Range<usize>,
) -> Result<Vec<Q>> {
    let got = prepare(range.clone())?;
    if got.len() != range.len() {
        return value_err(format!(
            "{} queries made ready for {}",
            got.len(),
            range.len()
        ));
    }
    Ok(got)
}

/// The preparer the calls take, from one that makes a single query ready (each in turn).
pub fn one_by_one<Q>(
    prepare: impl Fn(usize) -> Result<Q> + Sync,
) -> impl Fn(Range<usize>) -> Result<Vec<Q>> + Sync {
    move |range| range.map(&prepare).collect()
}

/// Exact top-`min(k, rows)` of `nq` queries over every row of `extents`. `prepare(range)` makes the
/// queries of `range` ready, in order (see [`prepared`]); `allowed` restricts the labels returned.
pub fn search<'e, C, P>(
    codec: &C,
    nq: usize,
    k: usize,
    prepare: P,
    extents: &[Extent<'e, C::Unit>],
    allowed: Option<Allowed<'_>>,
) -> Result<Hits>
where
    C: Codec,
    P: Fn(Range<usize>) -> Result<Vec<C::Query>> + Sync,
{
    search_helped(codec, nq, k, prepare, extents, allowed, None)
}

/// [`search`] where the caller runs outside the pool of `helpers`: in the tiles regime (few
/// queries) the calling thread takes the tiles in order and helpers that join take the next ones
/// (see [`crate::share`]); without helpers the tiles are parallel over the current pool.
pub fn search_helped<'e, C, P>(
    codec: &C,
    nq: usize,
    k: usize,
    prepare: P,
    extents: &[Extent<'e, C::Unit>],
    allowed: Option<Allowed<'_>>,
    helpers: Option<Helpers<'_>>,
) -> Result<Hits>
where
    C: Codec,
    P: Fn(Range<usize>) -> Result<Vec<C::Query>> + Sync,
{
    check_k(k)?;
    let rows = check_extents(codec, extents)?;
    let kk = k.min(rows);
    let (mut scores, mut ids) = results(nq, kk)?;
    if nq == 0 || kk == 0 {
        return Ok(Hits { k: kk, scores, ids });
    }
    let tile = codec.tile_rows();
    // The pool's threads, or the caller and its helpers where it runs outside their pool.
    let threads = rayon::current_num_threads().max(helpers.map_or(0, |h| h.most() + 1));
    let per_chunk = codec.queries_per_chunk().max(1);
    if nq >= threads.saturating_mul(per_chunk) {
        let chunk = query_chunk(nq, threads, per_chunk);
        scores
            .par_chunks_mut(chunk * kk)
            .zip(ids.par_chunks_mut(chunk * kk))
            .enumerate()
            .try_for_each(|(c, (scores, ids))| -> Result<()> {
                let queries = c * chunk..nq.min((c + 1) * chunk);
                let batch = prepared(&prepare, queries)?;
                let mut selects = vec![TopK::new(kk, allowed, None); batch.len()];
                let mut scratch = C::Scratch::default();
                for e in extents {
                    for t in tiles(e.rows, tile) {
                        codec.scan(&batch, e, t, &mut selects, &mut scratch);
                    }
                }
                write_all(codec, selects, kk, scores, ids);
                Ok(())
            })?;
    } else {
        let batch = prepared(&prepare, 0..nq)?;
        let shared: Vec<AtomicU32> = (0..nq).map(|_| AtomicU32::new(u32::MAX)).collect();
        let fresh = || -> Vec<TopK<'_>> {
            shared
                .iter()
                .map(|s| TopK::new(kk, allowed, Some(s)))
                .collect()
        };
        let work: Vec<(usize, Range<usize>)> = extents
            .iter()
            .enumerate()
            .flat_map(|(i, e)| tiles(e.rows, tile).map(move |t| (i, t)))
            .collect();
        fn merged<'a>(mut a: Vec<TopK<'a>>, b: Vec<TopK<'a>>) -> Vec<TopK<'a>> {
            a.iter_mut().zip(&b).for_each(|(a, b)| a.merge(b));
            a
        }
        let selects = match helpers {
            Some(helpers) => helpers
                .each(
                    &work,
                    || (fresh(), C::Scratch::default()),
                    |(selects, scratch), (i, t)| {
                        codec.scan(&batch, &extents[*i], t.clone(), selects, scratch);
                    },
                )
                .into_iter()
                .map(|(selects, _)| selects)
                .reduce(merged),
            None => work
                .into_par_iter()
                .fold(
                    || (fresh(), C::Scratch::default()),
                    |(mut selects, mut scratch), (i, t)| {
                        codec.scan(&batch, &extents[i], t, &mut selects, &mut scratch);
                        (selects, scratch)
                    },
                )
                .map(|(selects, _)| selects)
                .reduce_with(merged),
        }
        .unwrap_or_else(fresh);
        write_all(codec, selects, kk, &mut scores, &mut ids);
    }
    Ok(Hits { k: kk, scores, ids })
}

/// Queries of a batch that [`search_lists`] plans together (a coarse quantizer reads its
/// centroids once for them).
pub const PLAN_GROUP: usize = crate::coarse::QUERY_BLOCK;

/// One query's plan for [`search_lists`]: its lists in scan order (each list one or more extents),
/// their keys, and how many of them to scan at least.
pub struct Plan<'e, U> {
    /// Lists in the order to scan them (best first).
    pub lists: Vec<Vec<Extent<'e, U>>>,
    /// One key per list (its number in the store): a batch scans the lists a chunk of queries
    /// shares one after another while their rows are in cache. Keys only order the work; any keys
    /// give the same results.
    pub keys: Vec<usize>,
    /// Lists scanned whatever happens (`nprobe`); more are scanned while fewer than `k` results
    /// are found.
    pub probe: usize,
    /// Whether lists past these exist (a plan made with only the lists to probe): a query they
    /// leave short asks for its whole plan (see [`search_lists`]).
    pub more: bool,
}

impl<U> Plan<'_, U> {
    fn check<C: Codec<Unit = U>>(&self, codec: &C) -> Result<()> {
        if self.keys.len() != self.lists.len() {
            return value_err(format!(
                "a plan has {} keys for {} lists",
                self.keys.len(),
                self.lists.len()
            ));
        }
        for (l, list) in self.lists.iter().enumerate() {
            for (j, e) in list.iter().enumerate() {
                check_named(codec, e, || format!("list {l} extent {j}"))?;
            }
        }
        Ok(())
    }

    /// Lists scanned whatever happens.
    fn probed(&self) -> usize {
        self.probe.min(self.lists.len())
    }
}

/// Offers every row of extent `e` to `select` (one query).
fn scan_extent<C: Codec>(
    codec: &C,
    query: &C::Query,
    e: &Extent<'_, C::Unit>,
    select: &mut TopK<'_>,
    scratch: &mut C::Scratch,
) {
    for t in tiles(e.rows, codec.tile_rows()) {
        codec.scan(
            std::slice::from_ref(query),
            e,
            t,
            std::slice::from_mut(select),
            scratch,
        );
    }
}

/// Offers every row of `list` to `select` (one query).
fn scan_list<C: Codec>(
    codec: &C,
    query: &C::Query,
    list: &[Extent<'_, C::Unit>],
    select: &mut TopK<'_>,
    scratch: &mut C::Scratch,
) {
    for e in list {
        scan_extent(codec, query, e, select, scratch);
    }
}

/// Lists past a query's `probe`, best first, while it has fewer than `k` results; a plan of the
/// probed lists only (`more`) is replaced by the query's whole plan (`whole()`) first.
fn scan_rest<'e, C: Codec>(
    codec: &C,
    query: &C::Query,
    plan: &Plan<'e, C::Unit>,
    select: &mut TopK<'_>,
    scratch: &mut C::Scratch,
    whole: impl FnOnce() -> Result<Plan<'e, C::Unit>>,
) -> Result<()> {
    if select.is_full() {
        return Ok(());
    }
    let fetched;
    let plan = if plan.more {
        fetched = whole()?;
        &fetched
    } else {
        plan
    };
    for list in &plan.lists[plan.probed()..] {
        if select.is_full() {
            break;
        }
        scan_list(codec, query, list, select, scratch);
    }
    Ok(())
}

/// One query over its plan, parallel over its probed lists (the tasks share the query's bound;
/// their partial top-k's merge): with `helpers`, the calling thread takes the lists in order and
/// helpers that join take the next ones (see [`crate::share`]); else over the current pool.
fn one_query<'a, 'e, C: Codec>(
    codec: &C,
    query: &C::Query,
    plan: &Plan<'e, C::Unit>,
    kk: usize,
    allowed: Option<Allowed<'a>>,
    helpers: Option<Helpers<'_>>,
    whole: impl FnOnce() -> Result<Plan<'e, C::Unit>>,
) -> Result<TopK<'a>> {
    let shared = AtomicU32::new(u32::MAX);
    let mut select = TopK::new(kk, allowed, None);
    let lists = &plan.lists[..plan.probed()];
    let start = || (TopK::new(kk, allowed, Some(&shared)), C::Scratch::default());
    fn merged<'a>(mut a: TopK<'a>, b: TopK<'a>) -> TopK<'a> {
        a.merge(&b);
        a
    }
    let partial = match helpers {
        Some(helpers) => helpers
            .each(lists, start, |(s, scratch), list| {
                scan_list(codec, query, list, s, scratch);
            })
            .into_iter()
            .map(|(s, _)| s)
            .reduce(merged),
        None => lists
            .par_iter()
            .fold(start, |(mut s, mut scratch), list| {
                scan_list(codec, query, list, &mut s, &mut scratch);
                (s, scratch)
            })
            .map(|(s, _)| s)
            .reduce_with(merged),
    };
    if let Some(partial) = partial {
        select.merge(&partial);
    }
    scan_rest(
        codec,
        query,
        plan,
        &mut select,
        &mut C::Scratch::default(),
        whole,
    )?;
    Ok(select)
}

/// The queries of a chunk over their plans, list-major: every probed (list, query) pair in key
/// order, so a list shared by several queries is read from memory once and scanned for each while
/// it is in cache. Then each query's lists past its `probe`, as [`one_query`] does.
fn chunk_queries<'a, 'e, C: Codec>(
    codec: &C,
    queries: &[C::Query],
    plans: &[Plan<'e, C::Unit>],
    kk: usize,
    allowed: Option<Allowed<'a>>,
    whole: impl Fn(usize) -> Result<Plan<'e, C::Unit>>,
) -> Result<Vec<TopK<'a>>> {
    let mut selects = vec![TopK::new(kk, allowed, None); queries.len()];
    let mut scratch = C::Scratch::default();
    // Each query's best list first: its bound is then tight for the rest (a bound still loose
    // lets most rows through the kernel's cut to exact scoring).
    for ((query, plan), select) in queries.iter().zip(plans).zip(&mut selects) {
        if plan.probed() > 0 {
            scan_list(codec, query, &plan.lists[0], select, &mut scratch);
        }
    }
    // (list key, query, extent): the extents copied in, so the walk reads them in order instead
    // of chasing each list's allocation (a cache miss per pair, ~10 % of a batch at nprobe 128).
    let mut work: Vec<(usize, usize, Extent<'_, C::Unit>)> = Vec::new();
    for (q, p) in plans.iter().enumerate() {
        let probed = p.probed();
        for (list, &key) in p.lists[..probed].iter().zip(&p.keys).skip(1) {
            work.extend(list.iter().map(|&e| (key, q, e)));
        }
    }
    // Stable: a list's extents keep their order.
    work.sort_by_key(|&(key, q, _)| (key, q));
    for (_, q, e) in &work {
        scan_extent(codec, &queries[*q], e, &mut selects[*q], &mut scratch);
    }
    for (q, ((query, plan), select)) in queries.iter().zip(plans).zip(&mut selects).enumerate() {
        scan_rest(codec, query, plan, select, &mut scratch, || whole(q))?;
    }
    Ok(selects)
}

/// Queries made ready, and their plans.
type Ready<'e, C> = (Vec<<C as Codec>::Query>, Vec<Plan<'e, <C as Codec>::Unit>>);

/// Top-`k` of `nq` queries, each over the lists its plan names (see the module docs).
/// `plans(range, all)` gives the plans of the queries in `range` (at most [`PLAN_GROUP`]): with
/// `all` false a plan may hold only the lists to probe ([`Plan::more`]), and a query they leave
/// short is planned again alone with `all` (the lists past them are ranked only where they are
/// needed); `rows` is the total of stored rows (for `k` clamping). `helpers`: threads that may join a query searched
/// alone (its tables beside its coarse ranking, then its lists), where the caller runs outside
/// their pool; without them a query alone is parallel over the current pool.
#[allow(clippy::too_many_arguments)] // each a separate concern of the one partitioned search
pub fn search_lists<'e, C, P, L>(
    codec: &C,
    nq: usize,
    k: usize,
    rows: usize,
    prepare: P,
    plans: L,
    allowed: Option<Allowed<'_>>,
    helpers: Option<Helpers<'_>>,
) -> Result<Hits>
where
    C: Codec,
    P: Fn(Range<usize>) -> Result<Vec<C::Query>> + Sync,
    L: Fn(Range<usize>, bool) -> Result<Vec<Plan<'e, C::Unit>>> + Sync,
    C::Unit: 'e,
{
    check_k(k)?;
    let kk = k.min(rows);
    let (mut scores, mut ids) = results(nq, kk)?;
    if nq == 0 || kk == 0 {
        return Ok(Hits { k: kk, scores, ids });
    }
    // The plans of a group of queries (at most PLAN_GROUP), one per query, checked.
    let plan_group = |group: Range<usize>, all: bool| -> Result<Vec<Plan<'e, C::Unit>>> {
        let got = plans(group.clone(), all)?;
        if got.len() != group.len() {
            return value_err(format!("{} plans for {} queries", got.len(), group.len()));
        }
        got.iter().try_for_each(|p| p.check(codec))?;
        Ok(got)
    };
    let planned = |group: Range<usize>| plan_group(group, false);
    // Query `i`'s whole plan (every list it may go on to).
    let whole = |i: usize| -> Result<Plan<'e, C::Unit>> {
        let mut got = plan_group(i..i + 1, true)?;
        Ok(got.remove(0))
    };
    // The queries of `range`, made ready and planned (a group of PLAN_GROUP at a time).
    let ready = |range: Range<usize>| -> Result<Ready<'e, C>> {
        let queries = prepared(&prepare, range.clone())?;
        let mut all = Vec::with_capacity(queries.len());
        for start in range.clone().step_by(PLAN_GROUP) {
            all.extend(planned(start..range.end.min(start + PLAN_GROUP))?);
        }
        Ok((queries, all))
    };
    // The pool's threads, or the caller and its helpers where it runs outside their pool.
    let threads = rayon::current_num_threads().max(helpers.map_or(0, |h| h.most() + 1));
    if nq < threads {
        // Fewer queries than threads: each alone, parallel over its lists.
        for (i, (sc, id)) in scores
            .chunks_exact_mut(kk)
            .zip(ids.chunks_exact_mut(kk))
            .enumerate()
        {
            // The query's tables and its coarse ranking are independent: made side by side.
            let (query, plan) = match helpers {
                Some(helpers) => {
                    let (made, ranked) = (Mutex::new(None), Mutex::new(None));
                    helpers.each(
                        &[true, false],
                        || (),
                        |_, &tables| match tables {
                            true => *lock(&made) = Some(prepared(&prepare, i..i + 1)),
                            false => *lock(&ranked) = Some(planned(i..i + 1)),
                        },
                    );
                    (taken(made), taken(ranked))
                }
                None => rayon::join(|| prepared(&prepare, i..i + 1), || planned(i..i + 1)),
            };
            let (query, plan) = (query?, plan?);
            one_query(codec, &query[0], &plan[0], kk, allowed, helpers, || {
                whole(i)
            })?
            .write(sc, id, |c| codec.score_of(c));
        }
    } else {
        let chunk = query_chunk(nq, threads, 1);
        scores
            .par_chunks_mut(chunk * kk)
            .zip(ids.par_chunks_mut(chunk * kk))
            .enumerate()
            .try_for_each(|(c, (sc, id))| -> Result<()> {
                let first = c * chunk;
                let (queries, planned) = ready(first..nq.min(first + chunk))?;
                let selects =
                    chunk_queries(codec, &queries, &planned, kk, allowed, |q| whole(first + q))?;
                write_all(codec, selects, kk, sc, id);
                Ok(())
            })?;
    }
    Ok(Hits { k: kk, scores, ids })
}

/// Candidate rows of a [`score_rows`] / [`rescore`] call: positions in the concatenation of the
/// extents, `kc` per query (`PerQuery`, row-major `nq * kc`) or the same for every query (`Shared`).
#[derive(Debug, Clone, Copy)]
pub enum Candidates<'a> {
    /// `kc` candidates of each query.
    PerQuery(&'a [i64], usize),
    /// The same candidates for every query.
    Shared(&'a [i64]),
}

impl Candidates<'_> {
    fn per_query(&self) -> usize {
        match self {
            Candidates::PerQuery(_, kc) => *kc,
            Candidates::Shared(c) => c.len(),
        }
    }

    fn of(&self, i: usize) -> &[i64] {
        match self {
            Candidates::PerQuery(c, kc) => &c[i * kc..(i + 1) * kc],
            Candidates::Shared(c) => c,
        }
    }

    fn check(&self, nq: usize, rows: usize) -> Result<()> {
        let (all, kc) = match self {
            Candidates::PerQuery(c, kc) => {
                if nq.checked_mul(*kc) != Some(c.len()) {
                    return shape_err(format!(
                        "candidates have {} entries; expected nq * kc = {nq} * {kc}",
                        c.len()
                    ));
                }
                (*c, *kc)
            }
            Candidates::Shared(c) => (*c, c.len()),
        };
        if let Some(at) = all.iter().position(|&c| c < 0 || c as u64 >= rows as u64) {
            return value_err(format!(
                "candidates[{}, {}] = {} is not a row (must be in 0..{rows})",
                at / kc.max(1),
                at % kc.max(1),
                all[at]
            ));
        }
        Ok(())
    }
}

/// Maps positions in the concatenated extents to `(extent, row)`.
struct Positions {
    starts: Vec<usize>,
}

impl Positions {
    fn new<U>(extents: &[Extent<'_, U>]) -> Self {
        let mut starts = Vec::with_capacity(extents.len() + 1);
        let mut at = 0;
        for e in extents {
            starts.push(at);
            at += e.rows;
        }
        starts.push(at);
        Self { starts }
    }

    #[inline]
    fn find(&self, position: usize) -> (usize, usize) {
        let e = self.starts.partition_point(|&s| s <= position) - 1;
        (e, position - self.starts[e])
    }
}

/// The checks of a call scoring given candidates, in the order their errors are reported: `k`
/// (where the call takes one), the extents, the candidates. Returns the candidates' positions.
fn check_candidates<C: Codec>(
    codec: &C,
    k: Option<usize>,
    extents: &[Extent<'_, C::Unit>],
    candidates: Candidates<'_>,
    nq: usize,
) -> Result<Positions> {
    if let Some(k) = k {
        check_k(k)?;
    }
    let rows = check_extents(codec, extents)?;
    candidates.check(nq, rows)?;
    Ok(Positions::new(extents))
}

/// Scores `(nq, kc)` of each query's candidate rows, in the given order (the values the scan
/// ranks by).
pub fn score_rows<C, P>(
    codec: &C,
    nq: usize,
    prepare: P,
    extents: &[Extent<'_, C::Unit>],
    candidates: Candidates<'_>,
) -> Result<Vec<f32>>
where
    C: Codec,
    P: Fn(Range<usize>) -> Result<Vec<C::Query>> + Sync,
{
    let positions = check_candidates(codec, None, extents, candidates, nq)?;
    let kc = candidates.per_query();
    let mut out = try_zeroed::<f32>(checked_size(nq, kc, "nq * kc")?, "the scores")?;
    if kc == 0 || nq == 0 {
        return Ok(out);
    }
    out.par_chunks_mut(kc)
        .enumerate()
        .try_for_each(|(i, out)| -> Result<()> {
            let query = prepared(&prepare, i..i + 1)?.swap_remove(0);
            for (o, &c) in out.iter_mut().zip(candidates.of(i)) {
                let (e, r) = positions.find(c as usize);
                *o = codec.score(&query, &extents[e], r);
            }
            Ok(())
        })?;
    Ok(out)
}

/// Per query, the best `min(k, kc)` of its distinct candidate rows (descending score, ties by
/// lower label), restricted to `allowed` labels when given (then fewer may come back, padded).
pub fn rescore<C, P>(
    codec: &C,
    nq: usize,
    k: usize,
    prepare: P,
    extents: &[Extent<'_, C::Unit>],
    candidates: Candidates<'_>,
    allowed: Option<Allowed<'_>>,
) -> Result<Hits>
where
    C: Codec,
    P: Fn(Range<usize>) -> Result<Vec<C::Query>> + Sync,
{
    let positions = check_candidates(codec, Some(k), extents, candidates, nq)?;
    let kk = k.min(candidates.per_query());
    let (mut scores, mut ids) = results(nq, kk)?;
    if kk == 0 || nq == 0 {
        return Ok(Hits { k: kk, scores, ids });
    }
    let shared_sorted: Option<Vec<usize>> = match candidates {
        Candidates::Shared(c) => Some(sorted_distinct(c, 0)?),
        Candidates::PerQuery(..) => None,
    };
    scores
        .par_chunks_mut(kk)
        .zip(ids.par_chunks_mut(kk))
        .enumerate()
        .try_for_each(|(i, (sc, id))| -> Result<()> {
            let own;
            let rows: &[usize] = match &shared_sorted {
                Some(rows) => rows,
                None => {
                    own = sorted_distinct(candidates.of(i), i)?;
                    &own
                }
            };
            let query = prepared(&prepare, i..i + 1)?.swap_remove(0);
            let mut select = TopK::new(kk, allowed, None);
            for &p in rows {
                let (e, r) = positions.find(p);
                let extent = &extents[e];
                let score = codec.score(&query, extent, r);
                if score.is_nan() {
                    return Err(QamaError::Value(format!(
                        "queries[{i}] scores row {p} as NaN; the stored values are not finite"
                    )));
                }
                select.offer(codec.cost_of(score), extent.labels.of(r));
            }
            select.write(sc, id, |c| codec.score_of(c));
            Ok(())
        })?;
    Ok(Hits { k: kk, scores, ids })
}

/// Candidate positions ascending (sequential reads); duplicates are an error naming the query.
fn sorted_distinct(candidates: &[i64], query: usize) -> Result<Vec<usize>> {
    let mut rows: Vec<usize> = candidates.iter().map(|&c| c as usize).collect();
    rows.sort_unstable();
    if let Some(w) = rows.windows(2).find(|w| w[0] == w[1]) {
        return value_err(format!(
            "candidates[{query}] lists row {} twice; candidates must be distinct",
            w[0]
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::float::{dot, FloatCodec};
    use crate::testing::{brute, random_floats};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// The reference of [`search_lists`] over lists of `per` rows of `data`: every row of the first
    /// `probe` lists of `order`, then further lists in order while fewer than `k` allowed rows were
    /// seen; top-`k` by exact score.
    fn reference(
        q: &[f32],
        (data, dims, per): (&[f32], usize, usize),
        order: &[usize],
        probe: usize,
        k: usize,
        allowed: Option<&[u64]>,
    ) -> Hits {
        let ok = |r: usize| allowed.is_none_or(|a| a.binary_search(&(r as u64)).is_ok());
        let mut rows: Vec<usize> = Vec::new();
        for (j, &l) in order.iter().enumerate() {
            if j >= probe && rows.len() >= k {
                break;
            }
            rows.extend((l * per..(l + 1) * per).filter(|&r| ok(r)));
        }
        let row = |r: usize| &data[rows[r] * dims..(rows[r] + 1) * dims];
        let mut want = brute(|_, r| dot(q, row(r)), 1, rows.len(), k);
        want.ids
            .iter_mut()
            .for_each(|r| *r = rows[*r as usize] as u64);
        want
    }

    /// `nq` queries over `nlist` lists of random rows, each probing its own random order of the
    /// lists (queries share lists, so a batch scans them list-major), on pools of 1, 2 and 4
    /// threads (one query alone is parallel over its lists when the pool has more threads than
    /// queries), without and with a filter sparse enough that queries go on past `probe` lists.
    #[test]
    fn search_lists_gives_each_querys_top_k_of_its_lists_on_every_pool() {
        let mut rng = StdRng::seed_from_u64(11);
        let (dims, nlist, per, k) = (8, 6, 37, 5);
        let codec = FloatCodec::<f32>::new(dims).unwrap();
        let data = random_floats(&mut rng, nlist * per * dims);
        let list = |l: usize| {
            Extent::new(
                &data[l * per * dims..(l + 1) * per * dims],
                per,
                (l * per) as u64,
            )
        };
        // Every 16th row: 2 or 3 per list, so k = 5 needs two or three lists.
        let sparse: Vec<u64> = (0..(nlist * per) as u64).step_by(16).collect();
        for threads in [1, 2, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for (nq, probe) in [(1, 1), (1, 4), (2, 3), (3, 2), (40, 3), (40, 6)] {
                for allowed in [None, Some(&sparse[..])] {
                    let q = random_floats(&mut rng, nq * dims);
                    let order: Vec<Vec<usize>> = (0..nq)
                        .map(|_| {
                            let mut o: Vec<usize> = (0..nlist).collect();
                            for i in (1..nlist).rev() {
                                o.swap(i, rng.random_range(0..=i));
                            }
                            o
                        })
                        .collect();
                    // Lazy: plans hold the probed lists only until a query asks for all.
                    for (helped, lazy) in
                        [(false, false), (true, false), (false, true), (true, true)]
                    {
                        let search = |helpers| {
                            search_lists(
                                &codec,
                                nq,
                                k,
                                nlist * per,
                                one_by_one(|i| codec.prepare(&q[i * dims..(i + 1) * dims], i)),
                                |range, all| {
                                    let shown = if lazy && !all { probe } else { nlist };
                                    Ok(range
                                        .map(|i| Plan {
                                            lists: order[i][..shown]
                                                .iter()
                                                .map(|&l| vec![list(l)])
                                                .collect(),
                                            keys: order[i][..shown].to_vec(),
                                            probe,
                                            more: shown < nlist,
                                        })
                                        .collect())
                                },
                                allowed.map(Allowed::Sorted),
                                helpers,
                            )
                        };
                        // Helped: called from outside the pool, whose threads may join.
                        let got = if helped {
                            search(Some(Helpers::new(&pool, threads - 1)))
                        } else {
                            pool.install(|| search(None))
                        }
                        .unwrap();
                        for i in 0..nq {
                            let qi = &q[i * dims..(i + 1) * dims];
                            let want =
                                reference(qi, (&data, dims, per), &order[i], probe, k, allowed);
                            let what = format!(
                                "{threads} threads, helped {helped}, lazy {lazy}, nq {nq}, \
                                 probe {probe}, filter {}, query {i}",
                                allowed.is_some()
                            );
                            assert_eq!(&got.ids[i * k..(i + 1) * k], &want.ids[..], "{what}");
                            assert_eq!(&got.scores[i * k..(i + 1) * k], &want.scores[..], "{what}");
                        }
                    }
                }
            }
        }
    }

    /// A few queries over every row (the tiles regime), helped from outside pools of 1, 2 and 4
    /// threads or parallel within them: each query's brute-force top-k, with and without a filter.
    #[test]
    fn a_flat_search_helped_from_outside_its_pool_is_the_brute_force_top_k() {
        let mut rng = StdRng::seed_from_u64(12);
        let (dims, k) = (8, 7);
        let codec = FloatCodec::<f32>::new(dims).unwrap();
        let tile = codec.tile_rows();
        let sizes = [5 * tile + 3, tile / 2, 2 * tile];
        let data: Vec<Vec<f32>> = sizes
            .iter()
            .map(|&n| random_floats(&mut rng, n * dims))
            .collect();
        let starts: Vec<usize> = sizes
            .iter()
            .scan(0, |at, &n| {
                *at += n;
                Some(*at - n)
            })
            .collect();
        let extents: Vec<Extent<'_, f32>> = (0..sizes.len())
            .map(|j| Extent::new(&data[j], sizes[j], starts[j] as u64))
            .collect();
        let total: usize = sizes.iter().sum();
        let row = |r: usize| {
            let j = starts.iter().rposition(|&s| s <= r).unwrap();
            &data[j][(r - starts[j]) * dims..][..dims]
        };
        let sparse: Vec<u64> = (0..total as u64).step_by(97).collect();
        for threads in [1, 2, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for nq in [1, 3] {
                for allowed in [None, Some(&sparse[..])] {
                    let q = random_floats(&mut rng, nq * dims);
                    let ok =
                        |r: usize| allowed.is_none_or(|a| a.binary_search(&(r as u64)).is_ok());
                    let want = brute(
                        |i, r| {
                            if ok(r) {
                                dot(&q[i * dims..(i + 1) * dims], row(r))
                            } else {
                                f32::NEG_INFINITY
                            }
                        },
                        nq,
                        total,
                        k,
                    );
                    let prep = one_by_one(|i| codec.prepare(&q[i * dims..(i + 1) * dims], i));
                    let filter = allowed.map(Allowed::Sorted);
                    for helped in [false, true] {
                        let got = if helped {
                            let helpers = Helpers::new(&pool, threads - 1);
                            search_helped(&codec, nq, k, &prep, &extents, filter, Some(helpers))
                        } else {
                            pool.install(|| search(&codec, nq, k, &prep, &extents, filter))
                        }
                        .unwrap();
                        let what = format!("{threads} threads, nq {nq}, helped {helped}");
                        assert_eq!(got.ids, want.ids, "{what}");
                        assert_eq!(got.scores, want.scores, "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn plans_are_checked_per_group() {
        let codec = FloatCodec::<f32>::new(2).unwrap();
        let data = [1.0f32, 0.0, 0.0, 1.0];
        let plan = || Plan {
            lists: vec![vec![Extent::new(&data[..], 2, 0)]],
            keys: vec![0],
            probe: 1,
            more: false,
        };
        // Eight queries in groups of four: 3 plans for the first, 5 for the second is an error
        // (not plans shifted onto the wrong queries); one query given none is one too.
        for nq in [8, 1] {
            let err = search_lists(
                &codec,
                nq,
                1,
                2,
                one_by_one(|i| codec.prepare(&[1.0, 0.0], i)),
                |range, _| {
                    let n = if range.start == 0 {
                        range.len() - 1
                    } else {
                        range.len() + 1
                    };
                    Ok((0..n).map(|_| plan()).collect())
                },
                None,
                None,
            )
            .err()
            .unwrap();
            assert!(err.to_string().contains("plans for"), "{err}");
        }
    }

    #[test]
    fn a_query_chunk_balances_the_pool_and_stays_bounded() {
        // A few chunks per thread, each at least `min` queries where there are enough.
        assert_eq!(query_chunk(1000, 2, 8), 125);
        assert_eq!(query_chunk(20, 2, 8), 10);
        assert_eq!(query_chunk(3, 2, 1), 1);
        // A huge batch: at most MAX_CHUNK queries made ready at once per task (their tables were
        // 1.2 GB per task at 100,000 queries of 96-byte codes).
        assert_eq!(query_chunk(100_000, 2, 8), MAX_CHUNK);
        assert_eq!(query_chunk(100_000, 2, 1), MAX_CHUNK);
    }

    #[test]
    fn a_plan_with_a_key_per_list_missing_is_an_error() {
        let codec = FloatCodec::<f32>::new(2).unwrap();
        let data = [1.0f32, 0.0, 0.0, 1.0];
        let err = search_lists(
            &codec,
            1,
            1,
            2,
            one_by_one(|i| codec.prepare(&[1.0, 0.0], i)),
            |_, _| {
                Ok(vec![Plan {
                    lists: vec![vec![Extent::new(&data[..], 2, 0)]],
                    keys: vec![],
                    probe: 1,
                    more: false,
                }])
            },
            None,
            None,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("0 keys for 1 lists"), "{err}");
    }
}
