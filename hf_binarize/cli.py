"""``hf-binarize``, the command line (also ``python -m hf_binarize``)::

    hf-binarize quantize --model runs/float --output-dir runs/binary-ptq --int8 joint decoder.embedding
    hf-binarize evaluate --model runs/qat --dataset corpus --split test --json results/qat-test.json
    hf-binarize card --results results/*.json --out-dir model_cards
    hf-binarize push --folder runs/qat --repo-id me/parakeet-rnnt-binary
    hf-binarize bench kernels --quick
    hf-binarize make-dataset --out corpus --hours 2

``hf-binarize COMMAND --help`` lists a command's options. A problem with what was passed (a missing folder or
column, a model of the wrong kind, an unreachable Hub) ends the command with one line, ``hf-binarize COMMAND:
error: ...``, and exit status 1; anything else is a bug and raises with its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModelForRNNT, AutoProcessor, PretrainedConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_RNNT_MAPPING_NAMES

from . import bench, cards
from .atomic import replaced_folder
from .config import BinaryQuantizationConfig
from .data import synthetic
from .size import size_report

PROG = "hf-binarize"
# What save_pretrained writes for a processor (transformers 5) or, in older checkpoints, for its feature extractor.
_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


class CommandError(Exception):
    """A problem with what the user passed, stated with its fix; :func:`main` prints it as one line."""


# Errors in what was passed, from this module and from the libraries it calls: a missing file or folder, a
# connection or permission problem (OSError), a value the library rejects (ValueError: a bad module pattern, a
# missing dataset column or split).
_USER_ERRORS = (CommandError, OSError, ValueError)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``hf-binarize`` with ``argv`` (default ``sys.argv[1:]``) and returns the exit status: 0, or 1 after
    printing one error line for a problem with what was passed. ``--help`` and usage errors exit through argparse
    (``SystemExit`` 0 and 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except _USER_ERRORS as error:
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"{PROG} {args.command}: error: {message or type(error).__name__}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``hf-binarize`` parser; every command sets ``args.run``, called with the parsed ``args``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="1-bit weights for speech recognition models: binarize, evaluate, publish.",
        epilog="hf-binarize COMMAND --help lists a command's options.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_quantize(commands)
    _add_evaluate(commands)
    cards.add_arguments(commands.add_parser(
        "card", help="model cards, a size-vs-WER plot and a summary table from evaluate --json files",
        description=cards.__doc__.split("\n\n")[0]))
    _add_push(commands)
    bench.add_arguments(commands.add_parser("bench", help="benchmarks of the packed kernels",
                                            description=bench.__doc__))
    make_dataset = commands.add_parser("make-dataset", help="build the synthetic speech corpus (espeak-ng and flite voices, augmented)")
    synthetic.add_arguments(make_dataset)
    make_dataset.set_defaults(run=_make_dataset)
    return parser


# --------------------------------------------------------------------------------------------- binarization


def add_binarization_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The options that say how a float model is binarized (``hf-binarize quantize``, ``recipes/qat.py``); read
    them back with :func:`binarization_config`."""
    parser.add_argument("--centred", action="store_true", help="binarize W - mean, keeping the mean as an offset")
    parser.add_argument("--group-size", type=int,
                        help="inputs per scale, a multiple of 8 (default: one scale per output channel)")
    parser.add_argument("--scale-dtype", default="float16", choices=["float16", "bfloat16", "float32"],
                        help="dtype of the stored scales and offsets (default %(default)s)")
    parser.add_argument("--int8", nargs="*", default=[], metavar="PATTERN",
                        help="modules kept at int8 instead of 1 bit, e.g. joint decoder.embedding")
    parser.add_argument("--float", nargs="*", default=[], metavar="PATTERN", dest="keep_float",
                        help="modules kept in float, e.g. encoder.subsampling")


def binarization_config(args: argparse.Namespace, **fields: Any) -> BinaryQuantizationConfig:
    """The ``BinaryQuantizationConfig`` of the options :func:`add_binarization_arguments` added, plus ``fields``
    (such as ``mode="qat"``) as they are. Raises ``ValueError`` naming a bad value."""
    return BinaryQuantizationConfig(
        centred=args.centred, group_size=args.group_size, scale_dtype=args.scale_dtype,
        module_overrides={pattern: "int8" for pattern in args.int8},
        modules_to_not_convert=args.keep_float or None, **fields)


# ------------------------------------------------------------------------------------------------- quantize

