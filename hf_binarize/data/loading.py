"""Loading one split of a speech dataset (Hub id, audiofolder, parquet or ``save_to_disk`` folder) with its audio
left undecoded.

Audio never goes through ``datasets``' own decoding (torchcodec, which does not load on CPU-only machines): the
audio column is cast to ``Audio(decode=False)`` and read with soundfile by :mod:`hf_binarize.data.audio`. For the
same reason local ``audiofolder`` directories are read by this module, not by ``datasets``' AudioFolder builder,
whose encoder imports torchcodec even for plain file paths.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import datasets

SourceKind = Literal["hub", "repo", "audiofolder", "parquet", "disk"]

_METADATA_FILES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")
_METADATA_BUILDERS = {".csv": "csv", ".jsonl": "json", ".parquet": "parquet"}


def _metadata_file(folder: Path) -> Path | None:
    return next((folder / name for name in _METADATA_FILES if (folder / name).is_file()), None)


def _declares_configs(folder: Path) -> bool:
    """Whether ``folder`` is a local copy of a Hub dataset repository whose README.md declares its configs."""
    readme = folder / "README.md"
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8", errors="replace")
    header = text.split("---", 2)[1] if text.startswith("---") and text.count("---") >= 2 else ""
    return any(line.startswith("configs:") for line in header.splitlines())


def detect_source(source: str | os.PathLike) -> SourceKind:
    """Tells what ``source`` is: a ``save_to_disk`` folder (``dataset_dict.json`` or ``state.json``), a local copy
    of a Hub repository (a ``README.md`` whose YAML header declares ``configs:``), an audiofolder (a ``metadata.csv|jsonl|parquet`` at the top or in split subfolders), parquet (a ``.parquet`` file
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
        if _declares_configs(path):
            return "repo"
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


def _split_name(split: str) -> str:
    """``train`` of ``train[:1%]``: the split a slice is taken from."""
    return split.split("[", 1)[0]


def _sliced(dataset: datasets.Dataset, split: str) -> datasets.Dataset:
    """``dataset`` (all of split ``_split_name(split)``) cut as ``split``'s slice says, by ``datasets``' own rules."""
    import datasets

    if "[" not in split:
        return dataset
    base = _split_name(split)
    try:
        instructions = datasets.ReadInstruction.from_spec(split).to_absolute({base: len(dataset)})
    except (ValueError, AssertionError) as error:
        raise ValueError(f"split {split!r}: {error}; write slices as datasets does, e.g. train[:10%] or "
                         "test[100:200]") from None
    return datasets.concatenate_datasets([dataset.select(range(i.from_, i.to)) for i in instructions])


_STREAM_SLICE = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<start>\d*):(?P<stop>\d*)\])?$")


def _sliced_stream(dataset: datasets.IterableDataset, split: str) -> datasets.IterableDataset:
    """A stream cut as ``split``'s slice says. A stream has no length, so only counted, non-negative slices
    (``train[:1000]``, ``test[100:200]``) can be taken; percentages and negative indices cannot."""
    match = _STREAM_SLICE.match(split)
    if match is None:
        raise ValueError(f"split {split!r}: a stream has no length, so only slices of counted examples such as "
                         "train[:1000] or test[100:200] can be streamed; drop --streaming for percentages")
    start = int(match["start"] or 0)
    if start:
        dataset = dataset.skip(start)
    if match["stop"]:
        dataset = dataset.take(max(0, int(match["stop"]) - start))
    return dataset


def _local_repo_cache(folder: Path) -> Path:
    """A ``datasets`` cache folder of its own for a local repository copy, named by a hash of its files (path, size,
    modification time): ``datasets`` keys such a copy's cache by its config's file patterns alone, so another copy
    with the same layout, or this one rewritten, would otherwise be served the data cached from the first."""
    import hashlib

    import datasets

    digest = hashlib.sha256(str(folder.resolve()).encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return Path(datasets.config.HF_DATASETS_CACHE) / "hf_binarize-local" / digest.hexdigest()[:16]


def load_speech_dataset(source: str | os.PathLike, split: str = "train", *, audio_column: str = "audio",
                        text_column: str = "text", name: str | None = None, kind: SourceKind | None = None,
                        streaming: bool = False, **load_kwargs: Any) -> datasets.Dataset | datasets.IterableDataset:
    """Loads one split of a speech dataset with its audio column left undecoded (``Audio(decode=False)``).

    ``source`` is a Hub dataset id (``datasets.load_dataset(source, name, split=...)``), a local copy of a Hub
    repository (read by ``datasets`` exactly as the Hub repository: its configs are separate, ``name`` picks one), a
    local audiofolder directory, a parquet file or folder (splits from file names such as ``test-00000-of-00001.parquet``;
    a single file is returned as ``split``), or a ``save_to_disk`` folder; ``kind`` overrides
    :func:`detect_source`. ``load_kwargs`` go to ``datasets.load_dataset`` (for
    example ``cache_dir``, ``revision``, ``data_files``). ``split`` is any split name (``train.100``,
    ``test.clean``) with an optional slice as ``datasets`` writes them (``train[:1%]``, ``test[10:20]``), for every
    kind of source. Raises ``ValueError`` when ``audio_column`` or ``text_column`` is missing.

    ``streaming=True`` returns a ``datasets.IterableDataset`` that reads examples as they are asked for: a Hub
    dataset, repository copy or parquet files are streamed by ``datasets`` (nothing is downloaded or converted
    beyond what is read, for splits too large for the disk), a ``save_to_disk`` folder or audiofolder is read in
    place. A streamed split takes only counted slices (``train[:1000]``), not percentages.
    """
    import datasets

    kind = kind or detect_source(source)
    if kind == "repo" and "cache_dir" not in load_kwargs:
        load_kwargs["cache_dir"] = str(_local_repo_cache(Path(source).expanduser()))
    # datasets cannot slice a stream: the whole split is streamed and cut by _sliced_stream.
    streamed = {"streaming": True, "split": _split_name(split)} if streaming else {"split": split}
    if kind in ("hub", "repo"):
        dataset = datasets.load_dataset(str(Path(source).expanduser()) if kind == "repo" else str(source), name,
                                        **streamed, **load_kwargs)
    elif kind == "parquet":
        path = Path(source).expanduser()
        base = _split_name(split)
        files = {"data_files": {base: str(path)}} if path.is_file() else {"data_dir": str(path)}
        dataset = datasets.load_dataset("parquet", **files, **streamed, **load_kwargs)
    else:
        path = Path(source).expanduser()
        base = _split_name(split)
        if kind == "audiofolder":
            dataset = _load_audiofolder(path, base, audio_column, **load_kwargs)
        else:
            dataset = datasets.load_from_disk(str(path))
            if isinstance(dataset, datasets.DatasetDict):
                if base not in dataset:
                    raise ValueError(f"{path}: no split {base!r}; found {sorted(dataset)}")
                dataset = dataset[base]
        dataset = _sliced(dataset, split)
        if streaming:
            dataset = dataset.to_iterable_dataset()
    if streaming and kind in ("hub", "repo", "parquet"):
        dataset = _sliced_stream(dataset, split)

    features = dataset.features
    if features is not None:
        missing = [column for column in (audio_column, text_column) if column not in features]
        if missing:
            raise ValueError(f"{source}: missing column(s) {missing}; columns are {list(features)} (name the "
                             "right ones with --audio-column / --text-column, or audio_column= / text_column=)")
        if isinstance(features[audio_column], datasets.Audio):
            dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    return dataset
