//! Byte tables built from a float query by a projection and per-byte slots (see [`Projection`]).
use crate::error::{cell, check_finite, shape_err, value_err, Result};

use super::luts::{NibbleHalves, BYTE_VALUES};

/// The outputs left after the `FIRST`-wide blocks (`rest` < `first`) as one block of the largest
/// multiple of 16 that fits: a pass over the rows is bound by its chains of adds, so 48 outputs
/// take one pass as a block of 48, two as 32 then 16. `$block` is called with the width as a
/// const; `None` when fewer than 16 are left.
macro_rules! project_rest {
    ($rest:expr, $first:expr, |$cols:ident| $block:expr) => {{
        let rest: usize = $rest;
        debug_assert!(rest < $first || $first == 0);
        match rest {
            112.. => {
                const $cols: usize = 112;
                Some($block)
            }
            96.. => {
                const $cols: usize = 96;
                Some($block)
            }
            80.. => {
                const $cols: usize = 80;
                Some($block)
            }
            64.. => {
                const $cols: usize = 64;
                Some($block)
            }
            48.. => {
                const $cols: usize = 48;
                Some($block)
            }
            32.. => {
                const $cols: usize = 32;
                Some($block)
            }
            16.. => {
                const $cols: usize = 16;
                Some($block)
            }
            _ => None,
        }
    }};
}

/// Byte tables of codecs that code a projection of the vector (bit-allocated PCA codes, product
/// quantization): a query `q` (`dims` floats) becomes `q' = q B` (`B` row-major `dims x width`, the
/// sum over `q`'s values in order), and byte `b`'s table is a sum over its slots `t` of
/// `q'[dim_of[b, t]] * values[b, t, v]` (slots in order, from `0.0`; a slot of dimension `u32::MAX`
/// is empty). *Byte slots* give 256 entries each; *nibble slots* (`split`) give 16 entries for each
/// half of the byte, and the byte table is `T[v] = A[v & 15] + B[v >> 4]` (one float32 add), which
/// the quantized kernel's bound then uses exactly.
#[derive(Debug, Clone)]
pub struct Projection {
    dims: usize,
    width: usize,
    /// Values per row of `basis`: `width` rounded up to 8 (zero columns).
    stride: usize,
    basis: Vec<f32>,
    m: usize,
    slots: usize,
    dim_of: Vec<u32>,
    values: Vec<f32>,
    split: bool,
    project_kernel: ProjectKernel,
    project4_kernel: Project4Kernel,
}

/// `out += Σ_i q[i] · basis[i, ..]` (row `i` of `basis` has `out.len()` values), rows in order.
type ProjectKernel = fn(&[f32], &[f32], &mut [f32]);

/// [`ProjectKernel`] of four queries at once: each basis row is read once for all four (it streams
/// from L2 or L3: a 384 x 176 basis is 270 KB), and each output sums in the same order as alone.
type Project4Kernel = fn([&[f32]; 4], &[f32], [&mut [f32]; 4]);

#[inline(always)]
fn project4_scalar(q: [&[f32]; 4], basis: &[f32], out: [&mut [f32]; 4]) {
    project4_blocks::<16>(q, basis, out)
}

/// [`project_blocks`] of four queries: blocks of `FIRST` outputs of all four in registers, then the
/// rest in one block where it fits (see `project_rest!`), then the last 8, then one at a time.
#[inline(always)]
fn project4_blocks<const FIRST: usize>(q: [&[f32]; 4], basis: &[f32], mut out: [&mut [f32]; 4]) {
    let width = out[0].len();
    let mut start = project4_block::<FIRST>(&q, basis, width, 0, &mut out);
    start = project_rest!(width - start, FIRST, |COLS| project4_block::<COLS>(
        &q, basis, width, start, &mut out
    ))
    .unwrap_or(start);
    start = project4_block::<8>(&q, basis, width, start, &mut out);
    for (q, out) in q.iter().zip(out.iter_mut()) {
        for (&qi, row) in q.iter().zip(basis.chunks_exact(width)) {
            for (o, &b) in out[start..].iter_mut().zip(&row[start..]) {
                *o += qi * b;
            }
        }
    }
}