_QUANTIZE_DESCRIPTION = """\
Binarizes a float transducer checkpoint (ParakeetForRNNT or any model AutoModelForRNNT loads) WITHOUT TRAINING:
every Linear, 1x1 Conv1d and LSTM weight becomes its sign times a scale (post-training binarization), except the
modules --int8 and --float name. Saves the packed model and the processor to OUTPUT_DIR (written beside it, then
renamed into place) and prints the size report.

Binarizing without training destroys accuracy (99% WER measured on a small RNN-T): use it to see sizes and
speeds, and recipes/qat.py (quantization-aware training, which saves a packed model itself) to get a usable one."""


def _add_quantize(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("quantize", help="binarize a float checkpoint without training, save it packed",
                                 description=_QUANTIZE_DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="float checkpoint: a save_pretrained folder with its processor, or a Hub id")
    parser.add_argument("--output-dir", required=True, help="where the packed model and its processor go")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUTPUT_DIR")
    add_binarization_arguments(parser.add_argument_group("binarization"))
    parser.set_defaults(run=_quantize)


def _quantize(args: argparse.Namespace) -> None:
    output = Path(args.output_dir)
    _check_output_dir(output, args.model, overwrite=args.overwrite)
    config = transducer_config(args.model)
    if getattr(config, "quantization_config", None) is not None:
        raise CommandError(f"{args.model} has a quantization config already: quantize its float original instead")
    quantization = binarization_config(args)
    processor = AutoProcessor.from_pretrained(args.model)
    model = AutoModelForRNNT.from_pretrained(args.model, quantization_config=quantization)
    with replaced_folder(output) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
    report = size_report(model, output)
    print(report)
    if any(row["precision"] == "binary" for row in report.groups):
        print(f"note: {output} was binarized without training, which destroys accuracy; recipes/qat.py trains a "
              "model for binarization", file=sys.stderr)


def _check_output_dir(output: Path, model: str, *, overwrite: bool) -> None:
    """Refuses, before any slow work, an output that would lose data or cannot be written."""
    if output.exists() and not output.is_dir():
        raise CommandError(f"--output-dir {output} is a file: choose a folder")
    if Path(model).expanduser().is_dir() and output.resolve() == Path(model).expanduser().resolve():
        raise CommandError(f"--output-dir {output} is the --model folder: write the packed model elsewhere")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise CommandError(f"--output-dir {output} exists and is not empty: pass --overwrite to replace it")


# ------------------------------------------------------------------------------------------------- evaluate

_EVALUATE_DESCRIPTION = """\
Greedy WER and CER of a transducer checkpoint (float, QAT or packed) on one split of a speech dataset, scored by
the code that scores models during training; its size (weights in memory by precision, folder on disk); and its
decode speed: the real-time factor, wall seconds of the whole transcription divided by seconds of audio (the
prepared audio: feature frames times the feature extractor's hop, i.e. each utterance rounded down to a whole hop,
10 ms for Parakeet). Utterances that cannot be used (unreadable or silent audio, empty transcript) are skipped
and counted in the log; with none left, the command fails."""


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="WER, CER, size and real-time factor of a model on a dataset",
                                 description=_EVALUATE_DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint folder with its processor, or a Hub id")
    parser.add_argument("--dataset", "--data", required=True, dest="dataset",
                        help="speech dataset: save_to_disk or audiofolder folder, parquet, or a Hub id")
    parser.add_argument("--split", default="test", help="split to score (default %(default)s)")
    parser.add_argument("--audio-column", default="audio", help="audio column (default %(default)s)")
    parser.add_argument("--text-column", default="text", help="transcript column (default %(default)s)")
    parser.add_argument("--limit", type=_positive_int, help="score only the first N utterances")
    parser.add_argument("--batch-size", type=_positive_int, default=16,
                        help="utterances per generate call (default %(default)s)")
    parser.add_argument("--threads", type=_positive_int,
                        help="torch CPU threads while decoding (default: torch's default, the cores it sees)")
    parser.add_argument("--variant", help="the model's name in the results (default: the model folder's name)")
    parser.add_argument("--samples", type=_non_negative_int, default=3,
                        help="reference/hypothesis pairs to print (default %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    parser.set_defaults(run=_evaluate)


def _evaluate(args: argparse.Namespace) -> None:
    # Imported here: the training package (datasets, the Trainer) is slow to import and only evaluate needs it.
    from .training.cli import setup_logging
    from .training.evaluate import evaluate_model

    setup_logging()
    transducer_config(args.model)
    result = evaluate_model(args.model, args.dataset, split=args.split, audio_column=args.audio_column,
                            text_column=args.text_column, limit=args.limit, batch_size=args.batch_size,
                            threads=args.threads, variant=args.variant, progress=True)
    print(result)
    if args.samples > 0:
        print(result.transcripts.samples(args.samples))
    if args.json:
        result.write_json(args.json)
        print(f"results written to {args.json}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


# ------------------------------------------------------------------------------------------------ the model


def transducer_config(model: str | os.PathLike) -> PretrainedConfig:
    """The config of the checkpoint ``model`` (a folder or a Hub id), checked to be one ``AutoModelForRNNT``
    loads, with a processor beside it when it is a folder. Raises :class:`CommandError` naming the problem and the
    fix."""
    path = Path(model).expanduser()
    fix = "pass the folder save_pretrained wrote, holding the model and its processor"
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CommandError(f"{model} has no config.json: {fix}")
    elif path.exists():
        raise CommandError(f"{model} is a file: {fix}")
    elif path.is_absolute() or str(model).startswith((".", "~")) or str(model).count("/") > 1:
        # Not a possible Hub id: say so instead of asking the Hub for it.
        raise CommandError(f"{model}: no such folder")
    try:
        config = AutoConfig.from_pretrained(model)
    except OSError as error:
        if path.is_dir():
            raise
        raise CommandError(f"{model} is not a local folder, and as a Hub id: {error}") from None
    if config.model_type not in MODEL_FOR_RNNT_MAPPING_NAMES:
        raise CommandError(f"{model} holds a {config.model_type!r} model, not an RNN-T transducer: hf-binarize reads "
                           f"checkpoints AutoModelForRNNT loads ({', '.join(MODEL_FOR_RNNT_MAPPING_NAMES)})")
    if path.is_dir() and not any((path / name).is_file() for name in _PROCESSOR_FILES):
        raise CommandError(f"{model} has no processor ({' or '.join(_PROCESSOR_FILES)}): save it beside the model "
                           "with processor.save_pretrained")
    return config


# ----------------------------------------------------------------------------------------------------- push


def _add_push(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "push", help="upload a model folder (with its README.md model card) to the Hugging Face Hub",
        description="Uploads FOLDER, as it is, to the Hub model repository REPO_ID, creating the repository if it "
                    "does not exist. The token comes from --token, else HF_TOKEN, else `hf auth login`. The "
                    "folder is only read.")
    parser.add_argument("--folder", required=True, help="the folder to upload (quantize's OUTPUT_DIR, say)")
    parser.add_argument("--repo-id", required=True, help="OWNER/NAME of the model repository")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the stored login); prefer "
                                        "HF_TOKEN, as a command line is visible to other users")
    parser.set_defaults(run=_push)


def _push(args: argparse.Namespace) -> None:
    from huggingface_hub import HfApi, get_token

    folder = Path(args.folder)
    if not folder.is_dir():
        raise CommandError(f"{folder} is not a folder: pass the folder to upload")
    token = args.token or get_token()
    if not token:
        raise CommandError("no Hugging Face token: set HF_TOKEN, run `hf auth login` or pass --token")
    if not (folder / "README.md").is_file():
        print(f"note: {folder} has no README.md model card (hf-binarize card writes one)", file=sys.stderr)
    api = HfApi(token=token)
    try:
        api.create_repo(args.repo_id, private=args.private, exist_ok=True)
        commit = api.upload_folder(repo_id=args.repo_id, folder_path=folder, create_pr=args.create_pr,
                                   commit_message="Upload with hf-binarize")
    except _network_errors() as error:
        raise CommandError(f"cannot reach the Hugging Face Hub ({api.endpoint}: {error}): the folder {folder} is "
                           "unchanged") from None
    print(commit.pr_url if args.create_pr else commit.commit_url)


def _network_errors() -> tuple[type[BaseException], ...]:
    """What huggingface_hub raises when the Hub cannot be reached: offline mode raises ``ConnectionError``; a
    failed connection or a timeout raises the transport error of its HTTP client, httpx (huggingface_hub 1.x) or
    httpx2 (later releases)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for client in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError):
            errors.append(importlib.import_module(client).TransportError)
    return tuple(errors)


# --------------------------------------------------------------------------------------------- make-dataset


def _make_dataset(args: argparse.Namespace) -> None:
    try:
        synthetic.check_espeak()
    except RuntimeError as error:
        raise CommandError(str(error)) from None
    synthetic.run(args)
