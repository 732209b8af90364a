"""What CPU a figure was measured on: every benchmark and result file records this beside its numbers,
because the machines here differ (AVX-512 VPOPCNTDQ + VNNI Xeons and EPYCs, AVX2-only EPYCs) and speeds only compare
within one run."""

from __future__ import annotations

import os
import platform

_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_vpopcntdq", "avx512_vnni", "popcnt", "bmi2")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else platform.processor())."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The SIMD flags that decide which kernels run (subset of /proc/cpuinfo flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [f for f in _FLAGS_OF_INTEREST if f in flags]
    except OSError:
        pass
    return []


def cpu_description() -> str:
    """One line for result files: model, relevant flags, cores, threads, and the kernels' instruction-set level."""
    from qama_rs import _core

    threads = _core.num_threads()
    return (
        f"{cpu_model()}; flags: {' '.join(cpu_flags()) or 'none'}; cores: {os.cpu_count()}; "
        f"threads: {threads}; qama isa: {_core.best_isa()}"
    )
