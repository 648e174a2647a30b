"""The recipes' callbacks and greedy transcription: the warm-up mix follows the global step (so a resumed run
continues its ramp), training utterances are decoded every N steps on the main process only, and decoding leaves
the model's mode and the random number generators as they were."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from training_helpers import fake_examples, tiny_model, tiny_processor
from transformers import TrainerControl, TrainerState, TrainingArguments

from hf_binarize import BinaryQuantizationConfig, QATModule, quantize_model
from hf_binarize.training import BinarizationWarmupCallback, DecodeTrainingSamplesCallback, transcribe


def qat_model() -> nn.Module:
    return quantize_model(nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 4)), BinaryQuantizationConfig(mode="qat"))


def mixes(model: nn.Module) -> set[float]:
    return {module.mix for module in model.modules() if isinstance(module, QATModule)}


def test_warmup_ramps_with_the_global_step(tmp_path):
    model, callback = qat_model(), BinarizationWarmupCallback(4)
    args, control = TrainingArguments(output_dir=str(tmp_path), report_to="none"), TrainerControl()
    seen = []
    for step in (0, 1, 2, 3, 4, 9):
        callback.on_step_begin(args, TrainerState(global_step=step), control, model=model)
        seen.append(mixes(model))
    assert seen == [{0.0}, {0.25}, {0.5}, {0.75}, {1.0}, {1.0}]
    callback.on_train_begin(args, TrainerState(global_step=2), control, model=model)  # resumed at step 2
    assert mixes(model) == {0.5}
    callback.on_train_end(args, TrainerState(global_step=2), control, model=model)
    assert mixes(model) == {1.0}
    BinarizationWarmupCallback(0).on_train_begin(args, TrainerState(global_step=0), control, model=model)
    assert mixes(model) == {1.0}
    with pytest.raises(ValueError):
        BinarizationWarmupCallback(-1)


def test_training_samples_are_decoded_every_n_steps_on_the_main_process(tmp_path, caplog):
    processor = tiny_processor()
    model = tiny_model(processor).train()
    callback = DecodeTrainingSamplesCallback(processor.tokenizer, fake_examples(2), every_steps=3)
    args, control = TrainingArguments(output_dir=str(tmp_path), report_to="none"), TrainerControl()
    callback.on_step_end(args, TrainerState(global_step=2), control, model=model)
    assert callback.last is None
    callback.on_step_end(args, TrainerState(global_step=3, is_world_process_zero=False), control, model=model)
    assert callback.last is None
    with caplog.at_level("INFO", logger="hf_binarize"):
        callback.on_step_end(args, TrainerState(global_step=3), control, model=model)
    assert callback.last.references == ["utterance 0", "utterance 1"]
    assert "step 3, training utterances: WER" in caplog.text and "ref: utterance 0" in caplog.text
    assert model.training


def test_transcribe_keeps_order_mode_and_random_state():
    processor = tiny_processor()
    model = tiny_model(processor, seed=3).train()
    examples = fake_examples(5, frames=(20, 160))
    state = torch.get_rng_state()
    result = transcribe(model, processor.tokenizer, examples, batch_size=2)
    assert torch.equal(torch.get_rng_state(), state) and model.training
    assert result.references == [row["text"] for row in examples]
    # Random weights emit plenty of tokens, at every frame: a short utterance batched with a longer one must not
    # go on decoding its padding frames (transformers' generate does unless told otherwise).
    one_by_one = [transcribe(model, processor.tokenizer, [row], batch_size=1).hypotheses[0] for row in examples]
    assert min(map(len, one_by_one)) > 0
    assert result.hypotheses == one_by_one
