"""The plain-PyTorch implementation of the packed ops: the reference every faster kernel is checked against.

It dequantizes a tile of output rows at a time (:data:`TILE_ELEMENTS` weights), multiplies the activations by it
and moves on, so the dense weight never exists whole. Backends fall back to these functions for the inputs their
kernels do not take.

:func:`binary_linear_int8_act` defines the int8-activation product exactly (:func:`quantize_activations`, then
integer dot products, then one float32 formula): the native kernels reproduce it bit for bit.
"""

from collections.abc import Callable

import torch

from ..formats.binary import dequantize, unpack_signs
from ..formats.int8 import INT8_MAX, dequantize_int8

# Elements of dense weight materialised at once: 4 MiB in float32, small next to any activation batch.
TILE_ELEMENTS = 1 << 20

RowDequantizer = Callable[[int, int], torch.Tensor]


def rows_per_tile(in_features: int) -> int:
    return max(1, TILE_ELEMENTS // max(in_features, 1))


def tiled_linear(x: torch.Tensor, out_features: int, rows: RowDequantizer, bias: torch.Tensor | None) -> torch.Tensor:
    x2d = x.reshape(-1, x.shape[-1])
    out = x2d.new_empty(x2d.shape[0], out_features)
    step = rows_per_tile(x.shape[-1])
    for start in range(0, out_features, step):
        stop = min(start + step, out_features)
        out[:, start:stop] = x2d @ rows(start, stop).T
    if bias is not None:
        out += bias.to(out.dtype)
    return out.reshape(*x.shape[:-1], out_features)


def tiled_input_grad(grad: torch.Tensor, in_features: int, rows: RowDequantizer) -> torch.Tensor:
    g2d = grad.reshape(-1, grad.shape[-1])
    grad_x = g2d.new_zeros(g2d.shape[0], in_features)
    step = rows_per_tile(in_features)
    for start in range(0, g2d.shape[1], step):
        stop = min(start + step, g2d.shape[1])
        grad_x += g2d[:, start:stop] @ rows(start, stop)
    return grad_x.reshape(*grad.shape[:-1], in_features)


def binary_rows(packed, scale, offset, in_features, group_size, dtype) -> RowDequantizer:
    def rows(start: int, stop: int) -> torch.Tensor:
        tile_offset = None if offset is None else offset[start:stop]
        return dequantize(packed[start:stop], scale[start:stop], tile_offset, in_features, group_size, dtype)

    return rows


def int8_rows(weight, scale, dtype) -> RowDequantizer:
    return lambda start, stop: dequantize_int8(weight[start:stop], scale[start:stop], dtype)


def binary_linear(x, packed, scale, offset, bias, in_features: int, group_size: int) -> torch.Tensor:
    """``x @ W_hat.T + bias`` for a packed 1-bit weight, tile by tile (arguments as the op's, already checked)."""
    rows = binary_rows(packed, scale, offset, in_features, group_size, x.dtype)
    return tiled_linear(x, packed.shape[0], rows, bias)


def int8_linear(x, weight, scale, bias) -> torch.Tensor:
    """``x @ (weight * scale).T + bias`` for an int8 weight, tile by tile (arguments already checked)."""
    return tiled_linear(x, weight.shape[0], int8_rows(weight, scale, x.dtype), bias)


# Inputs up to which every partial sum of a dot product of int8 inputs (|q| <= 127) with +-1 signs is an integer
# of at most 2^24, which float32 holds exactly: a float32 GEMM then computes it exactly, whatever order it adds in
# (even with bfloat16 or TF32 inputs, which hold q and the signs exactly). Beyond, float64 (exact below 2^53).
FLOAT32_EXACT_IN_FEATURES = (1 << 24) // INT8_MAX


def quantize_activations(x2d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row symmetric int8 of a ``[M, K]`` input: ``(q int8[M, K], scale float32[M, 1])``.

    In float32: ``scale = max_k |x[m, k]| / 127`` and ``q = clamp(round(x / scale), -127, 127)``, rounding to nearest
    with ties to even. A row whose scale is 0 (all zeros, or too small to divide by), inf or NaN (the row holds inf
    or NaN) gets ``q = 0`` and keeps its scale, so that its outputs are the bias (scale 0) or NaN.
    """
    x = x2d.to(torch.float32)
    scale = x.abs().amax(dim=-1, keepdim=True) / INT8_MAX
    usable = torch.isfinite(scale) & (scale > 0)
    q = torch.round(x / torch.where(usable, scale, 1.0)).clamp(-INT8_MAX, INT8_MAX)
    return torch.where(usable, q, 0.0).to(torch.int8), scale


def binary_linear_int8_act(x, packed, scale, bias, in_features: int) -> torch.Tensor:
    """``binary_linear`` with int8 activations (arguments as the op's, already checked): per row,
    ``(float32(q . signs) * (x_scale * scale)) + bias`` in float32, each operation rounded once, then cast to the
    input's dtype. The dot products are exact integers: a float GEMM of ``q`` by tiles of +-1 signs, in float32 up to
    :data:`FLOAT32_EXACT_IN_FEATURES` inputs, else in float64."""
    x2d = x.reshape(-1, in_features)
    q, x_scale = quantize_activations(x2d)
    dtype = torch.float32 if in_features <= FLOAT32_EXACT_IN_FEATURES else torch.float64

    def signs(start: int, stop: int) -> torch.Tensor:
        return unpack_signs(packed[start:stop], in_features, dtype)

    dot = tiled_linear(q.to(dtype), packed.shape[0], signs, None)
    out = dot.to(torch.float32) * (x_scale * scale.to(torch.float32).reshape(1, -1))
    if bias is not None:
        out = out + bias.to(torch.float32)
    return out.to(x.dtype).reshape(*x.shape[:-1], packed.shape[0])
