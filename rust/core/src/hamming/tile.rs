//! Lane-interleaved database tiles for the batch kernels.
//!
//! A SIMD register holding word `w` of `LANES` consecutive rows lets one vector popcount serve
//! `LANES` distances at once, with no horizontal sum per pair. Row-major codes are copied into
//! that order once per tile (and the last compared word masked on the way), then every query of
//! the batch scans the cache-resident copy, which amortises the copy.

/// Rows per group of a batch kernel: `lanes` rows interleaved for the vector unit, then `extra`
/// rows kept row-major for a scalar `popcnt` running alongside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupShape {
    pub lanes: usize,
    pub extra: usize,
}

impl GroupShape {
    /// Rows per group.
    pub(crate) fn rows(self) -> usize {
        self.lanes + self.extra
    }
}

/// Copies the first `cw` words of each row of row-major `db` (stride `words`) into `tile`, group
/// by group: for group `g` (rows `g * shape.rows()..`), word `w` of its vector row `r` goes to
/// `tile[g * cw * shape.rows() + w * shape.lanes + r]`, then its extra rows follow row-major.
/// The last word is masked with `mask`; rows past the end of `db` in the last group are zero.
/// Returns the number of groups.
pub(crate) fn interleave(
    db: &[u64],
    words: usize,
    cw: usize,
    mask: u64,
    shape: GroupShape,
    tile: &mut Vec<u64>,
) -> usize {
    let (lanes, group_rows) = (shape.lanes, shape.rows());
    let rows = db.len() / words;
    let groups = rows.div_ceil(group_rows);
    tile.clear();
    tile.resize(groups * cw * group_rows, 0);
    for (g, block) in tile.chunks_exact_mut(cw * group_rows).enumerate() {
        let first = g * group_rows;
        let (vector, extra) = block.split_at_mut(cw * lanes);
        for r in 0..group_rows.min(rows - first) {
            let row = &db[(first + r) * words..][..cw];
            if r < lanes {
                for (w, &x) in row.iter().enumerate() {
                    vector[w * lanes + r] = x;
                }
                vector[(cw - 1) * lanes + r] &= mask;
            } else {
                let dst = &mut extra[(r - lanes) * cw..][..cw];
                dst.copy_from_slice(row);
                dst[cw - 1] &= mask;
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_and_masks() {
        // 3 rows of 3 words, compare 2 words, 4 lanes: one group, the last row slot zero.
        let db = [1, 2, 3, 11, 12, 13, 21, 22, 23];
        let mut tile = vec![99; 3];
        let shape = GroupShape { lanes: 4, extra: 0 };
        let groups = interleave(&db, 3, 2, 0b110, shape, &mut tile);
        assert_eq!(groups, 1);
        assert_eq!(tile, vec![1, 11, 21, 0, 2, 12 & 0b110, 22 & 0b110, 0]);
    }

    #[test]
    fn extra_rows_follow_row_major() {
        // 2 lanes + 1 extra row per group, 5 rows of 2 words: groups of rows {0,1,2}, {3,4,-}.
        let db: Vec<u64> = (0..10).collect();
        let mut tile = Vec::new();
        let shape = GroupShape { lanes: 2, extra: 1 };
        let groups = interleave(&db, 2, 2, u64::MAX, shape, &mut tile);
        assert_eq!(groups, 2);
        assert_eq!(tile, vec![0, 2, 1, 3, 4, 5, 6, 8, 7, 9, 0, 0]);
    }
}
