//! The one bounded top-k of every search, its result type, and the allowed-row filter.
//!
//! A candidate is a `cost` (a `u32`, lower is better) and a `u64` label. Hamming codecs use the
//! distance as the cost; score codecs the complement of an order-preserving map of the float score
//! ([`cost_of_score`]). The pair is one `u128` key (cost high, label low), so "better, then lower
//! label" is one integer compare and a sort of keys is the result order. Most candidates are
//! rejected by one compare against the current k-th cost; only survivors touch the heap, and the
//! filter (when there is one) is asked only about survivors.
use std::sync::atomic::{AtomicU32, Ordering};

/// Row-major results of a search: `scores[i * k + r]`, `ids[i * k + r]` for query `i`, rank `r`.
/// Scores are higher-is-better for every codec (Hamming: `-distance`). A query with fewer than
/// `k` candidates (a filter) has its tail padded with id `u64::MAX` and score `-inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hits {
    /// Results per query.
    pub k: usize,
    /// Scores, descending per query.
    pub scores: Vec<f32>,
    /// Labels (row numbers or stored ids).
    pub ids: Vec<u64>,
}

/// Id of an empty result slot.
pub const MISSING: u64 = u64::MAX;

/// Which labels a search may return.
#[derive(Debug, Clone, Copy)]
pub enum Allowed<'a> {
    /// Bit `l % 64` of word `l / 64` set iff label `l` is allowed (labels past the end are not).
    Bitmap(&'a [u64]),
    /// The allowed labels, ascending.
    Sorted(&'a [u64]),
}

impl Allowed<'_> {
    /// Whether `label` may be returned.
    #[inline]
    pub fn contains(&self, label: u64) -> bool {
        match self {
            Allowed::Bitmap(words) => usize::try_from(label / 64)
                .ok()
                .and_then(|w| words.get(w))
                .is_some_and(|w| (w >> (label % 64)) & 1 == 1),
            Allowed::Sorted(labels) => labels.binary_search(&label).is_ok(),
        }
    }
}

/// A filter's admitted rows of each extent of one store (bit `r % 64` of word `r / 64` for row `r`
/// of the extent), found once for many searches: a block scan then skips the blocks it admits no
/// row of (at 1 % most of them) and tests no labels. Extents are numbered by the store, in the
/// order they were pushed.
#[derive(Debug, Clone)]
pub struct AdmittedRows {
    words: Vec<u64>,
    /// Where each extent's words start in `words` (one more entry than extents).
    starts: Vec<usize>,
}

impl Default for AdmittedRows {
    fn default() -> Self {
        Self {
            words: Vec::new(),
            starts: vec![0],
        }
    }
}

impl AdmittedRows {
    /// The next extent's admitted rows: those of its `rows` rows labelled `labels` that `allowed`
    /// admits (none: an empty entry).
    pub fn push(&mut self, allowed: Allowed<'_>, labels: Labels<'_>, rows: usize) {
        let start = self.words.len();
        self.words.resize(start + rows.div_ceil(64), 0);
        let bits = &mut self.words[start..];
        for r in 0..rows {
            bits[r / 64] |= u64::from(allowed.contains(labels.of(r))) << (r % 64);
        }
        self.starts.push(self.words.len());
    }

    /// Extent `i`'s admitted rows (None past the extents pushed).
    pub fn get(&self, i: usize) -> Option<&[u64]> {
        let (&start, &end) = (self.starts.get(i)?, self.starts.get(i + 1)?);
        Some(&self.words[start..end])
    }
}

/// How the rows of a scanned range are labelled.
#[derive(Debug, Clone, Copy)]
pub enum Labels<'a> {
    /// Row `r` of the range is labelled `first + r`.
    From(u64),
    /// Row `r` is labelled `given[r]`.
    Given(&'a [u64]),
}

impl Labels<'_> {
    /// The label of row `r`.
    #[inline]
    pub fn of(&self, r: usize) -> u64 {
        match self {
            Labels::From(first) => first + r as u64,
            Labels::Given(given) => given[r],
        }
    }

    /// The labels of rows `first..` of this range.
    pub fn skip(&self, first: usize) -> Self {
        match *self {
            Labels::From(f) => Labels::From(f + first as u64),
            Labels::Given(g) => Labels::Given(&g[first.min(g.len())..]),
        }
    }
}

