"""The small RNN-T the float recipe trains: 4x subsampling, vocabulary and blank from the processor, what generate
needs, and the check that labels fit the encoder frames."""

from __future__ import annotations

import logging

import pytest
import torch
from training_helpers import MEL_BINS, TINY_SIZE, tiny_model, tiny_processor

from hf_binarize.training import (
    RNNTArchitecture,
    build_character_tokenizer,
    build_processor,
    build_rnnt_model,
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
    model = build_rnnt_model(build_processor(build_character_tokenizer()), RNNTArchitecture())
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
        build_rnnt_model(tiny_processor(), RNNTArchitecture(**{**TINY_SIZE.__dict__, "subsampling_factor": factor}))
