//! The one driver of every search, written once against [`Codec`]: threads, tiles and the top-k.
//!
//! - [`search`] (flat: every query reads every extent), in one of two regimes: *batch* (at least
//!   `threads * queries_per_chunk` queries; compute-bound): each rayon task takes a chunk of
//!   queries, prepares it, and walks the rows tile by tile (a tile stays in L2 while every query of
//!   the chunk scans it); *tiles* (few queries; memory-bound): queries are prepared once and the
//!   tiles of all extents are scanned in parallel, each task keeping partial top-k's that are merged
//!   at the end (the tasks share each query's bound, so a task starting empty prunes like the best).
//! - [`search_lists`] (partitioned: each query reads its own extents, a list at a time, in the
//!   order a plan gives): one query is parallel over its first lists, a batch over groups of
//!   [`PLAN_GROUP`] queries (planned together: a coarse quantizer reads its centroids once a group). Lists
//!   past the planned count are scanned while a query has fewer than `k` results (a filter, or lists
//!   too small), so a query gets `k` results whenever `k` allowed rows exist.
//! - [`score_rows`] / [`rescore`]: given candidate rows (positions in the concatenated extents),
//!   parallel over queries.
//!
//! Threads: rayon's global pool (`RAYON_NUM_THREADS`), or the pool a caller installs.
use std::ops::Range;
use std::sync::atomic::AtomicU32;

use rayon::prelude::*;

use crate::codec::{Codec, Extent};
use crate::error::{checked_size, shape_err, try_zeroed, value_err, QamaError, Result};
use crate::select::{Allowed, Hits, TopK};

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

