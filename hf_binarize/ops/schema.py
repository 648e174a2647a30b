"""The ops every packed module multiplies through.

``torch.ops.hf_binarize.binary_linear(x, packed, scale, offset, bias, in_features, group_size)``
    ``x @ W_hat.T + bias`` with ``W_hat`` the dense weight of a ``sign-lsb-v1`` packed weight
    (see :mod:`hf_binarize.packing`).
``torch.ops.hf_binarize.int8_linear(x, weight, scale, bias)``
    ``x @ (weight * scale).T + bias`` for an int8 weight with one scale per output channel.
``torch.ops.hf_binarize.binary_linear_int8_act(x, packed, scale, bias, in_features)``
    ``binary_linear`` with int8 activations, for a packed weight with one scale per output channel and no offset:
    each row of ``x`` is quantized to int8 with its own scale (``max |x| / 127``) and multiplied by the signs with
    integer dot products (:func:`hf_binarize.ops.reference.binary_linear_int8_act` defines it exactly). Its backward
    passes the gradient straight through the quantization: it is ``binary_linear``'s.

All take ``x`` of any shape ``[..., K]`` in float32, bfloat16 or float16 and return ``[..., N]`` in the
same dtype. Each has a fake implementation (so ``torch.compile`` and ``torch.export`` trace through it)
and a backward rule for ``x`` and ``bias``; the packed weights get no gradient.

This module declares the ops, checks their arguments, and gives each a fake and an autograd rule; the body of
each op is the plain-torch reference (:mod:`hf_binarize.ops.reference`), which runs wherever no backend
(:mod:`hf_binarize.backends`) registered a kernel for the input's device. It imports no backend.
"""

import torch

from ..formats.binary import num_groups, packed_width
from . import reference

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


def check_binary(
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


def check_binary_int8_act(x: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                          in_features: int) -> None:
    if in_features < 1:
        raise ValueError(f"int8 activations need at least one input feature, got in_features={in_features}")
    check_binary(x, packed, scale, None, bias, in_features, in_features)


def check_int8(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> None:
    if weight.dim() != 2:
        raise ValueError(f"int8 weight must be 2-D, got shape {tuple(weight.shape)}")
    _check_common(x, weight, bias, weight.shape[1])
    if weight.dtype != torch.int8:
        raise ValueError(f"int8 weight must be int8, got {weight.dtype}")
    if tuple(scale.shape) != (weight.shape[0], 1) or not scale.is_floating_point():
        raise ValueError(f"int8 scale must be a float tensor of shape ({weight.shape[0]}, 1), got {tuple(scale.shape)}")
    if scale.device != x.device:
        raise ValueError(f"input is on {x.device} but the layer's scale is on {scale.device}; move the model or the input")


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
    check_binary(x, packed, scale, offset, bias, in_features, group_size)
    return reference.binary_linear(x, packed, scale, offset, bias, in_features, group_size)


@binary_linear.register_fake
def _(x, packed, scale, offset, bias, in_features, group_size):
    check_binary(x, packed, scale, offset, bias, in_features, group_size)
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
        rows = reference.binary_rows(packed, scale, offset, ctx.in_features, ctx.group_size, grad.dtype)
        grad_x = reference.tiled_input_grad(grad, ctx.in_features, rows)
    return grad_x, None, None, None, _bias_grad(grad, bias), None, None


binary_linear.register_autograd(_binary_backward, setup_context=_binary_setup)


@torch.library.custom_op("hf_binarize::int8_linear", mutates_args=())
def int8_linear(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ (weight * scale).T + bias`` for an int8 weight with per-channel scales."""
    check_int8(x, weight, scale, bias)
    return reference.int8_linear(x, weight, scale, bias)


@int8_linear.register_fake
def _(x, weight, scale, bias):
    check_int8(x, weight, scale, bias)
    return x.new_empty(*x.shape[:-1], weight.shape[0])


def _int8_setup(ctx, inputs, output):
    _x, weight, scale, bias = inputs
    ctx.save_for_backward(weight, scale, bias)


def _int8_backward(ctx, grad):
    weight, scale, bias = ctx.saved_tensors
    grad_x = None
    if ctx.needs_input_grad[0]:
        grad_x = reference.tiled_input_grad(grad, weight.shape[1], reference.int8_rows(weight, scale, grad.dtype))
    return grad_x, None, None, _bias_grad(grad, bias)


int8_linear.register_autograd(_int8_backward, setup_context=_int8_setup)


@torch.library.custom_op("hf_binarize::binary_linear_int8_act", mutates_args=())
def binary_linear_int8_act(
    x: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None, in_features: int
) -> torch.Tensor:
    """``binary_linear`` with per-row int8 activations and integer dot products (see the module docstring)."""
    check_binary_int8_act(x, packed, scale, bias, in_features)
    return reference.binary_linear_int8_act(x, packed, scale, bias, in_features)


@binary_linear_int8_act.register_fake
def _(x, packed, scale, bias, in_features):
    check_binary_int8_act(x, packed, scale, bias, in_features)
    return x.new_empty(*x.shape[:-1], packed.shape[0])


def _int8_act_setup(ctx, inputs, output):
    _x, packed, scale, bias, in_features = inputs
    ctx.save_for_backward(packed, scale, bias)
    ctx.in_features = in_features


def _int8_act_backward(ctx, grad):
    packed, scale, bias = ctx.saved_tensors
    grad_x = None
    if ctx.needs_input_grad[0]:
        rows = reference.binary_rows(packed, scale, None, ctx.in_features, ctx.in_features, grad.dtype)
        grad_x = reference.tiled_input_grad(grad, ctx.in_features, rows)
    return grad_x, None, None, _bias_grad(grad, bias), None


binary_linear_int8_act.register_autograd(_int8_act_backward, setup_context=_int8_act_setup)
