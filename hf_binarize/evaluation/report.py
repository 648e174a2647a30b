"""Scoring a transducer checkpoint on a speech dataset split: greedy WER and CER, size, and decode speed, and the
JSON record of the score (``hf-binarize evaluate --json``), whose schema :mod:`hf_binarize.cards` checks.

Float, QAT and packed checkpoints alike (importing ``hf_binarize`` registers its quantizer with transformers, so a
packed checkpoint loads packed), scored by :func:`hf_binarize.evaluation.transcription.transcribe`, the code
that scores models during training.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoConfig, AutoProcessor

from .. import __version__
from ..atomic import write_atomically
from ..data.preparation import BadExampleError, SpeechPreparer
from ..data.splits import is_stream, load_split
from ..data.synthetic import is_synthetic_corpus
from ..data.text import scoring_normalizer
from ..data.vocabulary import UnknownLabels
from ..size import SizeReport, size_report
from .families import auto_class, family_of
from .transcription import Transcripts, transcribe, transcribe_stream

# Utterances longer than this many seconds are left out of a score unless told otherwise (--max-duration): the
# limit the training preparer applies, and the one every score had before the option existed.
MAX_DURATION = 30.0

# The JSON record of one score (:meth:`Evaluation.to_dict`), as readers check it: every key is required, extra keys
# are allowed (newer writers may add some). A type is the JSON type of the value; a dict, a nested object. Keys
# added since (dataset_config, dataset_split, max_duration, skipped, normalizer, unknown_labels, synthetic_corpus,
# family) are optional: records written before them still load.
RECORD_SCHEMA: dict[str, Any] = {
    "variant": str, "model": str, "dataset": str, "split": str, "utterances": int,
    "wer": float, "cer": float, "word_errors": int, "words": int,
    "size": {"params": int, "weight_bytes": int, "folder_bytes": int, "bits_per_param": float,
             "compression_vs_fp32": float, "precision": {"binary": int, "int8": int, "float": int}},
    "speed": {"audio_seconds": float, "decode_seconds": float, "rtf": float, "threads": int},
    "command": str, "hf_binarize_version": str, "torch_version": str, "transformers_version": str,
}


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate_model` measured. ``str()`` is a table for people, :meth:`to_dict` the JSON record
    ``hf-binarize evaluate --json`` writes and :mod:`hf_binarize.cards` reads (:data:`RECORD_SCHEMA`)."""

    variant: str
    model: str
    dataset: str
    split: str
    transcripts: Transcripts
    size: SizeReport
    audio_seconds: float
    decode_seconds: float
    threads: int
    command: str
    max_duration: float | None = MAX_DURATION
    skipped: dict[str, int] = field(default_factory=dict)
    dataset_config: str | None = None
    unknown: UnknownLabels = field(default_factory=UnknownLabels)
    synthetic_corpus: bool = False
    family: str | None = None
    """The model's Parakeet family (:mod:`hf_binarize.evaluation.families`), ``None`` for any other model."""
    dataset_split: str | None = None
    """The split of ``dataset`` that was read, where the results name it otherwise (``split``); ``None``: ``split``."""

    @property
    def rtf(self) -> float:
        """Real-time factor: decoding wall seconds per second of audio (below 1: faster than real time)."""
        return self.decode_seconds / self.audio_seconds

    def precision_params(self) -> dict[str, int]:
        """Logical parameters stored per precision: ``binary``, ``int8`` and ``float``, and any other precision the
        size report names (a peer's ``int4``, say)."""
        params = {"binary": 0, "int8": 0, "float": 0}
        for row in self.size.groups:
            params[row["precision"]] = params.get(row["precision"], 0) + row["params"]
        return params

    def to_dict(self) -> dict[str, Any]:
        word, character = self.transcripts.wer, self.transcripts.cer
        size = self.size
        return {
            "variant": self.variant, "model": self.model, "family": self.family, "dataset": self.dataset,
            "dataset_config": self.dataset_config, "split": self.split,
            "dataset_split": self.dataset_split or self.split,
            "utterances": len(self.transcripts.references),
            "max_duration": self.max_duration, "skipped": dict(self.skipped),
            "synthetic_corpus": self.synthetic_corpus, "normalizer": self.transcripts.normalizer,
            "unknown_labels": self.unknown.to_dict(),
            "wer": float(word.rate), "cer": float(character.rate),
            "word_errors": word.errors, "words": word.reference_length,
            "size": {"params": size.total_params, "weight_bytes": size.total_bytes, "folder_bytes": size.folder_bytes,
                     "bits_per_param": float(size.bits_per_param), "compression_vs_fp32": float(size.compression),
                     "precision": self.precision_params()},
            "speed": {"audio_seconds": float(self.audio_seconds), "decode_seconds": float(self.decode_seconds),
                      "rtf": float(self.rtf), "threads": self.threads},
            "command": self.command,
            "hf_binarize_version": __version__, "torch_version": torch.__version__,
            "transformers_version": transformers.__version__,
        }

    def write_json(self, path: str | os.PathLike) -> None:
        """Writes :meth:`to_dict` as JSON to ``path``, atomically."""
        write_atomically(path, (json.dumps(self.to_dict(), indent=1) + "\n").encode("utf-8"))

    def __str__(self) -> str:
        word, size = self.transcripts.wer, self.size
        precision = ", ".join(f"{name} {params:,}" for name, params in self.precision_params().items() if params)
        return "\n".join([
            f"{self.variant}: {self.model} on {self.dataset} [{self.split}], "
            f"{len(self.transcripts.references):,} utterances",
            f"  WER    {100 * word.rate:.2f}% ({word.errors:,} errors in {word.reference_length:,} words), "
            f"CER {100 * self.transcripts.cer.rate:.2f}%, after the {self.transcripts.normalizer} normaliser",
            f"  size   {size.total_params:,} params ({precision}): {size.total_bytes:,} bytes of weights, "
            f"{size.bits_per_param:.2f} bits/param, {size.compression:.1f}x smaller than fp32; "
            f"{size.folder_bytes:,} bytes on disk",
            f"  speed  RTF {self.rtf:.4f}: {self.decode_seconds:.2f} s to decode {self.audio_seconds:.2f} s of audio "
            f"with {self.threads} thread{'s' if self.threads > 1 else ''}",
            *([f"  skipped {self.describe_skipped()}"] if self.skipped else []),
            *([f"  labels {self.unknown.describe()}"] if self.unknown.tokens else []),
        ])

    def describe_skipped(self) -> str:
        """The utterances left out of the score and why, e.g. ``2 utterances (too_long=2: longer than 30.0 s)``."""
        total = sum(self.skipped.values())
        reasons = ", ".join(
            f"{reason}={count}" + (f": longer than {self.max_duration} s" if reason == "too_long" else "")
            for reason, count in sorted(self.skipped.items()))
        return f"{total:,} utterance{'s' if total != 1 else ''} ({reasons})"


