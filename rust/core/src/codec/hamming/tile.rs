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
    match shape.lanes {
        4 => interleave_lanes::<4>(db, words, cw, mask, shape.extra, tile),
        8 => interleave_lanes::<8>(db, words, cw, mask, shape.extra, tile),
        _ => interleave_any(db, words, cw, mask, shape, tile),
    }
}

/// [`interleave`] for any lane count, one word at a time (kernels use 4 or 8 lanes).
fn interleave_any(
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
    for row in 0..rows {
        let (g, r) = (row / group_rows, row % group_rows);
        let group = &mut tile[g * cw * group_rows..][..cw * group_rows];
        for w in 0..cw {
            let x = db[row * words + w] & if w == cw - 1 { mask } else { u64::MAX };
            let at = if r < lanes {
                w * lanes + r
            } else {
                cw * lanes + (r - lanes) * cw + w
            };
            group[at] = x;
        }
    }
    groups
}

/// [`interleave`] for a lane count known at compile time, so the row loops unroll.
fn interleave_lanes<const LANES: usize>(
    db: &[u64],
    words: usize,
    cw: usize,
    mask: u64,
    extra: usize,
    tile: &mut Vec<u64>,
) -> usize {
    let group_rows = LANES + extra;
    let rows = db.len() / words;
    let groups = rows.div_ceil(group_rows);
    // Every slot is written below (a ragged last group from a zero-padded copy), so a reused
    // tile needs no clearing.
    tile.resize(groups * cw * group_rows, 0);
    let mut padded = Vec::new();
    let full = rows / group_rows;
    let sources = db[..full * group_rows * words]
        .chunks_exact(group_rows * words)
        .chain((full < groups).then(|| {
            padded = db[full * group_rows * words..].to_vec();
            padded.resize(group_rows * words, 0);
            &padded[..]
        }));
    for (src, dst) in sources.zip(tile.chunks_exact_mut(cw * group_rows)) {
        let (vector, extra_rows) = dst.split_at_mut(cw * LANES);
        let lane_rows: [&[u64]; LANES] = std::array::from_fn(|r| &src[r * words..][..cw]);
        for (w, out) in vector.as_chunks_mut::<LANES>().0.iter_mut().enumerate() {
            *out = std::array::from_fn(|r| lane_rows[r][w]);
        }
        for o in &mut vector[(cw - 1) * LANES..] {
            *o &= mask;
        }
        for (r, out) in extra_rows.chunks_exact_mut(cw).enumerate() {
            out.copy_from_slice(&src[(LANES + r) * words..][..cw]);
            out[cw - 1] &= mask;
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
    fn fixed_lane_paths_match_the_generic_one() {
        let words = 7;
        for rows in [1, 4, 5, 9, 40, 43] {
            let db: Vec<u64> = (0..rows * words as u64)
                .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .collect();
            for shape in [
                GroupShape { lanes: 4, extra: 1 },
                GroupShape { lanes: 4, extra: 0 },
                GroupShape { lanes: 8, extra: 0 },
            ] {
                for cw in [1, 3, 7] {
                    let (mut fast, mut slow) = (vec![7; 5], Vec::new());
                    let g = interleave(&db, words, cw, 0x0FFF, shape, &mut fast);
                    assert_eq!(g, interleave_any(&db, words, cw, 0x0FFF, shape, &mut slow));
                    assert_eq!(fast, slow, "rows={rows} {shape:?} cw={cw}");
                }
            }
        }
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
