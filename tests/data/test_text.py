"""Transcript normalisation and WER/CER against hand-worked examples and a brute-force edit distance."""

from __future__ import annotations

import functools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hf_binarize.data.text as hf_text
from hf_binarize.data.text import ErrorRate, cer, edit_operations, normalize_transcript, spell_integer, wer


@pytest.mark.parametrize(("text", "expected"), [
    ("Hello,   World!", "hello world"),
    ("It’s  o'clock; don't  ", "it's o'clock don't"),
    ("'Quoted' and the dogs' bowls", "quoted and the dogs bowls"),
    ("well-known U.S.A. e-mail", "well known u s a e mail"),
    ("ﬁne Ｆｕｌｌ width\u00a0space", "fine full width space"),
    ("Café NAÏVE façade", "café naïve façade"),
    ("It costs $1,000,000.50 or 3.5%", "it costs 1000000.50 or 3.5"),
    ("the 21st of 1969", "the 21st of 1969"),
    ("snake_case under_score", "snake case under score"),
    ("", ""),
    (None, ""),
    (" ?! ", ""),
])
def test_normalize_transcript(text, expected):
    assert normalize_transcript(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("21 cats", "twenty one cats"),
    ("1,000,000 people", "one million people"),
    ("in 1969", "in one thousand nine hundred sixty nine"),
    ("pi is 3.14", "pi is three point one four"),
    ("the 1st, 2nd, 3rd, 12th and 21st", "the first second third twelfth and twenty first"),
    ("room 101b and b52", "room 101b and b52"),  # digits glued to letters are identifiers, left alone
])
def test_normalize_transcript_spells_numbers(text, expected):
    assert normalize_transcript(text, numbers="words") == expected


# Worked by hand from the rules of openai-whisper's EnglishTextNormalizer (whisper/normalizers/english.py): lower
# case, bracketed and parenthesised text and hesitations dropped, contractions and titles expanded, diacritics
# dropped, spelled numbers as digits with their currency and percent signs, no spelling table here.
@pytest.mark.parametrize(("sentence", "expected"), [
    ("Hello,   World!", "hello world"),
    ("Mr. Smith won't pay.", "mister smith will not pay"),
    ("[noise] Um, it's (laughs) fine", "it is fine"),
    ("we'd gone; they're here; I'll go", "we had gone they are here i will go"),
    ("Dr. St. James", "doctor saint james"),
    ("Café NAÏVE œuvre Straße", "cafe naive oeuvre strasse"),
    ("twenty-one cats, the twenty first", "21 cats the 21st"),
    ("ten percent of five dollars", "10% of $5"),
    ("It cost 1,000 or 3.5.", "it cost 1000 or 3.5"),
    ("one oh one", "101"),
    ("colour", "colour"),
    ("", ""),
    (None, ""),
])
def test_normalize_whisper(sentence, expected):
    assert hf_text.normalize_whisper(sentence) == expected


def test_scoring_normalizers_by_name():
    assert hf_text.scoring_normalizer("basic") is normalize_transcript
    assert hf_text.scoring_normalizer("whisper") is hf_text.normalize_whisper
    assert hf_text.scoring_normalizer("none")("  Hello,\tWorld!  ") == "Hello, World!"
    assert list(hf_text.SCORING_NORMALIZERS) == ["basic", "whisper", "none"]
    with pytest.raises(ValueError, match="no normaliser 'nemo': choose one of basic, whisper, none"):
        hf_text.scoring_normalizer("nemo")


def test_normalisation_is_idempotent():
    for text in ("Hello, World! It’s 3.5 o'clock.", "The dogs' bowls: 1,000 'quoted' U.S.A."):
        for numbers in ("digits", "words"):
            once = normalize_transcript(text, numbers=numbers)
            assert normalize_transcript(once, numbers=numbers) == once


def test_spell_integer():
    assert spell_integer(0) == "zero"
    assert spell_integer(15) == "fifteen"
    assert spell_integer(90) == "ninety"
    assert spell_integer(105) == "one hundred five"
    assert spell_integer(2_000_017) == "two million seventeen"
    assert spell_integer(1_234_567_890_123) == ("one trillion two hundred thirty four billion five hundred sixty "
                                                "seven million eight hundred ninety thousand one hundred twenty three")
    with pytest.raises(ValueError):
        spell_integer(-1)
    with pytest.raises(ValueError):
        normalize_transcript("x", numbers="roman")


