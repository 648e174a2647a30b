"""``hf-binarize evaluate``: WER, CER, size and real-time factor of a checkpoint on one split of a dataset."""

from __future__ import annotations

import argparse

from ..data.text import SCORING_NORMALIZERS
from ..evaluation import evaluate_model
from .checkpoint import transducer_config
from .console import setup_logging
from .options import add_scoring_arguments, non_negative_int

_DESCRIPTION = """\
Greedy WER and CER of a transducer checkpoint (float, QAT or packed) on one split of a speech dataset, scored by
the code that scores models during training; its size (weights in memory by precision, folder on disk); and its
decode speed: the real-time factor, wall seconds of the whole transcription divided by seconds of audio (the
prepared audio: feature frames times the feature extractor's hop, i.e. each utterance rounded down to a whole hop,
10 ms for Parakeet). Utterances longer than --max-duration and those that cannot be used (unreadable or silent
audio, empty transcript) are skipped, counted in the summary, the JSON record and the log; with none left, the
command fails.

References and hypotheses are compared after a normaliser (--normalizer): basic (lower case, punctuation
dropped: hf-binarize's own models write that), whisper (OpenAI Whisper's English normaliser, as most published
English WERs: contractions expanded, numbers as digits) or none (as written: case and punctuation count). Reference
words holding a character the model's vocabulary lacks (it cannot write them: <unk> labels) are counted too."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="WER, CER, size and real-time factor of a model on a dataset",
                                 description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint folder with its processor, or a Hub id")
    add_scoring_arguments(parser, split="test")
    parser.add_argument("--normalizer", choices=list(SCORING_NORMALIZERS), default="basic",
                        help="how references and hypotheses are normalised before scoring (default %(default)s)")
    parser.add_argument("--variant", help="the model's name in the results (default: the model folder's name)")
    parser.add_argument("--split-name", metavar="NAME",
                        help="the split's name in the results (default: --split), for a dataset whose split would "
                             "be confused with another's: an independent set's 'test' filed as 'independent'; the "
                             "record keeps the split that was read as dataset_split")
    parser.add_argument("--samples", type=non_negative_int, default=3,
                        help="reference/hypothesis pairs to print (default %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    setup_logging()
    transducer_config(args.model)
    result = evaluate_model(args.model, args.dataset, split=args.split, audio_column=args.audio_column,
                            text_column=args.text_column, limit=args.limit, batch_size=args.batch_size,
                            threads=args.threads, variant=args.variant, max_duration=args.max_duration,
                            progress=True, dataset_config=args.dataset_config, normalizer=args.normalizer,
                            streaming=args.streaming, split_name=args.split_name)
    print(result)
    if args.samples > 0:
        print(result.transcripts.samples(args.samples))
    if args.json:
        result.write_json(args.json)
        print(f"results written to {args.json}")
