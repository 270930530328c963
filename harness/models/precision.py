"""Which floating-point type to compute in: chosen at start by capability or a short measurement.

bf16 is not fast everywhere: measured, on one 2-core host bf16 matmul runs at ~2x fp32 (native bf16
instructions), on an AVX2-only host at 1/36 of it (1.1 vs 40 GFLOP/s), where a bf16 default made one
GRPO step take over 17 minutes. So `auto` means: bf16 on a CUDA device that supports it; on a CPU, bf16
only if a short matmul measurement (~0.1 s, once per process) finds it faster than fp32; else fp32.
The choice is printed and recorded with the run (method.json `dtype`, results.json `dtype`).
"""
from __future__ import annotations

import functools
import time

DTYPES = ("auto", "float32", "bfloat16", "float16")


@functools.lru_cache(maxsize=None)
def cpu_bf16_speedup(size: int = 256, repeats: int = 5) -> float:
    """fp32 time / bf16 time of a (size x size) @ (size x size) matmul on this CPU (best of `repeats`)."""
    import torch

    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g)
    b = torch.randn(size, size, generator=g)
    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        x @ y  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(4):
                x @ y
            best = min(best, time.perf_counter() - t)
        timings[dtype] = best
    return timings[torch.float32] / timings[torch.bfloat16]


def resolve(name: str, device: str = "cpu") -> str:
    """`auto` -> "bfloat16" or "float32" for `device` (see the module docstring); other names as given."""
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    if name != "auto":
        return name
    import torch

    if str(device).startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_bf16_speedup() > 1.1 else "float32"
