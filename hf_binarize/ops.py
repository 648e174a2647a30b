"""The ops every packed module multiplies through.

``torch.ops.hf_binarize.binary_linear(x, packed, scale, offset, bias, in_features, group_size)``
    ``x @ W_hat.T + bias`` with ``W_hat`` the dense weight of a ``sign-lsb-v1`` packed weight
    (see :mod:`hf_binarize.packing`).
``torch.ops.hf_binarize.int8_linear(x, weight, scale, bias)``
    ``x @ (weight * scale).T + bias`` for an int8 weight with one scale per output channel.

Both take ``x`` of any shape ``[..., K]`` in float32, bfloat16 or float16 and return ``[..., N]`` in the
same dtype. Each has a fake implementation (so ``torch.compile`` and ``torch.export`` trace through it)
and a backward rule for ``x`` and ``bias``; the packed weights get no gradient.

The implementation here is plain PyTorch: it dequantizes a tile of output rows at a time, so the dense
weight never exists whole. It is the reference that faster kernels are checked against.
"""

from collections.abc import Callable

import torch

from .int8 import dequantize_int8
from .packing import dequantize, num_groups, packed_width

# Elements of dense weight materialised at once: 4 MiB in float32, small next to any activation batch.
_TILE_ELEMENTS = 1 << 20
_FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _check_common(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, in_features: int) -> None:
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"input must be float32, bfloat16 or float16, got {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != in_features:
        raise ValueError(
            f"input has shape {tuple(x.shape)} but the layer takes {in_features} input features in its last dimension"
        )
    if weight.dim() != 2:
        raise ValueError(f"packed weight must be 2-D, got shape {tuple(weight.shape)}")
    out_features = weight.shape[0]
    if bias is not None and tuple(bias.shape) != (out_features,):
        raise ValueError(f"bias has shape {tuple(bias.shape)}, expected ({out_features},)")
    for name, tensor in (("weight", weight), ("bias", bias)):
        if tensor is not None and tensor.device != x.device:
            raise ValueError(
                f"input is on {x.device} but the layer's {name} is on {tensor.device}; move the model or the input"
            )


def _check_binary(
    x: torch.Tensor,
    packed: torch.Tensor,
    scale: torch.Tensor,
    offset: torch.Tensor | None,
    bias: torch.Tensor | None,
    in_features: int,
    group_size: int,
) -> None:
    _check_common(x, packed, bias, in_features)
    if group_size <= 0:
        raise ValueError(f"group_size must be positive, got {group_size}")
    if packed.dtype != torch.uint8 or packed.shape[1] != packed_width(in_features):
        raise ValueError(
            f"packed signs must be uint8 with {packed_width(in_features)} bytes per row for {in_features} inputs, "
            f"got {packed.dtype} of shape {tuple(packed.shape)}"
        )
    expected = (packed.shape[0], num_groups(in_features, group_size))
    for name, tensor in (("scale", scale), ("offset", offset)):
        if tensor is None:
            continue
        if tuple(tensor.shape) != expected or not tensor.is_floating_point():
            raise ValueError(f"{name} must be a float tensor of shape {expected}, got {tensor.dtype} {tuple(tensor.shape)}")
        if tensor.device != x.device:
            raise ValueError(f"input is on {x.device} but the layer's {name} is on {tensor.device}; move the model or the input")


