"""Time binary_linear on CPU, with float and int8 activations, against dense float32, bfloat16 and dynamic int8.

    hf-binarize bench kernels                   # all shapes, M in 1 8 64 256 1024, 1 and 2 threads
    hf-binarize bench kernels --quick           # fewer repeats, M in 1 64, 1 thread
    hf-binarize bench kernels --shapes 4096x4096 --rows 1 256 --json out.json
    hf-binarize bench kernels --threads 1 --clock cpu   # on a shared machine: CPU time, not wall time

Columns, per thread count, weight shape N x K (out x in features) and activation rows M, in ms per call (median
of repeated calls, all of them taking turns, under ``torch.inference_mode``; unless ``--warm``, each call takes the
next of enough copies of its weight to overflow the caches, as in a model, where a layer's weight has left the
cache by the time the layer runs again):

``dense f32`` / ``dense bf16``   ``F.linear`` with a dense weight of that dtype
``dyn i8``                       torch's dynamic int8 ``nn.Linear`` (``torch.ao.quantization.quantize_dynamic``: int8
                                 weights, activations quantized per call), float32 input and output
``op f32`` / ``op bf16``         ``torch.ops.hf_binarize.binary_linear`` (what the packed modules call), per-channel
                                 float16 scales, input and output in that dtype; includes the dispatcher's cost
``op i8a``                       ``torch.ops.hf_binarize.binary_linear_int8_act`` (``activations="int8"``), float32
                                 input and output
``x f32`` / ``x bf16``           dense time / op time, same dtype: above 1 the packed weight is faster
``i8a/f32`` ``i8a/bf16`` ``i8a/dyn``   dense float32, dense bfloat16 and dynamic int8 time / ``op i8a`` time

With more than one thread count, a second table gives each path's thread scaling: its time on the first thread
count over its time on each other one (the threads are torch's, ``torch.set_num_threads``; the native kernels
run on them too).

``--clock cpu`` times each call by the CPU time of the calling thread (``time.thread_time``) instead of the wall
clock: on a machine shared with other jobs a call's wall time includes the time slices they take, many times the
call itself for calls of a few milliseconds, while its CPU time does not (caches the other jobs evict still count).
It needs one thread: with more, torch's and the kernels' worker threads do part of the work.
"""

from __future__ import annotations

import copy
import itertools
import json
import statistics
import time
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..backends import cpu, current_backend, use_backend
from ..formats.binary import binarize
from .machine import describe_cpu

SHAPES = ((1024, 1024), (1024, 4096), (4096, 1024), (4096, 4096), (640, 8193))
ROWS = (1, 8, 64, 256, 1024)
THREADS = (1, 2)
# The paths the thread-scaling table compares, by their column in the main table.
SCALING = {"dense_f32_ms": "dense f32", "dense_bf16_ms": "dense bf16", "dynamic_int8_ms": "dyn i8",
           "op_f32_ms": "op f32", "op_bf16_ms": "op bf16", "op_int8_act_ms": "op i8a"}