def evaluate_model(model: str | os.PathLike, dataset: str | os.PathLike, *, split: str = "test",
                   audio_column: str = "audio", text_column: str = "text", limit: int | None = None,
                   batch_size: int = 16, threads: int | None = None, variant: str | None = None,
                   max_duration: float | None = MAX_DURATION, progress: bool = False,
                   dataset_config: str | None = None, normalizer: str = "basic",
                   streaming: bool = False, split_name: str | None = None) -> Evaluation:
    """Scores the checkpoint ``model`` (a folder or a Hub id, with its processor) on ``split`` of ``dataset`` (what
    :func:`hf_binarize.data.loading.load_speech_dataset` reads; ``dataset_config`` names its config), cut to its
    first ``limit`` utterances.

    Greedy WER and CER by :func:`~hf_binarize.evaluation.transcription.transcribe` in batches of ``batch_size``; the
    size report of the loaded model and the size of its folder; the decode speed, timed around that whole
    ``transcribe`` call with ``threads`` torch threads (default: the current count, which is restored afterwards)
    against the seconds of prepared audio (feature frames times the feature extractor's hop: each utterance
    rounded down to a whole hop). ``variant`` names the model in the results (default: its folder's name);
    ``progress`` shows a progress bar. Utterances longer than ``max_duration`` seconds (``None``: no limit) and
    those that cannot be used are skipped, and counted in the result and the log; raises ``ValueError`` when none
    is left. References and hypotheses are compared after the scoring normaliser ``normalizer`` (``basic``,
    ``whisper`` or ``none``, see :mod:`hf_binarize.data.text`); the reference words the model's vocabulary cannot
    write (``<unk>`` labels) are counted. ``streaming`` streams the split (see
    :func:`~hf_binarize.data.splits.load_split`): without a ``limit`` it is scored window by window as it arrives.
    ``split_name`` names the split in the result (default ``split``, which the result keeps as ``dataset_split``).
    """
    threads = threads or torch.get_num_threads()
    variant = variant or os.path.basename(os.path.normpath(str(model)))
    command = ["evaluate", "--model", str(model), "--dataset", str(dataset),
               *(["--dataset-config", dataset_config] if dataset_config else []), "--split", split,
               "--audio-column", audio_column, "--text-column", text_column,
               *(["--limit", str(limit)] if limit is not None else []),
               "--batch-size", str(batch_size), "--threads", str(threads), "--variant", variant,
               "--max-duration", "none" if max_duration is None else str(max_duration), "--normalizer", normalizer,
               *(["--streaming"] if streaming else []), *(["--split-name", split_name] if split_name not in (None, split) else [])]
    scoring_normalizer(normalizer)
    processor = AutoProcessor.from_pretrained(model)
    network = auto_class(AutoConfig.from_pretrained(model)).from_pretrained(model)
    return score_model(network, processor, dataset, split=split, audio_column=audio_column,
                       text_column=text_column, limit=limit, batch_size=batch_size, threads=threads,
                       variant=variant, model_name=str(model), size=size_report(network, _model_folder(model)),
                       command="hf-binarize " + shlex.join(command), max_duration=max_duration, progress=progress,
                       dataset_config=dataset_config, normalizer=normalizer, streaming=streaming,
                       split_name=split_name)


