"""Tests of PackedLSTM against a float64 nn.LSTM holding the dense reference weights.

The dense reference of every gate matrix is built here from the packed buffers by a bit loop (bit ``k % 8`` of
byte ``k // 8`` is the sign of input ``k``, 1 = +1) and the scales/offsets, never with hf_binarize's dequantize.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from int8_activations_reference import int8_act_linear
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from hf_binarize import BinaryFormat, BinaryQuantizationConfig, Int8Format, quantize_model
from hf_binarize.nn import PackedLSTM

INPUT, HIDDEN, STEPS, BATCH = 6, 5, 4, 3
TOL = {torch.float32: 1e-5, torch.bfloat16: 4e-2, torch.float16: 5e-3}


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


def make_lstm(num_layers=1, bidirectional=False, batch_first=False, bias=True, input_size=INPUT, hidden=HIDDEN,
              dropout=0.0, seed=0, dtype=torch.float32) -> nn.LSTM:
    torch.manual_seed(seed)
    lstm = nn.LSTM(input_size, hidden, num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                   bidirectional=bidirectional)
    with torch.no_grad():
        for param in lstm.parameters():
            param.normal_(0.0, 0.6)
    return lstm.to(dtype)


def pack(module: nn.Module, **config) -> PackedLSTM:
    container = nn.ModuleDict({"lstm": module})
    quantize_model(container, BinaryQuantizationConfig(**config))
    packed = container["lstm"]
    assert isinstance(packed, PackedLSTM)
    return packed


def reference_lstm(packed: PackedLSTM, float_lstm: nn.LSTM) -> nn.LSTM:
    """A float64 nn.LSTM of the same shape with every gate matrix set to the dense reference."""
    ref = nn.LSTM(float_lstm.input_size, float_lstm.hidden_size, float_lstm.num_layers, bias=float_lstm.bias,
                  batch_first=float_lstm.batch_first, dropout=float_lstm.dropout,
                  bidirectional=float_lstm.bidirectional, dtype=torch.float64)
    with torch.no_grad():
        for name, param in ref.named_parameters():
            if name.startswith("weight_"):
                param.copy_(ref_matrix(packed, name, param.shape[1]))
            else:
                param.copy_(getattr(float_lstm, name))
    return ref.eval()


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    assert actual.dtype == dtype
    tol = TOL[dtype]
    torch.testing.assert_close(actual.detach().to(torch.float64), expected.detach(), rtol=tol, atol=tol)


def assert_lstm_outputs(actual, expected, dtype=torch.float32) -> None:
    out, (h, c) = actual
    ref_out, (ref_h, ref_c) = expected
    assert out.shape == ref_out.shape and h.shape == ref_h.shape and c.shape == ref_c.shape
    assert_close(out, ref_out, dtype)
    assert_close(h, ref_h, dtype)
    assert_close(c, ref_c, dtype)


def assert_no_dense_copy(module: PackedLSTM) -> None:
    smallest = min(out * inp for out, inp in module.matrices.values())
    tensors = list(module.state_dict().values())
    for value in vars(module).values():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        tensors += [t for t in items if isinstance(t, torch.Tensor)]
    for tensor in tensors:
        if tensor.is_floating_point():
            assert tensor.numel() < smallest, f"floating tensor of shape {tuple(tensor.shape)}"
    assert list(module.parameters()) == []


def random_state(lstm: nn.LSTM, batch: int | None, seed: int):
    gen = torch.Generator().manual_seed(seed)
    layers = lstm.num_layers * (2 if lstm.bidirectional else 1)
    shape = (layers, lstm.hidden_size) if batch is None else (layers, batch, lstm.hidden_size)
    return torch.randn(shape, generator=gen) * 0.5, torch.randn(shape, generator=gen) * 0.5


def random_input(lstm: nn.LSTM, seed: int, unbatched: bool = False) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if unbatched:
        return torch.randn(STEPS, lstm.input_size, generator=gen)
    shape = (BATCH, STEPS, lstm.input_size) if lstm.batch_first else (STEPS, BATCH, lstm.input_size)
    return torch.randn(shape, generator=gen)


def run_both(packed, ref, x, hx):
    actual = packed(x) if hx is None else packed(x, hx)
    ref_hx = None if hx is None else tuple(t.double() for t in hx)
    with torch.no_grad():
        expected = ref(x.double()) if ref_hx is None else ref(x.double(), ref_hx)
    return actual, expected


# --------------------------------------------------------------------------------------------------------------------
# Against nn.LSTM
# --------------------------------------------------------------------------------------------------------------------

CONFIGS = list(itertools.product([1, 2], [False, True], [False, True], [True, False]))


@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first", "bias"), CONFIGS)
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_matches_reference(num_layers, bidirectional, batch_first, bias, with_state):
    float_lstm = make_lstm(num_layers, bidirectional, batch_first, bias, seed=num_layers * 10 + bidirectional)
    packed = pack(float_lstm)
    ref = reference_lstm(packed, float_lstm)
    x = random_input(float_lstm, seed=1)
    hx = random_state(float_lstm, BATCH, seed=2) if with_state else None
    actual, expected = run_both(packed, ref, x, hx)
    assert actual[0].shape == (*x.shape[:-1], HIDDEN * (2 if bidirectional else 1))
    assert_lstm_outputs(actual, expected)
    assert_no_dense_copy(packed)


@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first"), [(1, False, False), (2, True, True)])
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_unbatched_input(num_layers, bidirectional, batch_first, with_state):
    float_lstm = make_lstm(num_layers, bidirectional, batch_first, seed=3)
    packed = pack(float_lstm)
    ref = reference_lstm(packed, float_lstm)
    x = random_input(float_lstm, seed=4, unbatched=True)
    hx = random_state(float_lstm, None, seed=5) if with_state else None
    actual, expected = run_both(packed, ref, x, hx)
    assert actual[0].shape == (STEPS, HIDDEN * (2 if bidirectional else 1))
    assert actual[1][0].shape == (num_layers * (2 if bidirectional else 1), HIDDEN)
    assert_lstm_outputs(actual, expected)


@pytest.mark.parametrize(
    "config",
    [
        {"group_size": 8},
        {"group_size": 8, "centred": True},
        {"centred": True},
        {"scale_dtype": "float32"},
        {"scale_dtype": "bfloat16", "group_size": 16},
        {"module_overrides": {"lstm": "int8"}},
        {"module_overrides": {"lstm": {"method": "binary", "group_size": 8, "centred": True}}},
    ],
    ids=["group", "group-centred", "centred", "f32-scale", "bf16-scale", "int8", "override-binary"],
)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_formats(config, bidirectional):
    # input 12 / hidden 16: partial last group on the input matrices, two full groups on the recurrent ones.
    float_lstm = make_lstm(2, bidirectional, True, input_size=12, hidden=16, seed=6)
    packed = pack(float_lstm, **config)
    expected_fmt = Int8Format if "int8" in str(config) else BinaryFormat
    assert isinstance(packed.fmt, expected_fmt)
    ref = reference_lstm(packed, float_lstm)
    x = random_input(float_lstm, seed=7)
    actual, expected = run_both(packed, ref, x, random_state(float_lstm, BATCH, seed=8))
    assert_lstm_outputs(actual, expected)
    assert_no_dense_copy(packed)


def test_lstm_int8_stores_int8_buffers():
    float_lstm = make_lstm(2, True, False, seed=9)
    packed = pack(float_lstm, module_overrides={"lstm": "int8"})
    for name in packed.quantized_names:
        assert getattr(packed, name).dtype == torch.int8
        assert getattr(packed, name).shape == (getattr(float_lstm, name).numel(),)  # flat: no float shape
        assert getattr(packed, name + "_scale").shape == (4 * HIDDEN, 1)


@pytest.mark.parametrize("fmt", [{}, {"group_size": 8, "centred": True}])
def test_lstm_packs_each_float_matrix_into_its_own_buffers(fmt):
    # Every gate matrix (layer, direction, ih/hh) lands in the buffers of the same name: the stored signs are
    # those of that float matrix minus its offset.
    float_lstm = make_lstm(2, True, False, input_size=12, hidden=16, seed=10)
    packed = pack(float_lstm, scale_dtype="float32", **fmt)
    names = {name for name, _ in float_lstm.named_parameters() if name.startswith("weight_")}
    assert set(packed.quantized_names) == names
    for name in names:
        w = getattr(float_lstm, name).detach().double().numpy()
        cols = w.shape[1]
        group_size = fmt.get("group_size") or cols
        offset = getattr(packed, name + "_offset", None)
        centre = np.zeros_like(w)
        if offset is not None:
            for k in range(cols):
                centre[:, k] = offset[:, k // group_size].double().numpy()
        np.testing.assert_array_equal(ref_signs(getattr(packed, name).numpy(), cols), np.where(w >= centre, 1.0, -1.0))
    for name, param in float_lstm.named_parameters():
        if name.startswith("bias_"):
            assert torch.equal(getattr(packed, name), param.detach())


def test_lstm_dropout_inactive_in_eval():
    float_lstm = make_lstm(2, False, False, dropout=0.5, seed=11)
    packed = pack(float_lstm).eval()
    ref = reference_lstm(packed, float_lstm)
    actual, expected = run_both(packed, ref, random_input(float_lstm, seed=12), None)
    assert_lstm_outputs(actual, expected)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_low_precision_inputs(dtype, with_state):
    float_lstm = make_lstm(2, True, True, seed=13)
    packed = pack(float_lstm)
    ref = reference_lstm(packed, float_lstm)
    x = random_input(float_lstm, seed=14).to(dtype)
    hx = tuple(t.to(dtype) for t in random_state(float_lstm, BATCH, seed=15)) if with_state else None
    actual, expected = run_both(packed, ref, x, hx)
    assert_lstm_outputs(actual, expected, dtype)


def test_lstm_with_int8_activations():
    # The LSTM equations with every gate product (input and recurrent, each step) quantizing its input rows to int8:
    # the numpy replica of the int8 product (tests/int8_activations_reference.py) inside a plain loop.
    float_lstm = make_lstm(2, False, False, seed=18)
    packed = pack(float_lstm, activations="int8")
    x = random_input(float_lstm, seed=19)
    h0, c0 = random_state(float_lstm, BATCH, seed=20)
    out, (h_n, c_n) = packed(x, (h0, c0))

    def product(inputs, name, bias_name):
        return int8_act_linear(inputs, getattr(packed, name), getattr(packed, name + "_scale"),
                               getattr(packed, bias_name), inputs.shape[-1])

    layer_input = x
    for layer in range(2):
        gates_in = product(layer_input, f"weight_ih_l{layer}", f"bias_ih_l{layer}")
        h, c, steps = h0[layer], c0[layer], []
        for t in range(STEPS):
            i, f, g, o = (gates_in[t] + product(h, f"weight_hh_l{layer}", f"bias_hh_l{layer}")).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            steps.append(h)
        layer_input = torch.stack(steps)
        torch.testing.assert_close(h_n[layer], h, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(c_n[layer], c, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out, layer_input, rtol=1e-6, atol=1e-6)


def test_lstm_compute_dtype():
    float_lstm = make_lstm(1, False, False, seed=16)
    packed = pack(float_lstm, compute_dtype="float32")
    ref = reference_lstm(packed, float_lstm)
    x = random_input(float_lstm, seed=17).to(torch.bfloat16)
    out, (h, c) = packed(x)
    assert out.dtype == h.dtype == c.dtype == torch.bfloat16
    _, (ref_h, _) = ref(x.double())
    torch.testing.assert_close(h.double(), ref_h.detach(), rtol=4e-2, atol=4e-2)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("fmt", [{}, {"module_overrides": {"lstm": "int8"}}])
def test_lstm_dequantize(bias, fmt):
    float_lstm = make_lstm(2, True, True, bias, seed=18)
    packed = pack(float_lstm, **fmt)
    dense = packed.dequantize()
    assert type(dense) is nn.LSTM
    for attr in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "bidirectional", "dropout"):
        assert getattr(dense, attr) == getattr(float_lstm, attr), attr
    for name, param in dense.named_parameters():
        assert param.dtype == torch.float32
        if name.startswith("weight_"):
            torch.testing.assert_close(param.double(), ref_matrix(packed, name, param.shape[1]), rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(param, getattr(float_lstm, name))
    x = random_input(float_lstm, seed=19)
    with torch.no_grad():
        out, (h, c) = dense(x)
    p_out, (p_h, p_c) = packed(x)
    for a, b in ((p_out, out), (p_h, h), (p_c, c)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_lstm_dequantize_keeps_module_dtype():
    float_lstm = make_lstm(1, False, False, seed=20, dtype=torch.bfloat16)
    dense = pack(float_lstm).dequantize()
    assert all(p.dtype == torch.bfloat16 for p in dense.parameters())


def test_lstm_state_dict_keys():
    float_lstm = make_lstm(2, True, False, seed=21)
    packed = pack(float_lstm, centred=True)
    keys = set(packed.state_dict())
    for name, _ in float_lstm.named_parameters():
        assert name in keys
        if name.startswith("weight_"):
            assert {name + "_scale", name + "_offset"} <= keys


# --------------------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def packed_lstm():
    return pack(make_lstm(2, True, False, seed=22))


def test_lstm_rejects_packed_sequence(packed_lstm):
    x = torch.randn(STEPS, BATCH, INPUT)
    sequence = pack_padded_sequence(x, torch.tensor([4, 3, 2]))
    with pytest.raises(TypeError, match="PackedSequence"):
        packed_lstm(sequence)


@pytest.mark.parametrize(
    ("h_shape", "c_shape", "match"),
    [
        ((4, BATCH + 1, HIDDEN), (4, BATCH, HIDDEN), "h_0 has shape"),
        ((2, BATCH, HIDDEN), (4, BATCH, HIDDEN), "h_0 has shape"),
        ((4, BATCH, HIDDEN + 1), (4, BATCH, HIDDEN), "h_0 has shape"),
        ((4, BATCH, HIDDEN), (4, BATCH, 2), "c_0 has shape"),
        ((4, HIDDEN), (4, HIDDEN), "h_0 has shape"),
    ],
)
def test_lstm_wrong_state_shape(packed_lstm, h_shape, c_shape, match):
    x = torch.randn(STEPS, BATCH, INPUT)
    with pytest.raises(ValueError, match=match):
        packed_lstm(x, (torch.zeros(h_shape), torch.zeros(c_shape)))


def test_lstm_wrong_unbatched_state_shape(packed_lstm):
    with pytest.raises(ValueError, match="h_0 has shape"):
        packed_lstm(torch.randn(STEPS, INPUT), (torch.zeros(4, 1, HIDDEN), torch.zeros(4, HIDDEN)))


@pytest.mark.parametrize("shape", [(INPUT,), (1, STEPS, BATCH, INPUT)])
def test_lstm_wrong_input_rank(packed_lstm, shape):
    with pytest.raises(ValueError, match="2-D"):
        packed_lstm(torch.randn(shape))


def test_lstm_wrong_input_size(packed_lstm):
    with pytest.raises(ValueError, match="input features"):
        packed_lstm(torch.randn(STEPS, BATCH, INPUT + 1))
