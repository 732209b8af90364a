//! The transposed block layout of the quantized (FastScan-style) kernel.
//!
//! Rows are grouped in blocks of [`BLOCK_ROWS`]; inside a block, byte `i` of row `r` is stored at
//! `i * BLOCK_ROWS + r`, so one 32-byte load holds byte `i` of all 32 rows: the operand of one
//! `vpshufb` lookup per nibble. The last block is padded with zero rows, which searches skip.
use rayon::prelude::*;

use crate::error::{chunk_len, shape_err, Result};

use super::try_zeroed;

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
    if n == 0 || row_bytes == 0 {
        return Ok(out);
    }
    // Fits: at least one block exists and blocked_len was checked.
    let block_bytes = BLOCK_ROWS * row_bytes;
    let task = chunk_len(BLOCKS_PER_TASK, n.div_ceil(BLOCK_ROWS), block_bytes);
    out.par_chunks_mut(task)
        .zip(rows.par_chunks(task))
        .for_each(|(out, rows)| {
            for (block, src) in out.chunks_mut(block_bytes).zip(rows.chunks(block_bytes)) {
                for (r, row) in src.chunks_exact(row_bytes).enumerate() {
                    for (i, &b) in row.iter().enumerate() {
                        block[i * BLOCK_ROWS + r] = b;
                    }
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
    if n == 0 || row_bytes == 0 {
        return Ok(out);
    }
    let block_bytes = BLOCK_ROWS * row_bytes;
    let rows_task = chunk_len(BLOCKS_PER_TASK, n.div_ceil(BLOCK_ROWS), block_bytes);
    out.par_chunks_mut(rows_task)
        .zip(blocks.par_chunks(rows_task))
        .for_each(|(out, blocks)| {
            for (dst, block) in out.chunks_mut(block_bytes).zip(blocks.chunks(block_bytes)) {
                for (r, row) in dst.chunks_exact_mut(row_bytes).enumerate() {
                    for (i, b) in row.iter_mut().enumerate() {
                        *b = block[i * BLOCK_ROWS + r];
                    }
                }
            }
        });
    Ok(out)
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
}
