"""Tests of PackedLinear and PackedConv1d against float64 torch modules holding the dense reference weight.

The dense reference is built here from the packed buffers by a bit loop (bit ``k % 8`` of byte ``k // 8`` is the
sign of input ``k``, 1 = +1) and the scales/offsets, never with hf_binarize's own dequantize.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from int8_activations_reference import assert_within_bound, int8_act_linear
from torch import nn

from hf_binarize import BinaryFormat, BinaryQuantizationConfig, Int8Format, quantize_model
from hf_binarize.nn import PackedConv1d, PackedLinear

TOL = {torch.float32: 1e-5, torch.bfloat16: 3e-2, torch.float16: 4e-3}

FORMATS = {
    "channel": {},
    "group": {"group_size": 8},
    "centred": {"group_size": 16, "centred": True},
    "centred-channel": {"centred": True},
    "f32-scales": {"scale_dtype": "float32"},
    "int8": {"module_overrides": {"m": "int8"}},
}


# --------------------------------------------------------------------------------------------------------------------
# Independent reference
# --------------------------------------------------------------------------------------------------------------------


def ref_signs(packed: np.ndarray, cols: int) -> np.ndarray:
    signs = np.empty((packed.shape[0], cols))
    for k in range(cols):
        signs[:, k] = np.where((packed[:, k // 8].astype(np.int64) >> (k % 8)) & 1, 1.0, -1.0)
    return signs


def ref_matrix(module, name: str, in_features: int) -> torch.Tensor:
    """The float64 dense matrix that ``module``'s buffers for ``name`` stand for."""
    stored = getattr(module, name)
    scale = getattr(module, name + "_scale").to(torch.float64).numpy()
    if stored.dtype == torch.int8:
        # Stored flat, row-major ([N * K]).
        return stored.reshape(-1, in_features).to(torch.float64) * torch.from_numpy(scale)
    assert stored.dtype == torch.uint8
    signs = ref_signs(stored.numpy(), in_features)
    offset = getattr(module, name + "_offset", None)
    offset = None if offset is None else offset.to(torch.float64).numpy()
    group_size = module.fmt.group_size or in_features
    dense = np.empty_like(signs)
    for k in range(in_features):
        g = k // group_size
        dense[:, k] = (0.0 if offset is None else offset[:, g]) + scale[:, g] * signs[:, k]
    return torch.from_numpy(dense)


def pack(module: nn.Module, **config) -> nn.Module:
    """Quantize ``module`` the way a model walk does: inside a container, through quantize_model."""
    container = nn.ModuleDict({"m": module})
    quantize_model(container, BinaryQuantizationConfig(**config))
    return container["m"]


def reference_linear(packed, float_module: nn.Module) -> nn.Linear:
    ref = nn.Linear(packed.in_features, packed.out_features, bias=float_module.bias is not None, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(ref_matrix(packed, "weight", packed.in_features))
        if float_module.bias is not None:
            ref.bias.copy_(float_module.bias)
    return ref


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    tol = TOL[dtype]
    scale = expected.abs().max().item() if expected.numel() else 1.0
    torch.testing.assert_close(actual.detach().to(torch.float64), expected.detach(), rtol=tol, atol=tol * max(scale, 1.0))


def assert_no_dense_copy(module: nn.Module) -> None:
    """No floating tensor anywhere on the module is as large as a weight matrix, and nothing is trainable."""
    smallest = min(out * inp for out, inp in module.matrices.values())
    tensors = list(module.state_dict().values())
    for value in vars(module).values():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        tensors += [t for t in items if isinstance(t, torch.Tensor)]
    assert tensors
    for tensor in tensors:
        if tensor.is_floating_point():
            assert tensor.numel() < smallest, f"floating tensor of shape {tuple(tensor.shape)}"
    assert list(module.parameters()) == []


def make_linear(in_features: int, out_features: int, bias: bool, seed: int, dtype=torch.float32) -> nn.Linear:
    torch.manual_seed(seed)
    linear = nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        linear.weight.normal_(0.1, 0.5)
        if bias:
            linear.bias.normal_(0.0, 0.5)
    return linear.to(dtype)


# --------------------------------------------------------------------------------------------------------------------
# PackedLinear
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("in_features", "out_features"), [(3, 5), (9, 7), (40, 33), (130, 64)])
def test_linear_matches_float_module(fmt, bias, in_features, out_features):
    float_linear = make_linear(in_features, out_features, bias, seed=in_features)
    packed = pack(float_linear, **FORMATS[fmt])
    assert isinstance(packed, PackedLinear)
    assert isinstance(packed.fmt, Int8Format if fmt == "int8" else BinaryFormat)
    ref = reference_linear(packed, float_linear)
    for shape in [(in_features,), (4, in_features), (2, 3, in_features)]:
        x = torch.randn(shape)
        y = packed(x)
        assert y.dtype == torch.float32 and y.shape == (*shape[:-1], out_features)
        assert_close(y, ref(x.double()), torch.float32)
    # Non-contiguous input.
    x = torch.randn(in_features, 6).T
    assert_close(packed(x), ref(x.double()), torch.float32)
    assert_no_dense_copy(packed)


