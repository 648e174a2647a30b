"""Option groups shared by the commands and the training recipes, and the value types of their options.

``recipes/qat.py`` and ``hf-binarize quantize`` binarize with the same options (:func:`add_binarization_arguments`,
read back by :func:`binarization_config`); ``recipes/train_float.py`` and ``recipes/qat.py`` share the data and
schedule options, which :func:`hf_binarize.training.run.training_arguments` turns into ``TrainingArguments``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import BinaryQuantizationConfig
from ..data.augment import SpecAugment
from ..evaluation.report import MAX_DURATION

# --------------------------------------------------------------------------------------------- binarization


def add_scale_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """How binary scales are computed and stored (part of :func:`add_binarization_arguments`; alone in
    ``hf-binarize sensitivity``, which chooses the modules itself)."""
    parser.add_argument("--centred", action="store_true", help="binarize W - mean, keeping the mean as an offset")
    parser.add_argument("--group-size", type=int,
                        help="inputs per scale, a multiple of 8 (default: one scale per output channel)")
    parser.add_argument("--scale-dtype", default="float16", choices=["float16", "bfloat16", "float32"],
                        help="dtype of the stored scales and offsets (default %(default)s)")


def add_binarization_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The options that say how a float model is binarized (``hf-binarize quantize``, ``recipes/qat.py``); read
    them back with :func:`binarization_config`."""
    add_scale_arguments(parser)
    parser.add_argument("--int8", nargs="*", default=[], metavar="PATTERN",
                        help="modules kept at int8 instead of 1 bit, e.g. joint decoder.embedding")
    parser.add_argument("--float", nargs="*", default=[], metavar="PATTERN", dest="keep_float",
                        help="modules kept in float, e.g. encoder.subsampling")


def scale_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``BinaryQuantizationConfig`` fields of the options :func:`add_scale_arguments` added."""
    return {"centred": args.centred, "group_size": args.group_size, "scale_dtype": args.scale_dtype}


def binarization_config(args: argparse.Namespace, **fields: Any) -> BinaryQuantizationConfig:
    """The ``BinaryQuantizationConfig`` of the options :func:`add_binarization_arguments` added, plus ``fields``
    (such as ``mode="qat"``) as they are. Raises ``ValueError`` naming a bad value."""
    return BinaryQuantizationConfig(
        **scale_options(args), module_overrides={pattern: "int8" for pattern in args.int8},
        modules_to_not_convert=args.keep_float or None, **fields)


# --------------------------------------------------------------------------------------------- scoring


def add_scoring_arguments(parser: argparse.ArgumentParser, *, split: str) -> None:
    """The dataset split a command scores a model on, and how (``hf-binarize evaluate``, ``sensitivity``); ``split``
    is the default split."""
    parser.add_argument("--dataset", "--data", required=True, dest="dataset",
                        help="speech dataset: save_to_disk or audiofolder folder, parquet, or a Hub id")
    add_dataset_config_argument(parser)
    parser.add_argument("--split", default=split, help=f"split to score: {SPLIT_HELP} (default %(default)s)")
    parser.add_argument("--audio-column", default="audio", help="audio column (default %(default)s)")
    parser.add_argument("--text-column", default="text", help="transcript column (default %(default)s)")
    parser.add_argument("--limit", type=positive_int, help="score only the first N utterances")
    parser.add_argument("--streaming", action="store_true",
                        help="stream the split instead of downloading the dataset whole: with --limit its first N "
                             "utterances are read into memory, without, the split is scored as it arrives; only "
                             "counted slices (test[:500]) work")
    parser.add_argument("--batch-size", type=positive_int, default=16,
                        help="utterances per generate call (default %(default)s)")
    parser.add_argument("--threads", type=positive_int,
                        help="torch CPU threads while decoding (default: torch's default, the cores it sees)")
    parser.add_argument("--max-duration", type=seconds_or_none, default=MAX_DURATION, metavar="SECONDS",
                        help=f"skip utterances longer than this, counting them; 'none' scores all (default "
                             f"{MAX_DURATION:g})")


# ------------------------------------------------------------------------------------------ data and schedule


def add_dataset_config_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--dataset-config`` (or ``--name``): the config of a dataset with several (``load_dataset``'s ``name``),
    read back as ``args.dataset_config``."""
    parser.add_argument("--dataset-config", "--name", dest="dataset_config", metavar="NAME",
                        help="the dataset's config, as load_dataset's name (LibriSpeech 'clean', Common Voice 'en')")


