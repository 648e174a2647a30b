"""The training recipes read a dataset as ``hf-binarize evaluate`` does: a local copy of a LibriSpeech-shaped Hub
repository, its configs apart (--dataset-config / --name), any split name and datasets-style slices; they train on
the utterances the repository holds for that config and split, counted from the repository as it was written.
Their output folder holds what from_pretrained and AutoProcessor need, the Trainer's training_args.bin staying in the
checkpoints."""

from __future__ import annotations

import pytest
from hub_datasets import LIBRISPEECH_SPLITS, librispeech_like, transcript
from training_helpers import MICRO_MODEL, QUIET, load_recipe

pytest.importorskip("datasets", reason="the data extra is not installed (pip install -e '.[data]')")

# One optimizer step and one evaluation: the data, not the learning, is under test.
STEP = ["--max-steps", "1", "--eval-steps", "1", "--batch-size", "4", *QUIET]
MODEL_FILES = ["config.json", "generation_config.json", "model.safetensors", "processor_config.json",
               "tokenizer.json", "tokenizer_config.json"]


def _texts(dataset) -> set[str]:
    return set(dataset["text"])


def _utterances(config: str, split: str, indices) -> set[str]:
    """The transcripts of utterances ``indices`` of a split, as the fixture wrote them."""
    return {transcript(config, split, i) for i in indices}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return librispeech_like(tmp_path_factory.mktemp("hub") / "librispeech", seconds=0.3)


@pytest.fixture(scope="module")
def float_run(repo, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "float"
    # What the recipes wrote there before they kept it in the checkpoints: the final save removes it.
    out.mkdir()
    (out / "training_args.bin").write_bytes(b"an earlier run's pickle")
    trainer = load_recipe("train_float").main([
        "--data", str(repo), "--name", "clean", "--train-split", "train.100", "--eval-split", "validation",
        "--output-dir", str(out), *MICRO_MODEL, *STEP])
    return out, trainer


def test_train_float_trains_on_the_config_and_split_asked_for(float_run):
    out, trainer = float_run
    clean = LIBRISPEECH_SPLITS["clean"]
    assert len(trainer.train_dataset) == clean["train.100"] and len(trainer.eval_dataset) == clean["validation"]
    assert _texts(trainer.train_dataset) == _utterances("clean", "train.100", range(clean["train.100"]))
    assert _texts(trainer.eval_dataset) == _utterances("clean", "validation", range(clean["validation"]))

    # The published folder: the model, its processor and the CTC head qat.py starts from; no pickle.
    assert sorted(path.name for path in out.iterdir()) == sorted([*MODEL_FILES, "aux_ctc_head.safetensors"])
    checkpoint = out.with_name("float-checkpoints") / "checkpoint-1"
    assert (checkpoint / "training_args.bin").is_file() and (checkpoint / "aux_ctc_head.safetensors").is_file()


@pytest.mark.parametrize(("config", "train_split", "eval_split", "train", "evaluation"), [
    ("other", "test", "validation", _utterances("other", "test", range(5)), _utterances("other", "validation", range(2))),
    ("clean", "train.100[:50%]", "test[1:3]", _utterances("clean", "train.100", range(3)),
     _utterances("clean", "test", [1, 2])),
])
def test_qat_trains_on_the_config_and_split_asked_for(repo, float_run, tmp_path, config, train_split, eval_split,
                                                     train, evaluation):
    float_dir, _ = float_run
    out = tmp_path / "qat"
    trainer = load_recipe("qat").main(["--model", str(float_dir), "--data", str(repo), "--dataset-config", config,
                                       "--train-split", train_split, "--eval-split", eval_split,
                                       "--output-dir", str(out), "--ctc-weight", "0.3", *STEP])
    assert len(trainer.train_dataset) == len(train) and _texts(trainer.train_dataset) == train
    assert len(trainer.eval_dataset) == len(evaluation) and _texts(trainer.eval_dataset) == evaluation
    assert sorted(path.name for path in out.iterdir()) == MODEL_FILES
    assert (tmp_path / "qat-checkpoints" / "checkpoint-1" / "training_args.bin").is_file()


def test_qat_trains_on_a_streamed_split(repo, float_run, tmp_path):
    """--streaming: the training split is an IterableDataset prepared as it is read, whose loader yields each
    utterance of the split once per epoch (the labels the split prepared whole has); the evaluation split's first
    --eval-limit utterances are read into memory; training runs its steps on the stream."""
    import datasets
    import torch

    from hf_binarize.data.splits import prepare_split

    float_dir, float_trainer = float_run
    trainer = load_recipe("qat").main(["--model", str(float_dir), "--data", str(repo), "--dataset-config", "other",
                                       "--train-split", "test", "--eval-split", "validation", "--eval-limit", "1",
                                       "--streaming", "--output-dir", str(tmp_path / "qat"),
                                       "--max-steps", "3", "--eval-steps", "3", "--batch-size", "2", *QUIET])
    assert trainer.state.global_step == 3
    assert isinstance(trainer.train_dataset, datasets.IterableDataset)
    assert isinstance(trainer.eval_dataset, datasets.Dataset) and len(trainer.eval_dataset) == 1
    assert _texts(trainer.eval_dataset) == _utterances("other", "validation", [0])

    whole = prepare_split(repo, "test", float_trainer.processing_class, name="other")
    seen = []
    for batch in trainer.get_train_dataloader():
        for labels in batch["labels"]:
            seen.append(tuple(int(token) for token in labels if token != trainer._label_pad_id))
        assert isinstance(batch["input_features"], torch.Tensor)
    assert sorted(seen) == sorted(tuple(labels) for labels in whole["labels"])


def test_train_float_builds_its_vocabulary_from_a_streamed_split(repo, float_run, tmp_path):
    _, whole_run = float_run
    trainer = load_recipe("train_float").main([
        "--data", str(repo), "--name", "clean", "--train-split", "train.100", "--eval-split", "validation",
        "--streaming", "--output-dir", str(tmp_path / "float"), *MICRO_MODEL, *STEP])
    assert trainer.state.global_step == 1
    # The same characters as the run that read the split whole.
    assert trainer.processing_class.tokenizer.get_vocab() == whole_run.processing_class.tokenizer.get_vocab()
    assert _texts(trainer.eval_dataset) == _utterances("clean", "validation", range(LIBRISPEECH_SPLITS["clean"]["validation"]))
