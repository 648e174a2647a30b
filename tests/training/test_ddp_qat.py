"""QAT with two gloo processes on the CPU: after a few steps both ranks hold the same weights (DDP kept them in
sync, and freezing them gives the same packed bits), and the training loss went down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import safetensors.torch
from training_helpers import MICRO_MODEL, QUIET, RECIPES, build_tiny_corpus, load_recipe, needs_espeak

pytestmark = needs_espeak

# Four utterances, one per batch and rank with two steps of gradient accumulation: every optimizer step sees the
# whole set, so its loss is comparable from step to step.
SCHEDULE = ["--train-limit", "4", "--eval-split", "", "--batch-size", "1", "--grad-accum", "2", "--max-steps", "12",
            "--lr", "3e-3", "--lr-warmup-steps", "0", "--lr-scheduler", "constant", "--save-steps", "12", *QUIET]

# Runs the recipe in each process, then writes that rank's final (frozen, packed) weights.
LAUNCHER = textwrap.dedent("""
    import os, sys
    import safetensors.torch
    sys.path.insert(0, {helpers!r})
    from training_helpers import load_recipe
    trainer = load_recipe("qat").main(sys.argv[1:])
    state = {{name: tensor.contiguous() for name, tensor in trainer.model.state_dict().items()}}
    safetensors.torch.save_file(state, os.path.join({out!r}, "rank" + os.environ["RANK"] + ".safetensors"))
""")


def test_two_process_qat_keeps_ranks_identical_and_learns(tmp_path):
    corpus = build_tiny_corpus(tmp_path / "corpus")
    float_dir, packed_dir = tmp_path / "float", tmp_path / "packed"
    load_recipe("train_float").main(["--data", str(corpus), "--output-dir", str(float_dir), *MICRO_MODEL,
                                     "--train-limit", "4", "--eval-split", "", "--max-steps", "30", "--lr", "3e-3",
                                     "--batch-size", "4", *QUIET])
    ranks = tmp_path / "ranks"
    ranks.mkdir()
    launcher = tmp_path / "launch_qat.py"
    launcher.write_text(LAUNCHER.format(helpers=str(RECIPES.parent / "tests" / "training"), out=str(ranks)))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(launcher),
               "--model", str(float_dir), "--data", str(corpus), "--output-dir", str(packed_dir), *SCHEDULE,
               "--learnable-scales", "--ctc-weight", "0.3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]

    first, second = (safetensors.torch.load_file(ranks / f"rank{rank}.safetensors") for rank in (0, 1))
    assert sorted(first) == sorted(second)
    assert any(tensor.dtype.is_floating_point is False for tensor in first.values())  # packed bits are compared too
    for name in first:
        assert first[name].equal(second[name]), name

    state = json.loads((tmp_path / "packed-checkpoints" / "checkpoint-12" / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses
