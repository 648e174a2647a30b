"""The README's main command (recipes/demo.py) on the bundled artifacts: the bundled models load as what they
claim to be and the demo prints the size/WER table for the float, the QAT-trained and the untrained 1-bit model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from transformers import AutoModelForRNNT

from hf_binarize import PackedLinear, PackedLSTM, size_report

ROOT = Path(__file__).resolve().parents[1]
FLOAT, PACKED, AUDIO = ROOT / "model_cards" / "float", ROOT / "model_cards" / "binary-int8", ROOT / "demo" / "audio"


def test_bundled_models_are_what_they_claim():
    packed = AutoModelForRNNT.from_pretrained(PACKED)
    assert json.loads((PACKED / "config.json").read_text())["quantization_config"]["quant_method"] == "hf_binarize"
    assert isinstance(packed.encoder_projector, PackedLinear) and isinstance(packed.decoder.lstm, PackedLSTM)
    floating = AutoModelForRNNT.from_pretrained(FLOAT)
    assert "quantization_config" not in json.loads((FLOAT / "config.json").read_text())
    report = size_report(packed, PACKED)
    # The same architecture: the packed model stands for as many weights as the float one holds.
    assert report.total_params == size_report(floating).total_params
    assert report.compression > 16


def test_demo_prints_the_table(capsys):
    spec = importlib.util.spec_from_file_location("recipe_demo", ROOT / "recipes" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    demo.main(["--limit", "3", "--threads", "1"])
    printed = capsys.readouterr().out
    table = printed[printed.index("| variant"):]
    for variant in ("float", "binary-int8", "sign-no-training"):
        assert f"`{variant}`" in table
    assert "WER test_unseen" in table


@pytest.mark.parametrize("split", ["test", "test_unseen"])
def test_bundled_audio_matches_its_metadata(split):
    import soundfile

    rows = (AUDIO / split / "metadata.csv").read_text().splitlines()[1:]
    assert rows
    for row in rows[:5]:
        name, *_, duration = row.split(",")
        info = soundfile.info(AUDIO / split / name)
        assert info.samplerate == 16000 and abs(info.frames / info.samplerate - float(duration)) < 1e-3
