"""``hf-binarize bench``: benchmarks of the packed kernels (:mod:`hf_binarize.benchmarks`)."""

from __future__ import annotations

import argparse

from ..benchmarks import kernels
from .options import positive_int, weight_shape


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("bench", help="benchmarks of the packed kernels",
                                 description="Benchmarks of the packed kernels: kernels times binary_linear (float "
                                             "and int8 activations) against dense and dynamic-int8 F.linear.")
    benchmarks = parser.add_subparsers(dest="benchmark", required=True)
    parser = benchmarks.add_parser("kernels", help=kernels.__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, M in 1 64, 1 thread")
    parser.add_argument("--json", metavar="PATH", help="also write the table as JSON")
    parser.add_argument("--threads", type=positive_int, nargs="+", help=f"thread counts (default {kernels.THREADS})")
    parser.add_argument("--rows", type=positive_int, nargs="+", help=f"activation rows M (default {kernels.ROWS})")
    parser.add_argument("--shapes", type=weight_shape, nargs="+", metavar="NxK",
                        help="weight shapes, output x input features (default "
                             f"{' '.join(f'{n}x{k}' for n, k in kernels.SHAPES)})")
    parser.add_argument("--warm", action="store_true", help="reuse one copy of each weight, which may stay cached")
    parser.add_argument("--isa", default="auto", help="CPU instruction set of the packed op (default: the best)")
    parser.add_argument("--clock", choices=list(kernels.CLOCKS), default="wall",
                        help="time calls by the wall clock (default) or by the CPU time of the calling thread, "
                             "which jobs sharing the machine do not inflate (one thread only)")
    parser.set_defaults(run=run_kernels)


def run_kernels(args: argparse.Namespace) -> None:
    kernels.run(quick=args.quick, threads=args.threads, rows=args.rows, shapes=args.shapes, warm=args.warm,
                json_path=args.json, isa=args.isa, clock=args.clock)
