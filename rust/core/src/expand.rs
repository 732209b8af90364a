//! Thermometer expansion: a code `c` of a dimension with `L` levels becomes `L - 1` stream bits,
//! the first `c` of them set, so Hamming distance between expanded codes equals the L1 distance
//! between levels. Packs straight into `u64` words (layout documented in the crate root).
use rayon::prelude::*;

use crate::error::{check_rows, checked_size, chunk_len, shape_err, try_zeroed, value_err, Result};
use crate::layout::CodeLayout;
use crate::quantize::{
    all_finite, first_non_finite, for_each_dim, level_of, FewLevels, Thresholds, ROWS_PER_TASK,
};

/// The `n` lowest bits set (`n <= 64`).
#[inline]
fn low_mask(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Sets stream bits `start..start + len` of a zeroed-or-partly-filled packed row.
#[inline]
fn set_ones(row: &mut [u64], mut start: usize, mut len: usize) {
    while len > 0 {
        let (w, b) = (start / 64, start % 64);
        let take = len.min(64 - b);
        row[w] |= low_mask(take) << b;
        start += take;
        len -= take;
    }
}

/// Words of one packed row, after checking the packed length.
fn check_packed(len: usize, n: usize, words: usize, what: &str) -> Result<()> {
    match n.checked_mul(words) {
        Some(expected) if expected == len => Ok(()),
        _ => shape_err(format!(
            "{what} has {len} words; expected n * words = {n} * {words}"
        )),
    }
}

/// Expands codes `(n, dims)` into packed thermometer codes `(n, layout.words())`.
/// Errors when a code is `>= levels` of its dimension or the length is wrong.
pub fn expand(codes: &[u8], n: usize, layout: &CodeLayout) -> Result<Vec<u64>> {
    let dims = layout.dims();
    check_rows(codes.len(), n, dims, "codes")?;
    let levels = layout.levels();
    if let Some(p) = codes
        .par_chunks(dims)
        .position_first(|row| row.iter().zip(levels).any(|(&c, &l)| u16::from(c) >= l))
    {
        let row = &codes[p * dims..(p + 1) * dims];
        let j = (0..dims)
            .find(|&j| u16::from(row[j]) >= levels[j])
            .unwrap_or(0);
        return value_err(format!(
            "codes[{p}, {j}] = {}; dimension {j} has {} levels (codes 0..={})",
            row[j],
            levels[j],
            levels[j] - 1
        ));
    }
    let words = layout.words();
    let mut packed = try_zeroed::<u64>(checked_size(n, words, "n * words")?, "the packed codes")?;
    packed
        .par_chunks_mut(chunk_len(ROWS_PER_TASK, n, words))
        .zip(codes.par_chunks(chunk_len(ROWS_PER_TASK, n, dims)))
        .for_each(|(out, cs)| {
            let offsets = layout.bit_offsets();
            for (row, code_row) in out.chunks_exact_mut(words).zip(cs.chunks_exact(dims)) {
                for (&start, &c) in offsets.iter().zip(code_row) {
                    set_ones(row, start, usize::from(c));
                }
            }
        });
    Ok(packed)
}

/// Inverse of [`expand`]: counts the set bits of each dimension's group. Errors on a
/// non-thermometer group (set bits not a prefix) or a set padding bit.
pub fn collapse(packed: &[u64], n: usize, layout: &CodeLayout) -> Result<Vec<u8>> {
    let (dims, words) = (layout.dims(), layout.words());
    check_packed(packed.len(), n, words, "packed")?;
    let mut codes = try_zeroed::<u8>(checked_size(n, dims, "n * dims")?, "the codes")?;
    let bad_row = codes
        .par_chunks_mut(dims)
        .zip(packed.par_chunks(words))
        .enumerate()
        .find_map_first(|(i, (out, row))| collapse_row(row, layout, out).err().map(|e| (i, e)));
    if let Some((i, e)) = bad_row {
        return value_err(format!("packed row {i}: {e}"));
    }
    Ok(codes)
}

/// Collapses one packed row into `out`; the error text names the dimension.
fn collapse_row(
    row: &[u64],
    layout: &CodeLayout,
    out: &mut [u8],
) -> std::result::Result<(), String> {
    for (j, (code, span)) in out
        .iter_mut()
        .zip(layout.bit_offsets().windows(2))
        .enumerate()
    {
        let (mut start, mut len) = (span[0], span[1] - span[0]);
        let mut ones = 0usize;
        let mut saw_zero = false;
        while len > 0 {
            let (w, b) = (start / 64, start % 64);
            let take = len.min(64 - b);
            let chunk = (row[w] >> b) & low_mask(take);
            let count = chunk.count_ones() as usize;
            // A thermometer group is a run of ones from its first bit: each chunk must be a
            // low-bit run, and nothing may follow a chunk that is not all ones.
            if chunk != low_mask(count) || (saw_zero && count > 0) {
                return Err(format!(
                    "dimension {j} is not a thermometer code (set bits are not a prefix)"
                ));
            }
            saw_zero |= count < take;
            ones += count;
            start += take;
            len -= take;
        }
        // Fits: a group has at most MAX_LEVELS - 1 = 255 bits.
        *code = ones as u8;
    }
    let bits = layout.bits();
    if !bits.is_multiple_of(64) && row[bits / 64] >> (bits % 64) != 0 {
        return Err(format!("padding bits after stream bit {bits} must be zero"));
    }
    Ok(())
}

/// Fused quantize + expand + pack of row-major `x` `(n, dims)`; rayon-parallel over rows.
pub fn encode(x: &[f32], n: usize, thresholds: &Thresholds) -> Result<Vec<u64>> {
    let layout = thresholds.layout();
    let (dims, words) = (layout.dims(), layout.words());
    check_rows(x.len(), n, dims, "x")?;
    let mut packed = try_zeroed::<u64>(checked_size(n, words, "n * words")?, "the packed codes")?;
    let few = FewLevels::new(thresholds);
    let finite = packed
        .par_chunks_mut(chunk_len(ROWS_PER_TASK, n, words))
        .zip(x.par_chunks(chunk_len(ROWS_PER_TASK, n, dims)))
        .all(|(out, xs)| {
            // One vectorised pass first, so the encode loops need no per-value check.
            if !all_finite(xs) {
                return false;
            }
            match few.as_ref().map(|f| (f, f.one_bit())) {
                Some((_, Some(t))) => encode_rows_one_bit(xs, t, out),
                Some((few, None)) => encode_rows_few_levels(xs, few, layout, out),
                None => encode_rows(xs, thresholds, out),
            }
            true
        });
    if !finite {
        return Err(first_non_finite(x, dims));
    }
    Ok(packed)
}

/// Encodes finite rows `xs` into `out` when every dimension has 2 levels: dimension `j` is
/// stream bit `j`, so each word is 64 compares against the thresholds `t`.
fn encode_rows_one_bit(xs: &[f32], t: &[f32], out: &mut [u64]) {
    let (dims, words) = (t.len(), t.len().div_ceil(64));
    for (row, x_row) in out.chunks_exact_mut(words).zip(xs.chunks_exact(dims)) {
        for (word, (x64, t64)) in row.iter_mut().zip(x_row.chunks(64).zip(t.chunks(64))) {
            let mut bits = 0u64;
            for (i, (&x, &t)) in x64.iter().zip(t64).enumerate() {
                bits |= u64::from(x > t) << i;
            }
            *word = bits;
        }
    }
}

/// Encodes finite rows `xs` into the zeroed `out` when every dimension has at most 4 levels:
/// the row's codes first (one vectorised loop), then groups of at most 3 bits collected in a
/// 128-bit window, so a group that straddles two words needs no special case.
fn encode_rows_few_levels(xs: &[f32], few: &FewLevels, layout: &CodeLayout, out: &mut [u64]) {
    let (dims, words) = (layout.dims(), layout.words());
    let mut codes = vec![0u8; dims];
    for (row, x_row) in out.chunks_exact_mut(words).zip(xs.chunks_exact(dims)) {
        few.codes(x_row, &mut codes);
        // The words being filled live in a register: or-ing each group straight into memory
        // chains every dimension on a store-to-load forward (several cycles each).
        let (mut window, mut word, mut offset) = (0u128, 0usize, 0usize);
        for (&code, &l) in codes.iter().zip(layout.levels()) {
            if offset / 64 != word {
                row[word] = window as u64;
                window >>= 64;
                word += 1;
            }
            window |= u128::from((1u8 << code) - 1) << (offset % 64);
            offset += usize::from(l) - 1;
        }
        row[word] = window as u64;
        // The last group may straddle into the final word.
        if let Some(next) = row.get_mut(word + 1) {
            *next = (window >> 64) as u64;
        }
    }
}

/// Encodes finite rows `xs` into the zeroed `out`, for any levels (up to 256 per dimension).
fn encode_rows(xs: &[f32], thresholds: &Thresholds, out: &mut [u64]) {
    let layout = thresholds.layout();
    let (dims, words) = (layout.dims(), layout.words());
    let (levels, values) = (layout.levels(), thresholds.values());
    for (row, x_row) in out.chunks_exact_mut(words).zip(xs.chunks_exact(dims)) {
        let (mut acc, mut word) = (0u64, 0usize);
        for_each_dim(x_row, levels, values, |_, x, offset, t| {
            let code = level_of(x, t);
            let (w, b) = (offset / 64, offset % 64);
            if w != word {
                row[word] |= acc;
                (acc, word) = (0, w);
            }
            let here = code.min(64 - b);
            acc |= low_mask(here) << b;
            if here < code {
                // A run that crosses into the next word(s); only wide groups get here.
                set_ones(row, (w + 1) * 64, code - here);
            }
        });
        row[word] |= acc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::QamaError;
    use crate::quantize::quantize;

    #[test]
    fn expands_in_stream_order() {
        // Doc example: 4 levels, codes 0..=3 → 000, 100, 110, 111 in stream order.
        let layout = CodeLayout::uniform(4, 4).unwrap();
        let packed = expand(&[0, 1, 2, 3], 1, &layout).unwrap();
        // Stream bits: dim0 000, dim1 100, dim2 110, dim3 111 → bits 3, 6, 7, 9, 10, 11.
        let expected = (1u64 << 3) | (1 << 6) | (1 << 7) | (1 << 9) | (1 << 10) | (1 << 11);
        assert_eq!(packed, vec![expected]);
    }

    #[test]
    fn groups_cross_word_boundaries() {
        // 63 one-bit dims, then a 4-level dim whose bits 63, 64, 65 straddle words 0 and 1.
        let mut levels = vec![2u16; 63];
        levels.push(4);
        let layout = CodeLayout::new(&levels).unwrap();
        assert_eq!(layout.words(), 2);
        let mut codes = vec![0u8; 64];
        codes[0] = 1;
        codes[63] = 2;
        let packed = expand(&codes, 1, &layout).unwrap();
        assert_eq!(packed, vec![1 | (1 << 63), 1]);
        assert_eq!(collapse(&packed, 1, &layout).unwrap(), codes);
    }

    #[test]
    fn wide_groups_span_several_words() {
        let layout = CodeLayout::new(&[2, 256, 3]).unwrap();
        assert_eq!(layout.bits(), 1 + 255 + 2);
        let codes = vec![1u8, 200, 2, 0, 255, 1];
        let packed = expand(&codes, 2, &layout).unwrap();
        assert_eq!(packed.len(), 2 * 5);
        assert_eq!(packed[0], u64::MAX);
        assert_eq!(packed[3], (1u64 << (201 - 192)) - 1);
        assert_eq!(collapse(&packed, 2, &layout).unwrap(), codes);
    }

    #[test]
    fn hamming_equals_l1_between_levels() {
        let layout = CodeLayout::new(&[4, 3, 2, 4]).unwrap();
        let a = [3u8, 0, 1, 2];
        let b = [0u8, 2, 1, 3];
        let pa = expand(&a, 1, &layout).unwrap();
        let pb = expand(&b, 1, &layout).unwrap();
        let hamming: u32 = pa.iter().zip(&pb).map(|(x, y)| (x ^ y).count_ones()).sum();
        let l1: u32 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (x as i32 - y as i32).unsigned_abs())
            .sum();
        assert_eq!(hamming, l1);
        assert_eq!(hamming, 6);
    }

    #[test]
    fn rejects_bad_codes() {
        let layout = CodeLayout::new(&[2, 3]).unwrap();
        assert!(matches!(
            expand(&[0, 0, 0], 2, &layout),
            Err(QamaError::Shape(_))
        ));
        let err = expand(&[0, 0, 1, 3], 2, &layout).unwrap_err();
        assert!(err.to_string().contains("codes[1, 1] = 3"), "{err}");
    }

    #[test]
    fn collapse_rejects_non_thermometer_and_padding() {
        let layout = CodeLayout::new(&[4, 2]).unwrap();
        assert_eq!(collapse(&[0b1011], 1, &layout).unwrap(), vec![2, 1]);
        assert_eq!(collapse(&[0b0111], 1, &layout).unwrap(), vec![3, 0]);
        let err = collapse(&[0, 0b010], 2, &layout).unwrap_err();
        assert!(
            err.to_string().contains("row 1") && err.to_string().contains("dimension 0"),
            "{err}"
        );
        let err = collapse(&[1 << 4], 1, &layout).unwrap_err();
        assert!(err.to_string().contains("padding"), "{err}");
        assert!(matches!(
            collapse(&[0, 0], 1, &layout),
            Err(QamaError::Shape(_))
        ));
        // A hole across a word boundary: bit 64 set while bit 63 is clear.
        let wide = CodeLayout::new(&[2, 256]).unwrap();
        let mut row = vec![0u64; 5];
        row[1] = 1;
        assert!(collapse(&row, 1, &wide).is_err());
    }

    /// Quantize and encode against the definition, on layouts of at most 4 levels (the fast
    /// paths) whose groups straddle words, including the very last group.
    #[test]
    fn few_level_fast_paths_match_the_definition() {
        let mut straddle_end = vec![2u16; 63];
        straddle_end.push(4); // bits 63..66: the last group crosses into word 1
        let mut hybrid = vec![4u16; 30];
        hybrid.extend([3u16; 30]);
        hybrid.extend([2u16; 45]);
        for levels in [straddle_end, hybrid, vec![4u16; 43], vec![2u16; 130]] {
            let layout = CodeLayout::new(&levels).unwrap();
            // Repeated thresholds and values landing exactly on them.
            let values: Vec<f32> = (0..layout.dims())
                .flat_map(|j| match layout.thresholds_of(j).unwrap() {
                    1 => vec![0.0],
                    2 => vec![-0.25, 0.25],
                    _ => vec![-0.5, 0.0, if j % 2 == 0 { 0.0 } else { 0.5 }],
                })
                .collect();
            let t = Thresholds::new(layout.clone(), values).unwrap();
            let n = 300;
            let x: Vec<f32> = (0..n * layout.dims())
                .map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0)
                .collect();
            let codes = quantize(&x, n, &t).unwrap();
            for (i, (&c, &v)) in codes.iter().zip(&x).enumerate() {
                let want = t
                    .of(i % layout.dims())
                    .unwrap()
                    .iter()
                    .filter(|&&th| v > th)
                    .count();
                assert_eq!(usize::from(c), want, "value {i}");
            }
            assert_eq!(
                encode(&x, n, &t).unwrap(),
                expand(&codes, n, &layout).unwrap()
            );
        }
    }

    #[test]
    fn encode_is_quantize_then_expand() {
        let mut levels = vec![4u16; 5];
        levels.extend([3, 2, 256, 2]);
        let layout = CodeLayout::new(&levels).unwrap();
        let values: Vec<f32> = (0..layout.dims())
            .flat_map(|j| {
                (0..layout.thresholds_of(j).unwrap())
                    .map(move |i| i as f32 * 0.01 - 0.3 + j as f32 * 0.001)
            })
            .collect();
        let t = Thresholds::new(layout.clone(), values).unwrap();
        let n = 1000;
        let x: Vec<f32> = (0..n * layout.dims())
            .map(|i| ((i * 7919) % 1013) as f32 / 1013.0 * 3.0 - 0.5)
            .collect();
        let codes = quantize(&x, n, &t).unwrap();
        let packed = encode(&x, n, &t).unwrap();
        assert_eq!(packed, expand(&codes, n, &layout).unwrap());
        assert_eq!(collapse(&packed, n, &layout).unwrap(), codes);
        let mut bad = x.clone();
        bad[3 * layout.dims() + 7] = f32::NAN;
        let err = encode(&bad, n, &t).unwrap_err();
        assert!(err.to_string().contains("x[3, 7]"), "{err}");
        assert!(matches!(encode(&x[1..], n, &t), Err(QamaError::Shape(_))));
    }
}
