"""Ecosystem fit: a packed folder transcribes through transformers' ASR pipeline and under torch.compile with the same
greedy transcript as an independent decode of the same weights."""

from __future__ import annotations

import copy
import itertools
import shutil

import numpy as np
import pytest
import torch
from conftest import BLANK, build_model
from torch import nn
from transformers import AutoModelForRNNT, AutoProcessor, pipeline

import hf_binarize
from hf_binarize import BinaryQuantizationConfig, PackedConv1d, PackedLinear, PackedLSTM, quantize_model
from hf_binarize.training.tokenizer import build_character_tokenizer, build_processor

RATE = 16000
# 26 letters, '<unk>', the word delimiter and '<blank>': the 29-token vocabulary, blank last, of conftest's models.
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None,
    reason="ffmpeg is not installed: the ASR pipeline decodes file paths with it (scripts/install_system_deps.sh)",
)


def utterance() -> np.ndarray:
    """1.25 s of tones, noise and silence: segments that differ enough for a random encoder to tell them apart."""
    t = np.arange(RATE // 4) / RATE
    noise = np.random.default_rng(0).standard_normal(RATE // 4)
    return np.concatenate([
        0.4 * np.sin(2 * np.pi * 300 * t),
        0.2 * noise,
        0.4 * np.sin(2 * np.pi * 1200 * t) * np.sin(2 * np.pi * 3 * t),
        np.zeros(RATE // 8),
        0.3 * np.sin(2 * np.pi * 2500 * t) + 0.2 * np.sin(2 * np.pi * 500 * t),
    ]).astype(np.float32)


@pytest.fixture(scope="module")
def packed_folder(tmp_path_factory) -> str:
    """A packed RNN-T saved by save_pretrained with its processor beside it, as a user would publish it."""
    tokenizer = build_character_tokenizer(alphabet=ALPHABET)
    assert len(tokenizer) == BLANK + 1 and tokenizer.convert_tokens_to_ids("<blank>") == BLANK
    processor = build_processor(tokenizer, num_mel_bins=32)
    float_dir, packed_dir = tmp_path_factory.mktemp("float"), tmp_path_factory.mktemp("packed")
    build_model("rnnt", seed=1).save_pretrained(float_dir)
    model = AutoModelForRNNT.from_pretrained(float_dir, quantization_config=BinaryQuantizationConfig()).eval()
    # A random binarized joint never prefers blank, so every frame would emit max_symbols_per_step copies of one
    # token. Raising the blank logit (the bias stays float in a packed layer) above the best token on 30% of the
    # frames gives a transcript of several characters, spaces and repeats.
    features = processor(utterance(), sampling_rate=RATE, return_tensors="pt")
    with torch.no_grad():
        logits = model(**features, decoder_input_ids=torch.tensor([[BLANK]])).logits[0]
        margin = logits[:, :BLANK].max(-1).values - logits[:, BLANK]
        model.joint.head.bias[BLANK] += margin.quantile(0.3)
    model.save_pretrained(packed_dir)
    processor.save_pretrained(packed_dir)
    return str(packed_dir)


@pytest.fixture(scope="module")
def packed_model(packed_folder) -> nn.Module:
    """The folder loaded on its own, apart from the pipeline's copy."""
    return AutoModelForRNNT.from_pretrained(packed_folder).eval()


@pytest.fixture(scope="module")
def processor(packed_folder):
    return AutoProcessor.from_pretrained(packed_folder)


def transcribe(model: nn.Module, processor, audio: np.ndarray) -> tuple[torch.Tensor, str]:
    """The independent reference: processor, greedy generate and batch_decode, as a model card would show it."""
    features = processor(audio, sampling_rate=RATE, return_tensors="pt")
    with torch.no_grad():
        tokens = model.generate(**features).sequences
    return tokens, processor.batch_decode(tokens, skip_special_tokens=True)[0]


@pytest.fixture(scope="module")
def asr(packed_folder):
    return pipeline("automatic-speech-recognition", model=packed_folder)


def test_reference_transcript_is_meaningful_and_matches_the_dense_weights(packed_model, processor):
    tokens, text = transcribe(packed_model, processor, utterance())
    # Vacuity guards: several distinct characters and a repeated one, so that a pipeline that collapsed repeats
    # (CTC-style decoding) or dropped characters could not match it by accident.
    assert len(set(text.replace(" ", ""))) >= 3, text
    assert " " in text, text
    assert any(a == b for a, b in itertools.pairwise(text)), text
    # The packed decode is the decode of the dense weights it stands for: same tokens from a float model.
    dense = hf_binarize.dequantize_model(copy.deepcopy(packed_model))
    assert not any(isinstance(m, hf_binarize.PackedModule) for m in dense.modules())
    dense_tokens, dense_text = transcribe(dense, processor, utterance())
    assert torch.equal(tokens, dense_tokens)
    assert dense_text == text


def test_pipeline_runs_the_packed_model(asr):
    kinds = {type(m) for m in asr.model.modules()}
    assert {PackedLinear, PackedConv1d, PackedLSTM} <= kinds
    assert not any(type(m) in (nn.Linear, nn.LSTM) for m in asr.model.modules())
    assert isinstance(asr.model.config.quantization_config, BinaryQuantizationConfig)
    assert asr.type == "tdt"  # transformers' transducer path: generate, then decode without collapsing repeats


@pytest.mark.parametrize("form", ["array", "dict"])
def test_pipeline_transcribes_an_array(asr, packed_model, processor, form):
    audio = utterance()
    inputs = audio.copy() if form == "array" else {"raw": audio.copy(), "sampling_rate": RATE}
    assert asr(inputs)["text"] == transcribe(packed_model, processor, audio)[1]


@needs_ffmpeg
@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_pipeline_transcribes_a_file(asr, packed_model, processor, tmp_path, suffix):
    soundfile = pytest.importorskip("soundfile", reason="the data extra is not installed (pip install -e '.[data]')")
    path = tmp_path / f"utterance{suffix}"
    soundfile.write(str(path), utterance(), RATE, subtype="PCM_16")
    # The reference hears what the file holds (16-bit samples), decoded by libsndfile rather than by ffmpeg.
    decoded, rate = soundfile.read(str(path), dtype="float32")
    assert rate == RATE
    assert asr(str(path))["text"] == transcribe(packed_model, processor, decoded)[1]


def packed_layers() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    float_model = nn.ModuleDict({
        "binary": nn.Linear(64, 48),
        "int8": nn.Linear(64, 48),
        "conv1d": nn.Conv1d(64, 48, kernel_size=1),
        "lstm": nn.LSTM(16, 24, num_layers=2, batch_first=True),
    })
    config = BinaryQuantizationConfig(module_overrides={"int8": "int8"})
    return dict(quantize_model(float_model, config).items())


@pytest.mark.parametrize("name", ["binary", "int8", "conv1d", "lstm"])
def test_packed_layers_compile_into_one_graph(name):
    layer = packed_layers()[name]
    x = torch.randn(2, 5, 16) if name == "lstm" else torch.randn(3, 64, 7) if name == "conv1d" else torch.randn(3, 64)
    explained = torch._dynamo.explain(layer)(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1
    op = "int8_linear" if name == "int8" else "binary_linear"
    assert f"torch.ops.hf_binarize.{op}" in explained.graphs[0].code


def test_inductor_compiles_the_packed_op():
    layer = packed_layers()["binary"]
    compiled = torch.compile(layer, backend="inductor", fullgraph=True, dynamic=True)
    with torch.no_grad():
        for shape in [(3, 64), (2, 9, 64)]:
            x = torch.randn(shape)
            torch.testing.assert_close(compiled(x), layer(x), rtol=0, atol=0)


def test_compiled_model_transcribes_like_eager(packed_folder, packed_model, processor):
    eager_tokens, eager_text = transcribe(packed_model, processor, utterance())
    model = AutoModelForRNNT.from_pretrained(packed_folder).eval()
    # Not model.forward: transformers 5.24's RNN-T decoder cache calls mark_static_address inside it, which dynamo
    # refuses (for float Parakeet models too). The encoder runs once per generate call, so static shapes cost one
    # compile per audio length; with dynamic=True inductor took about 5 minutes on it here instead of 40 s. The
    # LSTM and joint run once per emitted symbol, hence dynamic shapes there.
    model.encoder.compile(backend="inductor", fullgraph=True)
    model.decoder.lstm.compile(backend="inductor", fullgraph=True, dynamic=True)
    model.joint.compile(backend="inductor", fullgraph=True, dynamic=True)
    tokens, text = transcribe(model, processor, utterance())
    assert torch.equal(tokens, eager_tokens)
    assert text == eager_text
