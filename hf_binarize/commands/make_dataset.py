"""``hf-binarize make-dataset``: the synthetic espeak-ng speech corpus (:mod:`hf_binarize.data.synthetic`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from ..data import synthetic
from .console import CommandError


def add_parser(commands: argparse._SubParsersAction) -> None:
    defaults = synthetic.CorpusConfig(utterances=1)
    parser = commands.add_parser("make-dataset", help="build the synthetic espeak-ng speech corpus",
                                 description=synthetic.__doc__.split("\n")[0],
                                 epilog="Needs espeak-ng (scripts/install_system_deps.sh) and the 'data' extra.")
    parser.add_argument("--out", required=True, help="output folder (a datasets save_to_disk folder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--hours", type=float, help="total audio to make, in hours")
    size.add_argument("--utterances", type=int, help="number of utterances to make")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="synthesis processes (default %(default)s: the cores, at most 4)")
    parser.add_argument("--sample-rate", type=int, default=defaults.sample_rate,
                        help="output rate in Hz (default %(default)s)")
    parser.add_argument("--rate", type=_range(int), default=defaults.rate_range, metavar="LOW,HIGH",
                        help="speaking rate range, words per minute (default %(default)s)")
    parser.add_argument("--pitch", type=_range(int), default=defaults.pitch_range, metavar="LOW,HIGH",
                        help="espeak-ng pitch range, 0-99 (default %(default)s)")
    parser.add_argument("--snr-db", type=_range(float), default=defaults.snr_db_range, metavar="LOW,HIGH",
                        help="signal-to-noise ratio range in dB (default %(default)s)")
    parser.add_argument("--clean-fraction", type=float, default=defaults.clean_fraction,
                        help="fraction of utterances without noise (default %(default)s)")
    parser.add_argument("--split-fractions", type=lambda text: tuple(float(x) for x in text.split(",")),
                        default=defaults.split_fractions, metavar="TRAIN,VAL,TEST,TEST_UNSEEN",
                        help="shares of sentences and utterances per split (default %(default)s)")
    parser.add_argument("--unseen-accents", type=int, default=defaults.unseen_accents,
                        help="accents heard only in test_unseen (default %(default)s)")
    parser.add_argument("--unseen-variants", type=int, default=defaults.unseen_variants,
                        help="voice variants heard only in test_unseen (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    parser.set_defaults(run=run)


def _range(kind: type) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        low, high = (kind(part) for part in text.split(","))
        if low > high:
            raise argparse.ArgumentTypeError(f"{text}: low > high")
        return low, high
    return parse


def run(args: argparse.Namespace) -> None:
    """Builds the corpus the options describe and prints what was made."""
    try:
        synthetic.check_espeak()
    except RuntimeError as error:
        raise CommandError(str(error)) from None
    config = synthetic.CorpusConfig(seed=args.seed, hours=args.hours, utterances=args.utterances,
                                    sample_rate=args.sample_rate, rate_range=args.rate, pitch_range=args.pitch,
                                    snr_db_range=args.snr_db, clean_fraction=args.clean_fraction,
                                    split_fractions=args.split_fractions, unseen_accents=args.unseen_accents,
                                    unseen_variants=args.unseen_variants)
    report = synthetic.build_corpus(args.out, config, workers=args.workers, overwrite=args.overwrite)
    total = sum(report.audio_seconds.values())
    print(f"wrote {sum(report.utterances.values())} utterances, {total / 3600:.3f} h of audio to {report.out_dir}: "
          + ", ".join(f"{split} {report.utterances[split]}" for split in synthetic.SPLITS))
    print(f"{report.wall_seconds:.1f} s wall with {args.workers} workers: {report.throughput:.1f} s of audio per "
          "second")
