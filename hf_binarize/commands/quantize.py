"""``hf-binarize quantize``: post-training binarization of a float checkpoint, saved packed with its processor."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from transformers import AutoProcessor

from ..atomic import recover_folder, replaced_folder
from ..evaluation.families import auto_class
from ..size import size_report
from .checkpoint import transducer_config
from .console import CommandError
from .options import add_binarization_arguments, binarization_config

_DESCRIPTION = """\
Binarizes a float speech checkpoint (ParakeetForRNNT, ParakeetForTDT or ParakeetForCTC) WITHOUT TRAINING:
every Linear, 1x1 Conv1d and LSTM weight becomes its sign times a scale (post-training binarization), except the
modules --int8 and --float name. Saves the packed model and the processor to OUTPUT_DIR (written beside it, then
renamed into place) and prints the size report.

Binarizing without training destroys accuracy (99% WER measured on a small RNN-T): use it to see sizes and
speeds, and recipes/qat.py (quantization-aware training, which saves a packed model itself) to get a usable one."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("quantize", help="binarize a float checkpoint without training, save it packed",
                                 description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="float checkpoint: a save_pretrained folder with its processor, or a Hub id")
    parser.add_argument("--output-dir", required=True, help="where the packed model and its processor go")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUTPUT_DIR")
    add_binarization_arguments(parser.add_argument_group("binarization"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    output = Path(args.output_dir)
    _check_output_dir(output, args.model, overwrite=args.overwrite)
    config = transducer_config(args.model)
    if getattr(config, "quantization_config", None) is not None:
        raise CommandError(f"{args.model} has a quantization config already: quantize its float original instead")
    quantization = binarization_config(args)
    processor = AutoProcessor.from_pretrained(args.model)
    model = auto_class(config).from_pretrained(args.model, quantization_config=quantization)
    with replaced_folder(output) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
    report = size_report(model, output)
    print(report)
    if any(row["precision"] == "binary" for row in report.groups):
        print(f"note: {output} was binarized without training, which destroys accuracy; recipes/qat.py trains a "
              "model for binarization", file=sys.stderr)


def _check_output_dir(output: Path, model: str, *, overwrite: bool) -> None:
    """Refuses, before any slow work, an output that would lose data or cannot be written. Replacing OUTPUT_DIR
    deletes everything in it, so it must neither hold the input model nor the current folder, nor lie inside the
    model; symbolic links are followed (the folder a link points to is the one replaced)."""
    if output.exists() and not output.is_dir():
        raise CommandError(f"--output-dir {output} is a file: choose a folder")
    # What a killed earlier run left: a replaced folder not yet deleted is put back before the emptiness check.
    recover_folder(output)
    resolved = output.resolve()
    source = Path(model).expanduser()
    if source.is_dir():
        source = source.resolve()
        if resolved == source:
            raise CommandError(f"--output-dir {output} is the --model folder: write the packed model elsewhere")
        if resolved in source.parents:
            raise CommandError(f"--output-dir {output} contains the --model folder, which replacing it would "
                               "delete: choose a new folder, e.g. a sibling of the model")
        if source in resolved.parents:
            raise CommandError(f"--output-dir {output} is inside the --model folder: write the packed model "
                               "elsewhere")
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise CommandError(f"--output-dir {output} contains the current folder, which replacing it would delete: "
                           "choose a new folder")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise CommandError(f"--output-dir {output} exists and is not empty: pass --overwrite to replace it")