# How a split may be named, for the help of the options that take one.
SPLIT_HELP = "any split name with an optional slice, as datasets writes them: train.100, test.clean, train[:1%%]"


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The dataset a training recipe reads, its config, splits and columns."""
    group = parser.add_argument_group("data")
    group.add_argument("--data", default="corpus",
                       help="speech dataset: a save_to_disk folder such as the synthetic corpus "
                            "(hf-binarize make-dataset), an audiofolder, parquet, a local copy of a Hub repository, "
                            "or a Hub id (default %(default)s)")
    add_dataset_config_argument(group)
    group.add_argument("--train-split", default="train",
                       help=f"training split: {SPLIT_HELP} (default %(default)s)")
    group.add_argument("--eval-split", default="validation",
                       help=f"split for evaluation loss and WER, {SPLIT_HELP}; '' for none (default %(default)s)")
    group.add_argument("--text-column", default="text", help="transcript column (default %(default)s)")
    group.add_argument("--audio-column", default="audio", help="audio column (default %(default)s)")
    group.add_argument("--streaming", action="store_true",
                       help="stream the dataset (datasets' streaming=True) instead of downloading and preparing it "
                            "whole, for training splits larger than the disk: the evaluation split's first "
                            "--eval-limit utterances are read into memory, training batches are shuffled through a "
                            "buffer instead of grouped by length, and only counted slices (train[:1000]) work")
    group.add_argument("--train-limit", type=int, help="use only the first N training utterances")
    group.add_argument("--eval-limit", type=int, default=200,
                       help="evaluate on the first N utterances of the eval split (default %(default)s)")
    group.add_argument("--max-unknown-words", type=share, default=0.01, metavar="SHARE",
                       help="refuse to train when a larger share of the training transcripts' words hold a character "
                            "the model's vocabulary lacks (an <unk> label) (default %(default)s, i.e. 1%%)")


def add_schedule_arguments(parser: argparse.ArgumentParser, *, output_dir: str, max_steps: int, lr: float,
                           lr_warmup_steps: int, eval_steps: int, ctc_weight: float | None) -> None:
    """Where a training run writes, how long and how fast it trains, how often it evaluates and checkpoints; the
    keywords are the recipe's defaults (``ctc_weight=None``: the trainer's, which depends on the model's family)."""
    group = parser.add_argument_group("training")
    group.add_argument("--output-dir", default=output_dir,
                       help="where the final model and its processor go, ready to publish: no training state "
                            "(default %(default)s)")
    group.add_argument("--checkpoint-dir",
                       help="where the Trainer checkpoints go, as checkpoint-STEP folders (default: OUTPUT_DIR "
                            "followed by -checkpoints, a sibling, so that OUTPUT_DIR holds only what ships)")
    group.add_argument("--resume", action="store_true",
                       help="continue from the newest complete checkpoint, at its step and in its data order")
    group.add_argument("--overwrite", action="store_true", help="delete earlier checkpoints first")
    group.add_argument("--max-steps", type=int, default=max_steps, help="optimizer steps (default %(default)s)")
    group.add_argument("--batch-size", type=int, default=16, help="utterances per batch and device (default 16)")
    group.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step (default 1)")
    group.add_argument("--lr", type=float, default=lr, help="peak learning rate, AdamW (default %(default)s)")
    group.add_argument("--lr-warmup-steps", type=int, default=lr_warmup_steps,
                       help="linear learning-rate warm-up (default %(default)s)")
    group.add_argument("--lr-scheduler", default="cosine",
                       help="transformers scheduler type after the warm-up (default %(default)s)")
    group.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    group.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (default 1.0)")
    group.add_argument("--seed", type=int, default=0, help="seed of initialisation, dropout and data order")
    group.add_argument("--eval-steps", type=int, default=eval_steps,
                       help="evaluate (loss, WER) every N steps (default %(default)s)")
    group.add_argument("--save-steps", type=int, help="checkpoint every N steps (default: --eval-steps)")
    group.add_argument("--save-total-limit", type=int, default=2, help="checkpoints kept (default 2)")
    group.add_argument("--logging-steps", type=int, default=25, help="log losses every N steps (default 25)")
    group.add_argument("--sample-steps", type=int, default=100,
                       help="decode training utterances every N steps; 0 never (default 100)")
    group.add_argument("--num-samples", type=int, default=4,
                       help="training utterances decoded each time (default 4)")
    group.add_argument("--workers", type=int, default=0, help="data loader worker processes (default 0)")
    group.add_argument("--ctc-weight", type=float, default=ctc_weight,
                       help="weight of the auxiliary CTC loss on a transducer's encoder (a CTC model has none); 0 off "
                            + ("(default 0.3, 0 for a CTC model)" if ctc_weight is None else "(default %(default)s)"))
    spec = parser.add_argument_group("SpecAugment", "masks on the features of training batches only (see "
                                     "hf_binarize.data.augment); --freq-masks 0 --time-masks 0 turns it off")
    defaults = SpecAugment()
    spec.add_argument("--freq-masks", type=int, default=defaults.freq_masks,
                      help="frequency masks per utterance (default %(default)s)")
    spec.add_argument("--freq-width", type=int, default=defaults.freq_width,
                      help="widest frequency mask, mel bins (default %(default)s)")
    spec.add_argument("--time-masks", type=int, default=defaults.time_masks,
                      help="time masks per utterance (default %(default)s)")
    spec.add_argument("--time-width", type=float, default=defaults.time_width,
                      help="widest time mask, fraction of the utterance (default %(default)s)")


