"""Where the packed op should hand over from the lookup kernel to a GEMM on dequantized tiles, per ISA and threads.

    PYTHONPATH=. python bench/gemm_crossover.py                       # every ISA this CPU runs, 1 and 2 threads
    PYTHONPATH=. python bench/gemm_crossover.py --isas avx512 --threads 1 --rows 256 1024 --json out.json

For each weight shape and activation rows M, in ms per call (median; the paths take turns, each call on the next
of enough weight copies to overflow the caches): ``lut`` the lookup kernel, ``gemm`` dequantized float32 tiles and
torch's float32 GEMM (what ``cpu.GEMM_MIN_ROWS`` switches to), ``dense`` torch's ``F.linear`` on a dense float32
weight; and for bfloat16 inputs on a CPU with bfloat16 units, the lookups against the bfloat16 GEMM on sign tiles
(``cpu.BF16_GEMM_MIN_ROWS``) and a dense bfloat16 ``F.linear``. The thresholds in hf_binarize/backends/cpu.py were
chosen from this table.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from hf_binarize.backends import cpu
from hf_binarize.formats.binary import binarize

SHAPES = ((1024, 1024), (4096, 1024), (1024, 4096), (4096, 4096), (640, 8193))
ROTATION_BYTES = 64 << 20


@contextlib.contextmanager
def thresholds(isa: str, f32: int | None, bf16: int):
    saved = cpu.GEMM_MIN_ROWS[isa], cpu.BF16_GEMM_MIN_ROWS
    cpu.GEMM_MIN_ROWS[isa], cpu.BF16_GEMM_MIN_ROWS = f32, bf16
    try:
        yield
    finally:
        cpu.GEMM_MIN_ROWS[isa], cpu.BF16_GEMM_MIN_ROWS = saved


def rotation(tensors: tuple):
    size = sum(t.numel() * t.element_size() for t in tensors)
    copies = [tuple(t.clone() for t in tensors) for _ in range(max(1, -(-ROTATION_BYTES // size)))]
    return itertools.cycle(copies).__next__


def median_ms(fns: dict, repeats: int) -> dict:
    times: dict = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: round(statistics.median(values) * 1e3, 3) for name, values in times.items()}


def measure(isa: str, n: int, k: int, m: int, repeats: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(n, k, generator=gen)
    binary = binarize(weight)
    x = torch.randn(m, k, generator=gen)
    packed, dense = rotation((binary.packed, binary.scale)), rotation((weight,))

    def op(inputs, f32, bf16):
        with thresholds(isa, f32, bf16):
            return cpu.native_binary_linear(inputs, *packed(), None, None, k, k, isa=isa)

    never = 1 << 62
    fns = {"lut": lambda: op(x, None, never), "gemm": lambda: op(x, 0, never), "dense": lambda: F.linear(x, *dense())}
    if cpu.has_bf16_units():
        xb, dense_bf16 = x.bfloat16(), rotation((weight.bfloat16(),))
        fns.update({"lut_bf16": lambda: op(xb, None, never), "gemm_bf16": lambda: op(xb, None, 0),
                    "dense_bf16": lambda: F.linear(xb, *dense_bf16())})
    with torch.inference_mode():
        return median_ms(fns, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--isas", nargs="+", default=[isa for isa in cpu.available_isas() if isa != "portable"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rows", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    print(f"cpu={platform.processor() or platform.machine()} torch={torch.__version__} "
          f"capability={torch.backends.cpu.get_cpu_capability()} bf16_units={cpu.has_bf16_units()}")
    rows = []
    for threads, isa in itertools.product(args.threads, args.isas):
        torch.set_num_threads(threads)
        for (n, k), m in itertools.product(SHAPES, args.rows):
            row = {"threads": threads, "isa": isa, "N": n, "K": k, "M": m, **measure(isa, n, k, m, args.repeats)}
            rows.append(row)
            times = " ".join(f"{key}={value:.2f}" for key, value in row.items() if key not in ("threads", "isa", "N", "K", "M"))
            print(f"{threads} {isa:>6} {n:>5}x{k:<5} M={m:<5} {times}", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                       "bf16_units": cpu.has_bf16_units(), "unit": "ms per call, median", "rows": rows}, out)


if __name__ == "__main__":
    main()
