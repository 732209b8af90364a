//! Float lookup-table scans of row-major codes: the scalar reference and an interleaved twin.
//!
//! One row costs one table lookup and one float add per byte; the adds of one row form a chain.
//! The interleaved kernel keeps [`ROWS`] rows' chains in flight and sums each row in exactly the
//! reference's order, so the two agree bit for bit. Measured on Zen 3 it gains little (about
//! 10 %): out-of-order execution already overlaps consecutive rows of the reference, and both
//! are bound by the two loads per lookup (a code byte and a table entry of a 96 KiB table set).
//! Byte-major tiles and 8-byte code loads were tried and were no faster. The quantized block
//! kernel (`fastscan.rs`) is the fast path.
use super::luts::ByteLuts;

/// Rows the interleaved kernel scores at once (enough chains to cover the add latency).
pub(crate) const ROWS: usize = 8;

/// Scores of every row of `rows` (row-major, `row_bytes` per row) into `out`, one row at a time.
pub(crate) fn scores_scalar(luts: &ByteLuts, rows: &[u8], row_bytes: usize, out: &mut [f32]) {
    for (row, s) in rows.chunks_exact(row_bytes).zip(out.iter_mut()) {
        *s = luts.score(row);
    }
}

/// [`scores_scalar`] with [`ROWS`] rows in flight.
pub(crate) fn scores_interleaved(luts: &ByteLuts, rows: &[u8], row_bytes: usize, out: &mut [f32]) {
    let tables = luts.tables();
    let mut groups = rows.chunks_exact(ROWS * row_bytes);
    let mut outs = out.chunks_exact_mut(ROWS);
    for (group, out) in (&mut groups).zip(&mut outs) {
        let mut s = [0f32; ROWS];
        for (i, t) in tables.iter().enumerate() {
            let col = &group[i..];
            for k in 0..ROWS {
                s[k] += t[usize::from(col[k * row_bytes])];
            }
        }
        out.copy_from_slice(&s);
    }
    scores_scalar(luts, groups.remainder(), row_bytes, outs.into_remainder());
}
