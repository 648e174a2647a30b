"""recipes/qat.py end to end: a float checkpoint goes in, a packed checkpoint comes out (no latent floats, no
checkpoints beside it), reloads with from_pretrained as packed modules, and is scored by the same evaluation code
with the same result as the frozen model in memory."""

from __future__ import annotations

import json

import pytest
import safetensors.torch
import torch
from common_voice import make_common_voice_like
from training_helpers import (
    MICRO_MODEL,
    QUIET,
    build_tiny_corpus,
    load_recipe,
    needs_espeak,
    tiny_model,
    tiny_processor,
)
from transformers import AutoModelForRNNT, AutoProcessor

from hf_binarize import PackedLinear, PackedLSTM, QATModule
from hf_binarize.training import prepare_split, transcribe

pytestmark = needs_espeak
DATA = ["--train-limit", "12", "--eval-split", "train", "--eval-limit", "6", "--batch-size", "6", *QUIET]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_tiny_corpus(tmp_path_factory.mktemp("corpus"))


def test_qat_turns_a_float_checkpoint_into_a_packed_one(corpus, tmp_path, capsys):
    float_dir, packed_dir = tmp_path / "float", tmp_path / "packed"
    load_recipe("train_float").main(["--data", str(corpus), "--output-dir", str(float_dir), *MICRO_MODEL, *DATA,
                                     "--max-steps", "20", "--eval-steps", "20"])
    capsys.readouterr()
    trainer = load_recipe("qat").main([
        "--model", str(float_dir), "--data", str(corpus), "--output-dir", str(packed_dir), *DATA,
        "--max-steps", "6", "--eval-steps", "3", "--int8", "joint", "--learnable-scales", "--centred",
        "--group-size", "8", "--scale-dtype", "bfloat16", "--warmup-steps", "2", "--ctc-weight", "0.3", "--distill-weight", "1"])
    printed = capsys.readouterr().out
    assert "compression vs fp32" in printed and f"packed {packed_dir}: WER" in printed

    frozen = trainer.model
    assert not any(isinstance(module, QATModule) for module in frozen.modules())
    assert not hasattr(frozen, "aux_ctc_head")
    # What from_pretrained and AutoProcessor read, nothing else: the Trainer's training_args.bin (a pickle) stays in
    # the checkpoints.
    assert sorted(p.name for p in packed_dir.iterdir()) == [
        "config.json", "generation_config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
        "tokenizer_config.json"]
    assert (tmp_path / "packed-checkpoints" / "checkpoint-6" / "training_args.bin").is_file()
    quantization = json.loads((packed_dir / "config.json").read_text())["quantization_config"]
    assert quantization["mode"] == "packed" and quantization["group_size"] == 8 and quantization["centred"]
    weights = safetensors.torch.load_file(packed_dir / "model.safetensors")
    assert weights["encoder_projector.weight"].dtype == torch.uint8
    assert weights["joint.head.weight"].dtype == torch.int8

    packed = AutoModelForRNNT.from_pretrained(packed_dir)
    assert isinstance(packed.encoder_projector, PackedLinear) and isinstance(packed.decoder.lstm, PackedLSTM)
    processor = AutoProcessor.from_pretrained(packed_dir)
    examples = prepare_split(str(corpus), "train", processor, limit=6)
    from_disk = transcribe(packed, processor.tokenizer, examples, batch_size=6)
    in_memory = transcribe(frozen, processor.tokenizer, examples, batch_size=6)
    assert from_disk.hypotheses == in_memory.hypotheses
    assert from_disk.summary() in printed


def test_qat_refuses_transcripts_the_vocabulary_cannot_write(tmp_path):
    processor = tiny_processor()  # lower-case letters and the apostrophe: no accents
    tiny_model(processor).save_pretrained(tmp_path / "float")
    processor.save_pretrained(tmp_path / "float")
    # 3 of 10 label words hold a letter the vocabulary lacks, 2 of them the same word.
    data = make_common_voice_like(tmp_path / "data", {"fr": {"train": [
        "Un café noir", "Le café est bon", "Très bien dit"]}})
    command = ["--model", str(tmp_path / "float"), "--data", str(data), "--text-column", "sentence",
               "--eval-split", "", "--output-dir", str(tmp_path / "qat"), *QUIET, "--max-steps", "1"]
    with pytest.raises(ValueError, match=r"^train: 3 of 10 words \(30\.00%\) hold a character the vocabulary lacks "
                                         r"\(3 <unk> labels\), e\.g\. 'café', 'très' \(missing è é\), more than the "
                                         r"1% allowed \(--max-unknown-words\)"):
        load_recipe("qat").main(command)
    assert not (tmp_path / "qat").exists()
