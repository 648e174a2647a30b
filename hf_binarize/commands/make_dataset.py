"""``hf-binarize make-dataset``: the synthetic speech corpus (:mod:`hf_binarize.data.synthetic`)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable

from ..data import synthetic
from ..data.augment import AugmentConfig
from ..data.text_sources import SOURCES
from ..data.voices import ENGINES


def add_parser(commands: argparse._SubParsersAction) -> None:
    defaults = synthetic.CorpusConfig(utterances=1)
    augment_defaults = defaults.augment
    parser = commands.add_parser(
        "make-dataset", help="build the synthetic speech corpus (espeak-ng and flite, augmented)",
        description=synthetic.__doc__.split("\n\n")[0],
        epilog="Needs espeak-ng, flite and the text packages (scripts/install_system_deps.sh) and the 'data' extra.")
    parser.add_argument("--out", required=True, help="output folder (a datasets save_to_disk folder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--hours", type=float, help="total audio to make, in hours")
    size.add_argument("--utterances", type=int, help="number of utterances to make")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="synthesis processes (default %(default)s: the cores, at most 4)")
    parser.add_argument("--sample-rate", type=int, default=defaults.sample_rate,
                        help="output rate in Hz (default %(default)s)")
    parser.add_argument("--text-sources", type=_names, default=defaults.text_sources, metavar="NAME,...",
                        help=f"text sources, some of {sorted(SOURCES)} (default {','.join(defaults.text_sources)})")
    parser.add_argument("--max-per-source", type=int, default=defaults.max_per_source,
                        help="seeded sample of at most N sentences per source (default %(default)s)")
    parser.add_argument("--engines", type=_names, default=defaults.engines, metavar="NAME,...",
                        help=f"synthesisers, some of {list(ENGINES)} (default {','.join(defaults.engines)})")
    parser.add_argument("--flite-fraction", type=float, default=defaults.flite_fraction,
                        help="share of utterances spoken by flite voices (default %(default)s)")
    parser.add_argument("--rate", type=_range(int), default=defaults.rate_range, metavar="LOW,HIGH",
                        help="speaking rate range, words per minute (default %(default)s)")
    parser.add_argument("--pitch", type=_range(int), default=defaults.pitch_range, metavar="LOW,HIGH",
                        help="pitch range, 0-99 (default %(default)s)")
    parser.add_argument("--no-augment", action="store_true",
                        help="only noise and gain: no speed, reverberation, babble, telephone band or clipping")
    parser.add_argument("--speed", type=_range(float), default=augment_defaults.speed_range, metavar="LOW,HIGH",
                        help="speed perturbation range (default %(default)s)")
    parser.add_argument("--reverb-probability", type=float, default=augment_defaults.reverb_probability,
                        help="share of utterances with synthetic room reverberation (default %(default)s)")
    parser.add_argument("--babble-probability", type=float, default=augment_defaults.babble_probability,
                        help="share of noisy utterances whose noise is babble (default %(default)s)")
    parser.add_argument("--telephone-probability", type=float, default=augment_defaults.telephone_probability,
                        help="share of utterances through a telephone band (default %(default)s)")
    parser.add_argument("--clip-probability", type=float, default=augment_defaults.clip_probability,
                        help="share of clipped utterances (default %(default)s)")
    parser.add_argument("--snr-db", type=_range(float), default=augment_defaults.snr_db_range, metavar="LOW,HIGH",
                        help="signal-to-noise ratio range in dB (default %(default)s)")
    parser.add_argument("--clean-fraction", type=float, default=augment_defaults.clean_fraction,
                        help="fraction of utterances without noise (default %(default)s)")
    parser.add_argument("--split-fractions", type=lambda text: tuple(float(x) for x in text.split(",")),
                        default=defaults.split_fractions, metavar="TRAIN,VAL,TEST,TEST_UNSEEN",
                        help="shares of sentences and utterances per split (default %(default)s)")
    parser.add_argument("--unseen-accents", type=int, default=defaults.unseen_accents,
                        help="espeak-ng accents heard only in test_unseen (default %(default)s)")
    parser.add_argument("--unseen-variants", type=int, default=defaults.unseen_variants,
                        help="espeak-ng voice variants heard only in test_unseen (default %(default)s)")
    parser.add_argument("--unseen-flite", type=int, default=defaults.unseen_flite,
                        help="flite speakers heard only in test_unseen (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def _range(kind: type) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        low, high = (kind(part) for part in text.split(","))
        if low > high:
            raise argparse.ArgumentTypeError(f"{text}: low > high")
        return low, high
    return parse


def _names(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.split(",") if part)


def config_from_args(args: argparse.Namespace) -> synthetic.CorpusConfig:
    """The corpus configuration the options describe."""
    augment_config = dataclasses.replace(
        AugmentConfig(), enabled=not args.no_augment, speed_range=args.speed,
        reverb_probability=args.reverb_probability, babble_probability=args.babble_probability,
        telephone_probability=args.telephone_probability, clip_probability=args.clip_probability,
        snr_db_range=args.snr_db, clean_fraction=args.clean_fraction)
    return synthetic.CorpusConfig(seed=args.seed, hours=args.hours, utterances=args.utterances,
                                  sample_rate=args.sample_rate, text_sources=args.text_sources,
                                  max_per_source=args.max_per_source, engines=args.engines,
                                  flite_fraction=args.flite_fraction, rate_range=args.rate, pitch_range=args.pitch,
                                  augment=augment_config, split_fractions=args.split_fractions,
                                  unseen_accents=args.unseen_accents, unseen_variants=args.unseen_variants,
                                  unseen_flite=args.unseen_flite)


def run(args: argparse.Namespace) -> None:
    """Builds the corpus the options describe and prints what was made; a missing package, an unknown voice or
    source, an unwritable folder end in one error line (ValueError / OSError, as every command's)."""
    report = synthetic.build_corpus(args.out, config_from_args(args), workers=args.workers,
                                    overwrite=args.overwrite, progress=not args.no_progress)
    total = sum(report.audio_seconds.values())
    print(f"wrote {sum(report.utterances.values())} utterances, {total / 3600:.3f} h of audio to {report.out_dir}: "
          + ", ".join(f"{split} {report.utterances[split]}" for split in synthetic.SPLITS))
    print(f"{report.wall_seconds:.1f} s wall with {args.workers} workers: {report.throughput:.1f} s of audio per "
          "second")