# Bytes of copies of each weight that the calls cycle through unless --warm: more than the last-level cache of
# most machines, so every call finds its weight in memory, as a layer of a model does after the other layers ran.
ROTATION_BYTES = 64 << 20


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def median_ms(fns: dict, budget_s: float, min_repeats: int, clock=time.perf_counter) -> dict:
    """Median ms per call of each function. The functions take turns, until ``budget_s`` per function has passed
    (at least ``min_repeats``, at most 200 rounds): on a shared machine load comes and goes, and turns expose
    every function to the same share of it. Each timed call follows an untimed one of the same function, so that
    what the function runs (Python included) is as warm as in a model, even after a dense call streamed 64 MiB
    through the caches. ``clock`` times the calls (the budget is wall time)."""
    times: dict = {name: [] for name in fns}
    start = time.perf_counter()
    rounds = 0
    while rounds < min_repeats or (time.perf_counter() - start < 2 * budget_s * len(fns) and rounds < 200):
        for name, fn in fns.items():
            fn()
            begin = clock()
            fn()
            times[name].append(clock() - begin)
        rounds += 1
    return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def _copies(size: int, warm: bool) -> int:
    return 1 if warm else max(1, -(-ROTATION_BYTES // size))


def rotation(tensors: tuple, warm: bool):
    """A function returning, call after call, copies of ``tensors`` in turn: enough copies to fill
    ROTATION_BYTES, or just the tensors if ``warm``. Without copies a packed weight small enough for the cache
    would be timed from cache while a dense one, too big for it, came from memory."""
    count = _copies(sum(t.numel() * t.element_size() for t in tensors if t is not None), warm)
    copies = [tensors] + [tuple(None if t is None else t.clone() for t in tensors) for _ in range(count - 1)]
    return itertools.cycle(copies).__next__


def dynamic_int8(weight: torch.Tensor, warm: bool):
    """Like :func:`rotation`, for torch's dynamic int8 ``nn.Linear`` of ``weight`` (int8 weights, one byte each)."""
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        linear.weight.copy_(weight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        module = torch.ao.quantization.quantize_dynamic(nn.Sequential(linear), {nn.Linear}, dtype=torch.qint8)[0]
        copies = [module] + [copy.deepcopy(module) for _ in range(_copies(weight.numel(), warm) - 1)]
    return itertools.cycle(copies).__next__


def measure(n: int, k: int, m: int, budget_s: float, min_repeats: int, warm: bool, clock=time.perf_counter) -> dict:
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(n, k, generator=gen)
    binary = binarize(weight)
    x = torch.randn(m, k, generator=gen)
    x_bf16 = x.bfloat16()
    dense_f32 = rotation((weight,), warm)
    dense_bf16 = rotation((weight.bfloat16(),), warm)
    dynamic = dynamic_int8(weight, warm)
    packed = rotation((binary.packed, binary.scale), warm)
    op, op_int8_act = torch.ops.hf_binarize.binary_linear, torch.ops.hf_binarize.binary_linear_int8_act
    fns = {
        "dense_f32_ms": lambda: F.linear(x, *dense_f32()),
        "dense_bf16_ms": lambda: F.linear(x_bf16, *dense_bf16()),
        "dynamic_int8_ms": lambda: dynamic()(x),
        "op_f32_ms": lambda: op(x, *packed(), None, None, k, k),
        "op_bf16_ms": lambda: op(x_bf16, *packed(), None, None, k, k),
        "op_int8_act_ms": lambda: op_int8_act(x, *packed(), None, k),
    }
    with torch.inference_mode():
        row = {"N": n, "K": k, "M": m, **median_ms(fns, budget_s, min_repeats, clock)}
    row["speedup_f32"] = row["dense_f32_ms"] / row["op_f32_ms"]
    row["speedup_bf16"] = row["dense_bf16_ms"] / row["op_bf16_ms"]
    for name, dense in (("f32", "dense_f32_ms"), ("bf16", "dense_bf16_ms"), ("dynamic_int8", "dynamic_int8_ms")):
        row[f"int8_act_vs_{name}"] = row[dense] / row["op_int8_act_ms"]
    return row


def run(*, quick: bool = False, threads: Sequence[int] | None = None, rows: Sequence[int] | None = None,
        shapes: Sequence[tuple[int, int]] | None = None, warm: bool = False, json_path: str | None = None,
        isa: str = "auto", clock: str = "wall") -> list[dict]:
    """Prints the tables (and writes the rows as JSON to ``json_path``) and returns the rows. ``quick``: fewer
    repeats, M in 1 64 and 1 thread, unless ``threads`` or ``rows`` say otherwise; ``shapes``: ``(N, K)`` weight
    shapes (default :data:`SHAPES`); ``warm``: one copy of each weight, which may stay cached; ``isa``: the CPU
    instruction set of the packed ops (default: the best this CPU runs); ``clock``: ``"wall"`` or ``"cpu"`` (see
    the module docstring; one thread only)."""
    threads = threads or ((1,) if quick else THREADS)
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {list(CLOCKS)}, got {clock!r}")
    if clock == "cpu" and tuple(threads) != (1,):
        raise ValueError(f"the cpu clock times one thread only, got threads {list(threads)}: pass --threads 1")
    with use_backend(current_backend().name, cpu_isa=isa):
        return _run(quick, threads, rows, shapes or SHAPES, warm, json_path, clock)


def _run(quick: bool, threads: Sequence[int], rows: Sequence[int] | None, shapes: Sequence[tuple[int, int]],
         warm: bool, json_path: str | None, clock: str) -> list[dict]:
    rows = rows or ((1, 64) if quick else ROWS)
    budget_s, min_repeats = (0.05, 3) if quick else (0.3, 3)
    previous_threads = torch.get_num_threads()
    isa = cpu.resolve_isa(current_backend().cpu_isa)
    machine = {
        "cpu": describe_cpu(),
        "torch": torch.__version__,
        "backend": current_backend().name,
        "isa": isa,
        "int8_kernel": cpu.int8_kernel(isa),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "weights": "cached" if warm else f"cycling through {ROTATION_BYTES >> 20} MiB of copies",
        "clock": "CPU time of the calling thread" if clock == "cpu" else "wall",
    }
    print("\n".join(f"{key}: {value}" for key, value in machine.items()))
    header = ("thr", "N x K", "M", "dense f32", "dense bf16", "dyn i8", "op f32", "op bf16", "op i8a", "x f32",
              "x bf16", "i8a/f32", "i8a/bf16", "i8a/dyn")
    line = "{:>3} {:>11} {:>4} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6} {:>7} {:>8} {:>7}"
    print(line.format(*header))
    table = []
    try:
        for count in threads:
            torch.set_num_threads(count)
            for n, k in shapes:
                for m in rows:
                    row = {"threads": count, **measure(n, k, m, budget_s, min_repeats, warm, CLOCKS[clock])}
                    table.append(row)
                    times = (row[key] for key in ("dense_f32_ms", "dense_bf16_ms", "dynamic_int8_ms", "op_f32_ms",
                                                  "op_bf16_ms", "op_int8_act_ms"))
                    ratios = (row[key] for key in ("speedup_f32", "speedup_bf16", "int8_act_vs_f32",
                                                   "int8_act_vs_bf16", "int8_act_vs_dynamic_int8"))
                    print(line.format(count, f"{n}x{k}", m, *(f"{t:.3f}" for t in times),
                                      *(f"{r:.1f}" for r in ratios)), flush=True)
    finally:
        torch.set_num_threads(previous_threads)
    if len(threads) > 1:
        print_scaling(table, threads)
    if json_path:
        with open(json_path, "w") as out:
            json.dump({"machine": machine, "unit": "ms per call, median", "rows": table}, out, indent=2)
        print(f"wrote {json_path}")
    return table


def print_scaling(table: list[dict], threads: Sequence[int]) -> None:
    """Each path's time on ``threads[0]`` threads over its time on each other thread count."""
    base, others = threads[0], threads[1:]
    print(f"\nthread scaling: time on {base} thread(s) / time on " + ", ".join(str(t) for t in others))
    line = "{:>11} {:>4}" + " {:>10}" * len(SCALING)
    print(line.format("N x K", "M", *SCALING.values()))
    by_key = {(r["threads"], r["N"], r["K"], r["M"]): r for r in table}
    for (count, n, k, m), row in by_key.items():
        if count != base:
            continue
        cells = ["/".join(f"{row[key] / by_key[(t, n, k, m)][key]:.2f}" for t in others if (t, n, k, m) in by_key)
                 for key in SCALING]
        print(line.format(f"{n}x{k}", m, *cells))
