"""Loading and preparing one split of a speech dataset with a model's processor, for training and evaluation."""

from __future__ import annotations

import os
from typing import Any

from .loading import load_speech_dataset
from .preparation import SpeechPreparer
from .text import normalize_transcript


def load_split(source: str | os.PathLike, split: str, *, text_column: str = "text", audio_column: str = "audio",
               limit: int | None = None, name: str | None = None) -> Any:
    """The raw split (audio left undecoded) of config ``name``, cut to its first ``limit`` examples when given."""
    raw = load_speech_dataset(source, split=split, text_column=text_column, audio_column=audio_column, name=name)
    if limit is not None and limit < len(raw):
        raw = raw.select(range(limit))
    return raw


def normalised_texts(raw: Any, text_column: str = "text") -> list[str]:
    """The transcripts of a raw split as training labels see them (what a tokenizer is built from)."""
    return [normalize_transcript(text) for text in raw[text_column]]


def prepare_split(source: str | os.PathLike | Any, split: str, processor: Any, *, text_column: str = "text",
                  audio_column: str = "audio", limit: int | None = None, name: str | None = None) -> Any:
    """Loads (unless ``source`` is already a raw ``datasets.Dataset``) split ``split`` of config ``name`` and
    prepares it: features, labels, ``length`` and normalised ``text`` per example, unfit examples skipped and counted
    in the log.

    ``datasets`` caches the result (for a local source, in cache files beside its own), so that preparing the same
    split with an equal processor again, in a resumed run or an evaluation, reads it back instead.
    """
    raw = source if hasattr(source, "column_names") else load_split(
        source, split, text_column=text_column, audio_column=audio_column, limit=limit, name=name)
    preparer = SpeechPreparer.from_processor(processor, text_column=text_column, audio_column=audio_column)
    return preparer.prepare(raw, desc=f"preparing {split}")
