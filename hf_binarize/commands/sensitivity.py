"""``hf-binarize sensitivity``: what binarizing each group of modules alone does to a float model's loss and WER, per
byte it saves, and the module overrides that reach a compression ratio with the least damage."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

import torch
from transformers import AutoProcessor

from ..analysis import analyse, score_config, suggest
from ..atomic import write_atomically
from ..config import BinaryQuantizationConfig
from ..evaluation.families import auto_class
from ..evaluation.report import prepare_examples
from .checkpoint import transducer_config
from .console import CommandError, setup_logging
from .options import add_scale_arguments, add_scoring_arguments, scale_options

_DESCRIPTION = """\
Binarizes each group of modules of a float checkpoint alone (each encoder layer's feed-forward, attention and
convolution modules, the subsampling, the prediction network's embedding, LSTM and projection, the joint), without
training, and scores the model on a split: its own loss (nats per label, each utterance alone) and greedy WER. Each
group is also scored at int8 (the embedding only at int8: it cannot be binarized). The table ranks them by loss
change per byte saved (bytes as a packed checkpoint stores them, hf_binarize.size_report).

With --target-ratio, it then chooses per group binary, int8 or float so that the weights are that many times smaller
than in float32 with the least damage, summing the groups' loss changes (an estimate: groups binarized together do
not add up exactly), scores that combination, and prints it as BinaryQuantizationConfig arguments:

    BinaryQuantizationConfig(**json.loads(line))

Score on a validation split, never on the test split the model is finally reported on."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("sensitivity", help="loss and WER of binarizing each module group alone; "
                                 "overrides for a target size", description=_DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="float checkpoint: a save_pretrained folder with its processor, or a Hub id")
    add_scoring_arguments(parser, split="validation")
    parser.add_argument("--target-ratio", type=_ratio, metavar="X",
                        help="compression of the weights vs float32 to reach, e.g. 27")
    add_scale_arguments(parser.add_argument_group("binary scales"))
    parser.add_argument("--json", metavar="PATH", help="write the table and the suggestion to this JSON file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    setup_logging()
    config = transducer_config(args.model)
    if getattr(config, "quantization_config", None) is not None:
        raise CommandError(f"{args.model} is quantized already (it has a quantization_config): the analysis "
                           "binarizes a float model, pass the float checkpoint it was made from")
    if args.streaming and args.limit is None:
        raise CommandError("--streaming needs --limit here: the analysis scores the same utterances once per group, "
                           "so it holds them in memory")
    base = BinaryQuantizationConfig(**scale_options(args))
    processor = AutoProcessor.from_pretrained(args.model)
    examples, preparer = prepare_examples(processor, args.dataset, split=args.split, audio_column=args.audio_column,
                                          text_column=args.text_column, limit=args.limit,
                                          max_duration=args.max_duration, dataset_config=args.dataset_config,
                                          streaming=args.streaming)
    skipped = preparer.skipped
    if skipped:
        print(f"skipped {sum(skipped.values()):,} utterances of {args.split}: "
              f"{', '.join(f'{reason}={count}' for reason, count in sorted(skipped.items()))}", file=sys.stderr)
    model = auto_class(config).from_pretrained(args.model).eval()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or previous_threads)
    try:
        report = analyse(model, processor.tokenizer, examples, base=base, batch_size=args.batch_size,
                         target_ratio=args.target_ratio, progress=True)
        print(report)
        record = {"model": str(args.model), "dataset": str(args.dataset), "dataset_config": args.dataset_config,
                  "split": args.split, "skipped": skipped, **report.to_dict(), "suggestion": None,
                  "command": _command(args)}
        if args.target_ratio is not None:
            suggestion = suggest(report, args.target_ratio)
            measured, sizes = score_config(model, processor.tokenizer, examples,
                                           BinaryQuantizationConfig(**suggestion.config), batch_size=args.batch_size)
            print(suggestion)
            print(f"measured with all of them at once: {sizes.compression:.2f}x, loss {measured.loss:.4f} "
                  f"({measured.loss - report.baseline.loss:+.4f}), WER {100 * measured.wer:.2f}% "
                  f"({100 * (measured.wer - report.baseline.wer):+.2f} points)")
            record["suggestion"] = {**suggestion.to_dict(), "measured": {
                "compression_vs_fp32": sizes.compression, "bytes": sizes.total_bytes, "loss": measured.loss,
                "loss_change": measured.loss - report.baseline.loss, "wer": measured.wer,
                "word_errors": measured.word_errors}}
    finally:
        torch.set_num_threads(previous_threads)
    if args.json:
        write_atomically(args.json, (json.dumps(record, indent=1) + "\n").encode("utf-8"))
        print(f"results written to {args.json}")


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this analysis."""
    argv = ["sensitivity", "--model", str(args.model), "--dataset", str(args.dataset),
            *(["--dataset-config", args.dataset_config] if args.dataset_config else []), "--split", args.split,
            "--audio-column", args.audio_column, "--text-column", args.text_column,
            *(["--limit", str(args.limit)] if args.limit is not None else []), "--batch-size", str(args.batch_size),
            "--max-duration", "none" if args.max_duration is None else str(args.max_duration),
            *(["--target-ratio", f"{args.target_ratio:g}"] if args.target_ratio is not None else []),
            *(["--centred"] if args.centred else []),
            *(["--group-size", str(args.group_size)] if args.group_size is not None else []),
            "--scale-dtype", args.scale_dtype]
    return "hf-binarize " + shlex.join(argv)


def _ratio(text: str) -> float:
    value = float(text)
    if not value > 1:
        raise argparse.ArgumentTypeError(f"must be a compression ratio above 1 (the float model's), got {text}")
    return value
