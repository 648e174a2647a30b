"""The recipes for ParakeetForTDT and ParakeetForCTC end to end on the tiny espeak-ng corpus: train_float.py --family
saves a folder the family's auto class loads; qat.py with distillation packs it into a folder that loads as the
family's class, transcribes through transformers' ASR pipeline, and goes through hf-binarize quantize, evaluate and
card, whose card names the family.

A few steps teach nothing: the checks are about plumbing, against independent facts (the family's own transformers
classes, CTC decoding as CTC defines it, the losses each family trains on)."""

from __future__ import annotations

import json

import pytest
import torch
from training_helpers import MICRO_MODEL, QUIET, build_tiny_corpus, load_recipe, needs_espeak
from transformers import AutoModelForCTC, AutoModelForTDT, AutoProcessor, pipeline

import hf_binarize
from hf_binarize.commands.main import main
from hf_binarize.data.audio import load_audio
from hf_binarize.training import load_split

pytestmark = needs_espeak
DATA = ["--train-limit", "12", "--eval-split", "train", "--eval-limit", "6", "--batch-size", "6", *QUIET]
AUTO = {"tdt": AutoModelForTDT, "ctc": AutoModelForCTC}
CLASS = {"tdt": "ParakeetForTDT", "ctc": "ParakeetForCTC"}
# The card's words for the family, and the seed paper's title, which every card with 1-bit weights cites.
WORDS = {"tdt": "token-and-duration transducer (TDT)", "ctc": "model with a CTC head"}
PAPER = "*USM RNN-T model weights binarization*"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_tiny_corpus(tmp_path_factory.mktemp("corpus"))


def logged(trainer, name: str) -> list[float]:
    return [entry[name] for entry in trainer.state.log_history if name in entry]


def ctc_transcript(model, processor, samples, rate) -> str:
    """CTC's definition, written out: argmax per frame, merge runs, drop blanks (the config's pad id)."""
    features = processor.feature_extractor(samples, sampling_rate=rate, return_tensors="pt")
    with torch.no_grad():
        best = model(**features).logits[0].argmax(-1).tolist()
    blank = model.config.pad_token_id
    ids = [token for i, token in enumerate(best) if token != blank and (i == 0 or best[i - 1] != token)]
    return processor.tokenizer.decode(ids, skip_special_tokens=True, group_tokens=False)


@pytest.mark.parametrize("family", ["tdt", "ctc"])
def test_a_family_trains_in_float_then_in_qat_and_ships(family, corpus, tmp_path, capsys):
    float_dir, packed_dir = tmp_path / "float", tmp_path / "packed"
    trainer = load_recipe("train_float").main([
        "--family", family, "--data", str(corpus), "--output-dir", str(float_dir), *MICRO_MODEL, *DATA,
        "--max-steps", "4", "--eval-steps", "4"])
    assert trainer.state.global_step == 4 and logged(trainer, f"{family}_loss")
    # The auxiliary CTC loss by default for a transducer, never for a CTC model.
    assert bool(logged(trainer, "aux_ctc_loss")) == (family == "tdt")
    assert (float_dir / "aux_ctc_head.safetensors").is_file() == (family == "tdt")
    floating = AUTO[family].from_pretrained(float_dir)
    assert type(floating).__name__ == CLASS[family]
    assert AutoProcessor.from_pretrained(float_dir).decoder_type == family

    capsys.readouterr()
    qat = load_recipe("qat").main([
        "--model", str(float_dir), "--data", str(corpus), "--output-dir", str(packed_dir), *DATA,
        "--max-steps", "3", "--eval-steps", "3", "--distill-weight", "1",
        *(["--ctc-weight", "0.3"] if family == "tdt" else [])])
    assert f"packed {packed_dir}: WER" in capsys.readouterr().out
    # Binarized weights make the student differ from its float teacher from the first step.
    assert all(value > 0 for value in logged(qat, "kl_loss")) and logged(qat, f"{family}_loss")
    packed = AUTO[family].from_pretrained(packed_dir)
    assert type(packed).__name__ == CLASS[family]
    assert any(isinstance(module, hf_binarize.PackedModule) for module in packed.modules())
    assert json.loads((packed_dir / "config.json").read_text())["quantization_config"]["mode"] == "packed"

    samples, rate = load_audio(load_split(str(corpus), "validation", limit=1)[0]["audio"], 16000)
    text = pipeline("automatic-speech-recognition", model=str(packed_dir))({"raw": samples, "sampling_rate": rate})
    if family == "ctc":
        processor = AutoProcessor.from_pretrained(packed_dir)
        assert text["text"].strip() == ctc_transcript(packed, processor, samples, rate).strip()
    else:
        assert isinstance(text["text"], str)

    quantized = tmp_path / "quantized"
    assert main(["quantize", "--model", str(float_dir), "--output-dir", str(quantized)]) == 0
    assert type(AUTO[family].from_pretrained(quantized)).__name__ == CLASS[family]

    records = []
    for variant, folder in (("float", float_dir), ("binary", packed_dir)):
        records.append(tmp_path / f"{variant}.json")
        assert main(["evaluate", "--model", str(folder), "--dataset", str(corpus), "--split", "validation",
                     "--variant", variant, "--json", str(records[-1]), "--samples", "0"]) == 0
        assert json.loads(records[-1].read_text())["family"] == family
    assert main(["card", "--results", *map(str, records), "--out-dir", str(tmp_path / "cards"),
                 "--license", "apache-2.0"]) == 0
    card = (tmp_path / "cards" / "binary" / "README.md").read_text()
    assert f"a speech recognition {WORDS[family]} for transformers" in card
    assert f"{AUTO[family].__name__}.from_pretrained(" in card
    assert "RNN-T" not in card.replace(PAPER, "") and "RNNT" not in card
