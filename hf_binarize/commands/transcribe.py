"""``hf-binarize transcribe``: transcripts of audio files of any length, in bounded memory."""

from __future__ import annotations

import argparse
import json
import sys

import torch

from ..atomic import write_atomically
from .checkpoint import transducer_config
from .console import PROG, CommandError
from .options import non_negative_seconds, positive_int, positive_seconds

_DESCRIPTION = """\
Greedy transcripts of audio files (or every audio file under a folder) with a transducer checkpoint, float or
packed. Long files are decoded in spans of --chunk-seconds, each heard with --context-seconds of audio on both
sides, and read one window at a time, so a one-hour file needs no more memory than a one-minute one. Prints one
line per file ("PATH: transcript"), with --timestamps a line per span ("[start - end] text"). A file that cannot
be used (unreadable, empty) gets one error line and the others are still transcribed; the exit status is then 1."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("transcribe", help="transcribe audio files of any length",
                                 description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="FILE", help="audio files or folders of them")
    parser.add_argument("--model", required=True, help="checkpoint folder with its processor, or a Hub id")
    parser.add_argument("--chunk-seconds", type=positive_seconds, default=20.0,
                        help="span decoded at a time (default %(default)g)")
    parser.add_argument("--context-seconds", type=non_negative_seconds, default=2.5,
                        help="audio added on each side of a span while decoding it (default %(default)g)")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's default)")
    parser.add_argument("--timestamps", action="store_true", help="print a line per span with its start and end")
    parser.add_argument("--json", metavar="PATH", help="also write every transcript and its spans to this JSON file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from transformers import AutoProcessor

    from ..evaluation.families import auto_class
    from ..evaluation.long_form import LongFormTranscriber, audio_files, transcribe_files

    files = audio_files(args.paths)
    config = transducer_config(args.model)
    if args.threads:
        torch.set_num_threads(args.threads)
    transcriber = LongFormTranscriber(auto_class(config).from_pretrained(args.model),
                                      AutoProcessor.from_pretrained(args.model), chunk_seconds=args.chunk_seconds,
                                      context_seconds=args.context_seconds)
    results, failed = [], 0
    for result in transcribe_files(transcriber, files, progress=True):
        if isinstance(result, tuple):
            path, error = result
            failed += 1
            print(f"{PROG} transcribe: error: {path}: {error}", file=sys.stderr, flush=True)
            continue
        results.append(result.to_dict())
        if args.timestamps:
            print(f"{result.path}:")
            for segment in result.segments:
                print(f"  [{_clock(segment.start)} - {_clock(segment.end)}] {segment.text}")
        else:
            print(f"{result.path}: {result.text}", flush=True)
    if args.json:
        write_atomically(args.json, (json.dumps(results, indent=2) + "\n").encode())
    if failed:
        raise CommandError(f"{failed} of {len(files)} files could not be transcribed (see the lines above)")


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:d}:{minutes:02d}:{seconds:05.2f}"