/// Outputs from `start` of four queries in blocks of `COLS` while a whole block fits; where they
/// stop.
#[inline(always)]
fn project4_block<const COLS: usize>(
    q: &[&[f32]; 4],
    basis: &[f32],
    width: usize,
    mut start: usize,
    out: &mut [&mut [f32]; 4],
) -> usize {
    let [q0, q1, q2, q3] = *q;
    debug_assert!(q.iter().all(|q| q.len() * width == basis.len()));
    while start + COLS <= width {
        let load =
            |o: &[f32]| -> [f32; COLS] { o[start..start + COLS].try_into().expect("COLS values") };
        // Four accumulators by name, not an array of them indexed in a loop: that array was kept on
        // the stack (a store and a reload in every chain of adds, per row).
        let (mut a0, mut a1, mut a2, mut a3) =
            (load(out[0]), load(out[1]), load(out[2]), load(out[3]));
        for ((((row, &x0), &x1), &x2), &x3) in
            basis.chunks_exact(width).zip(q0).zip(q1).zip(q2).zip(q3)
        {
            let b: &[f32; COLS] = row[start..start + COLS].try_into().expect("COLS values");
            add_row(&mut a0, x0, b);
            add_row(&mut a1, x1, b);
            add_row(&mut a2, x2, b);
            add_row(&mut a3, x3, b);
        }
        for (o, a) in out.iter_mut().zip([a0, a1, a2, a3]) {
            o[start..start + COLS].copy_from_slice(&a);
        }
        start += COLS;
    }
    start
}

/// `acc += qi * b`, a multiply then an add per output.
#[inline(always)]
fn add_row<const COLS: usize>(acc: &mut [f32; COLS], qi: f32, b: &[f32; COLS]) {
    for (a, &b) in acc.iter_mut().zip(b) {
        *a += qi * b;
    }
}

/// [`project4_scalar`] compiled for AVX2 (blocks of 16 outputs: 8 accumulators of the 16 registers).
#[cfg(target_arch = "x86_64")]
fn project4_avx2(q: [&[f32]; 4], basis: &[f32], out: [&mut [f32]; 4]) {
    #[target_feature(enable = "avx2")]
    unsafe fn inner(q: [&[f32]; 4], basis: &[f32], out: [&mut [f32]; 4]) {
        project4_blocks::<16>(q, basis, out)
    }
    // SAFETY: only chosen by `with_isa` for an ISA the CPU runs (AVX2 or better).
    unsafe { inner(q, basis, out) }
}

/// [`project4_scalar`] compiled for AVX-512F (blocks of 64 outputs: 16 accumulators of the 32
/// registers).
#[cfg(target_arch = "x86_64")]
fn project4_avx512(q: [&[f32]; 4], basis: &[f32], out: [&mut [f32]; 4]) {
    #[target_feature(enable = "avx512f")]
    unsafe fn inner(q: [&[f32]; 4], basis: &[f32], out: [&mut [f32]; 4]) {
        project4_blocks::<64>(q, basis, out)
    }
    // SAFETY: only chosen by `with_isa` for `Isa::Avx512`, which the CPU runs.
    unsafe { inner(q, basis, out) }
}

#[inline(always)]
fn project_scalar(q: &[f32], basis: &[f32], out: &mut [f32]) {
    project_blocks::<64>(q, basis, out)
}

/// [`project_scalar`] with blocks of `FIRST` outputs first. Blocks of outputs stay in registers over
/// all rows (each output still sums the rows in order): the loop is bound by the adds, not by
/// loading and storing `out` once per row. Then the rest in one block where it fits (see
/// `project_rest!`), then the last 8, then one at a time.
#[inline(always)]
fn project_blocks<const FIRST: usize>(q: &[f32], basis: &[f32], out: &mut [f32]) {
    let width = out.len();
    let mut start = project_block::<FIRST>(q, basis, width, 0, out);
    start = project_rest!(width - start, FIRST, |COLS| project_block::<COLS>(
        q, basis, width, start, out
    ))
    .unwrap_or(start);
    start = project_block::<8>(q, basis, width, start, out);
    for (&qi, row) in q.iter().zip(basis.chunks_exact(width)) {
        for (o, &b) in out[start..].iter_mut().zip(&row[start..]) {
            *o += qi * b;
        }
    }
}

