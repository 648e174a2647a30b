"""An independent reference for binary layers with int8 activations, in numpy, shared by the tests of the op, the
native kernels and the packed modules.

:func:`int8_act_linear` follows the documented definition step by step with numpy's own float32 arithmetic and
int64 integer dot products, never hf_binarize code: per row ``scale = max |x| / 127``, ``q = clip(rint(x / scale),
-127, 127)`` (numpy's ``rint`` rounds ties to even), ``q = 0`` in rows whose scale is 0, inf or NaN; then
``float32(q . signs) * (scale * weight_scale) + bias``. Every step is one IEEE float32 operation, so the result is
exact: implementations that follow the definition agree with it bit for bit.

:func:`quantization_bound` bounds the distance to the dense float product ``x @ W_hat.T + bias``: rounding an
input to the grid of its row's scale ``s`` moves it by at most ``s / 2`` (plus float32 rounding of ``x / s``),
which moves an output by at most ``(s / 2) * sum_k |W_hat[n, k]|``; the float32 epilogue adds a few roundings of
the output's size.
"""

from __future__ import annotations

import numpy as np
import torch

EPS32 = 2.0**-24


def signs(packed: torch.Tensor, in_features: int) -> np.ndarray:
    """+1/-1 as int64 ``[N, K]``: bit ``k % 8`` (least significant first) of byte ``k // 8``, 1 = +1."""
    bits = np.unpackbits(packed.numpy(), axis=1, bitorder="little")[:, :in_features].astype(np.int64)
    return bits * 2 - 1


def quantize(x: torch.Tensor, in_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``(q int64 [M, K], scale float32 [M, 1])`` of the rows of ``x``."""
    x32 = x.detach().to(torch.float32).reshape(-1, in_features).numpy()
    with np.errstate(all="ignore"):
        scale = np.abs(x32).max(axis=1, keepdims=True) / np.float32(127)
        usable = np.isfinite(scale) & (scale > 0)
        q = np.clip(np.rint(x32 / np.where(usable, scale, np.float32(1))), -127, 127)
    return np.where(usable, q, 0).astype(np.int64), scale.astype(np.float32)


def int8_act_linear(x: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                    in_features: int) -> torch.Tensor:
    """The exact output of a binary layer with int8 activations, in ``x``'s dtype and shape."""
    q, x_scale = quantize(x, in_features)
    dot = q @ signs(packed, in_features).T
    weight_scale = scale.detach().to(torch.float32).numpy().reshape(1, -1)
    with np.errstate(all="ignore"):
        out = dot.astype(np.float32) * (x_scale * weight_scale)
        if bias is not None:
            out = out + bias.detach().to(torch.float32).numpy()
    return torch.from_numpy(out).to(x.dtype).reshape(*x.shape[:-1], packed.shape[0])


def dense_and_bound(x: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                    in_features: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense float64 ``x @ W_hat.T + bias`` and :func:`quantization_bound` of the int8 output's distance to it,
    plus one rounding to ``dtype``."""
    weight = signs(packed, in_features) * scale.detach().to(torch.float64).numpy().reshape(-1, 1)
    x64 = x.detach().to(torch.float64).reshape(-1, in_features).numpy()
    dense, magnitude = x64 @ weight.T, np.abs(x64) @ np.abs(weight).T
    if bias is not None:
        b = bias.detach().to(torch.float64).numpy()
        dense, magnitude = dense + b, magnitude + np.abs(b)
    _, x_scale = quantize(x, in_features)
    grid = (0.5 + 256 * EPS32) * x_scale.astype(np.float64) * np.abs(weight).sum(axis=1)
    unit = {torch.float32: EPS32, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}[dtype]
    bound = grid + 8 * EPS32 * (magnitude + grid) + unit * (np.abs(dense) + grid)
    shape = (*x.shape[:-1], packed.shape[0])
    return torch.from_numpy(dense).reshape(shape), torch.from_numpy(bound).reshape(shape)


def random_case(m: int, n: int, k: int, *, bias: bool = True, dtype: torch.dtype = torch.float32,
                scale_dtype: torch.dtype = torch.float16, seed: int = 0) -> tuple:
    """Arguments ``(x, packed, scale, bias, in_features)`` of the op: random packed bytes (pad bits included, which
    must be ignored), one scale per output channel, and inputs whose rows differ in size."""
    gen = torch.Generator().manual_seed(seed)
    packed = torch.randint(0, 256, (n, -(-k // 8)), dtype=torch.uint8, generator=gen)
    scale = (torch.rand(n, 1, generator=gen) + 0.05).to(scale_dtype)
    b = torch.randn(n, generator=gen).to(dtype) if bias else None
    x = (torch.randn(m, k, generator=gen) * torch.rand(m, 1, generator=gen) * 4).to(dtype)
    return x, packed, scale, b, k


def assert_exact(y: torch.Tensor, x: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor,
                 bias: torch.Tensor | None, in_features: int) -> None:
    """``y`` is :func:`int8_act_linear`'s result to the bit (NaN where it has NaN)."""
    torch.testing.assert_close(y, int8_act_linear(x, packed, scale, bias, in_features), rtol=0, atol=0,
                               equal_nan=True)


def assert_within_bound(y: torch.Tensor, x: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor,
                        bias: torch.Tensor | None, in_features: int) -> None:
    dense, bound = dense_and_bound(x, packed, scale, bias, in_features, y.dtype)
    error = (y.double() - dense).abs()
    assert (error <= bound).all(), f"error {error.max().item():.3g} exceeds the bound there {bound.flatten()[error.argmax()]:.3g}"
