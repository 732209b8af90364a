//! Lane-interleaved database tiles for the batch kernels.
//!
//! A SIMD register holding word `w` of `LANES` consecutive rows lets one vector popcount serve
//! `LANES` distances at once, with no horizontal sum per pair. Row-major codes are copied into
//! that order once per tile (and the last compared word masked on the way), then every query of
//! the batch scans the cache-resident copy, which amortises the copy.

/// Copies the first `cw` words of each row of row-major `db` (stride `words`) into `tile` in
/// lane-group order: word `w` of row `g * lanes + r` goes to `tile[(g * cw + w) * lanes + r]`.
/// The last word is masked with `mask`; rows past the end of `db` in the last group are zero.
/// Returns the number of groups.
pub(crate) fn interleave(
    db: &[u64],
    words: usize,
    cw: usize,
    mask: u64,
    lanes: usize,
    tile: &mut Vec<u64>,
) -> usize {
    let rows = db.len() / words;
    let groups = rows.div_ceil(lanes);
    tile.clear();
    tile.resize(groups * cw * lanes, 0);
    for (g, block) in tile.chunks_exact_mut(cw * lanes).enumerate() {
        let first = g * lanes;
        for r in 0..lanes.min(rows - first) {
            let row = &db[(first + r) * words..][..cw];
            for (w, &x) in row.iter().enumerate() {
                block[w * lanes + r] = x;
            }
            block[(cw - 1) * lanes + r] &= mask;
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
        let groups = interleave(&db, 3, 2, 0b110, 4, &mut tile);
        assert_eq!(groups, 1);
        assert_eq!(tile, vec![1, 11, 21, 0, 2, 12 & 0b110, 22 & 0b110, 0]);
    }
}
