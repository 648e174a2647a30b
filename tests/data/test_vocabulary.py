"""Training labels in the form a vocabulary can write, and the count of words it cannot (hf_binarize.data.vocabulary),
against hand-worked examples and hand counts."""

from __future__ import annotations

import string

import pytest
from tokenizers import Tokenizer, models
from transformers import ParakeetTokenizer

from hf_binarize.data.text import normalize_transcript
from hf_binarize.data.vocabulary import (
    LabelNormalizer,
    UnknownLabels,
    count_unknown,
    label_normalizer,
    vocabulary_characters,
)
from hf_binarize.training import build_character_tokenizer
from hf_binarize.training.subword_tokenizer import build_subword_tokenizer

CASED_PUNCTUATED = string.ascii_letters + ",.?!'-"


def word_level(pieces: list[str]) -> ParakeetTokenizer:
    """A tokenizer whose vocabulary is exactly ``pieces`` (plus <unk> and <blank>), for what label_normalizer reads."""
    vocab = {"<unk>": 0, **{piece: i + 1 for i, piece in enumerate(pieces)}}
    vocab["<blank>"] = len(vocab)
    return ParakeetTokenizer(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
                             unk_token="<unk>", pad_token="<blank>")


def test_our_tokenizers_get_the_basic_normaliser():
    texts = [normalize_transcript(t) for t in ("Hello, World! It's 3.5 o'clock.", "Café au lait, s'il vous plaît.")]
    assert label_normalizer(build_character_tokenizer(texts)) is normalize_transcript
    assert label_normalizer(build_subword_tokenizer(texts * 10, vocab_size=80)) is normalize_transcript
    # Lower-case Hub vocabularies with the apostrophe (parakeet-rnnt-1.1b's kind), control pieces aside.
    assert label_normalizer(word_level(["▁the", "▁don't", "s", "<|nospeech|>", "<|pnc|>"])) is normalize_transcript


@pytest.mark.parametrize(("pieces", "text", "expected"), [
    # Cased and punctuated (Parakeet TDT v2/v3): as written; a quotation mark and a dash it lacks become spaces,
    # the typographic apostrophe its ASCII form, letters it lacks stay (they become <unk>).
    (list(CASED_PUNCTUATED), '"Hello," she said — don’t  you   know?  Café!',
     "Hello, she said don't you know? Café!"),
    (list(CASED_PUNCTUATED), "Ｆｕｌｌ\u00a0width ﬁne.", "Full width fine."),  # NFKC
    # Punctuated, lower case only: lower-cased, punctuation kept.
    (list(string.ascii_lowercase + ",.?'"), "Hello, World! Is it?", "hello, world is it?"),
    # Cased, no punctuation beyond the apostrophe: case kept, punctuation dropped.
    (list(string.ascii_letters + "'"), "Hello, World! It's me.", "Hello World It's me"),
])
def test_cased_or_punctuated_vocabularies_keep_what_they_have(pieces, text, expected):
    normalizer = label_normalizer(word_level(pieces))
    assert isinstance(normalizer, LabelNormalizer)
    assert normalizer(text) == expected
    assert normalizer(expected) == expected and normalizer(None) == ""


def test_vocabulary_characters_leave_out_special_and_control_pieces():
    tokenizer = word_level(["▁He", "llo", ",", "<|endoftext|>", "<|pnc|>"])
    assert vocabulary_characters(tokenizer) == ",Helo"


def test_unknown_labels_hand_count():
    tokenizer = build_character_tokenizer(alphabet=CASED_PUNCTUATED)
    texts = ["Café au lait", "El Niño and the café", "plain words"]
    counts = [count_unknown(tokenizer, text, tokenizer(text, add_special_tokens=False)["input_ids"])
              for text in texts]
    # One missing character per word here: é, ñ and é again.
    assert counts == [(1, ["Café"]), (2, ["Niño", "café"]), (0, [])]
    total = UnknownLabels.of(3, ["Café", "Niño", "café"], 3 + 5 + 2)
    assert (total.tokens, total.words, total.total_words, total.examples) == (3, 3, 10, ("Café", "Niño", "café"))
    assert total.share == pytest.approx(0.3)
    assert total.describe(vocabulary_characters(tokenizer)) == (
        "3 of 10 words (30.00%) hold a character the vocabulary lacks (3 <unk> labels), e.g. 'Café', 'Niño', 'café' "
        "(missing é ñ)")
    # Sums keep the first distinct examples, up to five.
    many = sum((UnknownLabels.of(1, [word, word], 4) for word in "abcdefg"), UnknownLabels())
    assert (many.tokens, many.words, many.total_words, many.examples) == (7, 14, 28, tuple("abcde"))
    assert UnknownLabels().share == 0.0
