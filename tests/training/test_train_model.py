"""The small RNN-T the float recipe trains: 4x subsampling, vocabulary and blank from the processor, what generate
needs, and the check that labels fit the encoder frames."""

from __future__ import annotations

import logging

import pytest
import torch
from training_helpers import MEL_BINS, TINY_SIZE, tiny_model, tiny_processor

from hf_binarize.training import (
    ParakeetArchitecture,
    build_character_tokenizer,
    build_parakeet_model,
    build_processor,
    encoder_frames,
    labels_over_frames,
)


def test_the_model_matches_its_processor():
    processor = tiny_processor()
    model = tiny_model(processor)
    config = model.config
    assert config.encoder_config.subsampling_factor == 4 and config.encoder_config.layerdrop == 0.0
    assert config.encoder_config.num_mel_bins == MEL_BINS
    assert config.vocab_size == len(processor.tokenizer)
    assert config.blank_token_id == config.pad_token_id == processor.blank_token_id == config.vocab_size - 1
    assert model.generation_config.decoder_start_token_id == config.blank_token_id
    # Seeded: the same seed gives the same weights.
    torch.testing.assert_close(tiny_model(processor).state_dict(), model.state_dict(), rtol=0, atol=0)


def test_default_size_is_the_reference_model():
    model = build_parakeet_model(build_processor(build_character_tokenizer()), ParakeetArchitecture())
    assert 5.5e6 < model.num_parameters() < 5.7e6


def test_encoder_frames_are_the_encoder_output_lengths():
    model = tiny_model().eval()
    features = torch.randn(3, 101, MEL_BINS)
    mask = torch.zeros(3, 101, dtype=torch.long)
    lengths = [101, 64, 9]
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    with torch.no_grad():
        output = model.encoder(features, attention_mask=mask)
    assert encoder_frames(model, lengths) == output.attention_mask.sum(-1).tolist()
    assert encoder_frames(model, [400]) == [100]


def test_labels_over_frames_counts_and_warns(caplog):
    model = tiny_model()
    with caplog.at_level(logging.INFO, logger="hf_binarize"):
        assert labels_over_frames(model, [400, 400], [60, 80]) == 0.0
        assert "WARNING" not in caplog.text
        assert labels_over_frames(model, [400, 400, 40, 40], [60, 101, 5, 20]) == 0.5
    assert "50.0% of utterances have more labels than encoder frames" in caplog.text


@pytest.mark.parametrize("factor", [3, 1])
def test_subsampling_must_be_a_power_of_two(factor):
    with pytest.raises(ValueError, match="power of 2"):
        build_parakeet_model(tiny_processor(), ParakeetArchitecture(**{**TINY_SIZE.__dict__, "subsampling_factor": factor}))


def test_tdt_and_ctc_models_match_their_processor():
    processor = tiny_processor()
    blank = processor.blank_token_id
    tdt = tiny_model(processor, family="tdt")
    assert type(tdt).__name__ == "ParakeetForTDT"
    assert tdt.config.blank_token_id == tdt.config.pad_token_id == blank == tdt.config.vocab_size - 1
    assert tdt.generation_config.decoder_start_token_id == blank
    # The joint predicts the tokens and, beside them, one of transformers' default durations.
    assert list(tdt.config.durations) == [0, 1, 2, 3, 4]
    assert tdt.joint.head.out_features == len(processor.tokenizer) + 5
    ctc = tiny_model(processor, family="ctc")
    assert type(ctc).__name__ == "ParakeetForCTC"
    assert ctc.config.pad_token_id == blank and ctc.config.vocab_size == len(processor.tokenizer)
    assert ctc.ctc_head.out_channels == len(processor.tokenizer)
    # One encoder for all families: the same seed and sizes give the same encoder weights.
    rnnt = tiny_model(processor)
    for model in (tdt, ctc):
        torch.testing.assert_close(model.encoder.state_dict(), rnnt.encoder.state_dict(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="family must be one of ctc, rnnt, tdt"):
        tiny_model(processor, family="las")


def test_tdt_generate_never_emits_a_duration_as_a_token():
    model = tiny_model(family="tdt").eval()
    vocab = model.config.vocab_size
    with torch.no_grad():
        model.joint.head.bias[vocab:] += 100.0  # every duration logit above every token logit
    features = torch.randn(1, 64, MEL_BINS, generator=torch.Generator().manual_seed(0))
    output = model.generate(input_features=features, attention_mask=torch.ones(1, 64, dtype=torch.long))
    assert int(output.sequences.max()) < vocab
