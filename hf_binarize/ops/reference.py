"""The plain-PyTorch implementation of the packed ops: the reference every faster kernel is checked against.

It dequantizes a tile of output rows at a time (:data:`TILE_ELEMENTS` weights), multiplies the activations by it
and moves on, so the dense weight never exists whole. Backends fall back to :func:`binary_linear` for the inputs
their kernels do not take.
"""

from collections.abc import Callable

import torch

from ..formats.binary import dequantize
from ..formats.int8 import dequantize_int8

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
