"""What the cards say about where the models and the data come from: the licence and language of the models, read
from the base model's and the dataset's own cards, and whether the data is hf-binarize's synthetic corpus.

A card is read from a local folder (its ``README.md`` YAML header, and for a model its ``config.json``) or, for a
Hub id, from the Hub cache only: writing cards never goes online.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import metadata_load, try_to_load_from_cache

from ..data.synthetic import is_synthetic_corpus
from .results import index_results

CORPUS_LANGUAGE = "en"
"""The language of hf-binarize's synthetic corpus (English text read by English voices)."""


@dataclass(frozen=True)
class Licence:
    """A licence as card metadata writes it: an identifier of the Hub's list, or ``other`` with a name and a link,
    and where it was read (``"--license"``, or a card or config file)."""

    license: str
    name: str | None = None
    link: str | None = None
    source: str = "--license"

    def metadata(self) -> dict[str, str]:
        """The ``license`` (and ``license_name``, ``license_link``) keys of a card's metadata."""
        fields = {"license": self.license, "license_name": self.name, "license_link": self.link}
        return {key: value for key, value in fields.items() if value}


def _file(source: str, name: str, repo_type: str) -> Path | None:
    """``name`` in the folder ``source``, or in the Hub cache's snapshot of the repository ``source``."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        path = folder / name
        return path if path.is_file() else None
    try:
        cached = try_to_load_from_cache(source, name, repo_type=repo_type)
    except ValueError:  # not a repository id either
        return None
    return Path(cached) if isinstance(cached, str) else None


def card_metadata(source: str | os.PathLike, repo_type: str = "model") -> dict[str, Any]:
    """The YAML header of the card (``README.md``) of a folder or a cached Hub repository; ``{}`` without one."""
    path = _file(os.fspath(source), "README.md", repo_type)
    return (metadata_load(path) or {}) if path is not None else {}


def _config_licence(source: str) -> str | None:
    path = _file(source, "config.json", "model")
    if path is None:
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("license")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def base_models(results: Sequence[dict], baseline: str, base_model: str | None) -> list[str]:
    """Where the variants come from: the model folders (or Hub ids) the baseline was scored from, then
    ``base_model``."""
    scored = [row["model"] for row in index_results(results, baseline)[baseline].values()]
    return list(dict.fromkeys([*scored, *([base_model] if base_model else [])]))


def find_licence(sources: Sequence[str]) -> Licence | None:
    """The licence of the first of ``sources`` (model folders or Hub ids) whose card metadata or ``config.json``
    states one."""
    for source in sources:
        metadata = card_metadata(source)
        if metadata.get("license"):
            return Licence(str(metadata["license"]), metadata.get("license_name"), metadata.get("license_link"),
                           f"{source}/README.md")
        licence = _config_licence(source)
        if licence:
            return Licence(licence, source=f"{source}/config.json")
    return None


def _dataset_language(result: dict) -> list[str]:
    """The language a result's dataset card names: its only one, or the one its config is named for (Common Voice's
    ``en``) among several; the synthetic corpus is English."""
    if on_synthetic_corpus(result):
        return [CORPUS_LANGUAGE]
    languages = card_metadata(result["dataset"], "dataset").get("language") or []
    languages = [languages] if isinstance(languages, str) else [str(language) for language in languages]
    if len(languages) == 1:
        return languages
    return [result["dataset_config"]] if result.get("dataset_config") in languages else []


def find_language(results: Sequence[dict], models: Sequence[str]) -> list[str]:
    """The languages of the first of ``models`` whose card names some, else those of the datasets the results were
    scored on (see :func:`_dataset_language`); ``[]`` when none says."""
    for source in models:
        languages = card_metadata(source).get("language")
        if languages:
            return [languages] if isinstance(languages, str) else [str(language) for language in languages]
    return list(dict.fromkeys(language for result in results for language in _dataset_language(result)))


def on_synthetic_corpus(result: dict) -> bool:
    """Whether a result was scored on hf-binarize's synthetic corpus: as its record says, or for a record written
    before it said, as its dataset folder shows now."""
    flag = result.get("synthetic_corpus")
    return bool(flag) if flag is not None else is_synthetic_corpus(result["dataset"])
