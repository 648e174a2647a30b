"""Transcript normalisation and error rates (WER, CER), implemented here because ``evaluate.load("wer")`` fetches
its code from the Hub.

:func:`normalize_transcript` maps a transcript to the form that training labels and scored hypotheses share:

1. Unicode NFKC: compatibility forms fold to plain ones (full-width letters, ligatures such as "ﬁ", circled or
   superscript digits, non-breaking spaces).
2. Lowercase (``str.lower``).
3. Apostrophe look-alikes (’ ‘ ʼ ′ and the backtick) become ``'``.
4. Thousands separators between digit groups are dropped ("1,000" -> "1000").
5. Numbers: with ``numbers="digits"`` (the default) they stay digits, decimal point included ("3.5"); with
   ``numbers="words"`` integers, decimals and ordinals are spelled out in US style ("21" -> "twenty one", "3.5" ->
   "three point five", "2nd" -> "second"). Years are read as cardinals ("1969" -> "one thousand nine hundred sixty
   nine"), and currency and percent signs are dropped with the other symbols, not spoken.
6. Words are maximal runs of letters, digits and combining marks; an apostrophe is kept only between two such
   characters ("don't", "o'clock"), so quotes and the plural possessive ("the dogs' bowls" -> "the dogs bowls")
   lose it. Everything else (punctuation, symbols, hyphens, underscores) separates words: "well-known" -> "well
   known", "U.S.A." -> "u s a".
7. Words are joined with single spaces (whitespace collapsed, ends stripped).

Scoring compares references and hypotheses after one of the :data:`SCORING_NORMALIZERS`, named in every score:

* ``basic``: :func:`normalize_transcript`, the form hf-binarize's own models write.
* ``whisper``: :func:`normalize_whisper`, the English normaliser of OpenAI's Whisper, which the Open ASR
  leaderboard and most published English WERs use: lower case; text in brackets (``[noise]``, ``<unk>``) and
  parentheses dropped; the hesitations hmm, mm, mhm, mmm, uh and um dropped; contractions expanded ("won't" -> "will
  not", "it's" -> "it is", "we'd" -> "we would") and titles spelled out ("Mr." -> "mister", "Dr." -> "doctor");
  diacritics dropped ("café" -> "cafe", "œ" -> "oe"); punctuation and symbols become spaces, except the decimal
  point and the currency and percent signs of numbers; spelled-out numbers become digits ("twenty one" -> "21",
  "one oh one" -> "101", "twenty first" -> "21st", "ten percent" -> "10%", "five dollars" -> "$5", "1,000" ->
  "1000"); whitespace collapsed and ends stripped. Whisper's British-to-American spelling table ("colour" ->
  "color") is not applied: it is data of OpenAI's repository, not shipped with hf-binarize or transformers.
* ``none``: the text as written, only runs of whitespace collapsed (case and punctuation count as errors).

Error rates are corpus-level: the edit operations of each (reference, hypothesis) pair are summed, then divided by
the summed reference length, so long utterances weigh more than short ones (the usual definition, as in jiwer).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import regex

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "′": "'", "`": "'"})
_THOUSANDS = regex.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,]*\d)")
_NUMBER = regex.compile(r"(?<![\p{L}\d])(\d+)(?:\.(\d+))?(st|nd|rd|th)?(?![\p{L}\d])")
_WORD = regex.compile(r"\d+\.\d+|[\p{L}\p{N}\p{M}]+(?:'[\p{L}\p{N}\p{M}]+)*")

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
             "nine": "ninth", "twelve": "twelfth"}


def spell_integer(number: int) -> str:
    """Spells a non-negative integer in US English without "and" or hyphens: 2021 -> "two thousand twenty one"."""
    if number < 0:
        raise ValueError(f"expected a non-negative integer, got {number}")
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {spell_integer(rest)}" if rest else "")
    for scale, name in _SCALES:
        if number >= scale:
            high, rest = divmod(number, scale)
            return f"{spell_integer(high)} {name}" + (f" {spell_integer(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _ordinal(words: str) -> str:
    *head, last = words.split(" ")
    if last in _ORDINALS:
        last = _ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def _spell_number(match: regex.Match) -> str:
    integer, fraction, suffix = match.groups()
    words = spell_integer(int(integer))
    if fraction is not None:
        return f" {words} point {' '.join(_ONES[int(digit)] for digit in fraction)} "
    return f" {_ordinal(words) if suffix else words} "


def normalize_transcript(text: str | None, *, numbers: Literal["digits", "words"] = "digits") -> str:
    """Normalises ``text`` as described in the module docstring; ``None`` gives ``""``."""
    if numbers not in ("digits", "words"):
        raise ValueError(f"numbers must be 'digits' or 'words', got {numbers!r}")
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    text = _THOUSANDS.sub(lambda match: match.group().replace(",", ""), text)
    if numbers == "words":
        text = _NUMBER.sub(_spell_number, text)
    return " ".join(_WORD.findall(text))


@functools.cache
def _whisper_normalizer() -> Any:
    # transformers' port of openai-whisper's EnglishTextNormalizer (the one WhisperTokenizer.normalize uses),
    # imported on first use; an empty table leaves British spellings as they are.
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})


def normalize_whisper(text: str | None) -> str:
    """Whisper's English normalisation of ``text`` (see the module docstring); ``None`` gives ``""``."""
    return _whisper_normalizer()(text).strip() if text else ""


