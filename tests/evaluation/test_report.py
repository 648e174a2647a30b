"""Scoring with each normaliser and counting what the vocabulary cannot write (hf_binarize.evaluation.report): an
oracle model, whose greedy output is the labels of each utterance, scores 0% on a cased and punctuated
Common-Voice-shaped repository whatever the normaliser; its words with characters the vocabulary lacks are counted
as by hand, in the record and the card."""

from __future__ import annotations

import json
import string
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from common_voice import make_common_voice_like

from hf_binarize.cards import load_results, model_card
from hf_binarize.data.splits import load_split, prepare_split
from hf_binarize.data.text import SCORING_NORMALIZERS
from hf_binarize.evaluation import score_model
from hf_binarize.size import size_report
from hf_binarize.training import (
    ParakeetArchitecture,
    build_character_tokenizer,
    build_parakeet_model,
    build_processor,
)

pytest.importorskip("datasets", reason="the data extra is not installed (pip install -e '.[data]')")

SENTENCES = {
    "en": {"test": ["It's twenty-one dollars, isn't it?", "Mr. Smith won't pay.", "Hello, world!",
                    "One oh one: the first, the second."]},
    # The accented letters are missing from the vocabulary: 4 words of 11 hold one (é, î, ù, è).
    "fr": {"test": ["Un café, s'il vous plaît.", "Où est la gare?", "Très bien!"]},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_common_voice_like(tmp_path_factory.mktemp("common_voice"), SENTENCES)


@pytest.fixture(scope="module")
def processor():
    return build_processor(build_character_tokenizer(alphabet=string.ascii_letters + ",.?!'-:"), num_mel_bins=32)


def oracle(processor, repo, config: str) -> torch.nn.Module:
    """A tiny RNN-T whose generate returns, for each utterance's features, that utterance's labels."""
    model = build_parakeet_model(processor, ParakeetArchitecture(hidden_size=32, num_layers=1, num_heads=2,
                                                         intermediate_size=64, subsampling_channels=8,
                                                         decoder_hidden_size=32))
    raw = load_split(repo, "test", name=config, text_column="sentence")
    examples = prepare_split(raw, "test", processor, text_column="sentence")
    labels = {np.asarray(row["input_features"], np.float32).tobytes(): row["labels"] for row in examples}
    blank = model.config.blank_token_id

    def generate(input_features, attention_mask, **_):
        rows = [labels[features[: int(mask.sum())].numpy().tobytes()]
                for features, mask in zip(input_features, attention_mask, strict=True)]
        sequences = torch.full((len(rows), max(map(len, rows))), blank, dtype=torch.long)
        for index, row in enumerate(rows):
            sequences[index, : len(row)] = torch.tensor(row)
        return SimpleNamespace(sequences=sequences, durations=torch.zeros_like(sequences))

    model.generate = generate
    return model


def score(model, processor, repo, config, normalizer, folder, limit=None, **kwargs):
    model.save_pretrained(folder)
    return score_model(model, processor, str(repo), split="test", audio_column="audio", text_column="sentence",
                       limit=limit, batch_size=3, threads=1, variant="oracle", model_name=str(folder),
                       size=size_report(model, folder), command="test", dataset_config=config, normalizer=normalizer,
                       **kwargs)


@pytest.mark.parametrize("normalizer", list(SCORING_NORMALIZERS))
def test_an_oracle_scores_zero_with_every_normaliser(repo, processor, normalizer, tmp_path):
    result = score(oracle(processor, repo, "en"), processor, repo, "en", normalizer, tmp_path)
    assert result.transcripts.references == SENTENCES["en"]["test"]
    assert result.transcripts.hypotheses == SENTENCES["en"]["test"]  # case and punctuation kept in the labels
    assert result.transcripts.wer.errors == 0 and result.transcripts.cer.errors == 0
    record = result.to_dict()
    assert record["normalizer"] == normalizer and record["wer"] == 0.0
    assert record["unknown_labels"] == {"tokens": 0, "words": 0, "total_words": 18, "examples": []}
    # By hand: "it's twenty one dollars isn't it" / "it is $21 is not it" / as written, and so on.
    assert record["words"] == {"basic": 6 + 4 + 2 + 7, "whisper": 6 + 5 + 2 + 5, "none": 5 + 4 + 2 + 7}[normalizer]


def test_words_the_vocabulary_cannot_write_are_counted(repo, processor, tmp_path):
    result = score(oracle(processor, repo, "fr"), processor, repo, "fr", "none", tmp_path / "oracle")
    # The oracle cannot do better than its labels: each <unk> drops a letter, and each such word is an error.
    assert result.transcripts.hypotheses == ["Un caf, s'il vous plat.", "O est la gare?", "Trs bien!"]
    assert result.transcripts.wer.errors == 4
    assert result.to_dict()["unknown_labels"] == {"tokens": 4, "words": 4, "total_words": 11,
                                                  "examples": ["café,", "plaît.", "Où", "Très"]}
    assert "labels 4 of 11 words (36.36%) hold a character the vocabulary lacks (4 <unk> labels)" in str(result)
    path = tmp_path / "oracle.json"
    result.write_json(path)
    assert json.loads(path.read_text())["unknown_labels"]["words"] == 4
    card = str(model_card(load_results([str(path)]), "oracle", "oracle"))
    assert (f"dataset `{repo}` (config `fr`), split `test`: 3 utterances" in card
            and "transcripts normalised with `none` (as written: case and punctuation count)" in card
            and "4 of 11 words of the transcripts hold a character the model's vocabulary lacks" in card
            and "cannot write them, e.g. `café,`, `plaît.`, `Où`, `Très`" in card)


@pytest.mark.parametrize("limit", [None, 2])
def test_a_streamed_split_scores_as_the_prepared_one(repo, processor, tmp_path, monkeypatch, limit):
    """Streamed without a limit, the split is scored window by window (two utterances per window here, so the
    three French ones take two): the same transcripts, counts and audio seconds as the split prepared whole."""
    from hf_binarize.evaluation import transcription

    monkeypatch.setattr(transcription, "STREAM_WINDOW", 2)
    model = oracle(processor, repo, "fr")
    whole = score(model, processor, repo, "fr", "none", tmp_path / "whole", limit=limit)
    streamed = score(model, processor, repo, "fr", "none", tmp_path / "streamed", limit=limit, streaming=True)
    assert len(whole.transcripts.references) == (limit or 3)
    assert streamed.transcripts.references == whole.transcripts.references
    assert streamed.transcripts.hypotheses == whole.transcripts.hypotheses
    assert streamed.audio_seconds == whole.audio_seconds
    assert streamed.to_dict()["unknown_labels"] == whole.to_dict()["unknown_labels"]
