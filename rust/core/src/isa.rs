//! The one CPU-feature detection of the core: instruction-set levels the kernels are written for.
//!
//! A codec picks its kernels from an [`Isa`] when it is built (the detected one by default, a lower
//! one in tests and benchmarks), never per row. Every SIMD kernel has a scalar twin, which is what
//! [`Isa::Scalar`] runs: the parity baseline of the tests and the fallback on other CPUs.
use std::sync::OnceLock;

/// Instruction-set levels, lowest first; a level implies the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable code only (the scalar twins).
    Scalar,
    /// x86-64 AVX2 + F16C + POPCNT: `vpshufb` nibble kernels, scalar `popcnt` rows, float16 centroids.
    Avx2,
    /// x86-64 AVX2 + AVX-512F + VPOPCNTDQ + VNNI: `vpopcntq` Hamming tiles, `vpdpbusd` int8 coarse
    /// scores (table kernels stay AVX2).
    Avx512,
}

impl Isa {
    /// Every level, fastest first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Scalar];

    /// Short stable name (`"scalar"`, `"avx2"`, `"avx512"`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The level called `name` (see [`Isa::name`]), if any.
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Whether this CPU runs the level's kernels.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("f16c")
                    && std::arch::is_x86_feature_detected!("popcnt")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_available()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        }
    }

    /// The fastest level this CPU runs (detected once).
    pub fn detect() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            Isa::ALL
                .into_iter()
                .find(|i| i.is_available())
                .unwrap_or(Isa::Scalar)
        })
    }

    /// The levels this CPU runs, fastest first (always ends with [`Isa::Scalar`]).
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_scalar_is_always_there() {
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        assert_eq!(Isa::from_name("sse"), None);
        let available = Isa::available();
        assert_eq!(available.last(), Some(&Isa::Scalar));
        assert_eq!(available[0], Isa::detect());
        assert!(Isa::Scalar < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
    }
}
