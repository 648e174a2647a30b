"""Speech datasets for training Parakeet models: loading, preparation, collation and length-grouped batching.

Pipeline::

    raw = load_speech_dataset("path/or/hub-id", split="train", text_column="sentence")
    preparer = SpeechPreparer.from_processor(processor, text_column="sentence")
    train = preparer.prepare(raw)                       # decode, resample, normalise, extract, tokenize, skip bad
    collator = SpeechCollator.for_model(model)          # pads; builds labels and decoder_input_ids

Audio never goes through ``datasets``' own decoding (torchcodec, which does not load on CPU-only machines): the
audio column is cast to ``Audio(decode=False)`` and read with soundfile by :mod:`hf_binarize.data.audio`. For the
same reason local ``audiofolder`` directories are read by this module, not by ``datasets``' AudioFolder builder,
whose encoder imports torchcodec even for plain file paths.

Length grouping: prepared datasets carry a ``length`` column (feature frames), the default ``length_column_name``
of transformers' ``TrainingArguments``, so ``Trainer`` groups by it with ``train_sampling_strategy="group_by_length"``
and ``remove_unused_columns=False`` (otherwise ``Trainer`` drops ``length`` before building its sampler, which then
measures every example itself; the collator ignores the extra columns). :class:`LengthGroupedBatchSampler` is for
custom loops and for batches bounded by a frame budget instead of a fixed size, which keeps padding and memory flat
across short and long utterances.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from .audio import AudioDecodeError, check_audio, load_audio, resample
from .text import normalize_transcript

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

SourceKind = Literal["hub", "audiofolder", "parquet", "disk"]
SkipReason = Literal["unreadable_audio", "empty_audio", "non_finite_audio", "too_short", "too_long",
                     "silent_audio", "no_tokens"]

_METADATA_FILES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")
_METADATA_BUILDERS = {".csv": "csv", ".jsonl": "json", ".parquet": "parquet"}


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


# --------------------------------------------------------------------------------------------------- loading


def _metadata_file(folder: Path) -> Path | None:
    return next((folder / name for name in _METADATA_FILES if (folder / name).is_file()), None)


def detect_source(source: str | os.PathLike) -> SourceKind:
    """Tells what ``source`` is: a ``save_to_disk`` folder (``dataset_dict.json`` or ``state.json``), an
    audiofolder (a ``metadata.csv|jsonl|parquet`` at the top or in split subfolders), parquet (a ``.parquet`` file
    or a folder holding some), or else a Hub dataset id.

    A path-like string that does not exist (absolute, starting with ``.`` or ``~``, or with more than one ``/``)
    raises ``FileNotFoundError`` rather than being sent to the Hub as an id.
    """
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix == ".parquet":
            return "parquet"
        raise ValueError(f"{path}: a file source must be a .parquet file")
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            return "disk"
        if _metadata_file(path) or any(_metadata_file(sub) for sub in path.iterdir() if sub.is_dir()):
            return "audiofolder"
        if any(path.rglob("*.parquet")):
            return "parquet"
        raise ValueError(f"{path}: not a save_to_disk folder, an audiofolder with metadata, nor parquet files")
    text = str(source)
    if os.path.isabs(text) or text.startswith((".", "~")) or text.count("/") > 1:
        raise FileNotFoundError(f"{text}: no such file or folder")
    return "hub"


def _load_audiofolder(root: Path, split: str, audio_column: str, **load_kwargs: Any) -> datasets.Dataset:
    """Reads datasets' audiofolder layout: ``metadata.{csv,jsonl,parquet}`` with a ``file_name`` column relative to
    the metadata file, either at the top (the ``train`` split) or in one subfolder per split."""
    import datasets

    splits = {"train": _metadata_file(root)} if _metadata_file(root) else {}
    splits.update({sub.name: _metadata_file(sub) for sub in sorted(root.iterdir())
                   if sub.is_dir() and _metadata_file(sub)})
    if split not in splits:
        raise ValueError(f"{root}: no split {split!r}; found {sorted(splits)}")
    metadata = splits[split]
    table = datasets.load_dataset(_METADATA_BUILDERS[metadata.suffix], data_files={split: str(metadata)},
                                  split=split, **load_kwargs)
    if "file_name" not in table.column_names:
        raise ValueError(f"{metadata}: no file_name column (columns: {table.column_names})")
    folder = str(metadata.parent.resolve())
    table = table.map(
        lambda batch: {audio_column: [{"bytes": None, "path": os.path.join(folder, name)}
                                      for name in batch["file_name"]]},
        batched=True, remove_columns=["file_name"], desc="audiofolder paths")
    return table.cast_column(audio_column, datasets.Audio(decode=False))


def load_speech_dataset(source: str | os.PathLike, split: str = "train", *, audio_column: str = "audio",
                        text_column: str = "text", streaming: bool = False, name: str | None = None,
                        kind: SourceKind | None = None,
                        **load_kwargs: Any) -> datasets.Dataset | datasets.IterableDataset:
    """Loads one split of a speech dataset with its audio column left undecoded (``Audio(decode=False)``).

    ``source`` is a Hub dataset id (``datasets.load_dataset(source, name, split=..., streaming=...)``), a local
    audiofolder directory, a parquet file or folder (splits from file names such as ``test-00000-of-00001.parquet``;
    a single file is returned as ``split``), or a ``save_to_disk`` folder; ``kind`` overrides
    :func:`detect_source`. With ``streaming=True`` the result is an ``IterableDataset`` (local audiofolders and
    ``save_to_disk`` folders are loaded, then converted). ``load_kwargs`` go to ``datasets.load_dataset`` (for
    example ``cache_dir``, ``revision``, ``data_files``). Raises ``ValueError`` when ``audio_column`` or
    ``text_column`` is missing.
    """
    import datasets

    kind = kind or detect_source(source)
    if kind == "hub":
        dataset = datasets.load_dataset(str(source), name, split=split, streaming=streaming, **load_kwargs)
    elif kind == "parquet":
        path = Path(source).expanduser()
        files = {"data_files": {split: str(path)}} if path.is_file() else {"data_dir": str(path)}
        dataset = datasets.load_dataset("parquet", split=split, streaming=streaming, **files, **load_kwargs)
    else:
        path = Path(source).expanduser()
        if kind == "audiofolder":
            dataset = _load_audiofolder(path, split, audio_column, **load_kwargs)
        else:
            dataset = datasets.load_from_disk(str(path))
            if isinstance(dataset, datasets.DatasetDict):
                if split not in dataset:
                    raise ValueError(f"{path}: no split {split!r}; found {sorted(dataset)}")
                dataset = dataset[split]
        if streaming:
            dataset = dataset.to_iterable_dataset()

    features = dataset.features
    if features is not None:
        missing = [column for column in (audio_column, text_column) if column not in features]
        if missing:
            raise ValueError(f"{source}: missing column(s) {missing}; columns are {list(features)} (name the "
                             "right ones with --audio-column / --text-column, or audio_column= / text_column=)")
        if isinstance(features[audio_column], datasets.Audio):
            dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    return dataset


# ----------------------------------------------------------------------------------------------- preparation


@dataclass
class SpeechPreparer:
    """Turns raw examples (audio cell + transcript) into model inputs, skipping the ones unfit for training.

    Per example: decode with soundfile, mix to mono, check (see :func:`hf_binarize.data.audio.check_audio`),
    resample to ``feature_extractor.sampling_rate``, normalise the transcript with ``normalizer`` (``None`` keeps it
    as is, for cased and punctuated vocabularies), tokenize without special tokens, extract features. The output
    row has ``input_features`` (frames x features, padding frames trimmed), ``labels`` (token ids), ``length``
    (frames, for length grouping), ``text`` (the normalised transcript, for scoring) and the ``keep_columns``.

    Unfit examples are skipped and counted by :data:`SkipReason` into :attr:`skipped`, with one log line per
    :meth:`prepare` (per pass for a stream); with ``strict=True`` the first one raises :class:`BadExampleError`
    naming its index and reason. Errors of the feature extractor or tokenizer are not caught: they are
    configuration errors that show on the first example, not mid-epoch.

    The feature extractor must return time-major features, ``(1, frames, features)`` plus an ``attention_mask``,
    as Parakeet's does.
    """

    feature_extractor: Any
    tokenizer: Any
    audio_column: str = "audio"
    text_column: str = "text"
    normalizer: Callable[[str], str] | None = normalize_transcript
    min_seconds: float = 0.1
    max_seconds: float | None = 30.0
    silence_dbfs: float = -60.0
    strict: bool = False
    keep_columns: Sequence[str] = ()
    skipped: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        clashes = set(self.keep_columns) & {"input_features", "labels", "length", "text", "skip_reason"}
        if clashes:
            raise ValueError(f"keep_columns {sorted(clashes)} would overwrite prepared columns")

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
        text = example[self.text_column] or ""
        if self.normalizer is not None:
            text = self.normalizer(text)
        labels = self.tokenizer(text, add_special_tokens=False)["input_ids"] if text.strip() else []
        if not labels:
            raise BadExampleError(index, "no_tokens", f"transcript {example[self.text_column]!r}")

        samples = resample(samples, rate, self.sampling_rate)
        extracted = self.feature_extractor(samples, sampling_rate=self.sampling_rate, return_attention_mask=True,
                                           return_tensors="np")
        frames = int(np.asarray(extracted["attention_mask"])[0].sum())
        features = np.asarray(extracted["input_features"], dtype=np.float32)[0, :frames]
        row = {"input_features": features, "labels": list(labels), "length": frames, "text": text}
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
                                                         *self.keep_columns, "skip_reason")}
        for position, index in enumerate(indices):
            outcome = self._outcome({column: values[position] for column, values in batch.items()}, index)
            if isinstance(outcome, BadExampleError):
                # A placeholder row keeps the batch aligned; the skip_reason column removes it afterwards.
                outcome = {"input_features": np.zeros((0, 0), np.float32), "labels": [], "length": 0, "text": "",
                           **{column: batch[column][position] for column in self.keep_columns},
                           "skip_reason": outcome.reason}
            else:
                outcome["skip_reason"] = ""
            for name, values in output.items():
                values.append(outcome[name])
        return output

    def _log(self, counts: Counter, total: int) -> None:
        skipped = sum(counts.values())
        detail = ", ".join(f"{reason}={count}" for reason, count in sorted(counts.items()))
        log = logger.warning if skipped else logger.info
        log("prepared %d of %d examples; skipped %d%s", total - skipped, total, skipped,
            f" ({detail})" if detail else "")

    def prepare(self, dataset: datasets.Dataset | Iterable[Mapping[str, Any]],
                **map_kwargs: Any) -> datasets.Dataset | PreparedStream:
        """Prepares a ``datasets.Dataset`` (returns a Dataset; ``map_kwargs`` such as ``num_proc`` or
        ``cache_file_name`` go to ``Dataset.map``) or an iterable of examples such as a streaming
        ``datasets.IterableDataset`` (returns a :class:`PreparedStream`, prepared on the fly)."""
        import datasets

        if not isinstance(dataset, datasets.Dataset):
            return PreparedStream(dataset, self)
        features = dataset.features
        output_features = datasets.Features({
            "input_features": datasets.List(datasets.List(datasets.Value("float32"))),
            "labels": datasets.List(datasets.Value("int32")),
            "length": datasets.Value("int32"),
            "text": datasets.Value("string"),
            **{column: features[column] for column in self.keep_columns},
            "skip_reason": datasets.Value("string"),
        })
        map_kwargs.setdefault("desc", "preparing speech")
        prepared = dataset.map(self._prepare_batch, batched=True, with_indices=True,
                               remove_columns=dataset.column_names, features=output_features, **map_kwargs)
        counts = Counter(reason for reason in prepared["skip_reason"] if reason)
        self.skipped.update(counts)
        self._log(counts, len(prepared))
        if counts:
            prepared = prepared.filter(lambda reasons: [not reason for reason in reasons], batched=True,
                                       input_columns="skip_reason", desc="dropping skipped examples")
        return prepared.remove_columns("skip_reason")


class PreparedStream(torch.utils.data.IterableDataset):
    """A stream of prepared examples over an iterable of raw ones, for datasets too large to prepare ahead.

    Unfit examples are skipped (counted into the preparer's ``skipped``, logged at the end of each pass) or, in
    strict mode, raise with their position in the stream. Under a DataLoader with workers, ``datasets`` streams
    split their shards across workers; each worker then counts and logs its own share.
    """

    def __init__(self, examples: Iterable[Mapping[str, Any]], preparer: SpeechPreparer) -> None:
        super().__init__()
        self.examples = examples
        self.preparer = preparer

    def set_epoch(self, epoch: int) -> None:
        """Forwards the epoch to the underlying stream (``datasets`` reshuffles its shards with it)."""
        if hasattr(self.examples, "set_epoch"):
            self.examples.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        counts: Counter = Counter()
        total = 0
        try:
            for index, example in enumerate(self.examples):
                total += 1
                outcome = self.preparer._outcome(example, index)
                if isinstance(outcome, BadExampleError):
                    counts[outcome.reason] += 1
                else:
                    yield outcome
        finally:
            self.preparer.skipped.update(counts)
            self.preparer._log(counts, total)


# ------------------------------------------------------------------------------------------------- collation


@dataclass
class SpeechCollator:
    """Pads prepared examples into a batch for ParakeetForRNNT, ParakeetForTDT or ParakeetForCTC.

    Returns ``input_features`` (batch, frames, features) padded with ``feature_padding_value`` (0: the extractor
    zeroes padding frames too, so a padded example equals the same audio extracted in a batch), a boolean
    ``attention_mask``, ``labels`` padded with ``label_pad_token_id`` and, when ``decoder_start_token_id`` is set,
    ``decoder_input_ids`` = that id followed by the labels (one longer than ``labels``), padded the same way.

    Use :meth:`for_model` for the right ids: the transducers count a label as real when it differs from the padding
    id, and which id that is differs by model (see there).
    """

    label_pad_token_id: int
    decoder_start_token_id: int | None = None
    feature_padding_value: float = 0.0
    pad_to_multiple_of: int | None = None

    @classmethod
    def for_model(cls, model_or_config: Any, **kwargs: Any) -> SpeechCollator:
        """The collator a Parakeet model's loss expects (transformers 5.24, ``modeling_parakeet.py``):

        * RNN-T: ``label_lengths = (labels != blank_token_id).sum(-1)``, so labels are padded with the blank id;
          the prediction network reads ``decoder_input_ids = [blank, *labels]``.
        * TDT: ``label_lengths = (labels != pad_token_id).sum(-1)``: padded with the pad id; decoder input as RNN-T.
        * CTC: the loss ignores ``pad_token_id`` (the CTC blank) and -100; padded with the pad id; no decoder.
        """
        config = getattr(model_or_config, "config", model_or_config)
        model_type = getattr(config, "model_type", None)
        if model_type == "parakeet_rnnt":
            ids = {"label_pad_token_id": config.blank_token_id, "decoder_start_token_id": config.blank_token_id}
        elif model_type == "parakeet_tdt":
            ids = {"label_pad_token_id": config.pad_token_id, "decoder_start_token_id": config.blank_token_id}
        elif model_type == "parakeet_ctc":
            ids = {"label_pad_token_id": config.pad_token_id}
        else:
            raise ValueError(f"no collation rule for model_type {model_type!r}")
        return cls(**ids, **kwargs)

    def _padded_length(self, length: int) -> int:
        multiple = self.pad_to_multiple_of or 1
        return math.ceil(length / multiple) * multiple

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        features = [torch.as_tensor(np.asarray(example["input_features"], dtype=np.float32))
                    for example in examples]
        labels = [torch.as_tensor(np.asarray(example["labels"], dtype=np.int64)) for example in examples]
        frames = self._padded_length(max(feature.shape[0] for feature in features))
        width = features[0].shape[1]
        batch_features = torch.full((len(examples), frames, width), self.feature_padding_value)
        attention_mask = torch.zeros((len(examples), frames), dtype=torch.bool)
        steps = max(label.numel() for label in labels)
        batch_labels = torch.full((len(examples), steps), self.label_pad_token_id, dtype=torch.long)
        for row, (feature, label) in enumerate(zip(features, labels, strict=True)):
            batch_features[row, : feature.shape[0]] = feature
            attention_mask[row, : feature.shape[0]] = True
            batch_labels[row, : label.numel()] = label
        batch = {"input_features": batch_features, "attention_mask": attention_mask, "labels": batch_labels}
        if self.decoder_start_token_id is not None:
            start = torch.full((len(examples), 1), self.decoder_start_token_id, dtype=torch.long)
            batch["decoder_input_ids"] = torch.cat([start, batch_labels], dim=1)
        return batch


# ------------------------------------------------------------------------------------------------- batching


class LengthGroupedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of examples of similar length, in random order, for a ``DataLoader(batch_sampler=...)``.

    Each epoch the indices are shuffled (seeded by ``seed`` and :meth:`set_epoch`), cut into pools of
    ``pool_size`` batches' worth, each pool sorted by length and cut into batches, and the batches shuffled: batches
    hold similar lengths (little padding) while their order and content still vary between epochs. A batch holds
    ``batch_size`` examples or, with ``max_frames``, as many as fit ``longest length x batch size <= max_frames``
    (the padded size); an example longer than ``max_frames`` gets a batch of its own. Set exactly one of the two;
    ``drop_last`` drops the final incomplete batch of ``batch_size`` batching.
    """

    def __init__(self, lengths: Sequence[int], *, batch_size: int | None = None, max_frames: int | None = None,
                 shuffle: bool = True, seed: int = 0, pool_size: int = 50, drop_last: bool = False) -> None:
        if (batch_size is None) == (max_frames is None):
            raise ValueError("set exactly one of batch_size and max_frames")
        if (batch_size is not None and batch_size < 1) or (max_frames is not None and max_frames < 1):
            raise ValueError("batch_size and max_frames must be positive")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.max_frames = max_frames
        self.shuffle = shuffle
        self.seed = seed
        self.pool_size = pool_size
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Selects the shuffle of ``epoch`` (call before each epoch, like ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def _batches_of(self, ordered: np.ndarray) -> list[list[int]]:
        if self.batch_size is not None:
            batches = [ordered[start : start + self.batch_size].tolist()
                       for start in range(0, len(ordered), self.batch_size)]
            if self.drop_last and batches and len(batches[-1]) < self.batch_size:
                batches.pop()
            return batches
        batches, current, longest = [], [], 0
        for index in ordered.tolist():
            length = int(self.lengths[index])
            if current and max(longest, length) * (len(current) + 1) > self.max_frames:
                batches.append(current)
                current, longest = [], 0
            current.append(index)
            longest = max(longest, length)
        if current:
            batches.append(current)
        return batches

    def batches(self) -> list[list[int]]:
        """This epoch's batches, in the order they are yielded."""
        generator = np.random.default_rng([self.seed, self.epoch])
        order = generator.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        if self.batch_size is not None:
            pool = self.batch_size * self.pool_size
        else:
            mean_length = max(1.0, float(self.lengths.mean())) if len(self.lengths) else 1.0
            pool = max(1, int(self.max_frames / mean_length)) * self.pool_size
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            # A stable sort keeps equal lengths in shuffled order, so ties do not always batch together.
            batches.extend(self._batches_of(chunk[np.argsort(-self.lengths[chunk], kind="stable")]))
        if self.shuffle:
            batches = [batches[i] for i in generator.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
