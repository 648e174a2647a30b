"""``python -m hf_binarize.bench <benchmark> [options]``; ``--help`` after a benchmark's name lists its options."""

import argparse

from . import add_arguments


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hf_binarize.bench", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
