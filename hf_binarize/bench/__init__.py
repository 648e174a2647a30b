"""Benchmarks, run as ``hf-binarize bench <name>`` or ``python -m hf_binarize.bench <name>``: ``kernels`` times
``binary_linear`` against dense ``F.linear`` (see :mod:`hf_binarize.bench.kernels`)."""

import argparse

from . import kernels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the benchmarks to ``parser``, one subcommand each; ``args.run(args)`` then runs the one chosen."""
    benchmarks = parser.add_subparsers(dest="benchmark", required=True)
    kernels.add_arguments(benchmarks.add_parser("kernels", help=kernels.__doc__.splitlines()[0]))
