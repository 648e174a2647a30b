"""Preparing one split with a model's processor (hf_binarize.data.splits): labels in the form the vocabulary writes,
on a cased and punctuated Common-Voice-shaped repository, and the refusal of splits whose words the vocabulary
cannot write."""

from __future__ import annotations

import logging
import string

import pytest

pytest.importorskip("datasets", reason="the data extra is not installed (pip install -e '.[data]')")
from common_voice import make_common_voice_like

from hf_binarize.data.splits import load_split, prepare_split
from hf_binarize.data.text import normalize_transcript
from hf_binarize.training import build_character_tokenizer, build_processor

SENTENCES = {
    "en": {"train": ["Hello, world!", "How are you today?", "It's a well-known fact, isn't it?", "Yes. No. Maybe!"]},
    # Each accented letter is one the cased tokenizer below lacks: 4 words of 11 hold one.
    "fr": {"train": ["Un café, s'il vous plaît.", "Où est la gare?", "Très bien!"]},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_common_voice_like(tmp_path_factory.mktemp("common_voice"), SENTENCES)


def processor_of(tokenizer):
    return build_processor(tokenizer, num_mel_bins=32)


def prepared(repo, tokenizer, config, **kwargs):
    raw = load_split(repo, "train", name=config, text_column="sentence")
    return prepare_split(raw, "train", processor_of(tokenizer), text_column="sentence", **kwargs)


def decoded_labels(tokenizer, rows) -> list[str]:
    return [tokenizer.decode(labels, skip_special_tokens=True, group_tokens=False) for labels in rows["labels"]]


def test_a_cased_punctuated_vocabulary_keeps_case_and_punctuation_in_labels(repo):
    cased = build_character_tokenizer(alphabet=string.ascii_letters + ",.?!'-")
    rows = prepared(repo, cased, "en")
    assert decoded_labels(cased, rows) == SENTENCES["en"]["train"]
    assert rows["text"] == SENTENCES["en"]["train"]  # the references stay as written


def test_a_lower_case_vocabulary_gets_lower_case_unpunctuated_labels(repo):
    ours = build_character_tokenizer()
    rows = prepared(repo, ours, "en")
    assert decoded_labels(ours, rows) == [normalize_transcript(s) for s in SENTENCES["en"]["train"]]
    assert decoded_labels(ours, rows)[2] == "it's a well known fact isn't it"
    assert rows["text"] == SENTENCES["en"]["train"]


def test_too_many_words_the_vocabulary_cannot_write_are_refused(repo, caplog):
    cased = build_character_tokenizer(alphabet=string.ascii_letters + ",.?!'-")
    with pytest.raises(ValueError) as refused:
        prepared(repo, cased, "fr", max_unknown_share=0.01)
    assert str(refused.value) == (
        "train: 4 of 11 words (36.36%) hold a character the vocabulary lacks (4 <unk> labels), e.g. 'café,', "
        "'plaît.', 'Où', 'Très' (missing è é î ù), more than the 1% allowed (--max-unknown-words): use a model "
        "whose vocabulary has these characters, or fix the transcripts, or raise the limit")
    caplog.clear()
    # The same preparation again reads datasets' cache of the first: the counts come back with it.
    with caplog.at_level(logging.WARNING, logger="hf_binarize.data.preparation"):
        rows = prepared(repo, cased, "fr", max_unknown_share=0.5)
    assert len(rows) == 3
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("labels:")] == [
        "labels: 4 of 11 words (36.36%) hold a character the vocabulary lacks (4 <unk> labels), e.g. 'café,', "
        "'plaît.', 'Où', 'Très' (missing è é î ù)"]