@pytest.mark.parametrize("fmt", ["channel", "group", "centred"])
def test_linear_packs_the_float_weights(fmt):
    # The stored signs are those of W (or W - offset) and the scales are mean |W - offset| per group.
    float_linear = make_linear(37, 6, True, seed=1)
    packed = pack(float_linear, scale_dtype="float32", **FORMATS[fmt])
    w = float_linear.weight.detach().double().numpy()
    group_size = packed.fmt.group_size or 37
    signs = ref_signs(packed.weight.numpy(), 37)
    offset = packed.weight_offset.double().numpy() if packed.fmt.centred else np.zeros((6, 5))
    for n in range(6):
        for g, start in enumerate(range(0, 37, group_size)):
            cols = list(range(start, min(start + group_size, 37)))
            dev = w[n, cols] - offset[n, g]
            np.testing.assert_array_equal(signs[n, cols], np.where(dev >= 0, 1.0, -1.0))
            assert packed.weight_scale[n, g].item() == pytest.approx(np.mean(np.abs(dev)), rel=1e-5)
            if packed.fmt.centred:
                assert offset[n, g] == pytest.approx(np.mean(w[n, cols]), rel=1e-5, abs=1e-6)
    assert torch.equal(packed.bias, float_linear.bias.detach())


def test_linear_int8_packs_the_float_weights():
    float_linear = make_linear(20, 5, False, seed=2)
    packed = pack(float_linear, scale_dtype="float32", module_overrides={"m": "int8"})
    w = float_linear.weight.detach().double()
    scale = w.abs().amax(1, keepdim=True) / 127
    torch.testing.assert_close(packed.weight_scale.double(), scale, rtol=1e-6, atol=0)
    assert packed.weight.dtype == torch.int8
    assert (packed.weight.reshape(5, 20).double() - w / packed.weight_scale.double()).abs().max() <= 0.5 + 1e-4


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("fmt", ["channel", "centred", "int8"])
def test_linear_low_precision_inputs(dtype, fmt):
    float_linear = make_linear(40, 33, True, seed=3)
    packed = pack(float_linear, **FORMATS[fmt])
    ref = reference_linear(packed, float_linear)
    x = torch.randn(5, 40).to(dtype)
    y = packed(x)
    assert y.dtype == dtype
    assert_close(y, ref(x.double()), dtype)


@pytest.mark.parametrize("module_dtype", [torch.bfloat16, torch.float16])
def test_linear_low_precision_module(module_dtype):
    # A model already in bf16/fp16: the bias is kept in that dtype and inputs of that dtype come out unchanged.
    float_linear = make_linear(24, 10, True, seed=4, dtype=module_dtype)
    packed = pack(float_linear)
    assert packed.bias.dtype == module_dtype
    ref = reference_linear(packed, float_linear)
    x = torch.randn(3, 24).to(module_dtype)
    y = packed(x)
    assert y.dtype == module_dtype
    assert_close(y, ref(x.double()), module_dtype)


def test_linear_compute_dtype():
    # compute_dtype float32 runs the matmul in float32 and returns the input's dtype.
    float_linear = make_linear(40, 16, True, seed=5)
    packed = pack(float_linear, compute_dtype="float32")
    assert packed.compute_dtype == torch.float32
    ref = reference_linear(packed, float_linear)
    x = torch.randn(4, 40).to(torch.bfloat16)
    y = packed(x)
    assert y.dtype == torch.bfloat16
    expected = ref(x.double())
    # Only the final rounding to bfloat16 separates it from the float64 result.
    torch.testing.assert_close(y.double(), expected, rtol=2.0**-8, atol=1e-5)