/// The outputs from `start` in blocks of `COLS` while a whole block fits; where they stop.
#[inline(always)]
fn project_block<const COLS: usize>(
    q: &[f32],
    basis: &[f32],
    width: usize,
    mut start: usize,
    out: &mut [f32],
) -> usize {
    while start + COLS <= width {
        let mut acc = [0f32; COLS];
        acc.copy_from_slice(&out[start..start + COLS]);
        for (&qi, row) in q.iter().zip(basis.chunks_exact(width)) {
            let b: &[f32; COLS] = row[start..start + COLS].try_into().expect("COLS values");
            for (a, &b) in acc.iter_mut().zip(b) {
                *a += qi * b;
            }
        }
        out[start..start + COLS].copy_from_slice(&acc);
        start += COLS;
    }
    start
}

/// [`project_scalar`] compiled for AVX2: the same multiplies and adds (no fused multiply-add, which
/// would round differently), eight outputs at a time.
#[cfg(target_arch = "x86_64")]
fn project_avx2(q: &[f32], basis: &[f32], out: &mut [f32]) {
    #[target_feature(enable = "avx2")]
    unsafe fn inner(q: &[f32], basis: &[f32], out: &mut [f32]) {
        project_scalar(q, basis, out)
    }
    // SAFETY: only chosen by `with_isa` for an ISA the CPU runs (AVX2 or better).
    unsafe { inner(q, basis, out) }
}

/// [`project_scalar`] compiled for AVX-512F: the same operations, sixteen outputs a register and
/// blocks of 128 (eight chains of adds in flight; four left their latency exposed).
#[cfg(target_arch = "x86_64")]
fn project_avx512(q: &[f32], basis: &[f32], out: &mut [f32]) {
    #[target_feature(enable = "avx512f")]
    unsafe fn inner(q: &[f32], basis: &[f32], out: &mut [f32]) {
        project_blocks::<128>(q, basis, out)
    }
    // SAFETY: only chosen by `with_isa` for `Isa::Avx512`, which the CPU runs.
    unsafe { inner(q, basis, out) }
}

impl Projection {
    /// Checks the shapes (`dim_of`: `m * halves * slots`, `values`: `m * halves * slots * entries`
    /// with `halves, entries` = `2, 16` when `split`, else `1, 256`), the dimension indices and the
    /// values' finiteness.
    pub fn new(
        basis: Vec<f32>,
        dims: usize,
        dim_of: Vec<u32>,
        values: Vec<f32>,
        m: usize,
        split: bool,
    ) -> Result<Self> {
        if dims == 0 || basis.is_empty() || !basis.len().is_multiple_of(dims) {
            return shape_err(format!(
                "basis has {} values; expected dims * width with dims = {dims}",
                basis.len()
            ));
        }
        let width = basis.len() / dims;
        let (halves, entries) = if split { (2, 16) } else { (1, BYTE_VALUES) };
        if m == 0 {
            return shape_err("slot_values has m = 0 bytes; a code has at least one".to_string());
        }
        if !dim_of.len().is_multiple_of(m * halves) {
            return shape_err(format!(
                "slot_dims has {} entries for m = {m} bytes",
                dim_of.len()
            ));
        }
        let slots = dim_of.len() / (m * halves);
        if values.len() != dim_of.len() * entries {
            return shape_err(format!(
                "slot_values has {} entries; expected {} (m * halves * slots * {entries})",
                values.len(),
                dim_of.len() * entries
            ));
        }
        // Indices as the caller shapes the arrays: (m, slots) or (m, 2, slots), then the entry.
        let index = |at: usize| {
            let (b, rest) = (at / (halves * slots), at % (halves * slots));
            if split {
                format!("{b}, {}, {}", rest / slots, rest % slots)
            } else {
                format!("{b}, {rest}")
            }
        };
        if let Some(at) = dim_of
            .iter()
            .position(|&d| d != u32::MAX && d as usize >= width)
        {
            return value_err(format!(
                "slot_dims[{}] = {} is not below the width {width}",
                index(at),
                dim_of[at]
            ));
        }
        check_finite(&basis, "basis", cell(width))?;
        // Rows padded with zero columns to a multiple of 8: the kernels' blocks then cover every
        // output (a 175-wide basis left 7 outputs to a loop that loads and stores them per row).
        let stride = width.next_multiple_of(8);
        let basis = if stride == width {
            basis
        } else {
            let mut padded = vec![0f32; dims * stride];
            for (p, row) in padded
                .chunks_exact_mut(stride)
                .zip(basis.chunks_exact(width))
            {
                p[..width].copy_from_slice(row);
            }
            padded
        };
        check_finite(&values, "slot_values", |at| {
            format!("{}, {}", index(at / entries), at % entries)
        })?;
        Ok(Self {
            dims,
            width,
            stride,
            basis,
            m,
            slots,
            dim_of,
            values,
            split,
            project_kernel: project_scalar,
            project4_kernel: project4_scalar,
        })
    }

