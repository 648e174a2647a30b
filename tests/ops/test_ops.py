"""Tests of the custom ops ``torch.ops.hf_binarize.binary_linear`` and ``int8_linear``.

The reference is a dense float64 ``x @ W_hat.T + bias`` with ``W_hat`` built here from the packed bytes by a bit
loop (bit ``k % 8`` of byte ``k // 8`` is the sign of input ``k``, 1 = +1) and the scales/offsets, never with
hf_binarize's own dequantize. Packed weights are random bytes, not the output of ``binarize``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.library import opcheck

import hf_binarize  # noqa: F401  (registers the ops)
import hf_binarize.ops.reference as ops_module
from hf_binarize.backends import use_backend


@pytest.fixture
def torch_backend():
    """The tiling tests spy on the plain-torch reference, which native backends bypass."""
    with use_backend("torch"):
        yield

binary_linear = torch.ops.hf_binarize.binary_linear
int8_linear = torch.ops.hf_binarize.int8_linear

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
# Unit roundoff of each compute dtype.
EPS = {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}


# --------------------------------------------------------------------------------------------------------------------
# Independent reference
# --------------------------------------------------------------------------------------------------------------------


def ref_signs(packed: np.ndarray, cols: int) -> np.ndarray:
    signs = np.empty((packed.shape[0], cols))
    for k in range(cols):
        signs[:, k] = np.where((packed[:, k // 8].astype(np.int64) >> (k % 8)) & 1, 1.0, -1.0)
    return signs


def ref_dense_binary(packed, scale, offset, cols: int, group_size: int) -> torch.Tensor:
    """W_hat[n, k] = offset[n, k // gs] + scale[n, k // gs] * sign[n, k], float64."""
    signs = ref_signs(packed.numpy(), cols)
    s = scale.to(torch.float64).numpy()
    o = None if offset is None else offset.to(torch.float64).numpy()
    dense = np.empty_like(signs)
    for k in range(cols):
        g = k // group_size
        dense[:, k] = (0.0 if o is None else o[:, g]) + s[:, g] * signs[:, k]
    return torch.from_numpy(dense)


def ref_dense_int8(weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return weight.to(torch.float64) * scale.to(torch.float64)


def ref_linear(x: torch.Tensor, dense: torch.Tensor, bias: torch.Tensor | None):
    """Float64 ``x @ W.T + b``, the magnitude ``|x| @ |W|.T + |b|`` that bounds its rounding errors and the
    length of the sums (K)."""
    x64 = x.detach().to(torch.float64)
    y = x64 @ dense.T
    mag = x64.abs() @ dense.abs().T
    if bias is not None:
        y = y + bias.detach().to(torch.float64)
        mag = mag + bias.detach().to(torch.float64).abs()
    return y, mag, dense.shape[1]


def assert_within(actual: torch.Tensor, expected: torch.Tensor, magnitude: torch.Tensor, terms: int,
                  dtype: torch.dtype, factor: float = 4.0) -> None:
    """The forward error bound of a dot product of ``terms`` products whose weights and result are rounded to
    ``dtype`` and that is accumulated in float32 or wider:
    ``|actual - expected| <= (factor * eps(dtype) + terms * eps(float32)) * magnitude``."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err = (actual.detach().to(torch.float64) - expected).abs()
    tol = (factor * EPS[dtype] + (terms + 1) * EPS[torch.float32]) * magnitude + 1e-30
    ratio = (err / tol).max().item() if err.numel() else 0.0
    assert ratio <= 1.0, f"error is {ratio:.3g} x the {dtype} bound"


def make_binary(out_features: int, in_features: int, mode: str, seed: int, scale_dtype=torch.float16):
    """Random canonical packed bytes (padding bits zero), scales and offsets for ``mode``."""
    rng = np.random.default_rng(seed)
    packed = rng.integers(0, 256, size=(out_features, (in_features + 7) // 8), dtype=np.uint8)
    if in_features % 8:
        packed[:, -1] &= (1 << (in_features % 8)) - 1
    group_size = {"channel": in_features, "group": 8, "centred": 16}[mode]
    groups = -(-in_features // group_size)
    scale = torch.from_numpy(rng.uniform(0.05, 1.0, (out_features, groups))).to(scale_dtype)
    offset = None
    if mode == "centred":
        offset = torch.from_numpy(rng.normal(0.0, 0.3, (out_features, groups))).to(scale_dtype)
    return torch.from_numpy(packed), scale, offset, group_size


def make_int8(out_features: int, in_features: int, seed: int, scale_dtype=torch.float16):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randint(-127, 128, (out_features, in_features), dtype=torch.int8, generator=gen)
    scale = (torch.rand(out_features, 1, generator=gen) * 0.02 + 1e-3).to(scale_dtype)
    return weight, scale


def randn(*shape, seed: int, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen).to(dtype)


# --------------------------------------------------------------------------------------------------------------------
# Forward against the dense reference
# --------------------------------------------------------------------------------------------------------------------

KS = [1, 7, 8, 9, 63, 130]
NS = [1, 5, 64, 257]
MS = [1, 3, 300]


@pytest.mark.parametrize("in_features", KS)
@pytest.mark.parametrize("out_features", NS)
@pytest.mark.parametrize("mode", ["channel", "group", "centred"])
def test_binary_linear_shape_grid(in_features, out_features, mode):
    seed = 1000 * in_features + out_features
    packed, scale, offset, group_size = make_binary(out_features, in_features, mode, seed)
    dense = ref_dense_binary(packed, scale, offset, in_features, group_size)
    for m in MS:
        for with_bias in (False, True):
            x = randn(m, in_features, seed=seed + m)
            bias = randn(out_features, seed=seed + 7) if with_bias else None
            y = binary_linear(x, packed, scale, offset, bias, in_features, group_size)
            assert y.dtype == torch.float32 and y.shape == (m, out_features)
            assert_within(y, *ref_linear(x, dense, bias), torch.float32)


@pytest.mark.parametrize("in_features", KS)
@pytest.mark.parametrize("out_features", NS)
def test_int8_linear_shape_grid(in_features, out_features):
    seed = 1000 * in_features + out_features
    weight, scale = make_int8(out_features, in_features, seed)
    dense = ref_dense_int8(weight, scale)
    for m in MS:
        for with_bias in (False, True):
            x = randn(m, in_features, seed=seed + m)
            bias = randn(out_features, seed=seed + 7) if with_bias else None
            y = int8_linear(x, weight, scale, bias)
            assert y.dtype == torch.float32 and y.shape == (m, out_features)
            assert_within(y, *ref_linear(x, dense, bias), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["channel", "group", "centred"])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize(("m", "in_features", "out_features"), [(3, 63, 64), (300, 130, 257)])
def test_binary_linear_dtypes(dtype, mode, with_bias, m, in_features, out_features):
    packed, scale, offset, group_size = make_binary(out_features, in_features, mode, seed=in_features)
    dense = ref_dense_binary(packed, scale, offset, in_features, group_size)
    x = randn(m, in_features, seed=1, dtype=dtype)
    bias = randn(out_features, seed=2, dtype=dtype) if with_bias else None
    y = binary_linear(x, packed, scale, offset, bias, in_features, group_size)
    assert y.dtype == dtype
    assert_within(y, *ref_linear(x, dense, bias), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale_dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_int8_linear_dtypes(dtype, scale_dtype, with_bias):
    weight, scale = make_int8(257, 130, seed=3, scale_dtype=scale_dtype)
    dense = ref_dense_int8(weight, scale)
    x = randn(300, 130, seed=4, dtype=dtype)
    bias = randn(257, seed=5, dtype=dtype) if with_bias else None
    y = int8_linear(x, weight, scale, bias)
    assert y.dtype == dtype
    assert_within(y, *ref_linear(x, dense, bias), dtype)


@pytest.mark.parametrize("scale_dtype", DTYPES)
def test_binary_linear_any_scale_dtype(scale_dtype):
    packed, scale, offset, group_size = make_binary(64, 63, "centred", seed=5, scale_dtype=scale_dtype)
    dense = ref_dense_binary(packed, scale, offset, 63, group_size)
    x = randn(3, 63, seed=6)
    assert_within(binary_linear(x, packed, scale, offset, None, 63, group_size), *ref_linear(x, dense, None),
                  torch.float32)


def test_bias_dtype_differs_from_input():
    packed, scale, offset, group_size = make_binary(5, 9, "channel", seed=8)
    dense = ref_dense_binary(packed, scale, offset, 9, group_size)
    x = randn(4, 9, seed=9, dtype=torch.bfloat16)
    bias = randn(5, seed=10)  # float32 bias on a bfloat16 input
    y = binary_linear(x, packed, scale, offset, bias, 9, group_size)
    assert y.dtype == torch.bfloat16
    assert_within(y, *ref_linear(x, dense, bias), torch.bfloat16)


@pytest.mark.parametrize("mode", ["channel", "centred"])
def test_batched_and_non_contiguous_inputs(mode):
    in_features, out_features = 130, 64
    packed, scale, offset, group_size = make_binary(out_features, in_features, mode, seed=11)
    dense = ref_dense_binary(packed, scale, offset, in_features, group_size)
    weight, iscale = make_int8(out_features, in_features, seed=12)
    dense_int8 = ref_dense_int8(weight, iscale)
    bias = randn(out_features, seed=13)
    inputs = {
        "3d": randn(2, 5, in_features, seed=14),
        "4d": randn(2, 3, 4, in_features, seed=15),
        "1d": randn(in_features, seed=16),
        "transposed": randn(in_features, 7, seed=17).T,
        "transposed_3d": randn(2, in_features, 6, seed=18).transpose(1, 2),
        "strided": randn(5, 2 * in_features, seed=19)[:, ::2],
        "expanded": randn(1, in_features, seed=20).expand(4, in_features),
    }
    for name, x in inputs.items():
        y = binary_linear(x, packed, scale, offset, bias, in_features, group_size)
        assert y.shape == (*x.shape[:-1], out_features), name
        assert_within(y, *ref_linear(x, dense, bias), torch.float32)
        y = int8_linear(x, weight, iscale, bias)
        assert y.shape == (*x.shape[:-1], out_features), name
        assert_within(y, *ref_linear(x, dense_int8, bias), torch.float32)


def test_empty_batch():
    packed, scale, offset, group_size = make_binary(5, 9, "channel", seed=21)
    y = binary_linear(torch.zeros(0, 9), packed, scale, offset, None, 9, group_size)
    assert y.shape == (0, 5)
    weight, iscale = make_int8(5, 9, seed=22)
    assert int8_linear(torch.zeros(2, 0, 9), weight, iscale, None).shape == (2, 0, 5)


# --------------------------------------------------------------------------------------------------------------------
# Gradients against autograd through the dense reference
# --------------------------------------------------------------------------------------------------------------------


def reference_grads(x, dense, bias, grad_out):
    x64 = x.detach().to(torch.float64).requires_grad_()
    b64 = None if bias is None else bias.detach().to(torch.float64).requires_grad_()
    y = x64 @ dense.T
    if b64 is not None:
        y = y + b64
    y.backward(grad_out.to(torch.float64))
    g64 = grad_out.to(torch.float64)
    x_mag = g64.abs() @ dense.abs()
    b_mag = g64.abs().reshape(-1, g64.shape[-1]).sum(0)
    rows = g64.numel() // g64.shape[-1]
    return (x64.grad, x_mag, dense.shape[0]), (None if b64 is None else b64.grad, b_mag, rows)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["channel", "group", "centred", "int8"])
@pytest.mark.parametrize("bias_grad", [False, True])
def test_gradients(dtype, kind, bias_grad):
    in_features, out_features = 63, 257
    if kind == "int8":
        weight, scale = make_int8(out_features, in_features, seed=30)
        dense = ref_dense_int8(weight, scale)

        def op(x, bias):
            return int8_linear(x, weight, scale, bias)
    else:
        packed, scale, offset, group_size = make_binary(out_features, in_features, kind, seed=31)
        dense = ref_dense_binary(packed, scale, offset, in_features, group_size)

        def op(x, bias):
            return binary_linear(x, packed, scale, offset, bias, in_features, group_size)

    x = randn(2, 3, in_features, seed=32, dtype=dtype).requires_grad_()
    bias = randn(out_features, seed=33, dtype=dtype).requires_grad_(bias_grad)
    grad_out = randn(2, 3, out_features, seed=34, dtype=dtype)
    y = op(x, bias)
    y.backward(grad_out)
    ref_x, ref_bias = reference_grads(x, dense, bias, grad_out)
    assert x.grad.dtype == dtype
    assert_within(x.grad, *ref_x, dtype)
    if bias_grad:
        assert bias.grad.dtype == dtype
        assert_within(bias.grad, *ref_bias, dtype)
    else:
        assert bias.grad is None


def test_gradient_for_bias_only():
    packed, scale, offset, group_size = make_binary(5, 9, "channel", seed=35)
    x = randn(4, 9, seed=36)
    bias = torch.zeros(5, requires_grad=True)
    binary_linear(x, packed, scale, offset, bias, 9, group_size).sum().backward()
    assert bias.grad.tolist() == [4.0] * 5


def test_packed_tensors_get_no_gradient():
    packed, scale, offset, group_size = make_binary(5, 16, "centred", seed=37, scale_dtype=torch.float32)
    scale.requires_grad_()
    offset.requires_grad_()
    x = randn(4, 16, seed=38).requires_grad_()
    binary_linear(x, packed, scale, offset, None, 16, group_size).sum().backward()
    assert x.grad is not None
    assert scale.grad is None and offset.grad is None


@pytest.mark.filterwarnings("ignore:Input #.* is not a double precision")
@pytest.mark.parametrize("kind", ["binary", "int8"])
def test_gradcheck_against_finite_differences(kind):
    # torch.autograd.gradcheck compares the backward rule with finite differences of the forward (float64 is not
    # an accepted input dtype, so a float32 check with loose tolerances).
    in_features, out_features = 9, 5
    if kind == "int8":
        weight, scale = make_int8(out_features, in_features, seed=39, scale_dtype=torch.float32)

        def op(x, bias):
            return int8_linear(x, weight, scale, bias)
    else:
        packed, scale, offset, group_size = make_binary(out_features, in_features, "group", seed=40,
                                                        scale_dtype=torch.float32)

        def op(x, bias):
            return binary_linear(x, packed, scale, offset, bias, in_features, group_size)

    x = randn(3, in_features, seed=41).requires_grad_()
    bias = randn(out_features, seed=42).requires_grad_()
    assert torch.autograd.gradcheck(op, (x, bias), eps=1e-2, atol=1e-2, rtol=1e-2, fast_mode=True)


# --------------------------------------------------------------------------------------------------------------------
# opcheck: schema, autograd registration, fake tensor and AOT dispatch
# --------------------------------------------------------------------------------------------------------------------

OPCHECK_TESTS = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")


def _binary_samples():
    for mode, with_bias, shape, grad in [
        ("channel", False, (3, 9), False),
        ("group", True, (2, 4, 130), True),
        ("centred", True, (5, 63), True),
        ("centred", False, (63,), False),
    ]:
        in_features = shape[-1]
        packed, scale, offset, group_size = make_binary(7, in_features, mode, seed=50)
        bias = randn(7, seed=51).requires_grad_(grad) if with_bias else None
        x = randn(*shape, seed=52).requires_grad_(grad)
        yield (x, packed, scale, offset, bias, in_features, group_size)


def _int8_samples():
    for with_bias, shape, grad, dtype in [
        (False, (3, 9), False, torch.float32),
        (True, (2, 4, 9), True, torch.float32),
        (True, (5, 9), True, torch.bfloat16),
    ]:
        weight, scale = make_int8(7, 9, seed=53)
        bias = randn(7, seed=54, dtype=dtype).requires_grad_(grad) if with_bias else None
        yield (randn(*shape, seed=55, dtype=dtype).requires_grad_(grad), weight, scale, bias)


@pytest.mark.parametrize("args", list(_binary_samples()), ids=lambda a: f"x{tuple(a[0].shape)}")
def test_opcheck_binary_linear(args):
    opcheck(torch.ops.hf_binarize.binary_linear.default, args, test_utils=OPCHECK_TESTS)


@pytest.mark.parametrize("args", list(_int8_samples()), ids=lambda a: f"x{tuple(a[0].shape)}-{a[0].dtype}")
def test_opcheck_int8_linear(args):
    opcheck(torch.ops.hf_binarize.int8_linear.default, args, test_utils=OPCHECK_TESTS)


def test_fake_tensor_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    packed, scale, offset, group_size = make_binary(7, 20, "group", seed=56)
    weight, iscale = make_int8(7, 20, seed=57)
    with FakeTensorMode(allow_non_fake_inputs=True):
        x = torch.empty(2, 3, 20, dtype=torch.bfloat16)
        y = binary_linear(x, packed, scale, offset, None, 20, group_size)
        z = int8_linear(x, weight, iscale, None)
    assert y.shape == (2, 3, 7) and y.dtype == torch.bfloat16
    assert z.shape == (2, 3, 7) and z.dtype == torch.bfloat16


# --------------------------------------------------------------------------------------------------------------------
# Tiling
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tile_elements", [1, 16, 300, 1000])
def test_tiled_processing_matches_reference(monkeypatch, tile_elements, torch_backend):
    in_features, out_features = 63, 257
    monkeypatch.setattr(ops_module, "TILE_ELEMENTS", tile_elements)
    requested: list[int] = []
    real_dequantize = ops_module.dequantize
    real_dequantize_int8 = ops_module.dequantize_int8

    def spy(packed, *args, **kwargs):
        requested.append(packed.shape[0])
        return real_dequantize(packed, *args, **kwargs)

    def spy_int8(weight, *args, **kwargs):
        requested.append(weight.shape[0])
        return real_dequantize_int8(weight, *args, **kwargs)

    monkeypatch.setattr(ops_module, "dequantize", spy)
    monkeypatch.setattr(ops_module, "dequantize_int8", spy_int8)
    rows_per_tile = max(1, tile_elements // in_features)

    packed, scale, offset, group_size = make_binary(out_features, in_features, "centred", seed=60)
    dense = ref_dense_binary(packed, scale, offset, in_features, group_size)
    weight, iscale = make_int8(out_features, in_features, seed=61)
    dense_int8 = ref_dense_int8(weight, iscale)
    bias = randn(out_features, seed=62).requires_grad_()
    grad_out = randn(4, out_features, seed=63)

    for op, ref in [
        (lambda x, b: binary_linear(x, packed, scale, offset, b, in_features, group_size), dense),
        (lambda x, b: int8_linear(x, weight, iscale, b), dense_int8),
    ]:
        requested.clear()
        x = randn(4, in_features, seed=64).requires_grad_()
        y = op(x, bias)
        # Forward: every output row dequantized exactly once, never more than a tile at a time.
        assert sum(requested) == out_features
        assert max(requested) <= rows_per_tile
        assert len(requested) == -(-out_features // rows_per_tile)
        assert_within(y, *ref_linear(x, ref, bias), torch.float32)
        requested.clear()
        bias.grad = None
        y.backward(grad_out)
        assert sum(requested) == out_features and max(requested) <= rows_per_tile
        ref_x, ref_bias = reference_grads(x, ref, bias, grad_out)
        assert_within(x.grad, *ref_x, torch.float32)
        assert_within(bias.grad, *ref_bias, torch.float32)


def test_default_tile_keeps_dense_weight_partial(monkeypatch, torch_backend):
    # With the default tile, a weight of more than TILE_ELEMENTS elements is never dequantized whole.
    requested: list[int] = []
    real = ops_module.dequantize

    def spy(packed, *args, **kwargs):
        requested.append(packed.shape[0])
        return real(packed, *args, **kwargs)

    monkeypatch.setattr(ops_module, "dequantize", spy)
    in_features, out_features = 1024, 2048  # 2 Mi elements, twice the default tile
    packed = torch.zeros(out_features, in_features // 8, dtype=torch.uint8)
    scale = torch.ones(out_features, 1, dtype=torch.float16)
    y = binary_linear(torch.ones(1, in_features), packed, scale, None, None, in_features, in_features)
    assert (y == -in_features).all()
    assert max(requested) * in_features <= ops_module.TILE_ELEMENTS
    assert sum(requested) == out_features


# --------------------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def binary_args():
    packed, scale, offset, group_size = make_binary(5, 20, "centred", seed=70)
    return {"x": randn(3, 20, seed=71), "packed": packed, "scale": scale, "offset": offset,
            "bias": randn(5, seed=72), "in_features": 20, "group_size": group_size}


def _call_binary(args):
    return binary_linear(args["x"], args["packed"], args["scale"], args["offset"], args["bias"],
                         args["in_features"], args["group_size"])


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"x": torch.randn(3, 21)}, ValueError, "20 input features"),
        ({"x": torch.randn(3, 8)}, ValueError, "input has shape"),
        ({"x": torch.tensor(1.0)}, ValueError, "input has shape"),
        ({"x": torch.randn(3, 20, dtype=torch.float64)}, TypeError, "float32, bfloat16 or float16"),
        ({"x": torch.ones(3, 20, dtype=torch.int64)}, TypeError, "float32, bfloat16 or float16"),
        ({"packed": torch.zeros(5, 3, dtype=torch.int8)}, ValueError, "uint8"),
        ({"packed": torch.zeros(5, 2, dtype=torch.uint8)}, ValueError, "3 bytes per row"),
        ({"packed": torch.zeros(15, dtype=torch.uint8)}, ValueError, "2-D"),
        ({"scale": torch.ones(5, 1, dtype=torch.float16)}, ValueError, r"scale must be a float tensor of shape \(5, 2\)"),
        ({"scale": torch.ones(2, 5, dtype=torch.float16)}, ValueError, "scale must be"),
        ({"scale": torch.ones(5, 2, dtype=torch.int32)}, ValueError, "scale must be a float tensor"),
        ({"offset": torch.ones(5, dtype=torch.float16)}, ValueError, "offset must be a float tensor"),
        ({"bias": torch.ones(6)}, ValueError, r"bias has shape \(6,\), expected \(5,\)"),
        ({"bias": torch.ones(1, 5)}, ValueError, "bias has shape"),
    ],
)
def test_binary_linear_errors(binary_args, change, error, match):
    binary_args.update(change)
    with pytest.raises(error, match=match):
        _call_binary(binary_args)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"x": torch.randn(3, 8)}, ValueError, "9 input features"),
        ({"x": torch.ones(3, 9, dtype=torch.int32)}, TypeError, "float32, bfloat16 or float16"),
        ({"x": torch.randn(3, 9, dtype=torch.float64)}, TypeError, "float32, bfloat16 or float16"),
        ({"weight": torch.zeros(5, 9, dtype=torch.uint8)}, ValueError, "must be int8"),
        ({"weight": torch.zeros(5, 9, dtype=torch.float32)}, ValueError, "must be int8"),
        ({"scale": torch.ones(5, dtype=torch.float16)}, ValueError, r"int8 scale must be .* shape \(5, 1\)"),
        ({"scale": torch.ones(5, 1, dtype=torch.int32)}, ValueError, "int8 scale must be a float tensor"),
        ({"bias": torch.ones(4)}, ValueError, "bias has shape"),
    ],
)
def test_int8_linear_errors(change, error, match):
    weight, scale = make_int8(5, 9, seed=73)
    args = {"x": randn(3, 9, seed=74), "weight": weight, "scale": scale, "bias": None}
    args.update(change)
    with pytest.raises(error, match=match):
        int8_linear(args["x"], args["weight"], args["scale"], args["bias"])


def test_int8_linear_weight_must_be_2d():
    with pytest.raises(ValueError, match="2-D"):
        int8_linear(torch.randn(3, 9), torch.zeros(5, 9, 1, dtype=torch.int8), torch.ones(5, 1), None)


def test_errors_also_raised_under_fake_tensors():
    from torch._subclasses.fake_tensor import FakeTensorMode

    packed, scale, offset, group_size = make_binary(5, 20, "channel", seed=75)
    with FakeTensorMode(allow_non_fake_inputs=True), pytest.raises(ValueError, match="input features"):
        binary_linear(torch.empty(3, 19), packed, scale, offset, None, 20, group_size)
