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
    /// x86-64 AVX2 + F16C + POPCNT: `vpshufb` nibble kernels, scalar `popcnt` rows, float16 centroids,
    /// float32 row products.
    Avx2,
    /// x86-64 AVX2 + AVX-512F/BW/DQ/VL + VPOPCNTDQ + VNNI: `vpopcntq` Hamming tiles, `vpdpbusd` int8 coarse
    /// scores, AVX-512 projections and query preparation (the table scans stay AVX2).
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
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
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

/// `leveled! { fn name(args) -> R = body; }` defines `fn name(isa: Isa, args) -> R`, which runs
/// `body(args)` (an `#[inline(always)]` function) compiled for `isa`'s vector registers: the
/// portable loops it inlines (a query's tables, their quantization, the coarse bounds) vectorize 8
/// or 4 float64 lanes wide instead of baseline x86-64's 2. The same IEEE operations in the same
/// order (Rust never fuses a multiply and an add), so the same values on every level. Plain
/// functions with target features, not closures: the compiler left large closures un-inlined, and
/// they then ran baseline code. The caller checked that the CPU runs `isa`.
macro_rules! leveled {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $body:path;) => {
        $(#[$meta])*
        $vis fn $name(isa: $crate::Isa, $($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,avx512f,avx512bw,avx512dq,avx512vl")]
                unsafe fn wide($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                match isa {
                    // SAFETY: a level is used only where the CPU runs it (the caller's contract).
                    $crate::Isa::Avx512 => return unsafe { wide($($arg),*) },
                    // SAFETY: as above.
                    $crate::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::Isa::Scalar => {}
                }
            }
            let _ = isa;
            $body($($arg),*)
        }
    };
}
pub(crate) use leveled;

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
