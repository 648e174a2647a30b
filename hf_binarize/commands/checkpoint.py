"""The checkpoint a command reads, checked before any slow work: one ``AutoModelForRNNT`` loads, with its
processor."""

from __future__ import annotations

import os
from pathlib import Path

from transformers import AutoConfig, PretrainedConfig

from ..evaluation.families import family_of, supported_model_types
from .console import CommandError

# What save_pretrained writes for a processor (transformers 5) or, in older checkpoints, for its feature extractor.
_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def transducer_config(model: str | os.PathLike) -> PretrainedConfig:
    """The config of the checkpoint ``model`` (a folder or a Hub id), checked to be a Parakeet RNN-T, TDT or CTC
    model (:mod:`hf_binarize.evaluation.families`), with a processor beside it when it is a folder. Raises :class:`CommandError` naming the problem and the
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
    if family_of(config) is None:
        raise CommandError(f"{model} holds a {config.model_type!r} model, not a speech model: hf-binarize reads "
                           f"{', '.join(supported_model_types())} checkpoints")
    if path.is_dir() and not any((path / name).is_file() for name in _PROCESSOR_FILES):
        raise CommandError(f"{model} has no processor ({' or '.join(_PROCESSOR_FILES)}): save it beside the model "
                           "with processor.save_pretrained")
    return config
