"""``hf-binarize``, the command line (also ``python -m hf_binarize``)::

    hf-binarize quantize --model runs/float --output-dir runs/binary-ptq --int8 joint decoder.embedding
    hf-binarize evaluate --model runs/qat --dataset corpus --split test --json results/qat-test.json
    hf-binarize sensitivity --model runs/float --dataset corpus --split validation --target-ratio 27
    hf-binarize card --results results/*.json --out-dir model_cards
    hf-binarize push --folder runs/qat --repo-id me/parakeet-rnnt-binary
    hf-binarize bench kernels --quick
    hf-binarize make-dataset --out corpus --hours 2

``hf-binarize COMMAND --help`` lists a command's options. A problem with what was passed (a missing folder or
column, a model of the wrong kind, an unreachable Hub, a full disk) ends the command with one line,
``hf-binarize COMMAND: error: ...``, and exit status 1; anything else is a bug and raises with its traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import bench, card, evaluate, make_dataset, push, quantize, sensitivity, transcribe
from .console import PROG, run_reporting_errors

# In the order --help lists them.
COMMANDS = (quantize, evaluate, sensitivity, transcribe, card, push, bench, make_dataset)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``hf-binarize`` with ``argv`` (default ``sys.argv[1:]``) and returns the exit status: 0, or 1 after
    printing one error line for a problem with what was passed. ``--help`` and usage errors exit through argparse
    (``SystemExit`` 0 and 2)."""
    args = build_parser().parse_args(argv)
    return run_reporting_errors(f"{PROG} {args.command}", lambda: args.run(args))


def build_parser() -> argparse.ArgumentParser:
    """The ``hf-binarize`` parser; every command sets ``args.run``, called with the parsed ``args``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="1-bit weights for speech recognition models: binarize, evaluate, publish.",
        epilog="hf-binarize COMMAND --help lists a command's options.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser
