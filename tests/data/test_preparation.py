"""Preparing speech examples: bad ones skipped and counted, or raised in strict mode (hf_binarize.data.preparation)."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
from speech_helpers import (
    BAD,
    GOOD,
    MEL_BINS,
    build_feature_extractor,
    build_tokenizer,
    make_audiofolder,
    needs_espeak,
    speak,
)

from hf_binarize.data.loading import load_speech_dataset
from hf_binarize.data.preparation import BadExampleError, SpeechPreparer


@pytest.fixture
def folder(tmp_path):
    """An audiofolder: train = the good clips then one per problem; test = two good clips."""
    make_audiofolder(tmp_path / "corpus" / "train", [*GOOD, *BAD.values()])
    make_audiofolder(tmp_path / "corpus" / "test", GOOD[:2])
    return tmp_path / "corpus"


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def feature_extractor():
    return build_feature_extractor()


def preparer_for(feature_extractor, tokenizer, **kwargs):
    return SpeechPreparer(feature_extractor, tokenizer, max_seconds=2.0, **kwargs)


def test_preparation_skips_and_counts_each_bad_example(folder, tmp_path, feature_extractor, tokenizer, caplog):
    raw = load_speech_dataset(folder, "train", cache_dir=str(tmp_path / "cache"))
    preparer = preparer_for(feature_extractor, tokenizer)
    with caplog.at_level(logging.INFO, logger="hf_binarize.data.preparation"):
        prepared = preparer.prepare(raw, keep_in_memory=True)
    assert preparer.skipped == dict.fromkeys(BAD, 1)
    assert prepared.num_rows == len(GOOD)
    summary = [record.getMessage() for record in caplog.records if "prepared" in record.getMessage()]
    assert summary == [f"prepared 3 of 10 examples; skipped 7 ({', '.join(f'{r}=1' for r in sorted(BAD))})"]

    # The transcripts stay as written (the references of scoring); the labels are in the lower-case, unpunctuated
    # form of this vocabulary.
    assert prepared["text"] == ["Hello, world!", "A quiet   tone.", "It's stereo"]
    assert prepared[0]["labels"] == tokenizer("hello world", add_special_tokens=False)["input_ids"]
    for row, seconds in zip(prepared, (1.0, 0.6, 0.8), strict=True):
        features = np.asarray(row["input_features"])
        # Resampled to 16 kHz: one frame per 160 samples.
        assert features.shape == (row["length"], MEL_BINS) and row["length"] == int(seconds * 16000) // 160
        assert np.isfinite(features).all()


def test_strict_mode_raises_naming_the_example_and_the_problem(folder, tmp_path, feature_extractor, tokenizer):
    raw = load_speech_dataset(folder, "train", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(BadExampleError, match=r"example 3: unreadable_audio \(unreadable audio") as caught:
        preparer_for(feature_extractor, tokenizer, strict=True).prepare(raw, keep_in_memory=True)
    assert caught.value.index == 3 and caught.value.reason == "unreadable_audio"
    assert pickle.loads(pickle.dumps(caught.value)).args == caught.value.args  # survives map(num_proc=...)
    only_silent = raw.select([5])
    with pytest.raises(BadExampleError, match=r"example 0: silent_audio \(peak -inf dBFS"):
        preparer_for(feature_extractor, tokenizer, strict=True).prepare(only_silent, keep_in_memory=True)


@needs_espeak
def test_espeak_speech_is_prepared(tmp_path, feature_extractor, tokenizer):
    import datasets

    texts = ["The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background."]
    raw = datasets.Dataset.from_dict({"audio": [{"bytes": speak(text, voice), "path": None}
                                                for text, voice in zip(texts, ("en-us", "en-gb+f3"), strict=True)],
                                      "text": texts})
    preparer = SpeechPreparer(feature_extractor, tokenizer)
    prepared = preparer.prepare(raw, keep_in_memory=True)
    assert not preparer.skipped and prepared.num_rows == 2
    assert prepared["text"] == texts
    assert prepared[0]["labels"] == tokenizer("the birch canoe slid on the smooth planks",
                                              add_special_tokens=False)["input_ids"]
    assert all(1.0 < length / 100 < 6.0 for length in prepared["length"])  # seconds of speech
