"""The corpus text: the installed packages give tens of thousands of distinct readable sentences; what a speaker
would not read as its transcript is dropped; a missing package is named in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hf_binarize.data import text_sources
from hf_binarize.data.text import normalize_transcript
from hf_binarize.data.text_sources import SOURCES, MissingTextSourceError, load_sentences, readable

INSTALLED = all(source.path is None or source.path.exists() for source in SOURCES.values())
needs_text_packages = pytest.mark.skipif(
    not INSTALLED, reason="wordnet-base, fortunes-min or dict-gcide missing (scripts/install_system_deps.sh)")


@pytest.mark.parametrize("sentence", [
    "The birch canoe slid on the smooth planks.",
    "Not open or public",
    "Life is like a bad margarita, I thought.",
])
def test_ordinary_sentences_are_kept(sentence):
    assert readable(sentence) == sentence[0].upper() + sentence[1:]


@pytest.mark.parametrize("sentence", [
    "See https://example.com for the details",  # a URL
    "Call foo.bar(x) to get the value back",     # code
    "x = y + 1 is an assignment here",           # code, digits
    "He was born in 1913 in a small town",      # digits are read as words the normaliser does not write
    "Mr. Smith went to the market today",        # expanded abbreviation
    "The U.S. army crossed the river",           # dotted abbreviation
    "The NASA probe reached the planet",         # spelled-out capitals
    "| cell | cell | cell |",                    # a table
    "Too short",                                 # under MIN_WORDS
    " ".join(["word"] * 31),                     # over MAX_WORDS
    "A café in the old town square",             # non-ASCII letter
])
def test_unreadable_sentences_are_dropped(sentence):
    assert readable(sentence) is None


@needs_text_packages
def test_the_sources_give_over_fifty_thousand_distinct_sentences():
    sentences = load_sentences(list(SOURCES), max_per_source=25000, seed=0)
    by_source = {name: sum(sentence.source == name for sentence in sentences) for name in SOURCES}
    assert by_source["wordnet"] == 25000 and by_source["gcide"] > 24000
    assert by_source["fortunes"] > 500 and by_source["harvard"] > 700
    keys = [normalize_transcript(sentence.text) for sentence in sentences]
    assert len(set(keys)) == len(keys) > 50000
    assert all(readable(sentence.text) == sentence.text for sentence in sentences[::97])
    assert load_sentences(list(SOURCES), max_per_source=25000, seed=0) == sentences


def test_a_missing_package_is_named_in_one_line(monkeypatch, tmp_path):
    missing = dataclasses.replace(SOURCES["gcide"], path=tmp_path / "gcide.dict.dz")
    monkeypatch.setitem(text_sources.SOURCES, "gcide", missing)
    with pytest.raises(MissingTextSourceError) as error:
        load_sentences(["harvard", "gcide"])
    assert str(error.value).endswith("apt-get install dict-gcide") and "\n" not in str(error.value)


def test_unknown_sources_are_refused():
    with pytest.raises(ValueError, match="unknown text sources"):
        load_sentences(["python-docstrings"])


def test_no_source_reads_python_or_festival():
    # Both are reserved for the independent evaluation set.
    for source in SOURCES.values():
        assert source.path is None or not {"python", "festival"} & set(Path(source.path).parts)
