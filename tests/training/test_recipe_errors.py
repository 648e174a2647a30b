"""A problem with what a training recipe was given (a dataset column, split or config that does not exist, a Hub
that cannot be reached) ends it as it ends an ``hf-binarize`` command: exit status 1 and one line,
``qat.py: error: ...``, naming the problem, with no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hub_datasets import librispeech_like
from training_helpers import RECIPES, tiny_model, tiny_processor

pytest.importorskip("datasets", reason="the data extra is not installed (pip install -e '.[data]')")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A LibriSpeech-shaped repository (configs clean and other) and a float model folder with its processor."""
    root = tmp_path_factory.mktemp("inputs")
    repo = librispeech_like(root / "librispeech")
    processor = tiny_processor()
    tiny_model(processor).save_pretrained(root / "float")
    processor.save_pretrained(root / "float")
    return {"repo": str(repo), "float": str(root / "float")}


# (recipe, arguments with {repo} and {float} to fill in, what the one line must say)
CASES = {
    "missing config": ("train_float", ["--data", "{repo}", "--train-split", "train.100"],
                       ["Config name is missing", "'clean', 'other'"]),
    "missing split": ("qat", ["--model", "{float}", "--data", "{repo}", "--name", "clean", "--train-split", "train.360"],
                      ["train.360", "'train.100', 'validation', 'test'"]),
    "missing column": ("qat", ["--model", "{float}", "--data", "{repo}", "--name", "other", "--train-split", "test",
                               "--text-column", "sentence"],
                       ["missing column(s) ['sentence']", "--text-column"]),
    "unreachable Hub dataset": ("train_float", ["--data", "nobody/no-such-dataset"],
                                ["nobody/no-such-dataset", "Hub"]),
    "unreachable Hub model": ("qat", ["--model", "nobody/no-such-model", "--data", "{repo}", "--name", "clean"],
                              ["connect"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_errors_are_one_line(inputs, tmp_path, case):
    recipe, arguments, expected = CASES[case]
    command = [sys.executable, str(RECIPES / f"{recipe}.py"), *(a.format(**inputs) for a in arguments),
               "--output-dir", str(tmp_path / "out")]
    # Offline, as a machine without network: the Hub ids fail at once instead of after retries.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(RECIPES.parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{recipe}.py: error: "), result.stderr[-3000:]
    for words in expected:
        assert words in last, last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
