"""``python -m hf_binarize.bench <benchmark> [options]``; ``--help`` after a benchmark's name lists its options."""

import argparse

from . import kernels


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hf_binarize.bench", description=__doc__)
    benchmarks = parser.add_subparsers(dest="benchmark", required=True)
    kernels.add_arguments(benchmarks.add_parser("kernels", help=kernels.__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
