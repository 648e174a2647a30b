"""size_report: byte counts checked against hand-computed sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hf_binarize import BinaryQuantizationConfig, folder_size, quantize_model, size_report


class Small(nn.Module):
    # Packed, the model saves its biases and norms in float16; modules the config keeps float stay float32.
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(64, 32)  # binary: 32*8 packed + 32*2 fp16 scale + 32*2 fp16 bias
        self.conv = nn.Conv1d(32, 16, 1, bias=False)  # binary: 16*4 packed + 16*2 scale
        self.norm = nn.LayerNorm(16)  # float16: 2*16*2
        self.embed = nn.Embedding(10, 24)  # int8 override: 10*24 + 10*2 scale
        self.lstm = nn.LSTM(24, 8)  # binary: ih 32*3 + 32*2, hh 32*1 + 32*2, biases 2*32*2
        self.head = nn.Linear(8, 5)  # kept float: (40 + 5) * 4


def test_counts_every_byte_by_hand():
    model = quantize_model(Small(), BinaryQuantizationConfig(modules_to_not_convert=["head"],
                                                             module_overrides={"embed": "int8"}))
    report = size_report(model)
    rows = {m.name: m for m in report.modules}
    assert (rows["proj"].bytes, rows["proj"].params, rows["proj"].precision) == (256 + 64 + 64, 64 * 32 + 32, "binary")
    assert (rows["conv"].bytes, rows["conv"].params, rows["conv"].group) == (64 + 32, 512, "conv1d")
    assert (rows["norm"].bytes, rows["norm"].group, rows["norm"].precision) == (64, "other", "float")
    assert (rows["embed"].bytes, rows["embed"].precision, rows["embed"].group) == (240 + 20, "int8", "embedding")
    lstm_bytes = 32 * 3 + 64 + 32 + 64 + 2 * 32 * 2
    assert (rows["lstm"].bytes, rows["lstm"].params) == (lstm_bytes, 32 * 24 + 32 * 8 + 64)
    assert (rows["head"].bytes, rows["head"].group, rows["head"].precision) == (180, "joint/head", "float")
    total = 384 + 96 + 64 + 260 + lstm_bytes + 180
    params = 2080 + 512 + 32 + 240 + 32 * 24 + 32 * 8 + 64 + 45
    assert report.total_bytes == total and report.total_params == params
    assert report.fp32_bytes == 4 * params
    assert report.compression == pytest.approx(4 * params / total)
    assert report.bits_per_param == pytest.approx(8 * total / params)
    text = str(report)
    assert "compression vs fp32" in text and "int8" in text
    assert report.to_dict()["total_bytes"] == total


def test_float_model_reports_32_bits_and_no_compression():
    report = size_report(nn.Sequential(nn.Linear(10, 10), nn.BatchNorm1d(10)))
    # BatchNorm's num_batches_tracked is an int64 buffer: counted as stored bytes, not as a parameter.
    assert report.total_params == 110 + 40
    assert report.total_bytes == 4 * 150 + 8
    assert report.compression == pytest.approx(1.0)


def test_tied_tensors_are_counted_once():
    model = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 7, bias=False))
    model[1].weight = model[0].weight
    assert size_report(model).total_bytes == 7 * 4 * 4


def test_folder_size_counts_every_file(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_bytes(b"y" * 23)
    assert folder_size(tmp_path) == 123
    report = size_report(nn.Linear(2, 2), tmp_path)
    assert report.folder_bytes == 123 and str(tmp_path) in str(report)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        folder_size(tmp_path / "missing")


def test_packed_model_holds_no_float_matrix():
    model = quantize_model(Small(), BinaryQuantizationConfig(module_overrides={"embed": "int8"}))
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            assert tensor.dim() == 1 or tensor.shape[-1] <= 3, name
    state = model.state_dict()
    assert {state[k].dtype for k in ("proj.weight", "conv.weight", "head.weight", "lstm.weight_ih_l0")} == {torch.uint8}
    assert state["embed.weight"].dtype == torch.int8


def test_tensors_float16_cannot_hold_and_modules_kept_in_fp32_keep_their_dtype():
    model = quantize_model(Small(), BinaryQuantizationConfig(module_overrides={"embed": "int8"}))
    with torch.no_grad():
        model.norm.weight.fill_(1e5)  # past float16's largest finite value, 65504
        model.norm.bias.fill_(1e-6)  # all in float16's subnormal range: only 4% precision left
        model.proj.bias.fill_(0.5)[0] = 1e-7  # one subnormal entry beside normal ones: fits
    rows = {m.name: m for m in size_report(model).modules}
    assert rows["norm"].bytes == 2 * 16 * 4
    assert rows["proj"].bytes == 256 + 64 + 64
    model.norm.weight.data.fill_(1.0)
    model._keep_in_fp32_modules = ["norm"]
    assert {m.name: m for m in size_report(model).modules}["norm"].bytes == 2 * 16 * 4
    model._keep_in_fp32_modules = []
    assert {m.name: m for m in size_report(model).modules}["norm"].bytes == 16 * 4 + 16 * 2
