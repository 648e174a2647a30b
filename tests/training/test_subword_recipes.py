"""End to end with subwords: ``hf-binarize make-dataset`` with augmentation, ``train_float.py`` with a subword
tokenizer, 8x subsampling and SpecAugment, ``qat.py``, and the packed result transcribing through
``pipeline("automatic-speech-recognition")``. Few steps: this checks the plumbing, not learning."""

from __future__ import annotations

import shutil

import numpy as np
from training_helpers import MICRO_MODEL, QUIET, load_recipe, needs_espeak
from transformers import AutoProcessor, ParakeetTokenizer, pipeline

import hf_binarize  # noqa: F401  (registers the quantizer, so the packed checkpoint loads packed)
from hf_binarize.commands.main import main as cli_main
from hf_binarize.data.audio import load_audio
from hf_binarize.data.loading import load_speech_dataset

pytestmark = needs_espeak
ENGINES = "espeak-ng,flite" if shutil.which("flite") else "espeak-ng"


def test_subword_recipes_end_to_end(tmp_path, capsys):
    corpus, float_dir, packed_dir = tmp_path / "corpus", tmp_path / "float", tmp_path / "packed"
    assert cli_main(["make-dataset", "--out", str(corpus), "--utterances", "24", "--seed", "1", "--workers", "2",
                     "--text-sources", "harvard", "--engines", ENGINES, "--unseen-flite", "0",
                     "--split-fractions", "0.7,0.1,0.1,0.1", "--speed", "0.95,1.05", "--reverb-probability", "0.5",
                     "--babble-probability", "0.5", "--telephone-probability", "0.2", "--no-progress"]) == 0
    data = ["--data", str(corpus), "--eval-split", "validation", "--eval-limit", "3", "--batch-size", "4", *QUIET]
    load_recipe("train_float").main([*data, "--output-dir", str(float_dir), *MICRO_MODEL, "--tokenizer", "subwords",
                                     "--vocab-size", "80", "--subsampling-factor", "8", "--freq-masks", "2",
                                     "--time-masks", "2", "--max-steps", "4", "--eval-steps", "4"])
    processor = AutoProcessor.from_pretrained(float_dir)
    assert type(processor.tokenizer) is ParakeetTokenizer
    assert type(processor.tokenizer.backend_tokenizer.model).__name__ == "BPE"
    train_text = " ".join(load_speech_dataset(corpus, "train")["text"]).lower()
    assert any(piece.strip("▁") in train_text and len(piece) > 2 for piece in processor.tokenizer.get_vocab())

    load_recipe("qat").main(["--model", str(float_dir), *data, "--output-dir", str(packed_dir), "--max-steps", "2",
                             "--eval-steps", "2", "--time-masks", "1"])
    capsys.readouterr()

    audio, rate = load_audio(load_speech_dataset(corpus, "test")[0]["audio"])
    asr = pipeline("automatic-speech-recognition", model=str(packed_dir))
    result = asr({"raw": np.asarray(audio, dtype=np.float32), "sampling_rate": rate})
    assert isinstance(result["text"], str)
    assert type(asr.model.encoder_projector).__name__ == "PackedLinear"
