"""Tests of ``torch.ops.hf_binarize.binary_linear_int8_act`` (binary weights, int8 activations) and its plain-torch
reference.

Outputs are compared exactly with the numpy replica of the definition (tests/int8_activations_reference.py), and
with the dense float product within the quantization error bound derived there. The native kernels have their own
tests (tests/backends/test_cpu_int8_kernel.py); here the reference runs unless a test says otherwise.
"""

from __future__ import annotations

import pytest
import torch
from int8_activations_reference import assert_exact, assert_within_bound, random_case, signs
from torch import nn
from torch.library import opcheck

import hf_binarize  # noqa: F401  (registers the ops)
from hf_binarize import BinaryQuantizationConfig, quantize_model
from hf_binarize.backends import use_backend

op = torch.ops.hf_binarize.binary_linear_int8_act


@pytest.fixture
def torch_backend():
    with use_backend("torch"):
        yield


@pytest.mark.parametrize("k", [1, 7, 8, 9, 31, 63, 130, 1000])
@pytest.mark.parametrize("n", [1, 5, 33])
def test_reference_follows_the_definition_exactly(torch_backend, k, n):
    for m in (1, 3, 64):
        for bias in (False, True):
            case = random_case(m, n, k, bias=bias, seed=1000 * k + n + m)
            y = op(*case)
            assert y.shape == (m, n) and y.dtype == torch.float32
            assert_exact(y, *case)
            assert_within_bound(y, *case)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("scale_dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_input_and_scale_dtypes(torch_backend, dtype, scale_dtype):
    case = random_case(7, 40, 100, dtype=dtype, scale_dtype=scale_dtype)
    y = op(*case)
    assert y.dtype == dtype
    assert_exact(y, *case)
    assert_within_bound(y, *case)


def test_batched_and_strided_inputs(torch_backend):
    x, packed, scale, bias, k = random_case(6, 20, 70)
    for name, inp in {"3d": x.reshape(2, 3, k), "1d": x[0], "strided": torch.randn(6, 2 * k)[:, ::2],
                      "transposed": torch.randn(k, 6).T}.items():
        y = op(inp, packed, scale, bias, k)
        assert y.shape == (*inp.shape[:-1], 20), name
        assert_exact(y, inp, packed, scale, bias, k)


def test_rows_of_zeros_nan_inf_and_tiny_values(torch_backend):
    x, packed, scale, bias, k = random_case(6, 9, 40)
    x[0] = 0.0  # scale 0: the output is the bias
    x[1, 3] = float("nan")  # NaN in a row: that row's outputs are NaN
    x[2, 5] = float("-inf")
    x[3] = 1e-44  # a subnormal maximum: its scale rounds to 0
    x[4] *= 1e-38  # subnormal scale, still usable
    y = op(x, packed, scale, bias, k)
    assert_exact(y, x, packed, scale, bias, k)
    assert torch.equal(y[0], bias) and torch.equal(y[3], bias)
    assert y[1].isnan().all() and y[2].isnan().all()
    assert torch.isfinite(y[4:]).all()
    assert torch.equal(op(x[:1], packed, scale, None, k), torch.zeros(1, 9))


def test_integer_dot_products_are_exact_for_long_rows(torch_backend):
    # q . signs = +-127 * K, odd and above 2^24: summed in float32, partial sums would round on the way; exact
    # integers round once, at the end.
    k, n = 140_001, 3
    x = torch.ones(2, k)
    packed = torch.full((n, -(-k // 8)), 255, dtype=torch.uint8)
    packed[1] = 0
    packed[2, ::2] = 0
    assert_exact(op(x, packed, torch.ones(n, 1), None, k), x, packed, torch.ones(n, 1), None, k)


def test_empty_batch(torch_backend):
    x, packed, scale, bias, k = random_case(1, 5, 9)
    assert op(x[:0], packed, scale, bias, k).shape == (0, 5)


def test_gradient_is_the_dense_gradient_passed_straight_through():
    x, packed, scale, bias, k = random_case(4, 12, 50, scale_dtype=torch.float32)
    x.requires_grad_(True)
    bias.requires_grad_(True)
    grad_out = torch.randn(4, 12)
    op(x, packed, scale, bias, k).backward(grad_out)
    weight = torch.from_numpy(signs(packed, k)).double() * scale.double()
    torch.testing.assert_close(x.grad.double(), grad_out.double() @ weight, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bias.grad, grad_out.sum(0))


def _samples():
    for shape, with_bias, grad in [((3, 9), False, False), ((2, 4, 130), True, True), ((63,), True, False)]:
        x, packed, scale, bias, k = random_case(1, 7, shape[-1], bias=with_bias)
        x = torch.randn(shape).requires_grad_(grad)
        yield x, packed, scale, None if bias is None else bias.requires_grad_(grad), k


@pytest.mark.parametrize("args", list(_samples()), ids=lambda a: f"x{tuple(a[0].shape)}")
def test_opcheck(args):
    opcheck(op.default, args, test_utils=("test_schema", "test_autograd_registration", "test_faketensor",
                                          "test_aot_dispatch_dynamic"))


def test_fake_tensor_shapes_and_errors():
    from torch._subclasses.fake_tensor import FakeTensorMode

    _, packed, scale, _, k = random_case(1, 7, 20)
    with FakeTensorMode(allow_non_fake_inputs=True):
        y = op(torch.empty(2, 3, 20, dtype=torch.bfloat16), packed, scale, None, k)
        assert y.shape == (2, 3, 7) and y.dtype == torch.bfloat16
        with pytest.raises(ValueError, match="input features"):
            op(torch.empty(3, 19), packed, scale, None, k)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"scale": torch.ones(5, 3)}, ValueError, r"scale must be a float tensor of shape \(5, 1\)"),
        ({"x": torch.randn(3, 20, dtype=torch.float64)}, TypeError, "float32, bfloat16 or float16"),
        ({"packed": torch.zeros(5, 2, dtype=torch.uint8)}, ValueError, "3 bytes per row"),
        ({"bias": torch.ones(4)}, ValueError, "bias has shape"),
        ({"x": torch.randn(3, 0), "packed": torch.zeros(5, 0, dtype=torch.uint8), "k": 0}, ValueError,
         "at least one input feature"),
    ],
)
def test_errors(change, error, match):
    x, packed, scale, bias, k = random_case(3, 5, 20)
    args = {"x": x, "packed": packed, "scale": scale, "bias": bias, "k": k, **change}
    with pytest.raises(error, match=match):
        op(args["x"], args["packed"], args["scale"], args["bias"], args["k"])


def test_packed_linear_compiles_into_one_graph_with_identical_outputs():
    torch.manual_seed(0)
    model = quantize_model(nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 8)),
                           BinaryQuantizationConfig(activations="int8"))
    explained = torch._dynamo.explain(model)(torch.randn(3, 64))
    assert explained.graph_break_count == 0
    assert "torch.ops.hf_binarize.binary_linear_int8_act" in explained.graphs[0].code
    compiled = torch.compile(model, backend="inductor", fullgraph=True, dynamic=True)
    with torch.no_grad():
        for shape in [(3, 64), (2, 9, 64)]:
            x = torch.randn(shape)
            torch.testing.assert_close(compiled(x), model(x), rtol=0, atol=0)
