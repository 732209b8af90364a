//! Code layout: how many levels each dimension has and where its bits sit in the packed stream.
use crate::error::{shape_err, value_err, Result};

/// Largest number of levels a dimension may have (8-bit codes; `levels - 1` thermometer bits).
pub const MAX_LEVELS: u32 = 256;

/// Per-dimension level counts and the derived bit offsets of the thermometer stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeLayout {
    levels: Vec<u16>,
    /// `bit_offsets[j]` is the first stream bit of dimension `j`; `bit_offsets[d]` is the total.
    bit_offsets: Vec<usize>,
}

impl CodeLayout {
    /// Builds a layout from per-dimension level counts (each in `2..=MAX_LEVELS`).
    pub fn new(levels: &[u16]) -> Result<Self> {
        if levels.is_empty() {
            return shape_err("levels must name at least one dimension");
        }
        let mut bit_offsets = Vec::with_capacity(levels.len() + 1);
        let mut total = 0usize;
        for (j, &l) in levels.iter().enumerate() {
            if !(2..=MAX_LEVELS).contains(&(l as u32)) {
                return value_err(format!(
                    "levels[{j}] = {l}; each dimension needs 2..={MAX_LEVELS} levels"
                ));
            }
            bit_offsets.push(total);
            total += l as usize - 1;
        }
        bit_offsets.push(total);
        Ok(Self {
            levels: levels.to_vec(),
            bit_offsets,
        })
    }

    /// The same number of levels for every one of `dims` dimensions.
    pub fn uniform(dims: usize, levels: u16) -> Result<Self> {
        Self::new(&vec![levels; dims])
    }

    /// Number of quantized dimensions (values per row).
    pub fn dims(&self) -> usize {
        self.levels.len()
    }

    /// Level count of each dimension.
    pub fn levels(&self) -> &[u16] {
        &self.levels
    }

    /// Number of thresholds of dimension `j` (`levels[j] - 1`), also its thermometer bit count;
    /// `None` past the last dimension.
    pub fn thresholds_of(&self, j: usize) -> Option<usize> {
        self.levels.get(j).map(|&l| usize::from(l) - 1)
    }

    /// Total thresholds over all dimensions (= total stream bits).
    pub fn total_thresholds(&self) -> usize {
        self.bits()
    }

    /// First stream bit of dimension `j`; `bit_offset(dims())` is the total bit count; `None`
    /// past that.
    pub fn bit_offset(&self, j: usize) -> Option<usize> {
        self.bit_offsets.get(j).copied()
    }

    /// Every dimension's first stream bit, then the total (`dims() + 1` values).
    pub fn bit_offsets(&self) -> &[usize] {
        &self.bit_offsets
    }

    /// Total bits of one code (before padding).
    pub fn bits(&self) -> usize {
        self.bit_offsets.last().copied().unwrap_or(0)
    }

    /// `u64` words per packed code (padding bits are zero).
    pub fn words(&self) -> usize {
        self.bits().div_ceil(64)
    }

    /// Stream bits covered by the first `dims` dimensions (a Matryoshka prefix).
    pub fn prefix_bits(&self, dims: usize) -> Result<usize> {
        match self.bit_offsets.get(dims) {
            Some(&bits) if dims > 0 => Ok(bits),
            _ => value_err(format!("dims = {dims}; must be in 1..={}", self.dims())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_384_is_624_bits() {
        // 96 dims 2-bit, 96 dims 1.5-bit, 96 dims 1-bit, 48 pair-reduced values 1-bit.
        let mut levels = vec![4u16; 96];
        levels.extend(vec![3u16; 96]);
        levels.extend(vec![2u16; 96 + 48]);
        let l = CodeLayout::new(&levels).unwrap();
        assert_eq!(l.bits(), 624);
        assert_eq!(l.words(), 10);
        assert_eq!(l.prefix_bits(96).unwrap(), 288);
        assert_eq!(l.prefix_bits(192).unwrap(), 480);
    }

    #[test]
    fn rejects_bad_levels() {
        assert!(CodeLayout::new(&[]).is_err());
        assert!(CodeLayout::new(&[1]).is_err());
        assert!(CodeLayout::new(&[257]).is_err());
        let four = CodeLayout::uniform(4, 2).unwrap();
        assert!(four.prefix_bits(5).is_err() && four.prefix_bits(0).is_err());
        assert_eq!((four.bit_offset(4), four.bit_offset(5)), (Some(4), None));
        assert_eq!(
            (four.thresholds_of(3), four.thresholds_of(4)),
            (Some(1), None)
        );
    }
}
