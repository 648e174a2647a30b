"""Kill and resume: a run stopped after its checkpoint at step 4 and resumed with --resume continues at step 5 with
the batches, losses and gradients of an uninterrupted run, for float training and for QAT (latent floats, warm-up,
learned scales, auxiliary CTC and distillation all in play)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys

import pytest
import safetensors.torch
import torch
from training_helpers import MICRO_MODEL, QUIET, RECIPES, build_tiny_corpus, load_recipe, needs_espeak
from transformers import TrainerCallback

from hf_binarize.training import ParakeetTrainer
from hf_binarize.training.run import resume_checkpoint

pytestmark = needs_espeak
STEPS, KILLED_AFTER = 8, 4
# 12 utterances in batches of 4: 3 steps an epoch, so the kill falls mid-epoch and the run crosses two epochs.
SCHEDULE = ["--train-limit", "12", "--eval-split", "", "--max-steps", str(STEPS), "--batch-size", "4",
            "--save-steps", str(KILLED_AFTER), "--save-total-limit", "3", "--lr-warmup-steps", "2", *QUIET]


class Killed(Exception):
    pass


class _KillAfter(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Killed


def recording_trainer(kill_after: int | None, batches: list):
    """A ParakeetTrainer that records each training batch's labels and, optionally, dies before the step after
    ``kill_after`` (its checkpoint is then on disk, the state after it lost: a kill at any later moment)."""

    class Recording(ParakeetTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if kill_after is not None:
                self.add_callback(_KillAfter(kill_after))

        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training:
                batches.append(inputs["labels"].tolist())
            return super().compute_loss(model, inputs, *args, **kwargs)

    return Recording


def steps_of(trainer) -> dict[int, dict]:
    return {entry["step"]: entry for entry in trainer.state.log_history if "loss" in entry}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_tiny_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def float_model(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("float") / "model"
    load_recipe("train_float").main(["--data", str(corpus), "--output-dir", str(out), *MICRO_MODEL, *SCHEDULE,
                                     "--max-steps", "3"])
    return out


RECIPE_OPTIONS = {
    "train_float": [*MICRO_MODEL, "--dropout", "0.1"],
    "qat": ["--learnable-scales", "--warmup-steps", "6", "--ctc-weight", "0.3", "--distill-weight", "0.5",
            "--int8", "joint"],
}


@pytest.mark.parametrize("recipe", list(RECIPE_OPTIONS))
def test_a_killed_run_resumes_where_it_stopped(recipe, corpus, tmp_path, monkeypatch, request):
    module = load_recipe(recipe)
    argv = ["--data", str(corpus), *SCHEDULE, *RECIPE_OPTIONS[recipe]]
    if recipe == "qat":
        argv += ["--model", str(request.getfixturevalue("float_model"))]

    def run(out, kill_after=None, resume=False):
        batches: list = []
        monkeypatch.setattr(module, "ParakeetTrainer", recording_trainer(kill_after, batches))
        trainer = module.main([*argv, "--output-dir", str(out), *(["--resume"] if resume else [])])
        return trainer, batches

    reference, reference_batches = run(tmp_path / "whole")

    with pytest.raises(Killed):
        run(tmp_path / "killed", kill_after=KILLED_AFTER)
    checkpoints = tmp_path / "killed-checkpoints"
    assert [p.name for p in checkpoints.glob("checkpoint-*")] == [f"checkpoint-{KILLED_AFTER}"]
    if recipe == "qat":
        # QAT checkpoints hold the latent float weights and say so.
        saved = checkpoints / f"checkpoint-{KILLED_AFTER}"
        config = json.loads((saved / "config.json").read_text())
        assert config["quantization_config"]["mode"] == "qat"
        weights = safetensors.torch.load_file(saved / "model.safetensors")
        assert weights["encoder_projector.weight"].dtype == torch.float32
        assert "encoder_projector.weight_alpha" in weights
        assert (saved / "aux_ctc_head.safetensors").is_file()

    resumed, resumed_batches = run(tmp_path / "killed", resume=True)
    assert resumed.state.global_step == STEPS
    assert resumed_batches == reference_batches[KILLED_AFTER:]
    expected, got = steps_of(reference), steps_of(resumed)
    assert sorted(got) == list(range(1, STEPS + 1))
    for step in range(KILLED_AFTER + 1, STEPS + 1):
        for key in ("loss", "rnnt_loss", "grad_norm", "learning_rate"):
            assert got[step][key] == pytest.approx(expected[step][key], rel=1e-5), (step, key)


def test_a_killed_ddp_run_resumes_where_it_stopped(corpus, tmp_path):
    """Two gloo processes on the CPU. The run goes to the end; deleting its last checkpoint leaves what a kill
    after checkpoint 4 would; resuming must redo steps 5-8 exactly (mid-epoch, in the second epoch: the case where
    the Trainer's own set_epoch does not reach the batch sampler)."""
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(RECIPES / "train_float.py"), "--data", str(corpus), "--output-dir", str(out), *MICRO_MODEL,
               *SCHEDULE, "--batch-size", "2"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}

    def launch(arguments):
        result = subprocess.run(arguments, capture_output=True, text=True, timeout=600, env=environment)
        assert result.returncode == 0, result.stderr[-4000:]

    launch(command)
    checkpoints = tmp_path / "ddp-checkpoints"
    final = checkpoints / f"checkpoint-{STEPS}"
    whole = json.loads((final / "trainer_state.json").read_text())
    shutil.rmtree(final)
    launch([*command, "--resume"])
    resumed = json.loads((final / "trainer_state.json").read_text())

    def losses(state):
        return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}

    # 12 utterances, 2 per batch, 2 processes: 3 steps an epoch, step 5 is mid-epoch in epoch 1.
    assert whole["global_step"] == resumed["global_step"] == STEPS and resumed["epoch"] > 2
    assert losses(resumed) == pytest.approx(losses(whole), rel=1e-5)


