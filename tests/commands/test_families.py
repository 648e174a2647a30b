"""Every Parakeet family through the commands: a tiny ParakeetForTDT and ParakeetForCTC (and the RNN-T for
comparison) are quantized, evaluated, transcribed and run through transformers' ASR pipeline from the packed folder.

Random weights transcribe nonsense, so the checks are about plumbing against independent facts: the packed folder
loads as the family's own class, `evaluate`'s transcripts are those of the model's own decoding (transformers'
`generate`, CTC repeats merged as CTC defines), and the transcribe command agrees with them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_cli import dataset, write_audiofolder  # noqa: F401  (the module-scoped dataset fixture)
from transformers import (
    AutoModelForCTC,
    AutoModelForTDT,
    AutoProcessor,
    ParakeetCTCConfig,
    ParakeetForCTC,
    ParakeetForTDT,
    ParakeetTDTConfig,
    pipeline,
)

import hf_binarize
from hf_binarize.commands.main import main
from hf_binarize.evaluation.transcription import greedy_decode, greedy_generation_config
from hf_binarize.training import build_character_tokenizer, build_processor

sf = pytest.importorskip("soundfile")

AUTO = {"tdt": AutoModelForTDT, "ctc": AutoModelForCTC}


def _float_folder(kind: str, folder: Path) -> Path:
    processor = build_processor(build_character_tokenizer(), num_mel_bins=32)
    blank = processor.blank_token_id
    encoder = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                   subsampling_factor=4, subsampling_conv_channels=8, num_mel_bins=32)
    torch.manual_seed(0)
    if kind == "tdt":
        model = ParakeetForTDT(ParakeetTDTConfig(encoder_config=encoder, vocab_size=len(processor.tokenizer),
                                                 blank_token_id=blank, pad_token_id=blank, decoder_hidden_size=32))
        model.generation_config.decoder_start_token_id = blank
        with torch.no_grad():
            # Durations outscore every token, as they can in a real checkpoint: transformers' own TDT generate then
            # emits them as token ids, which the packed folder must not (its generation config suppresses them).
            model.joint.head.bias[model.config.vocab_size :] += 20.0
    else:
        model = ParakeetForCTC(ParakeetCTCConfig(encoder_config=encoder, vocab_size=len(processor.tokenizer),
                                                 pad_token_id=blank))
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _ctc_reference(logits: torch.Tensor, blank: int) -> list[int]:
    """CTC's definition, written out: argmax per frame, merge runs, drop blanks."""
    best = logits.argmax(-1).tolist()
    return [token for i, token in enumerate(best) if token != blank and (i == 0 or best[i - 1] != token)]


@pytest.mark.parametrize("kind", ["tdt", "ctc"])
def test_family_quantize_evaluate_transcribe_and_pipeline(kind, dataset, tmp_path, capsys):  # noqa: F811
    float_dir = _float_folder(kind, tmp_path / "float")
    packed_dir = tmp_path / "packed"
    assert main(["quantize", "--model", str(float_dir), "--output-dir", str(packed_dir)]) == 0
    packed = AUTO[kind].from_pretrained(packed_dir)
    assert type(packed).__name__ == {"tdt": "ParakeetForTDT", "ctc": "ParakeetForCTC"}[kind]
    assert any(isinstance(m, hf_binarize.PackedModule) for m in packed.modules())

    record = tmp_path / "result.json"
    assert main(["evaluate", "--model", str(packed_dir), "--dataset", str(dataset), "--json", str(record),
                 "--batch-size", "1", "--samples", "0"]) == 0
    result = json.loads(record.read_text())
    assert result["utterances"] == 4

    processor = AutoProcessor.from_pretrained(packed_dir)
    audio_path = sorted((dataset / "test").glob("*.wav"))[0]
    samples, rate = sf.read(audio_path, dtype="float32")
    features = processor.feature_extractor(samples, sampling_rate=rate, return_tensors="pt", return_attention_mask=True)
    if kind == "ctc":
        with torch.no_grad():
            ids = _ctc_reference(packed(**features).logits[0], packed.config.pad_token_id)
        expected = processor.tokenizer.decode(ids, skip_special_tokens=True, group_tokens=False).strip()
    else:
        # transformers' own TDT generate can emit duration ids as tokens (see evaluation.transcription): the
        # batched evaluation decode is the reference the long-form path must agree with.
        decoded = greedy_decode(packed, greedy_generation_config(packed), features["input_features"],
                                features["attention_mask"])
        assert int(decoded.tokens.max()) < packed.config.vocab_size
        expected = processor.tokenizer.decode(decoded.tokens[0], skip_special_tokens=True, group_tokens=False).strip()

    capsys.readouterr()
    assert main(["transcribe", "--model", str(packed_dir), str(audio_path)]) == 0
    assert capsys.readouterr().out.strip() == f"{audio_path}: {expected}"

    asr = pipeline("automatic-speech-recognition", model=str(packed_dir))
    # A TDT pipeline ran into the duration ids as tokens (IndexError) before the quantizer suppressed them.
    assert isinstance(asr({"raw": samples, "sampling_rate": rate})["text"], str)


def test_a_model_of_no_speech_family_is_one_line(tmp_path, capsys):
    from conftest import build_model

    build_model("llama").save_pretrained(tmp_path / "llama")
    assert main(["quantize", "--model", str(tmp_path / "llama"), "--output-dir", str(tmp_path / "out")]) == 1
    assert "not a speech model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
