"""The model walk on plain torch models: what is packed, what is left alone, and why."""

from __future__ import annotations

import subprocess
import sys

import torch
from torch import nn

from hf_binarize import (
    BinaryQuantizationConfig,
    PackedConv1d,
    PackedLinear,
    PackedLSTM,
    dequantize_model,
    quantize_model,
)
from hf_binarize.quantize import plan_model


class TransposingConv(nn.Conv1d):
    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(16, 16)
        self.pointwise = nn.Conv1d(16, 16, 1)
        self.strided = nn.Conv1d(16, 16, 1, stride=2)
        self.depthwise = nn.Conv1d(16, 16, 3, groups=16, padding=1)
        self.custom = TransposingConv(16, 16, 1)
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
        self.lstm = nn.LSTM(16, 8)
        self.projected_lstm = nn.LSTM(16, 8, proj_size=4)


def test_only_exactly_reproducible_modules_are_packed():
    model = quantize_model(Mixed())
    assert isinstance(model.linear, PackedLinear) and isinstance(model.lstm, PackedLSTM)
    assert isinstance(model.pointwise, PackedConv1d)
    # Strided, depthwise and custom-forward convs, MultiheadAttention's out_proj (read as .weight by its parent) and
    # projected LSTMs are not a plain matmul over channels: they stay float.
    assert type(model.strided) is nn.Conv1d and type(model.depthwise) is nn.Conv1d
    assert type(model.custom) is TransposingConv
    assert type(model.attention.out_proj) is nn.modules.linear.NonDynamicallyQuantizableLinear
    assert type(model.projected_lstm) is nn.LSTM


def test_plan_records_the_reason_for_each_module():
    config = BinaryQuantizationConfig(modules_to_not_convert=["linear"], module_overrides={"lstm": "int8"},
                                      module_types=["linear", "lstm"])
    plans = plan_model(Mixed(), config, keep_float=["pointwise"])
    assert plans["linear"].reason == "modules_to_not_convert" and plans["linear"].method == "float"
    assert plans["lstm"].method == "int8"
    assert plans["pointwise"].method == "float"
    assert "projected_lstm" not in plans


def test_quantize_then_dequantize_keeps_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(24, 40), nn.ReLU(), nn.Linear(40, 8))
    packed = quantize_model(model)
    x = torch.randn(5, 24)
    with torch.no_grad():
        expected = packed(x)
        dense = dequantize_model(packed)
        assert type(dense[0]) is nn.Linear
        torch.testing.assert_close(dense(x), expected, rtol=1e-5, atol=1e-5)


def test_import_is_lean():
    """Importing hf_binarize neither initialises CUDA nor imports triton."""
    code = (
        "import sys, torch, hf_binarize\n"
        "assert 'triton' not in sys.modules, 'triton imported'\n"
        "assert not torch.cuda.is_initialized(), 'cuda initialised'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_torch_compile_traces_packed_modules_in_one_graph():
    torch.manual_seed(0)
    model = quantize_model(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8)))
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(3, 64, requires_grad=True)
    torch.testing.assert_close(compiled(x), model(x))
    compiled(x).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    model(x).sum().backward()
    torch.testing.assert_close(grad, x.grad)


def test_dequantize_model_makes_a_transformers_model_save_as_float(tmp_path):
    from conftest import build_model
    from transformers import AutoModelForRNNT

    build_model("rnnt").save_pretrained(tmp_path / "float")
    model = AutoModelForRNNT.from_pretrained(tmp_path / "float", quantization_config=BinaryQuantizationConfig())
    dequantize_model(model)
    model.save_pretrained(tmp_path / "dense")
    reloaded = AutoModelForRNNT.from_pretrained(tmp_path / "dense")
    assert type(reloaded.encoder_projector) is nn.Linear
    torch.testing.assert_close(reloaded.encoder_projector.weight, model.encoder_projector.weight)
