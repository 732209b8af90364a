//! Scoring given candidate rows: the second stage of a two-stage search (first stage: Hamming
//! top-k' over 1-bit codes), from compact codes or from float32 vectors.
use rayon::prelude::*;

use crate::error::{checked_size, shape_err, value_err, QamaError, Result};

use super::blocks::check_rows;
use super::lut::{ByteLuts, Recon};
use super::search::{check_finite_queries, check_row_scale, write_results};
use super::select::{Best, TopScores};
use super::try_zeroed;

/// Candidate lists of `nq` queries, `kc` each: checks the length and that every row is in `0..n`.
fn check_candidates(candidates: &[i64], nq: usize, kc: usize, n: usize) -> Result<()> {
    if nq.checked_mul(kc) != Some(candidates.len()) {
        return shape_err(format!(
            "candidates have {} entries; expected nq * kc = {nq} * {kc}",
            candidates.len()
        ));
    }
    if let Some(at) = candidates
        .iter()
        .position(|&c| c < 0 || c as u64 >= n as u64)
    {
        return value_err(format!(
            "candidates[{}, {}] = {} is not a row (must be in 0..{n})",
            at / kc.max(1),
            at % kc.max(1),
            candidates[at]
        ));
    }
    Ok(())
}

pub(crate) fn check_queries(q: &[f32], nq: usize, query_len: usize, name: &str) -> Result<()> {
    if nq.checked_mul(query_len) != Some(q.len()) {
        return shape_err(format!(
            "{name} has {} values; expected nq * {query_len} = {nq} * {query_len}",
            q.len()
        ));
    }
    Ok(())
}

/// Asymmetric scores `(nq, kc)` of each query's candidate rows, in the given order, from `n`
/// row-major packed codes, times `row_scale[row]` when given. The scores equal those of
/// [`super::search_with`] bit for bit.
#[allow(clippy::too_many_arguments)]
pub fn score_candidates(
    q: &[f32],
    nq: usize,
    recon: &Recon,
    codes: &[u8],
    n: usize,
    row_scale: Option<&[f32]>,
    candidates: &[i64],
    kc: usize,
) -> Result<Vec<f32>> {
    let format = recon.format();
    check_rows(codes, n, format.row_bytes())?;
    check_queries(q, nq, format.dims(), "queries")?;
    check_finite_queries(q, format.dims())?;
    score_rows(
        q,
        format.dims(),
        nq,
        codes,
        n,
        format.row_bytes(),
        row_scale,
        candidates,
        kc,
        |query, _| ByteLuts::build(query, recon),
    )
}

/// Scores of given candidate rows for any byte-table codec: `q` holds `nq` queries of
/// `query_len` values, `build(query, index)` makes a query's tables.
#[allow(clippy::too_many_arguments)]
pub(crate) fn score_rows<B>(
    q: &[f32],
    query_len: usize,
    nq: usize,
    codes: &[u8],
    n: usize,
    row_bytes: usize,
    row_scale: Option<&[f32]>,
    candidates: &[i64],
    kc: usize,
    build: B,
) -> Result<Vec<f32>>
where
    B: Fn(&[f32], usize) -> Result<ByteLuts> + Sync,
{
    check_candidates(candidates, nq, kc, n)?;
    let max_scale = check_row_scale(row_scale, n)?;
    let mut out = try_zeroed::<f32>(checked_size(nq, kc, "nq * kc")?, "the scores")?;
    if kc == 0 || nq == 0 || query_len == 0 {
        return Ok(out);
    }
    out.par_chunks_mut(kc)
        .zip(q.par_chunks(query_len))
        .zip(candidates.par_chunks(kc))
        .enumerate()
        .try_for_each(|(i, ((out, query), cands))| -> Result<()> {
            let luts = build(query, i)?;
            luts.check_scale(max_scale)?;
            for (s, &c) in out.iter_mut().zip(cands) {
                let row = c as usize;
                let raw = luts.score(row_of(codes, row, row_bytes));
                *s = match row_scale {
                    Some(scale) => raw * scale[row],
                    None => raw,
                };
            }
            Ok(())
        })?;
    Ok(out)
}

/// Row `row` of row-major codes (the row was checked to be in range).
#[inline]
fn row_of(codes: &[u8], row: usize, row_bytes: usize) -> &[u8] {
    &codes[row * row_bytes..][..row_bytes]
}

/// Per query, the `min(k, kc)` best of its `kc` candidate rows by asymmetric score (descending,
/// ties by lower row), from row-major packed codes, times `row_scale[row]` when given.
/// Candidates must be distinct per query.
#[allow(clippy::too_many_arguments)]
pub fn rescore(
    q: &[f32],
    nq: usize,
    recon: &Recon,
    codes: &[u8],
    n: usize,
    row_scale: Option<&[f32]>,
    candidates: &[i64],
    kc: usize,
    k: usize,
) -> Result<TopScores> {
    let format = recon.format();
    check_rows(codes, n, format.row_bytes())?;
    check_queries(q, nq, format.dims(), "queries")?;
    check_finite_queries(q, format.dims())?;
    rescore_rows(
        q,
        format.dims(),
        nq,
        codes,
        n,
        format.row_bytes(),
        row_scale,
        candidates,
        kc,
        k,
        |query, _| ByteLuts::build(query, recon),
    )
}