def collapse_whitespace(text: str | None) -> str:
    """``text`` with runs of whitespace as single spaces and the ends stripped; ``None`` gives ``""``."""
    return " ".join(text.split()) if text else ""


SCORING_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "basic": normalize_transcript, "whisper": normalize_whisper, "none": collapse_whitespace}
"""The normalisers scores are computed after, by the name a score records (see the module docstring)."""


def scoring_normalizer(name: str) -> Callable[[str], str]:
    """The normaliser of :data:`SCORING_NORMALIZERS` called ``name``; raises ``ValueError`` for another name."""
    try:
        return SCORING_NORMALIZERS[name]
    except KeyError:
        raise ValueError(f"no normaliser {name!r}: choose one of {', '.join(SCORING_NORMALIZERS)}") from None


@dataclass(frozen=True)
class ErrorRate:
    """Edit operations of hypotheses against references: ``reference_length`` counts reference words for WER and
    reference characters (spaces included) for CER."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions: the edit distance."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """``errors / reference_length``; 0.0 for an empty reference matched exactly, ``inf`` for insertions
        against an empty reference."""
        if self.reference_length:
            return self.errors / self.reference_length
        return 0.0 if self.errors == 0 else float("inf")

    def __add__(self, other: ErrorRate) -> ErrorRate:
        return ErrorRate(self.substitutions + other.substitutions, self.deletions + other.deletions,
                         self.insertions + other.insertions, self.reference_length + other.reference_length)


def edit_operations(reference: Sequence[Hashable], hypothesis: Sequence[Hashable]) -> ErrorRate:
    """Levenshtein alignment of two token sequences (unit costs), with the operations counted by kind.

    Among the alignments of minimum cost, ties are broken towards substitutions, then deletions, then insertions,
    so the split between kinds is deterministic (the total never depends on it). O(len(reference) *
    len(hypothesis)) time, O(len(hypothesis)) memory.
    """
    # Each cell holds (cost, substitutions, deletions, insertions) of the best alignment of the prefixes.
    previous = [(j, 0, 0, j) for j in range(len(hypothesis) + 1)]
    for i, ref_token in enumerate(reference, start=1):
        current = [(i, 0, i, 0)]
        for j, hyp_token in enumerate(hypothesis, start=1):
            cost, sub, dele, ins = previous[j - 1]
            best = (cost, sub, dele, ins) if ref_token == hyp_token else (cost + 1, sub + 1, dele, ins)
            cost, sub, dele, ins = previous[j]
            if cost + 1 < best[0]:
                best = (cost + 1, sub, dele + 1, ins)
            cost, sub, dele, ins = current[j - 1]
            if cost + 1 < best[0]:
                best = (cost + 1, sub, dele, ins + 1)
            current.append(best)
        previous = current
    _, sub, dele, ins = previous[-1]
    return ErrorRate(sub, dele, ins, len(reference))


def _pairs(references: str | Iterable[str], hypotheses: str | Iterable[str]) -> list[tuple[str, str]]:
    references = [references] if isinstance(references, str) else list(references)
    hypotheses = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    return list(zip(references, hypotheses, strict=True))


def wer(references: str | Iterable[str], hypotheses: str | Iterable[str], *,
        normalizer: Callable[[str], str] | None = normalize_transcript) -> ErrorRate:
    """Word error rate of ``hypotheses`` against ``references`` (one string or equally long sequences of strings).

    Both sides go through ``normalizer`` first (pass ``None`` to score the text as given); words are then the
    whitespace-separated tokens. The result's ``rate`` is the WER, ``reference_length`` the number of reference
    words and ``errors`` the summed word-level edit distance.
    """
    total = ErrorRate()
    for reference, hypothesis in _pairs(references, hypotheses):
        if normalizer is not None:
            reference, hypothesis = normalizer(reference), normalizer(hypothesis)
        total += edit_operations(reference.split(), hypothesis.split())
    return total


def cer(references: str | Iterable[str], hypotheses: str | Iterable[str], *,
        normalizer: Callable[[str], str] | None = normalize_transcript) -> ErrorRate:
    """Character error rate, as :func:`wer` but over the characters of the normalised strings, the single spaces
    between words included (jiwer counts them too)."""
    total = ErrorRate()
    for reference, hypothesis in _pairs(references, hypotheses):
        if normalizer is not None:
            reference, hypothesis = normalizer(reference), normalizer(hypothesis)
        total += edit_operations(reference, hypothesis)
    return total
