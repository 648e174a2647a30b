"""recipes/train_float.py end to end: a tiny model trained on a dozen espeak-ng utterances learns them (loss down,
greedy WER on them below 50%), and the output folder is a plain ParakeetForRNNT checkpoint with its processor."""

from __future__ import annotations

import json
import time

import pytest
import safetensors.torch
from training_helpers import QUIET, TINY_MODEL, build_tiny_corpus, load_recipe, needs_espeak
from transformers import AutoModelForRNNT, AutoProcessor, ParakeetForRNNT

from hf_binarize.evaluation import evaluate_model

pytestmark = needs_espeak
STEPS = 300


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_tiny_corpus(tmp_path_factory.mktemp("corpus"))


def test_a_tiny_model_learns_the_utterances_it_trains_on(corpus, tmp_path, capsys):
    out = tmp_path / "float"
    start = time.perf_counter()
    trainer = load_recipe("train_float").main([
        "--data", str(corpus), "--train-limit", "12", "--eval-split", "train", "--eval-limit", "12",
        "--output-dir", str(out), "--max-steps", str(STEPS), "--batch-size", "6", "--lr", "2e-3",
        "--lr-warmup-steps", "20", "--eval-steps", "100", *TINY_MODEL, *QUIET, "--logging-steps", "10"])
    seconds = time.perf_counter() - start
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    evaluations = [entry for entry in trainer.state.log_history if "eval_wer" in entry]
    with capsys.disabled():  # the numbers to watch when tuning this test: shown with pytest -s
        print(f"\n{STEPS} steps in {seconds:.0f} s; loss {losses[0]:.2f} -> {losses[-1]:.2f}; "
              f"WER by step: {[(e['step'], e['eval_wer']) for e in evaluations]}")
    assert trainer.state.global_step == STEPS
    assert losses[-1] < 0.25 * losses[0]
    assert evaluations[-1]["step"] == STEPS and evaluations[-1]["eval_wer"] < 0.5
    assert "final model in" in capsys.readouterr().out

    # A plain checkpoint: no auxiliary head among the weights, the head beside them for QAT, no checkpoints inside,
    # no training_args.bin (it stays in the checkpoints).
    weights = safetensors.torch.load_file(out / "model.safetensors")
    assert not any(key.startswith("aux_ctc_head") for key in weights)
    assert set(safetensors.torch.load_file(out / "aux_ctc_head.safetensors")) == {"weight", "bias"}
    assert not list(out.glob("checkpoint-*")) and list((tmp_path / "float-checkpoints").glob("checkpoint-*"))
    assert not (out / "training_args.bin").exists()
    assert (tmp_path / "float-checkpoints" / f"checkpoint-{STEPS}" / "training_args.bin").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["encoder_config"]["subsampling_factor"] == 4

    model = AutoModelForRNNT.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    assert type(model) is ParakeetForRNNT and processor.decoder_type == "rnnt"
    # hf-binarize evaluate scores the saved model as training scored it (batched alike: padding moves encoder
    # outputs by rounding errors, which could flip a decision).
    reloaded = evaluate_model(out, corpus, split="train", limit=12, batch_size=6)
    assert reloaded.transcripts.hypotheses == trainer.last_transcripts.hypotheses
    assert reloaded.to_dict()["wer"] == pytest.approx(evaluations[-1]["eval_wer"], abs=1e-4)