/// Whether any of 16 costs is `<= bound` (the rejection test of [`TopK::offer_costs`]). On x86-64
/// an SSE2 kernel (the baseline: no detection needed): LLVM compiles the plain fold, an unsigned
/// compare that SSE2 lacks, to a chain of branches that cost a Hamming scan a third of its time.
#[inline]
fn any_at_most(block: &[u32; 16], bound: u32) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of every x86-64 CPU (the target's baseline); each load reads 4
        // readable u32s of `block`, and loadu has no alignment requirement.
        unsafe {
            // Signed compares of sign-flipped values order them as unsigned ones.
            let flip = _mm_set1_epi32(i32::MIN);
            let b = _mm_xor_si128(_mm_set1_epi32(bound as i32), flip);
            let mut all_above = _mm_set1_epi32(-1);
            for part in block.as_chunks::<4>().0 {
                let v = _mm_loadu_si128(part.as_ptr().cast());
                all_above = _mm_and_si128(all_above, _mm_cmpgt_epi32(_mm_xor_si128(v, flip), b));
            }
            _mm_movemask_epi8(all_above) != 0xFFFF
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    any_at_most_scalar(block, bound)
}

/// The scalar twin of [`any_at_most`].
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn any_at_most_scalar(block: &[u32; 16], bound: u32) -> bool {
    block.iter().any(|&c| c <= bound)
}

/// Order-preserving map of a non-NaN float to an unsigned integer (`-0.0` maps as `+0.0`).
#[inline]
pub(crate) fn ordered(score: f32) -> u32 {
    let bits = (score + 0.0).to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

/// Inverse of [`ordered`].
#[inline]
pub(crate) fn from_ordered(ordered: u32) -> f32 {
    f32::from_bits(if ordered >> 31 == 1 {
        ordered & !(1 << 31)
    } else {
        !ordered
    })
}

/// The cost of a score (higher score, lower cost).
#[inline]
pub(crate) fn cost_of_score(score: f32) -> u32 {
    !ordered(score)
}

/// The score of a cost (inverse of [`cost_of_score`]).
#[inline]
pub(crate) fn score_of_cost(cost: u32) -> f32 {
    from_ordered(!cost)
}

#[inline]
fn key(cost: u32, label: u64) -> u128 {
    (u128::from(cost) << 64) | u128::from(label)
}

#[inline]
fn split(key: u128) -> (u32, u64) {
    ((key >> 64) as u32, key as u64)
}

/// The `cap` best candidates offered so far (unordered while filling, then a max-heap of keys):
/// what a [`crate::codec::Codec`] scan offers its rows to.
#[derive(Debug, Clone)]
pub struct TopK<'a> {
    cap: usize,
    keys: Vec<u128>,
    /// Cost of the worst kept candidate once full (`u32::MAX` before): worse ones cannot enter.
    bound: u32,
    allowed: Option<Allowed<'a>>,
    /// A bound other tasks scanning other rows for the same query have reached (a full top-k of
    /// theirs): candidates worse than it cannot be in the merged result either.
    shared: Option<&'a AtomicU32>,
}

impl<'a> TopK<'a> {
    /// An empty selection of `cap >= 1` candidates, optionally restricted to `allowed` labels and
    /// sharing its bound through `shared`.
    pub(crate) fn new(
        cap: usize,
        allowed: Option<Allowed<'a>>,
        shared: Option<&'a AtomicU32>,
    ) -> Self {
        Self {
            cap: cap.max(1),
            keys: Vec::new(),
            bound: u32::MAX,
            allowed,
            shared,
        }
    }

    /// The worst cost a candidate may have to possibly enter (its own bound or a shared one).
    #[inline]
    pub fn bound(&self) -> u32 {
        match self.shared {
            Some(s) => self.bound.min(s.load(Ordering::Relaxed)),
            None => self.bound,
        }
    }

    /// How many candidates it keeps.
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Whether a filter restricts the labels it keeps.
    pub(crate) fn is_filtered(&self) -> bool {
        self.allowed.is_some()
    }

    /// Whether `cap` candidates are kept.
    pub fn is_full(&self) -> bool {
        self.keys.len() == self.cap
    }

    /// Whether a filter rules out the row labelled `label()` (read only when there is a filter): a
    /// scan tests it before an exact score that a filtered-out row would waste.
    #[inline]
    pub fn excludes(&self, label: impl FnOnce() -> u64) -> bool {
        self.allowed.as_ref().is_some_and(|a| !a.contains(label()))
    }

    /// Keeps `(cost, label)` if it is among the `cap` best seen (and allowed); returns whether it
    /// was kept.
    #[inline]
    pub fn offer(&mut self, cost: u32, label: u64) -> bool {
        if cost > self.bound() {
            return false;
        }
        if self.excludes(|| label) {
            return false;
        }
        let key = key(cost, label);
        if self.keys.len() < self.cap {
            self.keys.push(key);
            if self.keys.len() == self.cap {
                for i in (0..self.keys.len() / 2).rev() {
                    sift_down(&mut self.keys, i);
                }
                self.tighten();
            }
            true
        } else if key < self.keys[0] {
            self.keys[0] = key;
            sift_down(&mut self.keys, 0);
            self.tighten();
            true
        } else {
            false
        }
    }

    fn tighten(&mut self) {
        self.bound = split(self.keys[0]).0;
        if let Some(s) = self.shared {
            s.fetch_min(self.bound, Ordering::Relaxed);
        }
    }

    /// Offers row `r` at cost `costs[r]` labelled `labels.of(r)`, for each `r`.
    ///
    /// Most candidates are rejected by `cost > bound`; blocks of 16 are tested first with a
    /// branch-free min reduction the compiler vectorises, so a block without a candidate costs a
    /// few vector operations.
    pub fn offer_costs(&mut self, costs: &[u32], labels: Labels<'_>) {
        const BLOCK: usize = 16;
        // Blocks between re-reads of a shared bound (other tasks tighten it meanwhile).
        const REFRESH: usize = 256;
        let (blocks, tail) = costs.as_chunks::<BLOCK>();
        // The bound lives in a register across the loop (re-read from `self` only after an offer
        // or every REFRESH blocks): the rejection test then stays a few vector instructions.
        let mut bound = self.bound();
        for (b, block) in blocks.iter().enumerate() {
            if any_at_most(block, bound) {
                self.offer_each(block, labels, b * BLOCK);
                bound = self.bound();
            } else if b % REFRESH == REFRESH - 1 && self.shared.is_some() {
                bound = self.bound();
            }
        }
        self.offer_each(tail, labels, blocks.len() * BLOCK);
    }

    #[inline]
    fn offer_each(&mut self, costs: &[u32], labels: Labels<'_>, first: usize) {
        for (i, &c) in costs.iter().enumerate() {
            // `<=`: an equal cost may still win on a lower label.
            if c <= self.bound {
                self.offer(c, labels.of(first + i));
            }
        }
    }

    /// Adds every candidate of `other` (the merge of two partial selections).
    pub(crate) fn merge(&mut self, other: &TopK<'_>) {
        for &k in &other.keys {
            let (c, l) = split(k);
            self.offer(c, l);
        }
    }

    /// Writes the kept candidates, best first, as `(score_of(cost), label)` into `scores` and
    /// `ids`; slots past the kept ones get `-inf` and [`MISSING`].
    pub(crate) fn write(
        mut self,
        scores: &mut [f32],
        ids: &mut [u64],
        score_of: impl Fn(u32) -> f32,
    ) {
        self.keys.sort_unstable();
        for (r, (s, i)) in scores.iter_mut().zip(ids.iter_mut()).enumerate() {
            match self.keys.get(r) {
                Some(&k) => {
                    let (c, l) = split(k);
                    (*s, *i) = (score_of(c), l);
                }
                None => (*s, *i) = (f32::NEG_INFINITY, MISSING),
            }
        }
    }
}

/// Restores the max-heap order of `keys` below position `i`.
fn sift_down(keys: &mut [u128], mut i: usize) {
    let len = keys.len();
    loop {
        let left = 2 * i + 1;
        if left >= len {
            break;
        }
        let right = left + 1;
        let child = if right < len && keys[right] > keys[left] {
            right
        } else {
            left
        };
        if keys[child] <= keys[i] {
            break;
        }
        keys.swap(i, child);
        i = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(top: TopK<'_>, n: usize) -> Vec<(u32, u64)> {
        let (mut s, mut i) = (vec![0f32; n], vec![0u64; n]);
        top.write(&mut s, &mut i, |c| c as f32);
        s.into_iter()
            .zip(i)
            .filter(|p| p.1 != MISSING)
            .map(|(s, i)| (s as u32, i))
            .collect()
    }

    #[test]
    fn keeps_the_best_with_ties_by_label() {
        let mut top = TopK::new(3, None, None);
        top.offer_costs(&[5, 3, 3, 9, 1, 3, 0, 3], Labels::From(100));
        assert_eq!(sorted(top, 3), vec![(0, 106), (1, 104), (3, 101)]);
    }

    #[test]
    fn merge_prefers_the_lower_label_on_equal_cost() {
        let mut late = TopK::new(2, None, None);
        late.offer_costs(&[4, 4, 4], Labels::From(50));
        let mut early = TopK::new(2, None, None);
        early.offer_costs(&[7, 4], Labels::From(10));
        late.merge(&early);
        assert_eq!(sorted(late, 2), vec![(4, 11), (4, 50)]);
    }

    #[test]
    fn fewer_candidates_than_cap_are_padded() {
        let mut top = TopK::new(4, None, None);
        top.offer_costs(&[2, 1], Labels::Given(&[7, 9]));
        let (mut s, mut i) = (vec![0f32; 4], vec![0u64; 4]);
        top.write(&mut s, &mut i, |c| c as f32);
        assert_eq!(i, vec![9, 7, MISSING, MISSING]);
        assert_eq!(s[2], f32::NEG_INFINITY);
    }

    #[test]
    fn block_filter_matches_one_by_one() {
        let costs: Vec<u32> = (0..103u32).map(|i| (i * 37 + 11) % 50).collect();
        for cap in [1, 4, 17, 200] {
            let mut fast = TopK::new(cap, None, None);
            fast.offer_costs(&costs, Labels::From(7));
            let mut slow = TopK::new(cap, None, None);
            for (i, &c) in costs.iter().enumerate() {
                slow.offer(c, 7 + i as u64);
            }
            assert_eq!(sorted(fast, cap), sorted(slow, cap), "cap={cap}");
        }
    }

    #[test]
    fn the_filter_keeps_only_allowed_labels() {
        let costs: Vec<u32> = (0..200u32).map(|i| (i * 7919) % 101).collect();
        let allowed_labels: Vec<u64> = (0..200).filter(|l| l % 9 == 4).collect();
        let mut bitmap = vec![0u64; 4];
        for &l in &allowed_labels {
            bitmap[l as usize / 64] |= 1 << (l % 64);
        }
        let mut want: Vec<(u32, u64)> = allowed_labels
            .iter()
            .map(|&l| (costs[l as usize], l))
            .collect();
        want.sort_unstable();
        want.truncate(5);
        for allowed in [Allowed::Bitmap(&bitmap), Allowed::Sorted(&allowed_labels)] {
            let mut top = TopK::new(5, Some(allowed), None);
            top.offer_costs(&costs, Labels::From(0));
            assert_eq!(sorted(top, 5), want);
        }
        assert!(!Allowed::Bitmap(&bitmap).contains(1 << 40));
    }

    #[test]
    fn the_rejection_kernel_matches_its_scalar_twin() {
        let values = [
            0,
            1,
            2,
            1 << 23,
            (1 << 31) - 1,
            1 << 31,
            (1 << 31) + 1,
            u32::MAX - 1,
            u32::MAX,
        ];
        for &bound in &values {
            for pos in 0..16 {
                for &c in &values {
                    let mut block = [u32::MAX; 16];
                    block[pos] = c;
                    assert_eq!(
                        any_at_most(&block, bound),
                        any_at_most_scalar(&block, bound),
                        "bound {bound}, cost {c} at {pos}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_shared_bound_prunes_without_losing_the_merged_result() {
        let shared = AtomicU32::new(u32::MAX);
        let costs: Vec<u32> = (0..64u32).map(|i| (i * 13) % 29).collect();
        let (a, b) = costs.split_at(32);
        let mut first = TopK::new(3, None, Some(&shared));
        first.offer_costs(a, Labels::From(0));
        let mut second = TopK::new(3, None, Some(&shared));
        second.offer_costs(b, Labels::From(32));
        first.merge(&second);
        let mut plain = TopK::new(3, None, None);
        plain.offer_costs(&costs, Labels::From(0));
        assert_eq!(sorted(first, 3), sorted(plain, 3));
    }

    #[test]
    fn score_costs_order_like_scores() {
        let values = [f32::MAX, 1.5, 1.0, 1e-45, 0.0, -1e-45, -1.0, f32::MIN];
        for w in values.windows(2) {
            assert!(
                cost_of_score(w[0]) < cost_of_score(w[1]),
                "{} vs {}",
                w[0],
                w[1]
            );
        }
        for &v in &values {
            assert_eq!(score_of_cost(cost_of_score(v)), v);
        }
        assert_eq!(cost_of_score(-0.0), cost_of_score(0.0));
        assert_eq!(
            score_of_cost(cost_of_score(f32::NEG_INFINITY)),
            f32::NEG_INFINITY
        );
    }
}
