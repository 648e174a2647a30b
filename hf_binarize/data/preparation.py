"""Preparing raw speech examples (audio cell + transcript) into model inputs, skipping the ones unfit for training."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .audio import AudioDecodeError, check_audio, load_audio, resample
from .vocabulary import UnknownLabels, count_unknown, label_normalizer, vocabulary_characters

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

# Per-row counts prepare() sums and drops: labels that are <unk>, the label words holding one, all label words,
# and why a row is skipped ("" when kept).
_COUNT_COLUMNS = ("unknown_labels", "unknown_words", "label_words", "skip_reason")

SkipReason = Literal["unreadable_audio", "empty_audio", "non_finite_audio", "too_short", "too_long",
                     "silent_audio", "no_tokens"]


class BadExampleError(ValueError):
    """Raised in strict mode for an example that would otherwise be skipped."""

    def __init__(self, index: int, reason: SkipReason, detail: str) -> None:
        super().__init__(f"example {index}: {reason} ({detail})")
        self.index = index
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple:
        # Keeps the error intact across the worker processes of Dataset.map(num_proc=...).
        return type(self), (self.index, self.reason, self.detail)


@dataclass
class SpeechPreparer:
    """Turns raw examples (audio cell + transcript) into model inputs, skipping the ones unfit for training.

    Per example: decode with soundfile, mix to mono, check (see :func:`hf_binarize.data.audio.check_audio`),
    resample to ``feature_extractor.sampling_rate``, normalise the transcript into the form the labels take with
    ``normalizer`` (default: the one the tokenizer's vocabulary calls for,
    :func:`hf_binarize.data.vocabulary.label_normalizer`), tokenize without special tokens, extract features. The
    output row has ``input_features`` (frames x features, padding frames trimmed), ``labels`` (token ids),
    ``length`` (frames, for length grouping), ``text`` (the transcript as the dataset has it: the reference that
    scoring normalises its own way) and the ``keep_columns``.

    Unfit examples are skipped and counted by :data:`SkipReason` into :attr:`skipped`, with one log line per
    :meth:`prepare`; with ``strict=True`` the first one raises :class:`BadExampleError`
    naming its index and reason. Label words the vocabulary cannot write (``<unk>`` labels) are counted into
    :attr:`unknown` and logged. Errors of the feature extractor or tokenizer are not caught: they are
    configuration errors that show on the first example, not mid-epoch.

    The feature extractor must return time-major features, ``(1, frames, features)`` plus an ``attention_mask``,
    as Parakeet's does.
    """

    feature_extractor: Any
    tokenizer: Any
    audio_column: str = "audio"
    text_column: str = "text"
    normalizer: Callable[[str], str] | None = None
    min_seconds: float = 0.1
    max_seconds: float | None = 30.0
    silence_dbfs: float = -60.0
    strict: bool = False
    keep_columns: Sequence[str] = ()
    skipped: Counter = field(default_factory=Counter)
    unknown: UnknownLabels = field(default_factory=UnknownLabels)

    def __post_init__(self) -> None:
        clashes = set(self.keep_columns) & {"input_features", "labels", "length", "text", *_COUNT_COLUMNS}
        if clashes:
            raise ValueError(f"keep_columns {sorted(clashes)} would overwrite prepared columns")
        if self.normalizer is None:
            self.normalizer = label_normalizer(self.tokenizer)

    @classmethod
    def from_processor(cls, processor: Any, **kwargs: Any) -> SpeechPreparer:
        """Builds a preparer from a processor holding ``feature_extractor`` and ``tokenizer`` (a ParakeetProcessor)."""
        return cls(processor.feature_extractor, processor.tokenizer, **kwargs)

    @property
    def sampling_rate(self) -> int:
        """The rate audio is resampled to: the feature extractor's."""
        return int(self.feature_extractor.sampling_rate)

    def prepare_example(self, example: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
        """Prepares one example; raises :class:`BadExampleError` for an unfit one (whatever ``strict`` says)."""
        try:
            samples, rate = load_audio(example[self.audio_column])
        except AudioDecodeError as error:
            raise BadExampleError(index, "unreadable_audio", str(error)) from error
        problem = check_audio(samples, rate, min_seconds=self.min_seconds, max_seconds=self.max_seconds,
                              silence_dbfs=self.silence_dbfs)
        if problem is not None:
            raise BadExampleError(index, *problem)
        reference = example[self.text_column] or ""
        text = self.normalizer(reference)
        labels = self.tokenizer(text, add_special_tokens=False)["input_ids"] if text.strip() else []
        if not labels:
            raise BadExampleError(index, "no_tokens", f"transcript {example[self.text_column]!r}")

        samples = resample(samples, rate, self.sampling_rate)
        extracted = self.feature_extractor(samples, sampling_rate=self.sampling_rate, return_attention_mask=True,
                                           return_tensors="np")
        frames = int(np.asarray(extracted["attention_mask"])[0].sum())
        features = np.asarray(extracted["input_features"], dtype=np.float32)[0, :frames]
        unknown_labels, unknown_words = count_unknown(self.tokenizer, text, labels)
        row = {"input_features": features, "labels": list(labels), "length": frames, "text": reference,
               "unknown_labels": unknown_labels, "unknown_words": unknown_words, "label_words": len(text.split())}
        row.update({column: example[column] for column in self.keep_columns})
        return row

    def _outcome(self, example: Mapping[str, Any], index: int) -> dict[str, Any] | BadExampleError:
        try:
            return self.prepare_example(example, index)
        except BadExampleError as error:
            if self.strict:
                raise
            logger.debug("skipping %s", error)
            return error

    def _prepare_batch(self, batch: Mapping[str, list], indices: list[int]) -> dict[str, list]:
        output: dict[str, list] = {name: [] for name in ("input_features", "labels", "length", "text",
                                                         *self.keep_columns, *_COUNT_COLUMNS)}
        for position, index in enumerate(indices):
            outcome = self._outcome({column: values[position] for column, values in batch.items()}, index)
            if isinstance(outcome, BadExampleError):
                # A placeholder row keeps the batch aligned; the skip_reason column removes it afterwards.
                outcome = {"input_features": np.zeros((0, 0), np.float32), "labels": [], "length": 0, "text": "",
                           **{column: batch[column][position] for column in self.keep_columns},
                           "unknown_labels": 0, "unknown_words": [], "label_words": 0,
                           "skip_reason": outcome.reason}
            else:
                outcome["skip_reason"] = ""
            for name, values in output.items():
                values.append(outcome[name])
        return output

    def _log(self, counts: Counter, total: int, unknown: UnknownLabels) -> None:
        skipped = sum(counts.values())
        detail = ", ".join(f"{reason}={count}" for reason, count in sorted(counts.items()))
        log = logger.warning if skipped else logger.info
        log("prepared %d of %d examples; skipped %d%s", total - skipped, total, skipped,
            f" ({detail})" if detail else "")
        if unknown.tokens:
            logger.warning("labels: %s", unknown.describe(vocabulary_characters(self.tokenizer)))

    def _output_features(self, features: datasets.Features | None) -> datasets.Features:
        import datasets

        kept = {column: features[column] for column in self.keep_columns} if features is not None else {}
        if len(kept) < len(self.keep_columns):
            raise ValueError(f"keep_columns {list(self.keep_columns)} need a dataset whose features are known")
        return datasets.Features({
            "input_features": datasets.List(datasets.List(datasets.Value("float32"))),
            "labels": datasets.List(datasets.Value("int32")),
            "length": datasets.Value("int32"),
            "text": datasets.Value("string"),
            **kept,
            "unknown_labels": datasets.Value("int32"),
            "unknown_words": datasets.List(datasets.Value("string")),
            "label_words": datasets.Value("int32"),
            "skip_reason": datasets.Value("string"),
        })

    def prepare(self, dataset: datasets.Dataset | datasets.IterableDataset,
                **map_kwargs: Any) -> datasets.Dataset | datasets.IterableDataset:
        """Prepares a ``datasets.Dataset``; ``map_kwargs`` such as ``num_proc`` or ``cache_file_name`` go to
        ``Dataset.map``.

        A ``datasets.IterableDataset`` (a streamed split) is prepared lazily, as it is read: :attr:`skipped` and
        :attr:`unknown` then count the examples read so far (every pass over the stream adds to them), and
        ``map_kwargs`` go to ``IterableDataset.map``."""
        import datasets

        if isinstance(dataset, datasets.IterableDataset):
            if dataset.column_names is None:
                raise ValueError("a stream whose columns are unknown cannot be prepared: give it features "
                                 "(datasets' IterableDataset.cast or features=)")
            prepared = dataset.map(self._prepare_batch, batched=True, with_indices=True,
                                   remove_columns=dataset.column_names,
                                   features=self._output_features(dataset.features), **map_kwargs)
            return prepared.filter(self._count_stream, batched=True).remove_columns(list(_COUNT_COLUMNS))
        map_kwargs.setdefault("desc", "preparing speech")
        prepared = dataset.map(self._prepare_batch, batched=True, with_indices=True,
                               remove_columns=dataset.column_names,
                               features=self._output_features(dataset.features), **map_kwargs)
        counts = Counter(reason for reason in prepared["skip_reason"] if reason)
        self.skipped.update(counts)
        unknown = _unknown_of(prepared)
        self.unknown += unknown
        self._log(counts, len(prepared), unknown)
        if counts:
            prepared = prepared.filter(lambda reasons: [not reason for reason in reasons], batched=True,
                                       input_columns="skip_reason", desc="dropping skipped examples")
        return prepared.remove_columns(list(_COUNT_COLUMNS))

    def _count_stream(self, batch: Mapping[str, list]) -> list[bool]:
        """Counts a prepared batch of a stream into :attr:`skipped` and :attr:`unknown`; keeps the usable rows."""
        reasons = batch["skip_reason"]
        counts = Counter(reason for reason in reasons if reason)
        for reason, count in counts.items():
            if not self.skipped[reason]:
                logger.warning("skipping a streamed example: %s (later ones skipped for this reason are counted, "
                               "not logged)", reason)
            self.skipped[reason] += count
        self.unknown += _unknown_of(batch)
        return [not reason for reason in reasons]


def _unknown_of(rows: Any) -> UnknownLabels:
    """The ``<unk>`` counts of prepared rows (a prepared Dataset or a batch of a stream), from their count columns."""
    return UnknownLabels.of(sum(rows["unknown_labels"]), [word for words in rows["unknown_words"] for word in words],
                            sum(rows["label_words"]))
