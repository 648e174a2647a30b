"""Tiny, locally built models shared by the tests (no Hub access anywhere)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    ParakeetCTCConfig,
    ParakeetForCTC,
    ParakeetForRNNT,
    ParakeetForTDT,
    ParakeetRNNTConfig,
    ParakeetTDTConfig,
)
from transformers.loss.loss_utils import LOSS_MAPPING

from hf_binarize.losses import register

VOCAB = 29
BLANK = VOCAB - 1
MEL_BINS = 32


def encoder_config(hidden: int = 64, intermediate: int = 128, layers: int = 2) -> dict:
    return dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=intermediate,
                subsampling_conv_channels=16, num_mel_bins=MEL_BINS, subsampling_factor=4)


def build_model(kind: str, seed: int = 0, hidden: int = 64, intermediate: int = 128) -> nn.Module:
    """A random model of ``kind`` with weights scaled by 1/sqrt(fan_in), so that activations (and the tokens a
    greedy decoder emits) vary with the input instead of collapsing to one token."""
    torch.manual_seed(seed)
    enc = encoder_config(hidden, intermediate)
    if kind == "rnnt":
        model = ParakeetForRNNT(ParakeetRNNTConfig(encoder_config=enc, vocab_size=VOCAB, blank_token_id=BLANK,
                                                   pad_token_id=BLANK, decoder_hidden_size=48, num_decoder_layers=2))
    elif kind == "tdt":
        model = ParakeetForTDT(ParakeetTDTConfig(encoder_config=enc, vocab_size=VOCAB, blank_token_id=BLANK,
                                                 pad_token_id=BLANK, decoder_hidden_size=48))
    elif kind == "ctc":
        model = ParakeetForCTC(ParakeetCTCConfig(encoder_config=enc, vocab_size=VOCAB, pad_token_id=BLANK))
    elif kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=intermediate,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             tie_word_embeddings=False, max_position_embeddings=64))
    else:
        raise ValueError(kind)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2 and "embed" not in name:
                fan_in = param[0].numel()
                param.normal_(0.0, 1.5 / math.sqrt(fan_in))
    if kind in ("rnnt", "tdt"):
        model.generation_config.decoder_start_token_id = BLANK
    return model.eval()


def audio_batch(seed: int = 1, frames: int = 120) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(2, frames, MEL_BINS, generator=generator)
    mask = torch.ones(2, frames, dtype=torch.long)
    mask[1, frames * 2 // 3 :] = 0
    return {"input_features": features, "attention_mask": mask}


SPEECH_KINDS = ("rnnt", "tdt", "ctc")
ALL_KINDS = (*SPEECH_KINDS, "llama")


@pytest.fixture(scope="session")
def float_folder(tmp_path_factory):
    """Saved float checkpoints, one per kind, built once per session."""
    cache: dict[str, str] = {}

    def get(kind: str) -> str:
        if kind not in cache:
            path = tmp_path_factory.mktemp(f"float-{kind}")
            build_model(kind).save_pretrained(path)
            cache[kind] = str(path)
        return cache[kind]

    return get


@pytest.fixture
def loss_mapping(monkeypatch):
    """transformers' LOSS_MAPPING, whose Parakeet entries a test may replace: they come back afterwards."""
    for key in ("ParakeetForRNNT", "ParakeetForTDT"):
        monkeypatch.setitem(LOSS_MAPPING, key, LOSS_MAPPING[key])
    return LOSS_MAPPING


@pytest.fixture
def installed(loss_mapping):
    """Our losses in LOSS_MAPPING for one test; transformers' come back afterwards."""
    assert register(force=True)
