"""``hf-binarize card``: model cards, a size-vs-WER plot and a summary table from ``evaluate --json`` files."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from .. import cards
from .console import CommandError
from .options import variant_folder


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "card", help="model cards, a size-vs-WER plot and a summary table from evaluate --json files",
        description=cards.__doc__.split("\n\n")[0])
    parser.add_argument("--results", nargs="+", required=True, metavar="JSON",
                        help="evaluation JSON files of `hf-binarize evaluate --json` (glob patterns allowed)")
    parser.add_argument("--out-dir", default="model_cards", help="where to write the cards (default %(default)s)")
    parser.add_argument("--baseline", default="float",
                        help="variant the others are compared with (default %(default)s)")
    parser.add_argument("--repo-prefix", help="OWNER/NAME: variant V is named OWNER/NAME-V in its card")
    parser.add_argument("--base-model", help="Hub id of the model the variants were quantized from "
                                             "(default: the baseline's repository when --repo-prefix is given)")
    parser.add_argument("--dataset-name", help="dataset name for the card metadata (default: the JSON's dataset)")
    parser.add_argument("--how-made", type=Path, metavar="MARKDOWN_FILE",
                        help="a Markdown file (the training commands, say) included in the summary and every card")
    parser.add_argument("--no-card", nargs="+", default=[], metavar="VARIANT",
                        help="variants listed in the summary without a card of their own (peers with no folder)")
    parser.add_argument("--license", help="licence identifier for the card metadata, e.g. apache-2.0 (default: the "
                                          "base model's, from its card or config; required when it states none)")
    parser.add_argument("--language", nargs="+", metavar="CODE",
                        help="language codes for the card metadata, e.g. en (default: the base model card's, else "
                             "the dataset card's)")
    parser.add_argument("--allow-mixed-data", action="store_true",
                        help="write the cards although the variants of a split were scored on different data (the "
                             "cards then say so); by default that is refused")
    parser.add_argument("--model-folder", nargs="+", default=[], type=variant_folder, metavar="VARIANT=FOLDER",
                        help="also write VARIANT's card (and its plots) into its model folder as README.md, so that "
                             "`hf-binarize push --folder FOLDER` uploads model and card together")
    parser.add_argument("--overwrite-readme", action="store_true",
                        help="let --model-folder replace a README.md that hf-binarize card did not write (by "
                             "default that is refused)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Loads the results, writes the cards and prints every file written."""
    repeated = sorted(variant for variant, count in Counter(v for v, _ in args.model_folder).items() if count > 1)
    if repeated:
        raise CommandError(f"--model-folder names {', '.join(repeated)} more than once: one folder per variant")
    results = cards.load_results(args.results)
    how_made = None if args.how_made is None else args.how_made.read_text(encoding="utf-8")
    for path in cards.write_cards(results, args.out_dir, args.baseline, repo_prefix=args.repo_prefix,
                                  base_model=args.base_model, dataset_name=args.dataset_name, how_made=how_made,
                                  no_card=args.no_card, allow_mixed_data=args.allow_mixed_data,
                                  license=args.license, language=args.language or (),
                                  model_folders=dict(args.model_folder), overwrite_readme=args.overwrite_readme):
        print(path)
