//! Helpers shared by the unit tests of several modules: a reference top-k, a flat search and
//! random data.
use rand::rngs::StdRng;
use rand::RngExt;

use crate::codec::{Codec, Extent};
use crate::driver;
use crate::select::Hits;
use crate::Result;

/// Reference top-`k`: `score(query, row)` for every row of `n` and query of `nq` (`-0.0` counted
/// as `0.0`), sorted by descending score, then ascending row.
pub(crate) fn brute(score: impl Fn(usize, usize) -> f32, nq: usize, n: usize, k: usize) -> Hits {
    let kk = k.min(n);
    let mut out = Hits {
        k: kk,
        scores: vec![],
        ids: vec![],
    };
    for i in 0..nq {
        let mut pairs: Vec<(f32, u64)> = (0..n).map(|r| (score(i, r) + 0.0, r as u64)).collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(s, r) in &pairs[..kk] {
            out.scores.push(s);
            out.ids.push(r);
        }
    }
    out
}

/// The driver's top-`k` of the queries `q` (`len` values each, made ready by `prepare(query, i)`)
/// over every row of `data`, labelled by position, without a filter.
pub(crate) fn search_rows<C: Codec, T: Sync>(
    codec: &C,
    q: &[T],
    len: usize,
    data: &[C::Unit],
    k: usize,
    prepare: impl Fn(&[T], usize) -> Result<C::Query> + Sync,
) -> Hits {
    let n = data.len() / codec.row_units();
    driver::search(
        codec,
        q.len() / len,
        k,
        crate::driver::one_by_one(|i| prepare(&q[i * len..(i + 1) * len], i)),
        &[Extent::new(data, n, 0)],
        None,
    )
    .unwrap()
}

/// `len` floats drawn uniformly from `[-1, 1)`.
pub(crate) fn random_floats(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}
