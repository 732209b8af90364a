//! The transposed block layout of the quantized (FastScan-style) kernel.
//!
//! Rows are grouped in blocks of [`BLOCK_ROWS`]; inside a block, byte `i` of row `r` is stored at
//! `i * BLOCK_ROWS + r`, so one 32-byte load holds byte `i` of all 32 rows: the operand of one
//! `vpshufb` lookup per nibble. The last block is padded with zero rows, which searches skip.
use rayon::prelude::*;

use crate::error::{chunk_len, shape_err, try_zeroed, value_err, Result};

/// Rows per block (one AVX2 register of bytes).
pub const BLOCK_ROWS: usize = 32;

/// Blocks a task converts at once.
const BLOCKS_PER_TASK: usize = 256;

/// Bytes of the blocked copy of `n` rows of `row_bytes` bytes.
pub fn blocked_len(n: usize, row_bytes: usize) -> Option<usize> {
    n.div_ceil(BLOCK_ROWS)
        .checked_mul(BLOCK_ROWS)?
        .checked_mul(row_bytes)
}

/// Row-major packed codes (`n` rows of `row_bytes`) to the block layout.
pub fn to_blocks(rows: &[u8], n: usize, row_bytes: usize) -> Result<Vec<u8>> {
    check_rows(rows, n, row_bytes)?;
    let len = blocked_len(n, row_bytes).unwrap_or(usize::MAX);
    let mut out = try_zeroed::<u8>(len, "the blocked codes")?;
    each_block(&mut out, rows, n, row_bytes, |block, src| {
        for (r, row) in src.chunks_exact(row_bytes).enumerate() {
            for (i, &b) in row.iter().enumerate() {
                block[i * BLOCK_ROWS + r] = b;
            }
        }
    });
    Ok(out)
}

/// Inverse of [`to_blocks`]: the first `n` rows, row-major.
pub fn from_blocks(blocks: &[u8], n: usize, row_bytes: usize) -> Result<Vec<u8>> {
    if blocked_len(n, row_bytes) != Some(blocks.len()) {
        return shape_err(format!(
            "blocks has {} bytes; n = {n} rows of row_bytes = {row_bytes} need {}",
            blocks.len(),
            blocked_len(n, row_bytes).map_or("too many".into(), |l| l.to_string())
        ));
    }
    // Fits: n * row_bytes <= blocked_len(n, row_bytes), checked above.
    let mut out = try_zeroed::<u8>(n * row_bytes, "the row-major codes")?;
    each_block(&mut out, blocks, n, row_bytes, |dst, block| {
        for (r, row) in dst.chunks_exact_mut(row_bytes).enumerate() {
            for (i, b) in row.iter_mut().enumerate() {
                *b = block[i * BLOCK_ROWS + r];
            }
        }
    });
    Ok(out)
}

/// `convert(out_block, src_block)` for each block of `n` rows of `row_bytes` bytes, the block's
/// bytes of `out` and of `src` (one side row-major, the other the block layout; the last block
/// may be shorter on the row-major side), in parallel tasks of [`BLOCKS_PER_TASK`] blocks.
fn each_block(
    out: &mut [u8],
    src: &[u8],
    n: usize,
    row_bytes: usize,
    convert: impl Fn(&mut [u8], &[u8]) + Sync,
) {
    if n == 0 || row_bytes == 0 {
        return;
    }
    // Fits: at least one block exists and the callers checked the blocked length.
    let block_bytes = BLOCK_ROWS * row_bytes;
    let task = chunk_len(BLOCKS_PER_TASK, n.div_ceil(BLOCK_ROWS), block_bytes);
    out.par_chunks_mut(task)
        .zip(src.par_chunks(task))
        .for_each(|(out, src)| {
            for (o, s) in out.chunks_mut(block_bytes).zip(src.chunks(block_bytes)) {
                convert(o, s);
            }
        });
}

/// Writes `rows` (row-major, `row_bytes` each) into the block-layout array `blocks` at rows
/// `at..`, in place: appending to a block-layout store never rebuilds it. `blocks` must cover
/// `ceil((at + m) / 32)` blocks.
pub fn write_rows(blocks: &mut [u8], row_bytes: usize, at: usize, rows: &[u8]) -> Result<()> {
    if row_bytes == 0 || !rows.len().is_multiple_of(row_bytes) {
        return shape_err(format!(
            "rows has {} bytes, not a whole number of {row_bytes}-byte rows",
            rows.len()
        ));
    }
    let m = rows.len() / row_bytes;
    let end = at.checked_add(m).and_then(|e| blocked_len(e, row_bytes));
    if end.is_none_or(|e| e > blocks.len()) {
        return shape_err(format!(
            "blocks has {} bytes; rows {at}..{} need {}",
            blocks.len(),
            at.saturating_add(m),
            end.map_or("too many".into(), |e| e.to_string())
        ));
    }
    let block_bytes = BLOCK_ROWS * row_bytes;
    for (i, row) in rows.chunks_exact(row_bytes).enumerate() {
        let r = at + i;
        let block = &mut blocks[(r / BLOCK_ROWS) * block_bytes..][..block_bytes];
        for (j, &b) in row.iter().enumerate() {
            block[j * BLOCK_ROWS + r % BLOCK_ROWS] = b;
        }
    }
    Ok(())
}

