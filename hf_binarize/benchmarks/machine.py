"""The CPU a benchmark ran on, recorded with every number: its model name, the vector extensions the kernels can
use, and torch's own view of it."""

from __future__ import annotations

import platform

_FLAGS_OF_INTEREST = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                      "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "avx_vnni", "asimd", "sve")


def describe_cpu() -> str:
    """``"AMD EPYC ... (2 cores; avx2 fma ... ; torch AVX512)"``: the model name and vector flags from /proc/cpuinfo
    (Linux), else what :mod:`platform` knows."""
    import os

    import torch

    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name in ("", platform.machine()):
                    name = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    present = " ".join(flag for flag in _FLAGS_OF_INTEREST if flag in flags)
    return (f"{name} ({os.cpu_count()} cores; {present or 'flags unknown'}; "
            f"torch {torch.backends.cpu.get_cpu_capability()})")
