//! Row-major kernel on the x86 `POPCNT` instruction, specialised by word count.
//!
//! This is the few-queries kernel of both x86 backends: it reads the database in place, so a scan
//! streams memory at full speed with no transposition to amortise. On AMD Zen 3 `popcnt` issues
//! four per cycle, so a pair of 6-word codes costs about five cycles of integer work, well under
//! the memory time of the 48 bytes it reads. The word count is a const generic so the query sits
//! in registers and the inner loop is fully unrolled.
#![cfg(target_arch = "x86_64")]

use super::RowKernel;

/// Distances of `q` to each row of row-major `db` (stride `words`) over the first `CW` words, the
/// last one masked with `mask`.
///
/// # Safety
/// The CPU must support `popcnt`. Lengths are checked: `CW <= words`, `q.len() >= CW`,
/// `db.len() == out.len() * words`.
#[target_feature(enable = "popcnt")]
unsafe fn rows_fixed<const CW: usize>(
    q: &[u64],
    db: &[u64],
    words: usize,
    _cw: usize,
    mask: u64,
    out: &mut [u32],
) {
    assert!(CW >= 1 && CW <= words && q.len() >= CW && db.len() == out.len() * words);
    let mut qa = [0u64; CW];
    qa.copy_from_slice(&q[..CW]);
    for (row, o) in db.chunks_exact(words).zip(out.iter_mut()) {
        let row = &row[..CW];
        let mut d = ((row[CW - 1] ^ qa[CW - 1]) & mask).count_ones();
        for w in 0..CW - 1 {
            d += (row[w] ^ qa[w]).count_ones();
        }
        *o = d;
    }
}

/// [`rows_fixed`] for a word count known only at run time.
///
/// # Safety
/// The CPU must support `popcnt`. Lengths are checked as in [`rows_fixed`].
#[target_feature(enable = "popcnt")]
unsafe fn rows_any(q: &[u64], db: &[u64], words: usize, cw: usize, mask: u64, out: &mut [u32]) {
    assert!(cw >= 1 && cw <= words && q.len() >= cw && db.len() == out.len() * words);
    let (head, last) = (&q[..cw - 1], q[cw - 1]);
    for (row, o) in db.chunks_exact(words).zip(out.iter_mut()) {
        let row = &row[..cw];
        let mut d = ((row[cw - 1] ^ last) & mask).count_ones();
        // Four independent sums so the adds do not serialise on one register.
        let (mut d1, mut d2, mut d3) = (0u32, 0u32, 0u32);
        let mut pairs = head.chunks_exact(4).zip(row.chunks_exact(4));
        for (a, b) in pairs.by_ref() {
            d += (a[0] ^ b[0]).count_ones();
            d1 += (a[1] ^ b[1]).count_ones();
            d2 += (a[2] ^ b[2]).count_ones();
            d3 += (a[3] ^ b[3]).count_ones();
        }
        let done = head.len() / 4 * 4;
        for (a, b) in head[done..].iter().zip(&row[done..]) {
            d += (a ^ b).count_ones();
        }
        *o = d + d1 + d2 + d3;
    }
}

/// The kernel for `cw` compared words: a specialised one for the common sizes (6 words = 384
/// one-bit dims, 10 = the 624-bit hybrid, 18 = 384 dims at 1.5 bits...), else the generic loop.
pub(crate) fn select(cw: usize) -> RowKernel {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match cw {
                $($n => rows_fixed::<$n> as RowKernel,)*
                _ => rows_any as RowKernel,
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24)
}
