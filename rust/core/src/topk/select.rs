//! Bounded selection of the `k` smallest `(distance, id)` pairs.
//!
//! A pair is one `u64` key, distance in the high 24 bits and id in the low 40, so "smaller
//! distance, then lower id" is a single integer compare and a sort of keys is the result order.
//! A scan offers candidates through [`TopKeys::offer_all`], which rejects a distance above the
//! current k-th with one compare (the common case: a random code is rarely among the nearest);
//! only the survivors touch the heap.

/// Bits of a key that hold the row id.
const ID_BITS: u32 = 40;

/// Rows a search may address (ids must fit [`ID_BITS`]).
pub(crate) const MAX_ROWS: usize = 1 << ID_BITS;

/// The key of a candidate; `dist < 2^24` and `id < 2^40`.
#[inline]
pub(crate) fn key(dist: u32, id: u64) -> u64 {
    (u64::from(dist) << ID_BITS) | id
}

/// Distance and id of a key.
#[inline]
pub(crate) fn split(key: u64) -> (u32, u64) {
    ((key >> ID_BITS) as u32, key & ((1 << ID_BITS) - 1))
}

/// The `cap` smallest keys offered so far: unordered while filling, then a max-heap.
#[derive(Debug, Clone)]
pub(crate) struct TopKeys {
    cap: usize,
    keys: Vec<u64>,
    /// Distance of the largest kept key once full (`u32::MAX` before): larger ones cannot enter.
    bound: u32,
}

impl TopKeys {
    /// An empty selection of `cap >= 1` keys.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            keys: Vec::new(),
            bound: u32::MAX,
        }
    }

    /// Keeps `key` if it is among the `cap` smallest seen.
    #[inline]
    pub(crate) fn offer(&mut self, key: u64) {
        if self.keys.len() < self.cap {
            self.keys.push(key);
            if self.keys.len() == self.cap {
                self.heapify();
            }
        } else if key < self.keys[0] {
            self.keys[0] = key;
            self.sift_down(0);
            self.bound = split(self.keys[0]).0;
        }
    }

    /// Offers row `first_id + i` at distance `dists[i]` for each `i`.
    ///
    /// Most candidates are rejected by `d > bound`; blocks of 16 are tested first with a
    /// branch-free reduction the compiler vectorises, so a block without a candidate costs a few
    /// vector operations.
    pub(crate) fn offer_all(&mut self, dists: &[u32], first_id: u64) {
        const BLOCK: usize = 16;
        let (blocks, tail) = dists.as_chunks::<BLOCK>();
        for (b, block) in blocks.iter().enumerate() {
            let bound = self.bound;
            if block.iter().fold(false, |any, &d| any | (d <= bound)) {
                self.offer_each(block, first_id + (b * BLOCK) as u64);
            }
        }
        self.offer_each(tail, first_id + (blocks.len() * BLOCK) as u64);
    }

    #[inline]
    fn offer_each(&mut self, dists: &[u32], first_id: u64) {
        for (i, &d) in dists.iter().enumerate() {
            // `<=`: an equal distance may still win on a lower id (after a merge).
            if d <= self.bound {
                self.offer(key(d, first_id + i as u64));
            }
        }
    }

    /// Adds every key of `other` (the merge of two partial selections).
    pub(crate) fn merge(&mut self, other: &TopKeys) {
        for &k in &other.keys {
            self.offer(k);
        }
    }

    /// The kept keys, ascending.
    pub(crate) fn into_sorted(mut self) -> Vec<u64> {
        self.keys.sort_unstable();
        self.keys
    }

    fn heapify(&mut self) {
        for i in (0..self.keys.len() / 2).rev() {
            self.sift_down(i);
        }
        self.bound = split(self.keys[0]).0;
    }

    fn sift_down(&mut self, i: usize) {
        sift_down(&mut self.keys, i);
    }
}

/// Restores the max-heap order of `keys` below position `i` (shared by the Hamming and the
/// asymmetric selections, whose packed keys differ only in width).
pub(crate) fn sift_down<K: Ord + Copy>(keys: &mut [K], mut i: usize) {
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

    #[test]
    fn keeps_the_smallest_with_ties_by_id() {
        let mut top = TopKeys::new(3);
        let dists = [5, 3, 3, 9, 1, 3, 0, 3];
        top.offer_all(&dists, 100);
        let got: Vec<(u32, u64)> = top.into_sorted().into_iter().map(split).collect();
        assert_eq!(got, vec![(0, 106), (1, 104), (3, 101)]);
    }

    #[test]
    fn merge_respects_lower_id_on_equal_distance() {
        let mut late = TopKeys::new(2);
        late.offer_all(&[4, 4, 4], 50);
        let mut early = TopKeys::new(2);
        early.offer_all(&[7, 4], 10);
        late.merge(&early);
        let got: Vec<(u32, u64)> = late.into_sorted().into_iter().map(split).collect();
        assert_eq!(got, vec![(4, 11), (4, 50)]);
    }

    #[test]
    fn fewer_candidates_than_cap() {
        let mut top = TopKeys::new(10);
        top.offer_all(&[2, 1], 0);
        let got: Vec<(u32, u64)> = top.into_sorted().into_iter().map(split).collect();
        assert_eq!(got, vec![(1, 1), (2, 0)]);
    }

    #[test]
    fn block_filter_matches_one_by_one() {
        // 16-wide blocks with and without candidates, and a tail.
        let dists: Vec<u32> = (0..103u32).map(|i| (i * 37 + 11) % 50).collect();
        for cap in [1, 4, 17, 200] {
            let mut fast = TopKeys::new(cap);
            fast.offer_all(&dists, 7);
            let mut slow = TopKeys::new(cap);
            for (i, &d) in dists.iter().enumerate() {
                slow.offer(key(d, 7 + i as u64));
            }
            assert_eq!(fast.into_sorted(), slow.into_sorted(), "cap={cap}");
        }
    }

    #[test]
    fn key_order_is_distance_then_id() {
        assert!(key(1, (1 << 40) - 1) < key(2, 0));
        assert!(key(3, 4) < key(3, 5));
        assert_eq!(split(key(0xFF_FFFF, 12345)), (0xFF_FFFF, 12345));
    }
}
