"""Scoring a checkpoint does not import training: ``hf-binarize evaluate`` loads neither the Trainer nor
hf_binarize.training (transformers' model loading imports accelerate by itself, so that is not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("datasets", reason="the data extra is not installed (pip install -e '.[data]')")


@pytest.mark.parametrize("entry", ["import hf_binarize.evaluation",
                                   "from hf_binarize.commands.main import build_parser; build_parser()"])
def test_evaluation_imports_no_training(entry):
    script = (f"import sys\n{entry}\n"
              "loaded = [name for name in ('transformers.trainer', 'hf_binarize.training') if name in sys.modules]\n"
              "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
