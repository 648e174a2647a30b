"""Loading and preparing one split of a speech dataset with a model's processor, for training and evaluation."""

from __future__ import annotations

import os
from typing import Any

from .loading import load_speech_dataset
from .preparation import SpeechPreparer
from .text import normalize_transcript
from .vocabulary import vocabulary_characters


def load_split(source: str | os.PathLike, split: str, *, text_column: str = "text", audio_column: str = "audio",
               limit: int | None = None, name: str | None = None, streaming: bool = False) -> Any:
    """The raw split (audio left undecoded) of config ``name``, cut to its first ``limit`` examples when given.

    With ``streaming`` the split is read as a stream (:func:`~hf_binarize.data.loading.load_speech_dataset`): with
    a ``limit``, its first ``limit`` examples are read into memory and returned as a ``datasets.Dataset`` (an
    evaluation split, say, which is read again and again); without one, as the ``datasets.IterableDataset``.
    """
    raw = load_speech_dataset(source, split=split, text_column=text_column, audio_column=audio_column, name=name,
                              streaming=streaming)
    if streaming:
        return raw if limit is None else _read_into_memory(raw, limit)
    if limit is not None and limit < len(raw):
        raw = raw.select(range(limit))
    return raw


def _read_into_memory(stream: Any, count: int) -> Any:
    """The first ``count`` examples of a stream as an in-memory ``datasets.Dataset``."""
    import datasets

    return datasets.Dataset.from_list(list(stream.take(count)), features=stream.features)


def is_stream(dataset: Any) -> bool:
    """Whether ``dataset`` is a stream (a ``datasets.IterableDataset``) rather than a ``datasets.Dataset``."""
    import datasets

    return isinstance(dataset, datasets.IterableDataset)


def first_examples(dataset: Any, count: int) -> Any:
    """The first ``count`` examples of a ``datasets.Dataset`` (a Dataset) or of a stream (read into memory)."""
    if is_stream(dataset):
        return _read_into_memory(dataset, count)
    return dataset.select(range(min(count, len(dataset))))


def normalised_texts(raw: Any, text_column: str = "text") -> list[str]:
    """The transcripts of a raw split normalised as the labels of hf-binarize's own tokenizers are (what such a
    tokenizer is built from): :func:`hf_binarize.data.text.normalize_transcript`. Of a stream, the first
    :data:`STREAM_TEXTS` (their text column alone is read)."""
    if is_stream(raw):
        rows = raw.select_columns([text_column]).take(STREAM_TEXTS)
        return [normalize_transcript(row[text_column]) for row in rows]
    return [normalize_transcript(text) for text in raw[text_column]]


# How many transcripts of a streamed split a tokenizer is built from.
STREAM_TEXTS = 20000


def prepare_split(source: str | os.PathLike | Any, split: str, processor: Any, *, text_column: str = "text",
                  audio_column: str = "audio", limit: int | None = None, name: str | None = None,
                  max_unknown_share: float | None = None, streaming: bool = False) -> Any:
    """Loads (unless ``source`` is already a raw ``datasets.Dataset``) split ``split`` of config ``name`` and
    prepares it: features, labels in the form the tokenizer's vocabulary calls for, ``length`` and the transcript
    ``text`` per example, unfit examples skipped and counted in the log, as are label words the vocabulary cannot
    write.

    With ``max_unknown_share``, raises ``ValueError`` naming examples when a larger share of the label words hold
    an ``<unk>`` label: training on them would teach the model to write ``<unk>``.

    ``datasets`` caches the result (for a local source, in cache files beside its own), so that preparing the same
    split with an equal processor again, in a resumed run or an evaluation, reads it back instead.

    ``streaming`` without a ``limit`` (see :func:`load_split`) returns a ``datasets.IterableDataset`` prepared as it
    is read, for a training split too large for the disk; ``max_unknown_share`` is then checked on its first
    :data:`UNKNOWN_CHECK_EXAMPLES` examples, and the skips are counted as the examples stream past.
    """
    raw = source if hasattr(source, "column_names") else load_split(
        source, split, text_column=text_column, audio_column=audio_column, limit=limit, name=name,
        streaming=streaming)
    preparer = SpeechPreparer.from_processor(processor, text_column=text_column, audio_column=audio_column)
    if is_stream(raw):
        if max_unknown_share is not None:
            head = _read_into_memory(raw, UNKNOWN_CHECK_EXAMPLES)
            checker = SpeechPreparer.from_processor(processor, text_column=text_column, audio_column=audio_column)
            checker.prepare(head, desc=f"checking the first {len(head)} examples of {split}")
            _check_unknown(checker, processor, f"{split} (its first {len(head)} examples)", max_unknown_share)
        return preparer.prepare(raw)
    prepared = preparer.prepare(raw, desc=f"preparing {split}")
    _check_unknown(preparer, processor, split, max_unknown_share)
    return prepared


# How many examples of a streamed training split the <unk> check reads before training.
UNKNOWN_CHECK_EXAMPLES = 500


def _check_unknown(preparer: SpeechPreparer, processor: Any, split: str, max_unknown_share: float | None) -> None:
    unknown = preparer.unknown
    if max_unknown_share is not None and unknown.share > max_unknown_share:
        raise ValueError(f"{split}: {unknown.describe(vocabulary_characters(processor.tokenizer))}, more than the "
                         f"{100 * max_unknown_share:g}% allowed (--max-unknown-words): use a model whose vocabulary "
                         "has these characters, or fix the transcripts, or raise the limit")
