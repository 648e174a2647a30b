"""QAT with two gloo processes on the CPU says everything once: the main process prepares the splits (the other reads
its datasets cache) and shows the progress of evaluation, sample decoding and the final float-vs-packed comparison;
the other process prints none of it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from hub_datasets import librispeech_like
from training_helpers import RECIPES, tiny_model, tiny_processor

pytest.importorskip("datasets", reason="the data extra is not installed (pip install -e '.[data]')")

# Runs the recipe with this rank's stdout and stderr in a file of its own.
LAUNCHER = textwrap.dedent("""
    import os, sys
    log = os.open(os.path.join({out!r}, "rank" + os.environ["RANK"] + ".log"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.path.insert(0, {helpers!r})
    from training_helpers import load_recipe
    load_recipe("qat").main(sys.argv[1:])
""")

# What the main process shows, each once or more; the other process shows none of these.
MAIN_ONLY = ["preparing train.100", "preparing validation", "prepared 6 of 6 examples",
             "step 1: decoding training utterances", "step 2: decoding eval", "step 2, eval: WER",
             "decoding with the float model", "decoding with the packed model", "packed "]


def test_only_the_main_process_prepares_and_reports(tmp_path):
    repo = librispeech_like(tmp_path / "librispeech", seconds=0.3)
    processor = tiny_processor()
    tiny_model(processor).save_pretrained(tmp_path / "float")
    processor.save_pretrained(tmp_path / "float")
    logs = tmp_path / "logs"
    logs.mkdir()
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER.format(out=str(logs), helpers=str(RECIPES.parent / "tests" / "training")))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(launcher),
               "--model", str(tmp_path / "float"), "--data", str(repo), "--name", "clean",
               "--train-split", "train.100", "--eval-split", "validation", "--output-dir", str(tmp_path / "qat"),
               "--max-steps", "2", "--eval-steps", "2", "--batch-size", "2", "--sample-steps", "1",
               "--num-samples", "2", "--logging-steps", "1"]
    # A datasets cache of its own: nothing prepared before this run can be read back.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(RECIPES.parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    main, other = ((logs / f"rank{rank}.log").read_text(errors="replace") for rank in (0, 1))
    assert result.returncode == 0, result.stderr[-3000:] + main[-3000:] + other[-3000:]

    for text in MAIN_ONLY:
        assert text in main, text
        assert text not in other, text
    # Each split prepared once in all: by the main process, whose cache the other read.
    assert main.count("prepared 6 of 6 examples") == 1 and main.count("prepared 3 of 3 examples") == 1
    assert "Traceback" not in main + other
