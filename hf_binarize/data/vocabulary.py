"""Transcripts as a model's vocabulary can write them: the form training labels take, chosen by the tokenizer, and
the count of words it cannot write (labels that become ``<unk>``).

:func:`label_normalizer` looks at the characters of the tokenizer's pieces (special tokens and control pieces in
angle brackets, such as ``<|pnc|>``, left out):

* A vocabulary with neither upper-case letters nor punctuation beyond the apostrophe and the decimal point (the
  character and subword tokenizers of :mod:`hf_binarize.training`, built from such text, and lower-case Hub
  vocabularies) gets :func:`hf_binarize.data.text.normalize_transcript`: lower case, punctuation dropped.
* Any other (the cased and punctuated SentencePiece vocabularies of Parakeet TDT v2/v3, say) gets a
  :class:`LabelNormalizer`, which keeps the transcript as written, so that training does not teach the model to
  drop what it writes: Unicode NFKC, apostrophe look-alikes as ``'`` when the vocabulary has ``'`` but not them,
  lower case only when the vocabulary has no upper-case letter, punctuation, symbols and invisible format
  characters the vocabulary lacks replaced by a space (a quotation mark it cannot write is not a word), whitespace
  collapsed. Letters and digits it lacks are kept: they become ``<unk>`` and are counted.

:class:`UnknownLabels` counts, per split, the label tokens that are ``<unk>`` and the words (whitespace-separated,
of the label text) that hold one, with a few examples; training refuses a split where too many words do
(:func:`hf_binarize.data.splits.prepare_split`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .text import normalize_transcript

WORD_DELIMITER = "▁"
_APOSTROPHE_LOOKALIKES = "’‘ʼ′`"
# What normalize_transcript leaves of punctuation: apostrophes inside words, the point of a decimal number.
_BASIC_PUNCTUATION = {"'", "."}
EXAMPLES = 5
"""Distinct example words an :class:`UnknownLabels` keeps."""


def _is_control_piece(piece: str) -> bool:
    return len(piece) > 2 and piece.startswith("<") and piece.endswith(">")


def vocabulary_characters(tokenizer: Any) -> str:
    """The characters the tokenizer's pieces are made of, sorted, without the word delimiter ``▁``; special tokens
    and control pieces in angle brackets (``<unk>``, ``<|nospeech|>``) are not text and are left out."""
    special = set(tokenizer.all_special_tokens)
    characters = {character for piece in tokenizer.get_vocab() if piece not in special and not _is_control_piece(piece)
                  for character in piece}
    return "".join(sorted(characters - {WORD_DELIMITER}))


def _is_punctuation(character: str) -> bool:
    return unicodedata.category(character).startswith("P")


@dataclass(frozen=True)
class LabelNormalizer:
    """A transcript as a cased or punctuated vocabulary writes it (see the module docstring). ``characters`` is
    :func:`vocabulary_characters`, a sorted string so that it pickles, and hashes for ``datasets``' cache, the same
    in every process."""

    characters: str
    lowercase: bool

    def __call__(self, text: str | None) -> str:
        if not text:
            return ""
        text = unicodedata.normalize("NFKC", text)
        if "'" in self.characters:
            text = "".join("'" if c in _APOSTROPHE_LOOKALIKES and c not in self.characters else c for c in text)
        if self.lowercase:
            text = text.lower()
        return " ".join("".join(" " if unicodedata.category(c)[0] in "PSC" and c not in self.characters else c
                                for c in text).split())


def label_normalizer(tokenizer: Any) -> Callable[[str], str]:
    """The normaliser of training labels that ``tokenizer``'s vocabulary calls for (see the module docstring)."""
    characters = vocabulary_characters(tokenizer)
    cased = any(c.isupper() for c in characters)
    punctuated = any(_is_punctuation(c) and c not in _BASIC_PUNCTUATION for c in characters)
    if not cased and not punctuated:
        return normalize_transcript
    return LabelNormalizer(characters, lowercase=not cased)


@dataclass(frozen=True)
class UnknownLabels:
    """Labels the vocabulary cannot write: ``tokens`` label ids that are ``<unk>``, ``words`` of the label texts
    that hold one (out of ``total_words``), and up to :data:`EXAMPLES` distinct such words, first seen first."""

    tokens: int = 0
    words: int = 0
    total_words: int = 0
    examples: tuple[str, ...] = field(default=())

    @property
    def share(self) -> float:
        """``words / total_words``, 0.0 when there are no words."""
        return self.words / self.total_words if self.total_words else 0.0

    @classmethod
    def of(cls, tokens: int, words: Sequence[str], total_words: int) -> UnknownLabels:
        """The count of ``tokens`` ``<unk>`` ids and the label ``words`` holding one, out of ``total_words``."""
        return cls(tokens, len(words), total_words, tuple(dict.fromkeys(words))[:EXAMPLES])

    def __add__(self, other: UnknownLabels) -> UnknownLabels:
        examples = tuple(dict.fromkeys(self.examples + other.examples))[:EXAMPLES]
        return UnknownLabels(self.tokens + other.tokens, self.words + other.words,
                             self.total_words + other.total_words, examples)

    def describe(self, characters: str | None = None) -> str:
        """``3 of 40 words (7.50%) hold a character the vocabulary lacks (3 <unk> labels), e.g. 'café', 'Niño'``,
        followed by the missing characters of the examples when ``characters`` (:func:`vocabulary_characters`)
        is given."""
        text = (f"{self.words:,} of {self.total_words:,} words ({100 * self.share:.2f}%) hold a character the "
                f"vocabulary lacks ({self.tokens:,} <unk> label{'s' if self.tokens != 1 else ''})")
        if self.examples:
            text += ", e.g. " + ", ".join(repr(word) for word in self.examples)
        if characters is not None:
            missing = sorted({c for word in self.examples for c in word if c not in characters})
            if missing:
                text += f" (missing {' '.join(missing)})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "words": self.words, "total_words": self.total_words,
                "examples": list(self.examples)}


def count_unknown(tokenizer: Any, text: str, labels: Sequence[int]) -> tuple[int, list[str]]:
    """The ``<unk>`` ids among ``labels`` (the ids of label text ``text``) and the words of ``text`` holding one,
    repeats included. Words are tokenized one by one (the pre-tokenizers of Parakeet vocabularies split at spaces,
    so a word tokenizes alone as it does in context), only when there is an ``<unk>`` at all."""
    unk = tokenizer.unk_token_id
    tokens = 0 if unk is None else sum(label == unk for label in labels)
    if not tokens:
        return 0, []
    return tokens, [word for word in text.split() if unk in tokenizer(word, add_special_tokens=False)["input_ids"]]
