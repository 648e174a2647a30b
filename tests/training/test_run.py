"""hf_binarize.training.run: the end of a DDP run. A gloo process group left to the interpreter's exit aborted a
finished process now and then (SIGABRT, "terminate called without an active exception"), failing the torchrun
launch (tests/training/test_resume.py's DDP test, once in CI, once in four local runs); the recipes now destroy
it, all processes together, after their last collective."""

from __future__ import annotations

import pytest
import torch
from training_helpers import MICRO_MODEL, QUIET, build_tiny_corpus, load_recipe, needs_espeak

from hf_binarize.training.run import end_process_group


def test_end_process_group_destroys_the_group_and_is_harmless_without_one(tmp_path):
    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    assert torch.distributed.is_initialized()
    end_process_group()
    assert not torch.distributed.is_initialized()
    end_process_group()
    assert not torch.distributed.is_initialized()


@needs_espeak
@pytest.mark.parametrize("recipe", ["train_float", "qat"])
def test_the_recipes_end_their_process_group(recipe, tmp_path, monkeypatch):
    corpus = build_tiny_corpus(tmp_path / "corpus")
    module = load_recipe("train_float")
    schedule = ["--data", str(corpus), "--train-limit", "4", "--eval-split", "", "--max-steps", "2",
                "--batch-size", "2", *QUIET]
    float_folder = tmp_path / "float"
    module.main([*schedule, *MICRO_MODEL, "--output-dir", str(float_folder)])
    if recipe == "qat":
        module = load_recipe("qat")
    ended = []
    monkeypatch.setattr(module, "end_process_group", lambda: ended.append(True))
    arguments = [*schedule, *MICRO_MODEL] if recipe == "train_float" else [*schedule, "--model", str(float_folder)]
    module.main([*arguments, "--output-dir", str(tmp_path / "run")])
    assert ended == [True]
