"""The README quick start (recipes/quickstart.py): the packed folder it saves holds the processor beside the model,
so that transformers' ASR pipeline runs from the folder alone and transcribes as the model and processor do."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from conftest import BLANK, build_model
from transformers import AutoModelForRNNT, AutoProcessor, pipeline

from hf_binarize import PackedLinear
from hf_binarize.training.tokenizer import build_character_tokenizer, build_processor

ROOT = Path(__file__).resolve().parents[1]


def test_the_quick_start_folder_works_in_the_pipeline(tmp_path, capsys):
    float_dir, packed_dir = tmp_path / "float", tmp_path / "packed"
    processor = build_processor(build_character_tokenizer(alphabet="abcdefghijklmnopqrstuvwxyz"), num_mel_bins=32)
    assert processor.blank_token_id == BLANK
    build_model("rnnt", seed=1).save_pretrained(float_dir)
    processor.save_pretrained(float_dir)

    spec = importlib.util.spec_from_file_location("recipe_quickstart", ROOT / "recipes" / "quickstart.py")
    quickstart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quickstart)
    quickstart.main(["--model", str(float_dir), "--out", str(packed_dir)])
    assert "pipeline on the packed folder" in capsys.readouterr().out

    asr = pipeline("automatic-speech-recognition", model=str(packed_dir))
    assert isinstance(asr.model.encoder_projector, PackedLinear)
    # The reference: the folder's model and processor, apart from the pipeline.
    model, saved = AutoModelForRNNT.from_pretrained(packed_dir).eval(), AutoProcessor.from_pretrained(packed_dir)
    assert saved.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.3
    with torch.no_grad():
        tokens = model.generate(**saved(audio, sampling_rate=16000, return_tensors="pt")).sequences
    reference = saved.batch_decode(tokens, skip_special_tokens=True)[0]
    assert reference and asr(audio)["text"] == reference