def spec_augment(args: argparse.Namespace) -> SpecAugment | None:
    """The SpecAugment the options of :func:`add_schedule_arguments` ask for; ``None`` when off."""
    masks = SpecAugment(args.freq_masks, args.freq_width, args.time_masks, args.time_width)
    return masks if masks.enabled else None


# ------------------------------------------------------------------------------------------------ value types


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def non_negative_seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or a positive number of seconds, got {text}")
    return value


def share(text: str) -> float:
    """A fraction from 0 to 1."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a share from 0 to 1 (0.01 is 1%), got {text}")
    return value


def seconds_or_none(text: str) -> float | None:
    """A positive number of seconds, or ``none`` (no limit)."""
    if text.lower() == "none":
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds or 'none', got {text}")
    return value


def weight_shape(text: str) -> tuple[int, int]:
    """``NxK`` (output x input features) as ``(N, K)``."""
    out_features, sep, in_features = text.lower().partition("x")
    if not (sep and out_features.isdigit() and in_features.isdigit() and int(out_features) > 0 and int(in_features) > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a weight shape: write it as NxK, e.g. 4096x1024")
    return int(out_features), int(in_features)


def variant_folder(text: str) -> tuple[str, Path]:
    """``VARIANT=FOLDER``: a variant of the evaluation results and its model folder."""
    variant, equals, folder = text.partition("=")
    if not equals or not variant or not folder:
        raise argparse.ArgumentTypeError(f"must be VARIANT=FOLDER, e.g. binary-int8=runs/qat, got {text!r}")
    return variant, Path(folder)
