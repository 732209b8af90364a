//! The portable kernel: plain `u64::count_ones`, no target features. It is the parity baseline
//! every SIMD kernel is tested against and the fallback on CPUs without the x86 extensions.

/// Distances of `q` to each row of row-major `db` (stride `words`) over the first `cw` words, the
/// last one masked with `mask`; `out[i]` gets row `i`.
///
/// Requires `1 <= cw <= words`, `q.len() >= cw` and `db.len() == out.len() * words` (checked).
pub(crate) fn rows(q: &[u64], db: &[u64], words: usize, cw: usize, mask: u64, out: &mut [u32]) {
    assert!(cw >= 1 && cw <= words && q.len() >= cw && db.len() == out.len() * words);
    let (head, last) = (&q[..cw - 1], q[cw - 1]);
    for (row, o) in db.chunks_exact(words).zip(out.iter_mut()) {
        let mut d = ((row[cw - 1] ^ last) & mask).count_ones();
        for (a, b) in head.iter().zip(row) {
            d += (a ^ b).count_ones();
        }
        *o = d;
    }
}
