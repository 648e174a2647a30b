"""Every recipe and the evaluation command answer --help without touching data or models."""

from __future__ import annotations

import subprocess
import sys

import pytest
from training_helpers import RECIPES

COMMANDS = {
    "train_float": ([str(RECIPES / "train_float.py")], ["--data", "--resume", "--family", "--ctc-weight",
                                                        "--subsampling-factor", "--tokenizer", "--vocab-size",
                                                        "--freq-masks", "--time-masks", "--max-unknown-words"]),
    "qat": ([str(RECIPES / "qat.py")], ["--model", "--resume", "--learnable-scales", "--centred", "--group-size",
                                        "--int8", "--warmup-steps", "--distill-weight", "--freq-masks",
                                        "--max-unknown-words"]),
    "evaluate": (["-m", "hf_binarize", "evaluate"], ["--model", "--data", "--split", "--normalizer"]),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help(name):
    command, options = COMMANDS[name]
    result = subprocess.run([sys.executable, *command, "--help"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and "RuntimeWarning" not in result.stderr
    for option in options:
        assert option in result.stdout