fn check_extents<C: Codec>(codec: &C, extents: &[Extent<'_, C::Unit>]) -> Result<usize> {
    let mut total = 0usize;
    for (i, e) in extents.iter().enumerate() {
        codec.check_extent(e, &format!("extent {i}"))?;
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

/// Query chunk of the batch regime: at least `min` queries, and a few chunks per thread so the
/// pool balances.
pub(crate) fn query_chunk(nq: usize, threads: usize, min: usize) -> usize {
    let chunks = (threads * 4).min(nq / min.max(1)).max(1);
    nq.div_ceil(chunks)
}

/// The tiles of an extent: `(start, end)` row ranges of `tile` rows (block-aligned).
fn tiles(rows: usize, tile: usize) -> impl Iterator<Item = Range<usize>> {
    let tile = tile.max(1);
    (0..rows.div_ceil(tile)).map(move |t| t * tile..rows.min((t + 1) * tile))
}

/// Exact top-`min(k, rows)` of `nq` queries over every row of `extents`. `prepare(i)` makes query
/// `i` ready (its errors name the query); `allowed` restricts the labels returned.
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
    P: Fn(usize) -> Result<C::Query> + Sync,
{
    check_k(k)?;
    let rows = check_extents(codec, extents)?;
    let kk = k.min(rows);
    let (mut scores, mut ids) = results(nq, kk)?;
    if nq == 0 || kk == 0 {
        return Ok(Hits { k: kk, scores, ids });
    }
    let tile = codec.tile_rows();
    let threads = rayon::current_num_threads();
    let per_chunk = codec.queries_per_chunk().max(1);
    if nq >= threads.saturating_mul(per_chunk) {
        let chunk = query_chunk(nq, threads, per_chunk);
        scores
            .par_chunks_mut(chunk * kk)
            .zip(ids.par_chunks_mut(chunk * kk))
            .enumerate()
            .try_for_each(|(c, (scores, ids))| -> Result<()> {
                let queries = c * chunk..nq.min((c + 1) * chunk);
                let batch = queries.map(&prepare).collect::<Result<Vec<_>>>()?;
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
        let batch = (0..nq).map(&prepare).collect::<Result<Vec<_>>>()?;
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
        let selects = work
            .into_par_iter()
            .fold(
                || (fresh(), C::Scratch::default()),
                |(mut selects, mut scratch), (i, t)| {
                    codec.scan(&batch, &extents[i], t, &mut selects, &mut scratch);
                    (selects, scratch)
                },
            )
            .map(|(selects, _)| selects)
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| a.merge(b));
                a
            })
            .unwrap_or_else(fresh);
        write_all(codec, selects, kk, &mut scores, &mut ids);
    }
    Ok(Hits { k: kk, scores, ids })
}

/// Queries of a batch that [`search_lists`] plans together (a batch of at least `PLAN_GROUP`
/// queries per thread; smaller ones are planned a query at a time, one task each).
pub const PLAN_GROUP: usize = crate::coarse::QUERY_BLOCK;

/// One query's plan for [`search_lists`]: its lists in scan order (each list one or more extents),
/// and how many of them to scan at least.
pub struct Plan<'e, U> {
    /// Lists in the order to scan them (best first).
    pub lists: Vec<Vec<Extent<'e, U>>>,
    /// Lists scanned whatever happens (`nprobe`); more are scanned while fewer than `k` results
    /// are found.
    pub probe: usize,
}

/// Top-`k` of `nq` queries, each over the lists its plan names (see the module docs).
/// `plans(range)` gives the plans of the queries in `range` (at most [`PLAN_GROUP`]); `rows` is the
/// total of stored rows (for `k` clamping).
pub fn search_lists<'e, C, P, L>(
    codec: &C,
    nq: usize,
    k: usize,
    rows: usize,
    prepare: P,
    plans: L,
    allowed: Option<Allowed<'_>>,
) -> Result<Hits>
where
    C: Codec,
    P: Fn(usize) -> Result<C::Query> + Sync,
    L: Fn(Range<usize>) -> Result<Vec<Plan<'e, C::Unit>>> + Sync,
    C::Unit: 'e,
{
    check_k(k)?;
    let kk = k.min(rows);
    let (mut scores, mut ids) = results(nq, kk)?;
    if nq == 0 || kk == 0 {
        return Ok(Hits { k: kk, scores, ids });
    }
    let threads = rayon::current_num_threads();
    let one_query =
        |query: &C::Query, plan: Plan<'e, C::Unit>, parallel: bool| -> Result<TopK<'_>> {
            for (l, list) in plan.lists.iter().enumerate() {
                for (j, e) in list.iter().enumerate() {
                    codec.check_extent(e, &format!("list {l} extent {j}"))?;
                }
            }
            let probe = plan.probe.min(plan.lists.len());
            let batch = std::slice::from_ref(query);
            let tile = codec.tile_rows();
            let scan_list =
                |list: &[Extent<'e, C::Unit>], select: &mut TopK<'_>, scratch: &mut C::Scratch| {
                    for e in list {
                        for t in tiles(e.rows, tile) {
                            codec.scan(batch, e, t, std::slice::from_mut(select), scratch);
                        }
                    }
                };
            let mut select = TopK::new(kk, allowed, None);
            let mut scratch = C::Scratch::default();
            if parallel {
                // Tasks share the query's bound; their partial top-k's merge into `select`.
                let shared = AtomicU32::new(u32::MAX);
                let partial = plan.lists[..probe]
                    .par_iter()
                    .fold(
                        || (TopK::new(kk, allowed, Some(&shared)), C::Scratch::default()),
                        |(mut s, mut scratch), list| {
                            scan_list(list, &mut s, &mut scratch);
                            (s, scratch)
                        },
                    )
                    .map(|(s, _)| s)
                    .reduce_with(|mut a, b| {
                        a.merge(&b);
                        a
                    });
                if let Some(partial) = partial {
                    select.merge(&partial);
                }
            } else {
                for list in &plan.lists[..probe] {
                    scan_list(list, &mut select, &mut scratch);
                }
            }
            for list in &plan.lists[probe..] {
                if select.is_full() {
                    break;
                }
                scan_list(list, &mut select, &mut scratch);
            }
            Ok(select)
        };
    // The queries of `range`, planned together, into their rows of results.
    let group = |range: Range<usize>, parallel: bool, sc: &mut [f32], id: &mut [u64]| {
        let queries = range.clone().map(&prepare).collect::<Result<Vec<_>>>()?;
        let planned = plans(range)?;
        if planned.len() != queries.len() {
            return value_err(format!(
                "{} plans for {} queries",
                planned.len(),
                queries.len()
            ));
        }
        let rows = sc.chunks_exact_mut(kk).zip(id.chunks_exact_mut(kk));
        for ((query, plan), (sc, id)) in queries.iter().zip(planned).zip(rows) {
            one_query(query, plan, parallel)?.write(sc, id, |c| codec.score_of(c));
        }
        Ok(())
    };
    if nq < threads {
        for (i, (sc, id)) in scores
            .chunks_exact_mut(kk)
            .zip(ids.chunks_exact_mut(kk))
            .enumerate()
        {
            group(i..i + 1, threads > 1, sc, id)?;
        }
    } else {
        let size = if nq >= PLAN_GROUP * threads {
            PLAN_GROUP
        } else {
            1
        };
        scores
            .par_chunks_mut(size * kk)
            .zip(ids.par_chunks_mut(size * kk))
            .enumerate()
            .try_for_each(|(g, (sc, id))| group(g * size..nq.min((g + 1) * size), false, sc, id))?;
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
    P: Fn(usize) -> Result<C::Query> + Sync,
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
            let query = prepare(i)?;
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
    P: Fn(usize) -> Result<C::Query> + Sync,
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
            let query = prepare(i)?;
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
