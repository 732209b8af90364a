//! Float lookup-table scans of row-major codes: the scalar reference and an interleaved twin.
//!
//! One row costs one table lookup and one float add per byte. The adds of one row form a chain
//! (3-cycle latency on Zen 3), so the reference runs at the latency of that chain; the
//! interleaved kernel keeps [`ROWS`] independent chains in flight and sums each row in exactly
//! the reference's order, so the two agree bit for bit.
use super::lut::ByteLuts;

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
    let bytes = tables.len();
    let mut groups = rows.chunks_exact(ROWS * row_bytes);
    let mut outs = out.chunks_exact_mut(ROWS);
    for (group, out) in (&mut groups).zip(&mut outs) {
        let r: [&[u8]; ROWS] = std::array::from_fn(|k| &group[k * row_bytes..][..bytes]);
        let mut s = [0f32; ROWS];
        for (i, t) in tables.iter().enumerate() {
            for k in 0..ROWS {
                s[k] += t[usize::from(r[k][i])];
            }
        }
        out.copy_from_slice(&s);
    }
    scores_scalar(luts, groups.remainder(), row_bytes, outs.into_remainder());
}
