"""Loading and preparing one split of a speech dataset with a model's processor, for training and evaluation."""

from __future__ import annotations

import os
from typing import Any

from .loading import load_speech_dataset
from .preparation import SpeechPreparer
from .text import normalize_transcript
from .vocabulary import vocabulary_characters


def load_split(source: str | os.PathLike, split: str, *, text_column: str = "text", audio_column: str = "audio",
               limit: int | None = None, name: str | None = None) -> Any:
    """The raw split (audio left undecoded) of config ``name``, cut to its first ``limit`` examples when given."""
    raw = load_speech_dataset(source, split=split, text_column=text_column, audio_column=audio_column, name=name)
    if limit is not None and limit < len(raw):
        raw = raw.select(range(limit))
    return raw


def normalised_texts(raw: Any, text_column: str = "text") -> list[str]:
    """The transcripts of a raw split normalised as the labels of hf-binarize's own tokenizers are (what such a
    tokenizer is built from): :func:`hf_binarize.data.text.normalize_transcript`."""
    return [normalize_transcript(text) for text in raw[text_column]]


def prepare_split(source: str | os.PathLike | Any, split: str, processor: Any, *, text_column: str = "text",
                  audio_column: str = "audio", limit: int | None = None, name: str | None = None,
                  max_unknown_share: float | None = None) -> Any:
    """Loads (unless ``source`` is already a raw ``datasets.Dataset``) split ``split`` of config ``name`` and
    prepares it: features, labels in the form the tokenizer's vocabulary calls for, ``length`` and the transcript
    ``text`` per example, unfit examples skipped and counted in the log, as are label words the vocabulary cannot
    write.

    With ``max_unknown_share``, raises ``ValueError`` naming examples when a larger share of the label words hold
    an ``<unk>`` label: training on them would teach the model to write ``<unk>``.

    ``datasets`` caches the result (for a local source, in cache files beside its own), so that preparing the same
    split with an equal processor again, in a resumed run or an evaluation, reads it back instead.
    """
    raw = source if hasattr(source, "column_names") else load_split(
        source, split, text_column=text_column, audio_column=audio_column, limit=limit, name=name)
    preparer = SpeechPreparer.from_processor(processor, text_column=text_column, audio_column=audio_column)
    prepared = preparer.prepare(raw, desc=f"preparing {split}")
    unknown = preparer.unknown
    if max_unknown_share is not None and unknown.share > max_unknown_share:
        raise ValueError(f"{split}: {unknown.describe(vocabulary_characters(processor.tokenizer))}, more than the "
                         f"{100 * max_unknown_share:g}% allowed (--max-unknown-words): use a model whose vocabulary "
                         "has these characters, or fix the transcripts, or raise the limit")
    return prepared
