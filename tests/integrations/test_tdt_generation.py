"""A TDT checkpoint whose generation config does not suppress its duration ids (as Hub checkpoints ship) decodes
only vocabulary tokens once hf-binarize loads it, packed or in QAT, and the packed folder it saves keeps that."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForTDT, ParakeetForTDT, ParakeetTDTConfig

from hf_binarize import BinaryQuantizationConfig

VOCAB = 12


def _tdt_folder(folder):
    encoder = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                   subsampling_factor=4, subsampling_conv_channels=8, num_mel_bins=16)
    torch.manual_seed(0)
    model = ParakeetForTDT(ParakeetTDTConfig(encoder_config=encoder, vocab_size=VOCAB, blank_token_id=VOCAB - 1,
                                             pad_token_id=VOCAB - 1, decoder_hidden_size=32))
    model.generation_config.decoder_start_token_id = VOCAB - 1
    with torch.no_grad():
        model.joint.head.bias[VOCAB:] += 20.0  # every duration outscores every token
    model.save_pretrained(folder)
    return folder


def _generate(model):
    features = torch.randn(1, 64, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.generate(input_features=features, attention_mask=torch.ones(1, 64, dtype=torch.long),
                              max_new_tokens=40).sequences


def test_the_float_checkpoint_emits_durations_as_tokens(tmp_path):
    """The premise: without the suppression transformers' generate picks a duration id and crashes on it."""
    model = AutoModelForTDT.from_pretrained(_tdt_folder(tmp_path / "float"))
    assert not model.generation_config.suppress_tokens
    with pytest.raises(IndexError):
        _generate(model)


@pytest.mark.parametrize("mode", ["packed", "qat"])
def test_loading_with_the_quantizer_suppresses_the_durations(mode, tmp_path):
    model = AutoModelForTDT.from_pretrained(_tdt_folder(tmp_path / "float"),
                                            quantization_config=BinaryQuantizationConfig(mode=mode))
    durations = len(model.config.durations)
    assert model.generation_config.suppress_tokens == list(range(VOCAB, VOCAB + durations))
    assert int(_generate(model).max()) < VOCAB
    if mode == "packed":
        model.save_pretrained(tmp_path / "packed")
        saved = json.loads((tmp_path / "packed" / "generation_config.json").read_text())
        assert saved["suppress_tokens"] == list(range(VOCAB, VOCAB + durations))
        again = AutoModelForTDT.from_pretrained(tmp_path / "packed")
        assert again.generation_config.suppress_tokens == list(range(VOCAB, VOCAB + durations))