def test_wer_hand_examples():
    # One substitution (two -> too), one deletion (four), one insertion (eight); every other alignment costs more.
    result = wer("one two three four five six", "one too three five six eight")
    assert (result.substitutions, result.deletions, result.insertions) == (1, 1, 1)
    assert result.errors == 3 and result.reference_length == 6 and result.rate == 0.5
    # Normalisation makes case and punctuation free; without it they count.
    assert wer("Hello, world!", "hello world").errors == 0
    assert wer("Hello, world!", "hello world", normalizer=None).errors == 2
    # Corpus level: summed errors over summed reference words, not a mean of per-utterance rates.
    corpus = wer(["a b c d", "e"], ["a b c d", "f"])
    assert corpus.errors == 1 and corpus.reference_length == 5 and corpus.rate == pytest.approx(0.2)
    assert wer(["a"], ["a b c"]).rate == 2.0  # insertions can push WER above 1


def test_empty_references():
    assert wer("", "").rate == 0.0
    assert wer("", "oops").rate == math.inf
    assert wer("a b", "").deletions == 2
    with pytest.raises(ValueError):
        wer(["a", "b"], ["a"])


def test_cer_counts_characters_and_spaces():
    result = cer("abc de", "abd de")
    assert result.errors == 1 and result.reference_length == 6
    assert cer("ab", "a b").insertions == 1
    assert cer("The Cat.", "the cat").errors == 0


def brute_force_distance(reference: tuple, hypothesis: tuple) -> int:
    """The edit distance by the textbook recursion (the classic definition, not the row DP under test)."""

    @functools.cache
    def distance(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(distance(i - 1, j) + 1, distance(i, j - 1) + 1,
                   distance(i - 1, j - 1) + (reference[i - 1] != hypothesis[j - 1]))

    return distance(len(reference), len(hypothesis))


def achievable_operations(reference: tuple, hypothesis: tuple) -> set[tuple[int, int, int]]:
    """Every (substitutions, deletions, insertions) of every alignment, by exhaustive enumeration."""

    @functools.cache
    def walk(i: int, j: int) -> frozenset:
        if i == 0 and j == 0:
            return frozenset({(0, 0, 0)})
        outcomes = set()
        if i and j:
            cost = int(reference[i - 1] != hypothesis[j - 1])
            outcomes |= {(s + cost, d, n) for s, d, n in walk(i - 1, j - 1)}
        if i:
            outcomes |= {(s, d + 1, n) for s, d, n in walk(i - 1, j)}
        if j:
            outcomes |= {(s, d, n + 1) for s, d, n in walk(i, j - 1)}
        return frozenset(outcomes)

    return set(walk(len(reference), len(hypothesis)))


tokens = st.lists(st.sampled_from("abcd"), max_size=7).map(tuple)


@settings(max_examples=300, deadline=None)
@given(tokens, tokens)
def test_edit_operations_match_brute_force(reference, hypothesis):
    result = edit_operations(reference, hypothesis)
    assert result.errors == brute_force_distance(reference, hypothesis)
    # The split into kinds is that of a real minimum-cost alignment.
    assert (result.substitutions, result.deletions, result.insertions) in achievable_operations(reference, hypothesis)
    assert result.reference_length == len(reference)
    hits = len(reference) - result.substitutions - result.deletions
    assert hits == len(hypothesis) - result.substitutions - result.insertions >= 0


def test_error_rates_add_up():
    total = ErrorRate(1, 2, 3, 10) + ErrorRate(1, 0, 0, 5)
    assert total == ErrorRate(2, 2, 3, 15) and total.errors == 7


# --------------------------------------------------------------------------------------------------------------------
# Agreement with the ecosystem's metric: the `evaluate` library's "wer" and "cer" modules (which load from the Hub,
# unreachable here) compute with jiwer, summing per pair: errors = S + D + I, reference length = S + D + H, over
# jiwer.process_words / process_characters. Computed here exactly that way, independently of our alignment.
# --------------------------------------------------------------------------------------------------------------------

_WORDS = st.lists(st.sampled_from(["a", "b", "cat", "dog", "the", "on", "x"]), max_size=9).map(" ".join)
_PAIRS = st.lists(st.tuples(_WORDS.filter(bool), _WORDS), min_size=1, max_size=5)


def _evaluate_metric(pairs, process) -> tuple[int, int]:
    # evaluate's wer.py / cer.py with concatenate_texts=False.
    errors = length = 0
    for reference, hypothesis in pairs:
        out = process(reference, hypothesis)
        errors += out.substitutions + out.deletions + out.insertions
        length += out.substitutions + out.deletions + out.hits
    return errors, length


@settings(max_examples=200, deadline=None)
@given(_PAIRS)
def test_wer_and_cer_equal_the_evaluate_metrics(pairs):
    jiwer = pytest.importorskip("jiwer", reason="pip install jiwer (test extra) to compare with evaluate's metrics")
    references, hypotheses = zip(*pairs, strict=True)
    ours = wer(list(references), list(hypotheses), normalizer=None)
    assert (ours.errors, ours.reference_length) == _evaluate_metric(pairs, jiwer.process_words)
    ours = cer(list(references), list(hypotheses), normalizer=None)
    assert (ours.errors, ours.reference_length) == _evaluate_metric(pairs, jiwer.process_characters)