@pytest.mark.parametrize("fmt", ["channel", "centred", "int8"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_dequantize(fmt, bias):
    float_linear = make_linear(19, 6, bias, seed=6)
    packed = pack(float_linear, **FORMATS[fmt])
    dense = packed.dequantize()
    assert type(dense) is nn.Linear
    assert (dense.in_features, dense.out_features) == (19, 6)
    assert dense.weight.dtype == torch.float32
    torch.testing.assert_close(dense.weight.double(), ref_matrix(packed, "weight", 19), rtol=1e-6, atol=1e-7)
    if bias:
        assert torch.equal(dense.bias, float_linear.bias)
    else:
        assert dense.bias is None
    x = torch.randn(3, 19)
    torch.testing.assert_close(dense(x), packed(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("module_dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_dequantize_keeps_module_dtype(module_dtype, bias):
    float_linear = make_linear(16, 4, bias, seed=7, dtype=module_dtype)
    packed = pack(float_linear)
    dense = packed.dequantize()
    assert dense.weight.dtype == module_dtype
    x = torch.randn(2, 16).to(module_dtype)
    assert dense(x).dtype == module_dtype


def test_linear_state_dict_round_trip():
    float_linear = make_linear(21, 9, True, seed=8)
    packed = pack(float_linear, group_size=8, centred=True)
    state = packed.state_dict()
    assert set(state) == {"weight", "weight_scale", "weight_offset", "bias"}
    assert state["weight"].dtype == torch.uint8 and state["weight"].shape == (9, 3)
    fresh = PackedLinear(21, 9, True, packed.fmt)
    fresh.load_state_dict(state)
    x = torch.randn(4, 21)
    assert torch.equal(fresh(x), packed(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_linear_with_int8_activations(dtype):
    # The same stored weights as with float activations; every product is the int8-activation definition's.
    float_linear = make_linear(130, 33, True, seed=17)
    packed = pack(float_linear, activations="int8")
    plain = pack(float_linear)
    assert packed.fmt.activations == "int8" and plain.fmt.activations == "float"
    assert packed.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(packed.state_dict()[key], plain.state_dict()[key]) for key in plain.state_dict())
    for x in (torch.randn(130), torch.randn(2, 5, 130), torch.randn(130, 4).T):
        x = x.to(dtype)
        y = packed(x)
        assert y.dtype == dtype
        torch.testing.assert_close(y, int8_act_linear(x, packed.weight, packed.weight_scale, packed.bias, 130),
                                   rtol=0, atol=0)
        assert_within_bound(y, x, packed.weight, packed.weight_scale, packed.bias, 130)
    assert_no_dense_copy(packed)


def test_linear_errors():
    packed = pack(make_linear(16, 4, True, seed=9))
    with pytest.raises(ValueError, match="16 input features"):
        packed(torch.randn(2, 15))
    with pytest.raises(TypeError, match="float32, bfloat16 or float16"):
        packed(torch.ones(2, 16, dtype=torch.int64))
    shell = PackedLinear(16, 4, True, BinaryFormat())
    with pytest.raises(ValueError, match="expects 4 x 16 weights"):
        shell.fill_from(make_linear(16, 5, True, seed=10))


# --------------------------------------------------------------------------------------------------------------------
# PackedConv1d
# --------------------------------------------------------------------------------------------------------------------


def make_conv(in_channels: int, out_channels: int, bias: bool, seed: int, cls=nn.Conv1d) -> nn.Conv1d:
    torch.manual_seed(seed)
    conv = cls(in_channels, out_channels, kernel_size=1, bias=bias)
    with torch.no_grad():
        conv.weight.normal_(0.0, 0.5)
        if bias:
            conv.bias.normal_(0.0, 0.5)
    return conv


def reference_conv(packed, float_conv) -> nn.Conv1d:
    ref = nn.Conv1d(packed.in_features, packed.out_features, 1, bias=float_conv.bias is not None, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(ref_matrix(packed, "weight", packed.in_features).unsqueeze(-1))
        if float_conv.bias is not None:
            ref.bias.copy_(float_conv.bias)
    return ref


@pytest.mark.parametrize("fmt", ["channel", "group", "centred", "int8"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv1d_channels_first(fmt, bias):
    float_conv = make_conv(20, 11, bias, seed=11)
    packed = pack(float_conv, **FORMATS[fmt])
    assert isinstance(packed, PackedConv1d) and not packed.channels_last
    ref = reference_conv(packed, float_conv)
    for shape in [(3, 20, 7), (20, 5), (1, 20, 1)]:  # [B, C, T] and unbatched [C, T]
        x = torch.randn(shape)
        y = packed(x)
        assert y.shape == (*shape[:-2], 11, shape[-1])
        assert_close(y, ref(x.double()), torch.float32)
    x = torch.randn(3, 7, 20).transpose(1, 2)  # non-contiguous [B, C, T]
    assert_close(packed(x), ref(x.double()), torch.float32)
    assert_no_dense_copy(packed)


@pytest.mark.parametrize("fmt", ["channel", "group", "int8"])
def test_conv1d_channels_last(fmt):
    float_conv = make_conv(20, 11, True, seed=12)
    format_obj = Int8Format() if fmt == "int8" else BinaryFormat(group_size=FORMATS[fmt].get("group_size"))
    packed = PackedConv1d(20, 11, True, format_obj, channels_last=True)
    packed.fill_from(float_conv)
    ref = reference_conv(packed, float_conv)
    for shape in [(3, 7, 20), (5, 20)]:  # [B, T, C] and [T, C]
        x = torch.randn(shape)
        y = packed(x)
        assert y.shape == (*shape[:-1], 11)
        assert_close(y, ref(x.double().transpose(-1, -2)).transpose(-1, -2), torch.float32)
    assert_no_dense_copy(packed)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_conv1d_low_precision_inputs(dtype):
    float_conv = make_conv(20, 11, True, seed=13)
    packed = pack(float_conv)
    ref = reference_conv(packed, float_conv)
    x = torch.randn(2, 20, 6).to(dtype)
    y = packed(x)
    assert y.dtype == dtype
    assert_close(y, ref(x.double()), dtype)


class _MyConv(nn.Conv1d):
    """A Conv1d subclass that keeps nn.Conv1d's forward (so it is binarized and dequantized back to itself)."""


@pytest.mark.parametrize("cls", [nn.Conv1d, _MyConv])
@pytest.mark.parametrize("bias", [True, False])
def test_conv1d_dequantize(cls, bias):
    float_conv = make_conv(12, 5, bias, seed=14, cls=cls)
    packed = pack(float_conv, group_size=8, centred=True)
    dense = packed.dequantize()
    assert type(dense) is cls
    assert dense.weight.shape == (5, 12, 1) and dense.kernel_size == (1,)
    torch.testing.assert_close(dense.weight.double().squeeze(-1), ref_matrix(packed, "weight", 12), rtol=1e-6,
                               atol=1e-7)
    if bias:
        assert torch.equal(dense.bias, float_conv.bias)
    else:
        assert dense.bias is None
    x = torch.randn(2, 12, 4)
    torch.testing.assert_close(dense(x), packed(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_conv1d_with_int8_activations(channels_last):
    # Each time step's channel vector is one row of the int8 product.
    float_conv = make_conv(20, 11, True, seed=17)
    packed = PackedConv1d(20, 11, True, BinaryFormat(activations="int8"), channels_last=channels_last)
    packed.fill_from(float_conv)
    x = torch.randn(3, 7, 20) if channels_last else torch.randn(3, 20, 7)
    rows = x if channels_last else x.transpose(1, 2)
    expected = int8_act_linear(rows, packed.weight, packed.weight_scale, packed.bias, 20)
    torch.testing.assert_close(packed(x), expected if channels_last else expected.transpose(1, 2), rtol=0, atol=0)


def test_conv1d_packs_the_float_weights():
    float_conv = make_conv(19, 4, False, seed=15)
    packed = pack(float_conv, scale_dtype="float32")
    w = float_conv.weight.detach().double().squeeze(-1).numpy()
    np.testing.assert_array_equal(ref_signs(packed.weight.numpy(), 19), np.where(w >= 0, 1.0, -1.0))
    np.testing.assert_allclose(packed.weight_scale.double().numpy()[:, 0], np.abs(w).mean(1), rtol=1e-6)


def test_conv1d_wrong_channels():
    packed = pack(make_conv(8, 3, True, seed=16))
    with pytest.raises(ValueError, match="8 input features"):
        packed(torch.randn(2, 9, 5))
