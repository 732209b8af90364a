//! Bounded selection of the `k` best `(score, id)` pairs: higher score first, ties by lower id.
//!
//! A pair is one `u128` key, the score mapped to an order-preserving `u32` and complemented in the
//! high half and the id in the low half, so "better" is "smaller key" and a sort of keys is the
//! result order. Most candidates are rejected by one float compare against the k-th score.

/// Row-major results: `scores[i * k + r]`, `ids[i * k + r]` for query `i`, rank `r`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopScores {
    /// Results per query (`min(k, candidates)`).
    pub k: usize,
    /// Scores, descending per query.
    pub scores: Vec<f32>,
    /// Row numbers (0-based).
    pub ids: Vec<u64>,
}

/// `-0.0` becomes `+0.0`, so the two tie (as they compare equal) and break on the id.
#[inline]
fn canonical(score: f32) -> f32 {
    score + 0.0
}

/// Order-preserving map of a non-NaN float to an unsigned integer (`-0.0` maps as `+0.0`).
#[inline]
pub(crate) fn ordered(score: f32) -> u32 {
    let bits = canonical(score).to_bits();
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

/// Key of a pair: the complemented [`ordered`] score high (high = worse), the id low. Scores are
/// finite (checked where the tables are built).
#[inline]
fn key(score: f32, id: u64) -> u128 {
    (u128::from(!ordered(score)) << 64) | u128::from(id)
}

/// Score and id of a key.
#[inline]
fn split(key: u128) -> (f32, u64) {
    (from_ordered(!((key >> 64) as u32)), key as u64)
}

/// The `cap` best pairs offered so far: unordered while filling, then a max-heap of keys.
#[derive(Debug, Clone)]
pub(crate) struct Best {
    cap: usize,
    keys: Vec<u128>,
    /// Score of the worst kept pair once full (`-inf` before): lower scores cannot enter.
    kth: f32,
}

impl Best {
    /// An empty selection of `cap >= 1` pairs.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            keys: Vec::new(),
            kth: f32::NEG_INFINITY,
        }
    }

    /// The score a candidate must reach to possibly enter (`-inf` until full).
    #[inline]
    pub(crate) fn kth(&self) -> f32 {
        self.kth
    }

    /// Keeps `(score, id)` if it is among the `cap` best seen; returns whether it was kept.
    #[inline]
    pub(crate) fn offer(&mut self, score: f32, id: u64) -> bool {
        if score < self.kth {
            return false;
        }
        let key = key(score, id);
        if self.keys.len() < self.cap {
            self.keys.push(key);
            if self.keys.len() == self.cap {
                for i in (0..self.keys.len() / 2).rev() {
                    self.sift_down(i);
                }
                self.kth = split(self.keys[0]).0;
            }
            true
        } else if key < self.keys[0] {
            self.keys[0] = key;
            self.sift_down(0);
            self.kth = split(self.keys[0]).0;
            true
        } else {
            false
        }
    }

    /// Offers row `first_id + i` at score `scores[i]` for each `i`.
    pub(crate) fn offer_all(&mut self, scores: &[f32], first_id: u64) {
        for (i, &s) in scores.iter().enumerate() {
            if s >= self.kth {
                self.offer(s, first_id + i as u64);
            }
        }
    }

    /// Adds every pair of `other` (the merge of two partial selections).
    pub(crate) fn merge(&mut self, other: &Best) {
        for &k in &other.keys {
            let (s, id) = split(k);
            self.offer(s, id);
        }
    }

    /// Writes the kept pairs, best first, into `scores` and `ids` (each `cap` long at most).
    pub(crate) fn write_sorted(mut self, scores: &mut [f32], ids: &mut [u64]) {
        self.keys.sort_unstable();
        for ((&k, s), i) in self.keys.iter().zip(scores).zip(ids) {
            (*s, *i) = split(k);
        }
    }

    fn sift_down(&mut self, i: usize) {
        crate::topk::sift_down(&mut self.keys, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(best: Best) -> Vec<(f32, u64)> {
        let n = best.keys.len();
        let (mut s, mut i) = (vec![0f32; n], vec![0u64; n]);
        best.write_sorted(&mut s, &mut i);
        s.into_iter().zip(i).collect()
    }

    #[test]
    fn keeps_the_best_with_ties_by_id() {
        let mut best = Best::new(3);
        best.offer_all(&[0.5, 2.0, 2.0, -1.0, 3.0, 2.0], 10);
        assert_eq!(sorted(best), vec![(3.0, 14), (2.0, 11), (2.0, 12)]);
    }

    #[test]
    fn key_order_is_score_descending_then_id() {
        let values = [
            f32::MAX,
            1.5,
            1.0,
            f32::MIN_POSITIVE,
            1e-45,
            0.0,
            -1e-45,
            -1.0,
            f32::MIN,
        ];
        for w in values.windows(2) {
            assert!(key(w[0], 99) < key(w[1], 0), "{} vs {}", w[0], w[1]);
        }
        for &v in &values {
            assert_eq!(split(key(v, 7)), (v, 7));
            assert_eq!(from_ordered(ordered(v)), v);
        }
        assert_eq!(from_ordered(ordered(f32::NEG_INFINITY)), f32::NEG_INFINITY);
        assert!(ordered(f32::NEG_INFINITY) < ordered(f32::MIN));
        // -0.0 and +0.0 tie and break on the id.
        assert!(key(-0.0, 1) < key(0.0, 2));
        assert!(key(0.0, 1) < key(-0.0, 2));
    }

    #[test]
    fn merge_prefers_lower_id_on_equal_scores() {
        let mut late = Best::new(2);
        late.offer_all(&[4.0, 4.0, 4.0], 50);
        let mut early = Best::new(2);
        early.offer_all(&[1.0, 4.0], 10);
        late.merge(&early);
        assert_eq!(sorted(late), vec![(4.0, 11), (4.0, 50)]);
    }

    #[test]
    fn fewer_candidates_than_cap() {
        let mut best = Best::new(5);
        best.offer_all(&[-2.0, 7.0], 0);
        assert_eq!(best.kth(), f32::NEG_INFINITY);
        assert_eq!(sorted(best), vec![(7.0, 1), (-2.0, 0)]);
    }
}
