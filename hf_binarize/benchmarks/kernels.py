"""Time binary_linear on CPU against dense float32 and bfloat16 F.linear of the same shape.

    hf-binarize bench kernels                   # all shapes, M in 1 8 64 256 1024, 1 and 2 threads
    hf-binarize bench kernels --quick           # fewer repeats, M in 1 64, 1 thread
    hf-binarize bench kernels --json out.json

Columns, per thread count, weight shape N x K (out x in features) and activation rows M, in ms per call (median
of repeated calls, the five taking turns, under ``torch.inference_mode``; unless ``--warm``, each call takes the
next of enough copies of its weight to overflow the caches, as in a model, where a layer's weight has left the
cache by the time the layer runs again):

``dense f32`` / ``dense bf16``   ``F.linear`` with a dense weight of that dtype
``op f32`` / ``op bf16``         ``torch.ops.hf_binarize.binary_linear`` (what the packed modules call), per-channel
                                 float16 scales, input and output in that dtype; includes the dispatcher's cost
``kernel f32``                   the native kernel called directly (``hf_binarize.backends.cpu``), no dispatcher
``x f32`` / ``x bf16``           dense time / op time, same dtype: above 1 the packed weight is faster
"""

from __future__ import annotations

import itertools
import json
import platform
import statistics
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..backends import cpu, current_backend, use_backend
from ..formats.binary import binarize

SHAPES = ((1024, 1024), (1024, 4096), (4096, 1024), (4096, 4096), (640, 8193))
ROWS = (1, 8, 64, 256, 1024)
THREADS = (1, 2)


# Bytes of copies of each weight that the calls cycle through unless --warm: more than the last-level cache of
# most machines, so every call finds its weight in memory, as a layer of a model does after the other layers ran.
ROTATION_BYTES = 64 << 20


def median_ms(fns: dict, budget_s: float, min_repeats: int) -> dict:
    """Median ms per call of each function. The functions take turns, until ``budget_s`` per function has passed
    (at least ``min_repeats``, at most 200 rounds): on a shared machine load comes and goes, and turns expose
    every function to the same share of it. Each timed call follows an untimed one of the same function, so that
    what the function runs (Python included) is as warm as in a model, even after a dense call streamed 64 MiB
    through the caches."""
    times: dict = {name: [] for name in fns}
    start = time.perf_counter()
    rounds = 0
    while rounds < min_repeats or (time.perf_counter() - start < 2 * budget_s * len(fns) and rounds < 200):
        for name, fn in fns.items():
            fn()
            begin = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - begin)
        rounds += 1
    return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def rotation(tensors: tuple, warm: bool):
    """A function returning, call after call, copies of ``tensors`` in turn: enough copies to fill
    ROTATION_BYTES, or just the tensors if ``warm``. Without copies a packed weight small enough for the cache
    would be timed from cache while a dense one, too big for it, came from memory."""
    size = sum(t.numel() * t.element_size() for t in tensors if t is not None)
    count = 1 if warm else max(1, -(-ROTATION_BYTES // size))
    copies = [tensors] + [tuple(None if t is None else t.clone() for t in tensors) for _ in range(count - 1)]
    return itertools.cycle(copies).__next__


def measure(n: int, k: int, m: int, budget_s: float, min_repeats: int, warm: bool) -> dict:
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(n, k, generator=gen)
    binary = binarize(weight)
    x = torch.randn(m, k, generator=gen)
    x_bf16 = x.bfloat16()
    dense_f32 = rotation((weight,), warm)
    dense_bf16 = rotation((weight.bfloat16(),), warm)
    packed = rotation((binary.packed, binary.scale), warm)
    op = torch.ops.hf_binarize.binary_linear
    fns = {
        "dense_f32_ms": lambda: F.linear(x, *dense_f32()),
        "dense_bf16_ms": lambda: F.linear(x_bf16, *dense_bf16()),
        "op_f32_ms": lambda: op(x, *packed(), None, None, k, k),
        "op_bf16_ms": lambda: op(x_bf16, *packed(), None, None, k, k),
    }
    if cpu.native_available():
        isa = current_backend().cpu_isa
        fns["kernel_f32_ms"] = lambda: cpu.native_binary_linear(x, *packed(), None, None, k, k, isa=isa)
    with torch.inference_mode():
        row = {"N": n, "K": k, "M": m, **median_ms(fns, budget_s, min_repeats)}
    row["speedup_f32"] = row["dense_f32_ms"] / row["op_f32_ms"]
    row["speedup_bf16"] = row["dense_bf16_ms"] / row["op_bf16_ms"]
    return row


def run(*, quick: bool = False, threads: Sequence[int] | None = None, rows: Sequence[int] | None = None,
        warm: bool = False, json_path: str | None = None, isa: str = "auto") -> list[dict]:
    """Prints the table (and writes it as JSON to ``json_path``) and returns its rows. ``quick``: fewer repeats,
    M in 1 64 and 1 thread, unless ``threads`` or ``rows`` say otherwise; ``warm``: one copy of each weight, which
    may stay cached; ``isa``: the CPU instruction set of the packed op (default: the best this CPU runs)."""
    with use_backend(current_backend().name, cpu_isa=isa):
        return _run(quick, threads, rows, warm, json_path)


def _run(quick: bool, threads: Sequence[int] | None, rows: Sequence[int] | None, warm: bool,
         json_path: str | None) -> list[dict]:
    threads = threads or ((1,) if quick else THREADS)
    rows = rows or ((1, 64) if quick else ROWS)
    budget_s, min_repeats = (0.05, 3) if quick else (0.3, 3)
    previous_threads = torch.get_num_threads()
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "backend": current_backend().name,
        "isa": cpu.resolve_isa(current_backend().cpu_isa),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "weights": "cached" if warm else f"cycling through {ROTATION_BYTES >> 20} MiB of copies",
    }
    print(" ".join(f"{key}={value}" for key, value in machine.items()))
    header = ("thr", "N x K", "M", "dense f32", "dense bf16", "op f32", "op bf16", "kernel f32", "x f32", "x bf16")
    line = "{:>3} {:>11} {:>4} {:>10} {:>10} {:>9} {:>9} {:>10} {:>6} {:>6}"
    print(line.format(*header))
    table = []
    try:
        for count in threads:
            torch.set_num_threads(count)
            for n, k in SHAPES:
                for m in rows:
                    row = {"threads": count, **measure(n, k, m, budget_s, min_repeats, warm)}
                    table.append(row)
                    kernel = f"{row['kernel_f32_ms']:.3f}" if "kernel_f32_ms" in row else "-"
                    print(line.format(
                        count, f"{n}x{k}", m, f"{row['dense_f32_ms']:.3f}", f"{row['dense_bf16_ms']:.3f}",
                        f"{row['op_f32_ms']:.3f}", f"{row['op_bf16_ms']:.3f}", kernel,
                        f"{row['speedup_f32']:.1f}", f"{row['speedup_bf16']:.1f}",
                    ), flush=True)  # fmt: skip
    finally:
        torch.set_num_threads(previous_threads)
    if json_path:
        with open(json_path, "w") as out:
            json.dump({"machine": machine, "unit": "ms per call, median", "rows": table}, out, indent=2)
        print(f"wrote {json_path}")
    return table
