"""English sentences for the synthetic corpus, read from redistributable text that Debian packages install.

Sources (:data:`SOURCES`), each read from where its package puts it, never downloaded:

* ``harvard``: the 720 Harvard sentences (IEEE 1969, public domain), shipped beside this module.
* ``wordnet``: WordNet 3.0 glosses and their quoted example sentences (``apt-get install wordnet-base``,
  ``/usr/share/wordnet/data.{noun,verb,adj,adv}``; WordNet 3.0 licence: use, copy and redistribution allowed with
  the copyright notice kept).
* ``fortunes``: the fortune cookies, literature quotations and riddles of ``fortunes-min``
  (``/usr/share/games/fortunes``; BSD licence).
* ``gcide``: definitions and quotations of the GNU Collaborative International Dictionary of English
  (``dict-gcide``, ``/usr/share/dictd/gcide.dict.dz``, Webster's 1913 plus WordNet; GPL 2 or later).

Every candidate goes through :func:`readable`, which keeps only what a speaker reads the way
:func:`hf_binarize.data.text.normalize_transcript` writes it: no URLs, e-mail addresses, code or table punctuation,
digits (a synthesiser says "nineteen thirteen" where the normaliser keeps "1913"), abbreviations with dots or
all-capital words (read letter by letter, or expanded: "Mr." is "mister"), non-ASCII letters, and between
``MIN_WORDS`` and ``MAX_WORDS`` words. Sentences are deduplicated across sources by their normalised form, which is
also what decides that a sentence is in only one split.

Python docstrings and source code, and the festival synthesiser, are deliberately absent: they are reserved for an
independent evaluation set that no training or tuning choice may see.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from .text import normalize_transcript

MIN_WORDS = 3
MAX_WORDS = 30
MAX_CHARACTERS = 200

_URL_OR_CODE = re.compile(r"https?:|www\.|@|[<>{}\[\]|\\=_#*~^$%&+/]|\.\w+\(|::")
_DOTTED_ABBREVIATION = re.compile(r"\b\w\.\w|\b(?:mr|mrs|ms|dr|st|vs|etc|jr|sr|no|fig|esp|cf|viz)\.", re.IGNORECASE)
_CAPITALS = re.compile(r"\b[A-Z]{2,}")
_ASCII_TEXT = re.compile(r"[A-Za-z ,;:.!?'\"()\-]+")


class MissingTextSourceError(FileNotFoundError):
    """A text source's package is not installed; the message is the one line that says which to install."""


def readable(sentence: str) -> str | None:
    """``sentence`` with its whitespace collapsed when a speaker would read it as its normalised transcript says,
    else ``None`` (see the module docstring for what is dropped and why)."""
    sentence = " ".join(sentence.replace("`", "'").split()).strip(" ;,:")
    if not sentence or len(sentence) > MAX_CHARACTERS or not _ASCII_TEXT.fullmatch(sentence):
        return None
    if _URL_OR_CODE.search(sentence) or _DOTTED_ABBREVIATION.search(sentence) or _CAPITALS.search(sentence):
        return None
    words = normalize_transcript(sentence).split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    return sentence[0].upper() + sentence[1:]


@dataclass(frozen=True)
class TextSource:
    """One source: its package and the file whose presence shows it is installed, and its reader."""

    name: str
    package: str | None
    path: Path | None
    read: Callable[[Path | None], Iterator[str]]

    def sentences(self) -> list[str]:
        """The readable, distinct sentences of this source in file order; raises
        :class:`MissingTextSourceError` when the package is not installed."""
        if self.path is not None and not self.path.exists():
            raise MissingTextSourceError(f"text source {self.name!r} needs {self.path}: apt-get install {self.package}")
        seen, kept = set(), []
        for candidate in self.read(self.path):
            sentence = readable(candidate)
            key = sentence and normalize_transcript(sentence)
            if key and key not in seen:
                seen.add(key)
                kept.append(sentence)
        return kept