def score_model(network: torch.nn.Module, processor: Any, dataset: str | os.PathLike, *, split: str,
                audio_column: str, text_column: str, limit: int | None, batch_size: int, threads: int,
                variant: str, model_name: str, size: SizeReport, command: str,
                max_duration: float | None = MAX_DURATION, progress: bool = False,
                dataset_config: str | None = None, normalizer: str = "basic", streaming: bool = False,
                split_name: str | None = None) -> Evaluation:
    """What :func:`evaluate_model` measures, for a model already in memory (a peer's quantized model, say, that
    has no folder ``from_pretrained`` could read): ``size`` and ``command`` are the caller's to state."""
    examples, preparer = prepare_examples(processor, dataset, split=split, audio_column=audio_column,
                                          text_column=text_column, limit=limit, max_duration=max_duration,
                                          dataset_config=dataset_config, streaming=streaming)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        start = time.perf_counter()
        if not is_stream(examples):
            transcripts = transcribe(network, processor.tokenizer, examples, batch_size=batch_size,
                                     progress=progress, normalizer=normalizer)
            frames = sum(examples["length"])
        else:
            # Decoding time includes reading and preparing the stream, which a prepared split has done before.
            transcripts, frames = transcribe_stream(network, processor.tokenizer, examples, batch_size=batch_size,
                                                    progress=progress, normalizer=normalizer)
            if not transcripts.references:
                raise ValueError(f"none of the utterances of {dataset} [{split}] can be used "
                                 f"({_skips(preparer)}): check the audio files and the transcripts")
        decode_seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous_threads)
    extractor = processor.feature_extractor
    audio_seconds = frames * extractor.hop_length / extractor.sampling_rate
    return Evaluation(variant=variant, model=model_name, dataset=str(dataset), split=split_name or split,
                      dataset_split=split, transcripts=transcripts,
                      size=size, audio_seconds=audio_seconds, decode_seconds=decode_seconds, threads=threads,
                      command=command, max_duration=max_duration, skipped=dict(preparer.skipped),
                      dataset_config=dataset_config, unknown=preparer.unknown,
                      synthetic_corpus=is_synthetic_corpus(dataset), family=family_of(network.config))


def prepare_examples(processor: Any, dataset: str | os.PathLike, *, split: str, audio_column: str = "audio",
                     text_column: str = "text", limit: int | None = None,
                     max_duration: float | None = MAX_DURATION, dataset_config: str | None = None,
                     streaming: bool = False) -> tuple[Any, SpeechPreparer]:
    """The scored utterances of ``split`` of ``dataset`` (its first ``limit``), prepared with ``processor``, and
    the preparer, which counts those skipped by reason (longer than ``max_duration`` seconds, unusable) and the
    labels the vocabulary lacks. Raises ``ValueError`` when the split has no utterance, or none that can be used.
    ``streaming`` without a ``limit`` returns the examples as a stream prepared as it is read (see
    :func:`~hf_binarize.data.splits.load_split`), whose counts grow as it is read."""
    columns = {"audio_column": audio_column, "text_column": text_column}
    raw = load_split(dataset, split, limit=limit, name=dataset_config, streaming=streaming, **columns)
    preparer = SpeechPreparer.from_processor(processor, max_seconds=max_duration, **columns)
    if is_stream(raw):
        return preparer.prepare(raw), preparer
    if len(raw) == 0:
        raise ValueError(f"{dataset} [{split}] has no utterances")
    examples = preparer.prepare(raw, desc=f"preparing {split}")
    if len(examples) == 0:
        raise ValueError(f"none of the {len(raw)} utterances of {dataset} [{split}] can be used, "
                         f"{_first_problem(raw, preparer)}: check the audio files and the transcripts")
    return examples, preparer


def _skips(preparer: SpeechPreparer) -> str:
    counts = ", ".join(f"{reason}={count}" for reason, count in sorted(preparer.skipped.items()))
    return f"skipped: {counts}" if counts else "the stream was empty"


def _first_problem(raw: Any, preparer: SpeechPreparer) -> str:
    """Why the first utterance was skipped, as an example (the log counts every reason)."""
    try:
        preparer.prepare_example(raw[0], 0)
    except BadExampleError as error:
        return f"e.g. {error}"
    return "see the log for why"


def _model_folder(model: str | os.PathLike) -> Path:
    """The folder the checkpoint was read from: ``model`` itself, or for a Hub id its snapshot in the Hub cache."""
    if Path(model).is_dir():
        return Path(model)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(model), local_files_only=True))