/// [`rescore`] for any byte-table codec (see [`score_rows`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn rescore_rows<B>(
    q: &[f32],
    query_len: usize,
    nq: usize,
    codes: &[u8],
    n: usize,
    row_bytes: usize,
    row_scale: Option<&[f32]>,
    candidates: &[i64],
    kc: usize,
    k: usize,
    build: B,
) -> Result<TopScores>
where
    B: Fn(&[f32], usize) -> Result<ByteLuts> + Sync,
{
    let max_scale = check_row_scale(row_scale, n)?;
    select_candidates(
        nq,
        query_len,
        q,
        candidates,
        kc,
        n,
        k,
        |query, i| {
            let luts = build(query, i)?;
            luts.check_scale(max_scale)?;
            Ok(luts)
        },
        |luts, _, row| {
            let raw = luts.score(row_of(codes, row, row_bytes));
            match row_scale {
                Some(scale) => raw * scale[row],
                None => raw,
            }
        },
    )
}

/// [`rescore`] against `n` float32 vectors of `dims` values (row-major): the score of a row is
/// its dot product with the query (float32, 8 partial sums).
#[allow(clippy::too_many_arguments)]
pub fn rescore_float(
    q: &[f32],
    nq: usize,
    dims: usize,
    vectors: &[f32],
    n: usize,
    candidates: &[i64],
    kc: usize,
    k: usize,
) -> Result<TopScores> {
    if dims == 0 {
        return shape_err("vectors have 0 columns (dims = 0); they need at least one value");
    }
    if n.checked_mul(dims) != Some(vectors.len()) {
        return shape_err(format!(
            "vectors have {} values; expected n * dims = {n} * {dims}",
            vectors.len()
        ));
    }
    check_queries(q, nq, dims, "queries")?;
    check_finite_queries(q, dims)?;
    select_candidates(
        nq,
        dims,
        q,
        candidates,
        kc,
        n,
        k,
        |_, _| Ok(()),
        |_, query, row| dot(query, &vectors[row * dims..][..dims]),
    )
}

/// Shared top-k over candidates: `prepare(query, index)` builds a query's state, `score(state,
/// query, row)` scores one row.
#[allow(clippy::too_many_arguments)]
fn select_candidates<P, S>(
    nq: usize,
    query_len: usize,
    q: &[f32],
    candidates: &[i64],
    kc: usize,
    n: usize,
    k: usize,
    prepare: impl Fn(&[f32], usize) -> Result<P> + Sync,
    score: S,
) -> Result<TopScores>
where
    S: Fn(&P, &[f32], usize) -> f32 + Sync,
{
    if k == 0 {
        return value_err("k = 0; must be at least 1");
    }
    check_candidates(candidates, nq, kc, n)?;
    let kk = k.min(kc);
    let total = checked_size(nq, kk, "nq * k")?;
    let mut scores = try_zeroed::<f32>(total, "the scores")?;
    let mut ids = try_zeroed::<u64>(total, "the ids")?;
    if kk == 0 || nq == 0 || query_len == 0 {
        return Ok(TopScores { k: kk, scores, ids });
    }
    let best = q
        .par_chunks(query_len)
        .zip(candidates.par_chunks(kc))
        .enumerate()
        .map(|(i, (query, cands))| -> Result<Best> {
            // Ascending rows: sequential reads, and duplicates become neighbours.
            let mut rows: Vec<usize> = cands.iter().map(|&c| c as usize).collect();
            rows.sort_unstable();
            if let Some(w) = rows.windows(2).find(|w| w[0] == w[1]) {
                return Err(QamaError::Value(format!(
                    "candidates[{i}] lists row {} twice; candidates must be distinct",
                    w[0]
                )));
            }
            let state = prepare(query, i)?;
            let mut best = Best::new(kk);
            for row in rows {
                let s = score(&state, query, row);
                if !s.is_finite() {
                    return Err(QamaError::Value(format!(
                        "queries[{i}] scores row {row} as {s}; the stored values (codes, vectors) are not finite or too large"
                    )));
                }
                best.offer(s, row as u64);
            }
            Ok(best)
        })
        .collect::<Result<Vec<Best>>>()?;
    write_results(best, kk, &mut scores, &mut ids);
    Ok(TopScores { k: kk, scores, ids })
}

/// Dot product with 8 partial sums (so it vectorizes).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a8, a_tail) = a.as_chunks::<8>();
    let (b8, b_tail) = b.as_chunks::<8>();
    let mut acc = [0f32; 8];
    for (x, y) in a8.iter().zip(b8) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (x, y) in a_tail.iter().zip(b_tail) {
        s += x * y;
    }
    s
}