/// Keeps the rows `r < n` with `keep[r]` of the block-layout array `blocks`, moving them to the
/// front in order and zeroing the freed tail rows, in place (removal without a rebuild). Returns
/// the rows kept.
pub fn keep_rows(blocks: &mut [u8], row_bytes: usize, n: usize, keep: &[bool]) -> Result<usize> {
    if keep.len() != n {
        return shape_err(format!("keep has {} entries for {n} rows", keep.len()));
    }
    if blocked_len(n, row_bytes).is_none_or(|l| l > blocks.len()) {
        return value_err(format!(
            "blocks has {} bytes, too few for {n} rows",
            blocks.len()
        ));
    }
    let block_bytes = BLOCK_ROWS * row_bytes;
    let mut kept = 0;
    for r in 0..n {
        if !keep[r] {
            continue;
        }
        if kept != r {
            for j in 0..row_bytes {
                let v = blocks[(r / BLOCK_ROWS) * block_bytes + j * BLOCK_ROWS + r % BLOCK_ROWS];
                blocks[(kept / BLOCK_ROWS) * block_bytes + j * BLOCK_ROWS + kept % BLOCK_ROWS] = v;
            }
        }
        kept += 1;
    }
    for r in kept..n {
        for j in 0..row_bytes {
            blocks[(r / BLOCK_ROWS) * block_bytes + j * BLOCK_ROWS + r % BLOCK_ROWS] = 0;
        }
    }
    Ok(kept)
}

pub(crate) fn check_rows(rows: &[u8], n: usize, row_bytes: usize) -> Result<()> {
    if n.checked_mul(row_bytes) != Some(rows.len()) {
        return shape_err(format!(
            "codes have {} bytes; expected n * row_bytes = {n} * {row_bytes}",
            rows.len()
        ));
    }
    if blocked_len(n, row_bytes).is_none() {
        return shape_err(format!("{n} rows of {row_bytes} bytes are too many"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_pads_and_round_trips() {
        for (n, row_bytes) in [(1, 1), (31, 3), (32, 2), (33, 5), (100, 96)] {
            let rows: Vec<u8> = (0..n * row_bytes).map(|i| (i * 13 + 1) as u8).collect();
            let blocks = to_blocks(&rows, n, row_bytes).unwrap();
            assert_eq!(blocks.len(), n.div_ceil(32) * 32 * row_bytes);
            for row in 0..n {
                for i in 0..row_bytes {
                    let (g, r) = (row / 32, row % 32);
                    assert_eq!(
                        blocks[g * 32 * row_bytes + i * 32 + r],
                        rows[row * row_bytes + i]
                    );
                }
            }
            // Padding rows are zero.
            let tail = n % 32;
            if tail != 0 {
                let last = (n / 32) * 32 * row_bytes;
                assert!((tail..32).all(|r| blocks[last + r] == 0));
            }
            assert_eq!(from_blocks(&blocks, n, row_bytes).unwrap(), rows);
        }
        assert!(from_blocks(&[0; 10], 1, 1).is_err());
        assert!(to_blocks(&[0; 3], 2, 2).is_err());
    }

    #[test]
    fn in_place_writes_and_removals_match_a_rebuild() {
        let row_bytes = 3;
        let rows: Vec<u8> = (0..70 * row_bytes).map(|i| (i * 7 + 1) as u8).collect();
        let mut grown = vec![0u8; blocked_len(70, row_bytes).unwrap()];
        // Appended in uneven pieces, crossing block boundaries.
        let mut at = 0;
        for piece in [5, 27, 1, 33, 4] {
            write_rows(
                &mut grown,
                row_bytes,
                at,
                &rows[at * row_bytes..(at + piece) * row_bytes],
            )
            .unwrap();
            at += piece;
        }
        assert_eq!(grown, to_blocks(&rows, 70, row_bytes).unwrap());
        // Rows past the last block of the buffer (96 rows) are refused.
        assert!(write_rows(&mut grown.clone(), row_bytes, 95, &rows[..2 * row_bytes]).is_err());
        let keep: Vec<bool> = (0..70).map(|r| r % 3 != 1).collect();
        let kept = keep_rows(&mut grown, row_bytes, 70, &keep).unwrap();
        let survivors: Vec<u8> = rows
            .chunks(row_bytes)
            .zip(&keep)
            .filter(|(_, &k)| k)
            .flat_map(|(r, _)| r.to_vec())
            .collect();
        let mut want = to_blocks(&survivors, kept, row_bytes).unwrap();
        want.resize(grown.len(), 0);
        assert_eq!(grown, want);
    }
}
