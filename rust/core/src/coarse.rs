//! The coarse quantizer of a partitioned index: which lists a query scans, and their bias.
//!
//! A list is ranked by `<q, c>` with its centroid `c` (the query's lists: the best first). The same
//! product is the list's *bias* when codes hold residuals `r = x - c`: `<q, x> = <q, c> + <q, r>`. The
//! products use [`crate::codec::float::dot`]'s summation order (8 partial sums), in a copy compiled
//! for AVX2 where the CPU has it (the same operations, so the same values, only wider), so one query
//! alone and in a batch rank lists identically.
use rayon::prelude::*;

use crate::codec::float::dots;
use crate::error::{shape_err, Result};
use crate::isa::Isa;
use crate::kmeans::check_centroids_finite;

/// Centroids `nlist x dims` (row-major, finite).
#[derive(Debug, Clone)]
pub struct Coarse {
    dims: usize,
    centroids: Vec<f32>,
    isa: Isa,
}

impl Coarse {
    /// Checks `centroids` (`nlist * dims` finite values).
    pub fn new(centroids: Vec<f32>, dims: usize, isa: Isa) -> Result<Self> {
        if dims == 0 || centroids.is_empty() || !centroids.len().is_multiple_of(dims) {
            return shape_err(format!(
                "centroids have {} values; expected nlist * dims with dims = {dims}",
                centroids.len()
            ));
        }
        check_centroids_finite(&centroids, dims)?;
        Ok(Self {
            dims,
            centroids,
            isa,
        })
    }

    /// Lists.
    pub fn nlist(&self) -> usize {
        self.centroids.len() / self.dims
    }

    /// Dimensions of a query.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// `<q, c>` for every list (`q`: `dims` finite floats).
    pub fn scores(&self, q: &[f32]) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if self.isa >= Isa::Avx2 {
            // SAFETY: `isa` was checked available when the caller built it.
            return unsafe { scores_avx2(q, &self.centroids, self.dims) };
        }
        scores_portable(q, &self.centroids, self.dims)
    }

    /// Scores of `nq` queries (row-major), parallel over queries.
    pub fn scores_batch(&self, q: &[f32], nq: usize) -> Result<Vec<f32>> {
        if nq.checked_mul(self.dims) != Some(q.len()) {
            return shape_err(format!(
                "queries have {} values; expected nq * dims = {nq} * {}",
                q.len(),
                self.dims
            ));
        }
        let nlist = self.nlist();
        let mut out = crate::error::try_zeroed::<f32>(nq * nlist, "the list scores")?;
        out.par_chunks_mut(nlist)
            .zip(q.par_chunks(self.dims))
            .for_each(|(o, x)| o.copy_from_slice(&self.scores(x)));
        Ok(out)
    }
}

#[inline(always)]
fn scores_portable(q: &[f32], centroids: &[f32], dims: usize) -> Vec<f32> {
    let mut out = vec![0f32; centroids.len() / dims];
    dots(q, centroids, dims, &mut out);
    out
}

/// [`scores_portable`] compiled for AVX2 (the same operations in the same order).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scores_avx2(q: &[f32], centroids: &[f32], dims: usize) -> Vec<f32> {
    scores_portable(q, centroids, dims)
}

/// The `width` best lists of `scores` (descending, ties by lower list) with their scores.
pub fn best(scores: &[f32], width: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
    let better = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let width = width.min(order.len());
    if width == 0 {
        return Vec::new();
    }
    if width < order.len() {
        order.select_nth_unstable_by(width - 1, better);
        order.truncate(width);
    }
    order.sort_unstable_by(better);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_rank_by_inner_product_on_every_level() {
        let centroids = vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.7, 0.7];
        for isa in Isa::available() {
            let coarse = Coarse::new(centroids.clone(), 2, isa).unwrap();
            let s = coarse.scores(&[1.0, 0.5]);
            assert_eq!(s, vec![1.0, 0.5, -1.0, 0.7 + 0.35]);
            assert_eq!(best(&s, 2), vec![(3, 0.7 + 0.35), (0, 1.0)]);
            assert_eq!(
                coarse.scores_batch(&[1.0, 0.5, 0.0, 1.0], 2).unwrap()[4..],
                [0.0, 1.0, 0.0, 0.7]
            );
        }
        assert_eq!(
            best(&[2.0, 2.0, 1.0], 9),
            vec![(0, 2.0), (1, 2.0), (2, 1.0)]
        );
        assert!(Coarse::new(vec![1.0; 5], 2, Isa::Scalar).is_err());
        assert!(Coarse::new(vec![f32::NAN, 0.0], 2, Isa::Scalar).is_err());
    }
}