    /// The projection kernel for `isa` (the caller checked that the CPU runs it).
    pub(crate) fn with_isa(mut self, isa: crate::Isa) -> Self {
        #[cfg(target_arch = "x86_64")]
        match isa {
            crate::Isa::Avx2 => {
                self.project_kernel = project_avx2;
                self.project4_kernel = project4_avx2;
            }
            crate::Isa::Avx512 => {
                self.project_kernel = project_avx512;
                self.project4_kernel = project4_avx512;
            }
            crate::Isa::Scalar => {}
        }
        let _ = isa;
        self
    }

    /// Floats of a query.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Code bytes per row (tables per query).
    pub fn bytes(&self) -> usize {
        self.m
    }

    /// `q B`, summed over `q`'s values in order.
    pub(crate) fn project(&self, q: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; self.stride];
        (self.project_kernel)(q, &self.basis, &mut out);
        out.truncate(self.width);
        out
    }

    /// [`Projection::project`] of four queries (the same values), reading the basis once.
    pub(crate) fn project4(&self, q: [&[f32]; 4]) -> [Vec<f32>; 4] {
        let mut out: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0f32; self.stride]);
        let [a, b, c, d] = &mut out;
        (self.project4_kernel)(q, &self.basis, [a, b, c, d]);
        for o in &mut out {
            o.truncate(self.width);
        }
        out
    }

    /// Whether bytes are built from nibble halves (`split`).
    pub(crate) fn is_split(&self) -> bool {
        self.split
    }

    /// The byte tables of a projected query, and its nibble tables when `split` (then the byte
    /// tables only when `full`; else empty).
    #[inline(always)]
    pub(crate) fn tables(&self, qp: &[f32], full: bool) -> (Vec<f32>, Option<Vec<NibbleHalves>>) {
        let mut table = vec![
            0f32;
            if full || !self.split {
                self.m * BYTE_VALUES
            } else {
                0
            }
        ];
        if !self.split {
            if self.slots == 0 {
                return (table, None); // no slot names a dimension: every table is zero
            }
            let per_byte = self.slots * BYTE_VALUES;
            for ((t, dims), values) in table
                .chunks_exact_mut(BYTE_VALUES)
                .zip(self.dim_of.chunks_exact(self.slots))
                .zip(self.values.chunks_exact(per_byte))
            {
                for (&d, v) in dims.iter().zip(values.chunks_exact(BYTE_VALUES)) {
                    if d != u32::MAX {
                        let w = qp[d as usize];
                        t.iter_mut().zip(v).for_each(|(t, &v)| *t += w * v);
                    }
                }
            }
            return (table, None);
        }
        let mut halves = vec![[[0f32; 16]; 2]; self.m];
        for (b, split) in halves.iter_mut().enumerate() {
            for (h, half) in split.iter_mut().enumerate() {
                let at = (b * 2 + h) * self.slots;
                // A local accumulator (one register): summed in place, the compiler could not
                // rule out that the output overlaps the values, and kept the loop scalar.
                let mut acc = [0f32; 16];
                for s in 0..self.slots {
                    let d = self.dim_of[at + s];
                    if d != u32::MAX {
                        let w = qp[d as usize];
                        let v: &[f32; 16] = self.values[(at + s) * 16..][..16]
                            .try_into()
                            .expect("16 values");
                        for (a, &v) in acc.iter_mut().zip(v) {
                            *a += w * v;
                        }
                    }
                }
                *half = acc;
            }
            if !full {
                continue;
            }
            let t = &mut table[b * BYTE_VALUES..][..BYTE_VALUES];
            for (hi, row) in t.chunks_exact_mut(16).enumerate() {
                for (lo, e) in row.iter_mut().enumerate() {
                    *e = split[0][lo] + split[1][hi];
                }
            }
        }
        (table, Some(halves))
    }
}