def test_resume_skips_a_checkpoint_killed_while_being_written(corpus, tmp_path, monkeypatch, caplog):
    """A kill after the model of checkpoint 8 was saved, before its optimizer, scheduler, RNG and trainer state:
    --resume continues from checkpoint 4, says why it skipped checkpoint 8, and ends with the batches and losses of
    an uninterrupted run."""
    module = load_recipe("train_float")
    argv = ["--data", str(corpus), *SCHEDULE, *RECIPE_OPTIONS["train_float"]]

    class KilledWhileSaving(ParakeetTrainer):
        def _save_optimizer_and_scheduler(self, output_dir):
            if self.state.global_step == STEPS:
                raise Killed
            super()._save_optimizer_and_scheduler(output_dir)

    reference_batches: list = []
    monkeypatch.setattr(module, "ParakeetTrainer", recording_trainer(None, reference_batches))
    reference = module.main([*argv, "--output-dir", str(tmp_path / "whole")])

    monkeypatch.setattr(module, "ParakeetTrainer", KilledWhileSaving)
    with pytest.raises(Killed):
        module.main([*argv, "--output-dir", str(tmp_path / "killed")])
    half = tmp_path / "killed-checkpoints" / f"checkpoint-{STEPS}"
    assert (half / "model.safetensors").is_file() and not (half / "trainer_state.json").exists()

    batches: list = []
    monkeypatch.setattr(module, "ParakeetTrainer", recording_trainer(None, batches))
    with caplog.at_level(logging.INFO, logger="hf_binarize"):
        resumed = module.main([*argv, "--output-dir", str(tmp_path / "killed"), "--resume"])
    assert f"checkpoint-{KILLED_AFTER}" in caplog.text and f"checkpoint-{STEPS}" in caplog.text
    assert resumed.state.global_step == STEPS
    assert batches == reference_batches[KILLED_AFTER:]
    expected, got = steps_of(reference), steps_of(resumed)
    for step in range(KILLED_AFTER + 1, STEPS + 1):
        assert got[step]["loss"] == pytest.approx(expected[step]["loss"], rel=1e-5), step
    assert json.loads((half / "trainer_state.json").read_text())["global_step"] == STEPS
    # A kill while the trainer state itself was written (the Trainer writes it last, in place) cuts it short.
    (half / "trainer_state.json").write_text((half / "trainer_state.json").read_text()[:100])
    options = argparse.Namespace(output_dir=str(tmp_path / "killed"), checkpoint_dir=None, resume=True,
                                 overwrite=False)
    assert resume_checkpoint(options) == str(half.with_name(f"checkpoint-{KILLED_AFTER}"))
