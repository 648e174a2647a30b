"""A packed model on a CUDA GPU: the bundled 1-bit RNN-T, moved to the GPU with ``.to("cuda")``, decodes the demo
audio through the Triton kernels to the same tokens as on the CPU. Skipped without a CUDA GPU (on such machines the
kernels themselves run in the Triton interpreter: tests/backends/test_triton_kernel.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForRNNT, AutoProcessor

import hf_binarize.backends.triton as triton_backend
from hf_binarize import PackedLinear
from hf_binarize.data.text import wer
from hf_binarize.evaluation.transcription import greedy_decode, greedy_generation_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")

ROOT = Path(__file__).resolve().parents[2]
PACKED, AUDIO = ROOT / "model_cards" / "binary-int8", ROOT / "demo" / "audio" / "test"


def test_the_bundled_packed_model_decodes_on_the_gpu_as_on_the_cpu(monkeypatch):
    pytest.importorskip("triton", reason="triton is not installed (pip install 'hf-binarize[cuda]')")
    soundfile = pytest.importorskip("soundfile")
    with open(AUDIO / "metadata.csv", newline="") as file:
        # Four utterances: the prediction network then multiplies 4 rows (the GEMV), the encoder hundreds (the GEMM).
        rows = list(csv.DictReader(file))[:4]
    audio = [soundfile.read(AUDIO / row["file_name"], dtype="float32")[0] for row in rows]
    processor = AutoProcessor.from_pretrained(PACKED)
    batch = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt", return_attention_mask=True)
    model = AutoModelForRNNT.from_pretrained(PACKED).eval()
    generation = greedy_generation_config(model)
    on_cpu = greedy_decode(model, generation, batch["input_features"], batch["attention_mask"])

    launches = []
    launcher = triton_backend.triton_binary_linear
    monkeypatch.setattr(triton_backend, "triton_binary_linear",
                        lambda x, *args, **kwargs: launches.append(x.shape[0]) or launcher(x, *args, **kwargs))
    model.to("cuda")
    assert all(buffer.is_cuda for module in model.modules() if isinstance(module, PackedLinear)
               for buffer in module.buffers())
    on_gpu = greedy_decode(model, generation, batch["input_features"], batch["attention_mask"])

    assert torch.equal(on_gpu.tokens.cpu(), on_cpu.tokens)
    # Both kernels ran: the GEMV for the prediction network's single rows, the GEMM for the encoder's frames.
    assert min(launches) <= triton_backend._GEMV_MAX_M < max(launches)
    # A model that transcribes: equal empty outputs would prove nothing.
    texts = processor.tokenizer.batch_decode(on_gpu.tokens, skip_special_tokens=True, group_tokens=False)
    assert wer([row["text"] for row in rows], texts).rate < 0.9