def _harvard(_: Path | None) -> Iterator[str]:
    text = resources.files(__package__).joinpath("harvard_sentences.txt").read_text(encoding="utf-8")
    yield from (line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


_WORDNET_EXAMPLE = re.compile(r'"([^"]+)"')


def _wordnet(folder: Path | None) -> Iterator[str]:
    for part in ("noun", "verb", "adj", "adv"):
        with open(folder / f"data.{part}", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("  ") or " | " not in line:  # the licence header
                    continue
                gloss = line.split(" | ", 1)[1]
                # A gloss is a definition, then its quoted examples, separated by semicolons.
                yield from _WORDNET_EXAMPLE.findall(gloss)
                definition = _WORDNET_EXAMPLE.sub("", gloss).split(";")[0]
                yield definition


def _fortunes(folder: Path | None) -> Iterator[str]:
    for name in ("fortunes", "literature", "riddles"):
        text = (folder / name).read_text(encoding="utf-8", errors="replace")
        for cookie in text.split("\n%\n"):
            # Multi-line cookies with attributions ("-- Author") or dialogue are kept only as their sentences.
            body = cookie.split("\t\t-- ")[0].split("\n-- ")[0]
            yield from _split_sentences(" ".join(body.split()))


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def _split_sentences(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text) if part]


_GCIDE_MARKUP = re.compile(r"\{([^{}]*)\}")
_GCIDE_NOTES = re.compile(r"\[[^\]]*\]|\([A-Z][a-z]*\.[^)]*\)|--[A-Z][^.]*\.|^\d+\.\s*|^\([a-z]\)\s*")


def _gcide(path: Path | None) -> Iterator[str]:
    # dictzip files are gzip files with an index in the header: gzip reads them whole.
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as text:
        paragraph: list[str] = []
        for line in text:
            if line.strip():
                paragraph.append(line.strip())
                continue
            yield from _gcide_paragraph(paragraph)
            paragraph = []
        yield from _gcide_paragraph(paragraph)


def _gcide_paragraph(lines: list[str]) -> Iterator[str]:
    # A paragraph is a headword line ("Abjure \Ab*jure"\, v. t. [etymology]") followed by a definition, or a
    # numbered sense; both end with a source tag such as "[1913 Webster]". Synonym lists and notes are skipped.
    if not lines or lines[0].startswith(("Syn:", "Note:", "Usage:", "See", "Syn.")):
        return
    if "\\" in lines[0]:
        lines = lines[1:]
    body = _GCIDE_MARKUP.sub(r"\1", " ".join(lines))
    body = body.split("[1913 Webster]")[0].split("[WordNet")[0].split("[PJC]")[0]
    for part in re.split(r'"', body):
        part = _GCIDE_NOTES.sub("", part.strip()).strip()
        yield from _split_sentences(part)


SOURCES: dict[str, TextSource] = {
    "harvard": TextSource("harvard", None, None, _harvard),
    "wordnet": TextSource("wordnet", "wordnet-base", Path("/usr/share/wordnet/data.noun"),
                          lambda path: _wordnet(path.parent)),
    "fortunes": TextSource("fortunes", "fortunes-min", Path("/usr/share/games/fortunes/fortunes"),
                           lambda path: _fortunes(path.parent)),
    "gcide": TextSource("gcide", "dict-gcide", Path("/usr/share/dictd/gcide.dict.dz"), _gcide),
}
"""The text sources by name (see the module docstring)."""


@cache
def _sentences_of(source: TextSource) -> list[str]:
    # Reading WordNet and GCIDE takes seconds; a process building several corpora reads them once.
    return source.sentences()


@dataclass(frozen=True)
class Sentence:
    """A corpus sentence: its text as read aloud, its source and its position there (``wordnet:01234``)."""

    text: str
    source: str
    id: str


def load_sentences(names: Sequence[str], *, max_per_source: int | None = None, seed: int = 0) -> list[Sentence]:
    """The distinct readable sentences of the sources ``names``, in source then file order; with
    ``max_per_source`` a seeded sample of that many per source (file order kept), so that a large source does not
    drown the small ones. A sentence already given by an earlier source (same normalised text) is left out.
    Raises :class:`MissingTextSourceError` for an uninstalled source and ``ValueError`` for an unknown name."""
    unknown = [name for name in names if name not in SOURCES]
    if unknown:
        raise ValueError(f"unknown text sources {unknown}; known: {sorted(SOURCES)}")
    seen: set[str] = set()
    sentences = []
    for number, name in enumerate(names):
        texts = _sentences_of(SOURCES[name])
        indices = range(len(texts))
        if max_per_source is not None and len(texts) > max_per_source:
            chosen = np.random.default_rng([seed, 4, number]).choice(len(texts), max_per_source, replace=False)
            indices = sorted(chosen.tolist())
        for index in indices:
            key = normalize_transcript(texts[index])
            if key not in seen:
                seen.add(key)
                sentences.append(Sentence(texts[index], name, f"{name}:{index:06d}"))
    return sentences