def _check_int8(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> None:
    if weight.dim() != 2:
        raise ValueError(f"int8 weight must be 2-D, got shape {tuple(weight.shape)}")
    _check_common(x, weight, bias, weight.shape[1])
    if weight.dtype != torch.int8:
        raise ValueError(f"int8 weight must be int8, got {weight.dtype}")
    if tuple(scale.shape) != (weight.shape[0], 1) or not scale.is_floating_point():
        raise ValueError(f"int8 scale must be a float tensor of shape ({weight.shape[0]}, 1), got {tuple(scale.shape)}")
    if scale.device != x.device:
        raise ValueError(f"input is on {x.device} but the layer's scale is on {scale.device}; move the model or the input")


RowDequantizer = Callable[[int, int], torch.Tensor]


def _rows_per_tile(in_features: int) -> int:
    return max(1, _TILE_ELEMENTS // max(in_features, 1))


def _tiled_linear(x: torch.Tensor, out_features: int, rows: RowDequantizer, bias: torch.Tensor | None) -> torch.Tensor:
    x2d = x.reshape(-1, x.shape[-1])
    out = x2d.new_empty(x2d.shape[0], out_features)
    step = _rows_per_tile(x.shape[-1])
    for start in range(0, out_features, step):
        stop = min(start + step, out_features)
        out[:, start:stop] = x2d @ rows(start, stop).T
    if bias is not None:
        out += bias.to(out.dtype)
    return out.reshape(*x.shape[:-1], out_features)


def _tiled_input_grad(grad: torch.Tensor, in_features: int, rows: RowDequantizer) -> torch.Tensor:
    g2d = grad.reshape(-1, grad.shape[-1])
    grad_x = g2d.new_zeros(g2d.shape[0], in_features)
    step = _rows_per_tile(in_features)
    for start in range(0, g2d.shape[1], step):
        stop = min(start + step, g2d.shape[1])
        grad_x += g2d[:, start:stop] @ rows(start, stop)
    return grad_x.reshape(*grad.shape[:-1], in_features)


def _binary_rows(packed, scale, offset, in_features, group_size, dtype) -> RowDequantizer:
    def rows(start: int, stop: int) -> torch.Tensor:
        tile_offset = None if offset is None else offset[start:stop]
        return dequantize(packed[start:stop], scale[start:stop], tile_offset, in_features, group_size, dtype)

    return rows


def _int8_rows(weight, scale, dtype) -> RowDequantizer:
    return lambda start, stop: dequantize_int8(weight[start:stop], scale[start:stop], dtype)


@torch.library.custom_op("hf_binarize::binary_linear", mutates_args=())
def binary_linear(
    x: torch.Tensor,
    packed: torch.Tensor,
    scale: torch.Tensor,
    offset: torch.Tensor | None,
    bias: torch.Tensor | None,
    in_features: int,
    group_size: int,
) -> torch.Tensor:
    """``x @ W_hat.T + bias`` for a packed 1-bit weight (see the module docstring)."""
    _check_binary(x, packed, scale, offset, bias, in_features, group_size)
    rows = _binary_rows(packed, scale, offset, in_features, group_size, x.dtype)
    return _tiled_linear(x, packed.shape[0], rows, bias)


@binary_linear.register_fake
def _(x, packed, scale, offset, bias, in_features, group_size):
    _check_binary(x, packed, scale, offset, bias, in_features, group_size)
    return x.new_empty(*x.shape[:-1], packed.shape[0])


def _bias_grad(grad: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
    if bias is None or not bias.requires_grad:
        return None
    return grad.reshape(-1, grad.shape[-1]).sum(0).to(bias.dtype)


def _binary_setup(ctx, inputs, output):
    _x, packed, scale, offset, bias, in_features, group_size = inputs
    ctx.save_for_backward(packed, scale, offset, bias)
    ctx.in_features, ctx.group_size = in_features, group_size


def _binary_backward(ctx, grad):
    packed, scale, offset, bias = ctx.saved_tensors
    grad_x = None
    if ctx.needs_input_grad[0]:
        rows = _binary_rows(packed, scale, offset, ctx.in_features, ctx.group_size, grad.dtype)
        grad_x = _tiled_input_grad(grad, ctx.in_features, rows)
    return grad_x, None, None, None, _bias_grad(grad, bias), None, None


binary_linear.register_autograd(_binary_backward, setup_context=_binary_setup)


@torch.library.custom_op("hf_binarize::int8_linear", mutates_args=())
def int8_linear(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ (weight * scale).T + bias`` for an int8 weight with per-channel scales."""
    _check_int8(x, weight, scale, bias)
    return _tiled_linear(x, weight.shape[0], _int8_rows(weight, scale, x.dtype), bias)


@int8_linear.register_fake
def _(x, weight, scale, bias):
    _check_int8(x, weight, scale, bias)
    return x.new_empty(*x.shape[:-1], weight.shape[0])


def _int8_setup(ctx, inputs, output):
    _x, weight, scale, bias = inputs
    ctx.save_for_backward(weight, scale, bias)


def _int8_backward(ctx, grad):
    weight, scale, bias = ctx.saved_tensors
    grad_x = None
    if ctx.needs_input_grad[0]:
        grad_x = _tiled_input_grad(grad, weight.shape[1], _int8_rows(weight, scale, grad.dtype))
    return grad_x, None, None, _bias_grad(grad, bias)


int8_linear.register_autograd(_int8_backward, setup_context=_int8_setup)


# Last: the backends import this module, and importing them registers their kernels for the ops above.
from . import kernels  # noqa: E402, F401
