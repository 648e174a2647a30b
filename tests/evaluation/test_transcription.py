"""Greedy transcription leaves the model as it found it (hf_binarize.evaluation.transcription)."""

from __future__ import annotations

import copy

import numpy as np
import torch
from conftest import BLANK, MEL_BINS, build_model

from hf_binarize.evaluation import transcribe


class Characters:
    """The tokenizer surface transcribe uses: ids to text."""

    def batch_decode(self, sequences, **_):
        return [" ".join(str(int(token)) for token in row if int(token) != BLANK) for row in sequences]


def test_transcribe_keeps_the_models_generation_config_and_mode():
    model = build_model("rnnt").train()
    model.generation_config.decoder_start_token_id = None
    before = copy.deepcopy(model.generation_config.to_dict())
    rng = np.random.default_rng(0)
    examples = [{"input_features": rng.standard_normal((frames, MEL_BINS)).astype(np.float32), "labels": [1, 2],
                 "length": frames, "text": "1 2"} for frames in (40, 64, 24)]
    first = transcribe(model, Characters(), examples, batch_size=2)
    assert model.generation_config.to_dict() == before and model.training
    with torch.no_grad():
        assert transcribe(model, Characters(), examples, batch_size=2) == first
