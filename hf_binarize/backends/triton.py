"""Triton kernels for ``torch.ops.hf_binarize.binary_linear`` on CUDA.

The kernels read the ``sign-lsb-v1`` bytes (see :mod:`hf_binarize.formats.binary`) straight from global memory and unpack
the signs in registers, so the dense weight never exists in memory; products are accumulated in float32 and the
output has the input's dtype.

``_gemv`` (``M <= _GEMV_MAX_M`` rows)
    Each program owns a few output channels and walks K in wide blocks with plain multiply-adds, each packed byte
    loaded once and expanded into eight signs in registers; a block inside one scale group takes its scale once, on
    the block's sum. Small ``BLOCK_N`` gives enough programs to fill the GPU when only one or two activation rows
    exist, which a tensor-core tile cannot.
``_gemm`` (more rows)
    Tensor-core tiles. When every K block lies inside one scale group (one group per channel, or ``group_size`` a
    multiple of ``BLOCK_K``) the +1/-1 signs go through ``tl.dot`` as they are and the scale multiplies the group's
    partial sum once, with the offset term ``offset * sum(x)`` added per group; otherwise each weight is
    dequantized in registers before the dot.

The kernels themselves are in :mod:`hf_binarize.backends._triton_kernels`, imported on first use, never at import
time, so ``import hf_binarize`` works without triton and touches no GPU. :func:`triton_binary_linear` is the
launcher, which also runs on CPU tensors under ``TRITON_INTERPRET=1`` (that is how the tests run it);
:mod:`hf_binarize.backends` makes it the CUDA implementation of the op.
"""

from __future__ import annotations

import functools

import torch

from ..formats.binary import num_groups

# Above this many rows the multiply-adds of the GEMV (M per weight) cost more than the tensor-core tile's padding.
# On an H200 (bench/RESULTS.md) the GEMV wins at 4 rows for 1024 x 1024 and 640 x 8193 and loses by 20% for
# 4096 x 4096; bench/triton_bench.py times both kernels up to 16 rows.
_GEMV_MAX_M = 4
# The GEMV keeps BLOCK_M * BLOCK_N * BLOCK_K float32 partial sums; 4096 is 32 registers a thread at 4 warps.
_GEMV_ACC_ELEMENTS = 4096
# The GEMV's widest K block. Measured on an H200 at one row (bench/RESULTS.md): 1024-input blocks of 4 output
# channels were 2-2.5x faster than 256-input blocks of 16, for every shape tried.
_GEMV_MAX_BLOCK_K = 1024
KERNELS = ("gemv", "gemm")


@functools.cache
def _kernels():
    """The compiled-on-demand kernels ``(gemv, gemm)``; ``None`` where triton is not installed."""
    try:
        from . import _triton_kernels
    except ImportError:
        return None
    return _triton_kernels.gemv, _triton_kernels.gemm


def triton_available() -> bool:
    """Whether triton can be imported (a GPU is not needed for that)."""
    return _kernels() is not None


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _next_power_of_2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


@functools.cache
def _sm_count(device: torch.device) -> int:
    # CPU tensors reach the kernels only in the interpreter, which has no multiprocessors to fill.
    if device.type != "cuda":
        return 1
    return torch.cuda.get_device_properties(device).multi_processor_count


def _fill_gpu(block_n: int, floor: int, out_features: int, row_tiles: int, sms: int) -> int:
    """Halve the column tile until there is a program per multiprocessor (or the tile is ``floor`` wide): with
    few rows there are few row tiles, and an idle multiprocessor reads no weights."""
    while block_n > floor and _cdiv(out_features, block_n) * row_tiles < sms:
        block_n //= 2
    return block_n


def _block_inside_groups(group_size: int, widest: int) -> int | None:
    """The widest power-of-two K block from ``widest`` down to 16 (``tl.dot``'s minimum) that divides
    ``group_size``, so that no block straddles two scale groups; ``None`` when there is none."""
    block_k = widest
    while block_k >= 16:
        if group_size % block_k == 0:
            return block_k
        block_k //= 2
    return None


def _gemv_block_k(in_features: int, group_size: int) -> tuple[int, bool]:
    """``(BLOCK_K, GROUP_ALIGNED)`` of the GEMV: the widest block up to :data:`_GEMV_MAX_BLOCK_K` that stays inside
    one scale group, else a block that crosses groups (scales then loaded per input)."""
    if num_groups(in_features, group_size) == 1:
        return min(_GEMV_MAX_BLOCK_K, max(16, _next_power_of_2(in_features))), True
    block_k = _block_inside_groups(group_size, _GEMV_MAX_BLOCK_K)
    return (block_k, True) if block_k else (min(256, max(16, _next_power_of_2(in_features))), False)


def _gemm_block_k(in_features: int, group_size: int) -> tuple[int, bool]:
    """``(BLOCK_K, GROUP_ALIGNED)``: aligned when no K block straddles two scale groups."""
    if num_groups(in_features, group_size) == 1:
        return 64, True
    block_k = _block_inside_groups(group_size, 64)
    return (block_k, True) if block_k else (64, False)


def triton_binary_linear(
    x2d: torch.Tensor,
    packed: torch.Tensor,
    scale: torch.Tensor,
    offset: torch.Tensor | None,
    bias: torch.Tensor | None,
    in_features: int,
    group_size: int,
    *,
    kernel: str | None = None,
) -> torch.Tensor:
    """``x2d @ W_hat.T + bias`` for a 2-D ``x2d [M, K]`` with the Triton kernels; returns ``[M, N]`` in x's dtype.

    Arguments are those of ``binary_linear`` and are not validated here. ``kernel`` forces ``"gemv"`` or
    ``"gemm"`` (for tests and benchmarks); by default the GEMV runs for up to ``_GEMV_MAX_M`` rows.
    """
    kernels = _kernels()
    if kernels is None:
        raise RuntimeError("the Triton kernels need triton: pip install 'hf-binarize[cuda]'")
    gemv, gemm = kernels
    if kernel is None:
        kernel = "gemv" if x2d.shape[0] <= _GEMV_MAX_M else "gemm"
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {list(KERNELS)}, got {kernel!r}")

    rows, out_features = x2d.shape[0], packed.shape[0]
    y = x2d.new_empty(rows, out_features)
    if rows == 0 or out_features == 0:
        return y
    packed, scale = packed.contiguous(), scale.contiguous()
    offset = None if offset is None else offset.contiguous()
    bias = None if bias is None else bias.contiguous()
    args = (
        x2d, packed, scale,
        scale if offset is None else offset,  # never read when HAS_OFFSET is False
        scale if bias is None else bias,  # likewise
        y,
    )
    row_strides = (x2d.stride(0), x2d.stride(1), packed.stride(0), scale.stride(0), args[3].stride(0), y.stride(0))
    flags = {"HAS_OFFSET": offset is not None, "HAS_BIAS": bias is not None}
    sms = _sm_count(x2d.device)

    if kernel == "gemv":
        block_m = min(_next_power_of_2(rows), 16)
        block_k, aligned = _gemv_block_k(in_features, group_size)
        # More rows take a narrower K block rather than a single output channel per program (halving keeps an
        # aligned block inside its group).
        while block_m * 2 * block_k > _GEMV_ACC_ELEMENTS and block_k > 16:
            block_k //= 2
        block_n = max(1, min(_GEMV_ACC_ELEMENTS // (block_m * block_k), 16, _next_power_of_2(out_features)))
        block_n = _fill_gpu(block_n, 2, out_features, _cdiv(rows, block_m), sms)
        grid = (_cdiv(out_features, block_n), _cdiv(rows, block_m))
        gemv[grid](
            *args, rows, out_features, in_features, group_size, *row_strides, **flags, GROUP_ALIGNED=aligned,
            BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=4,
        )
        return y

    block_k, aligned = _gemm_block_k(in_features, group_size)
    block_m = 16 if rows <= 16 else 32 if rows <= 32 else 64
    block_n = _fill_gpu(64, 16, out_features, _cdiv(rows, block_m), sms)
    # Match F.linear, which uses TF32 for float32 only when torch allows it; ROCm's Triton has no "tf32".
    tf32 = torch.backends.cuda.matmul.allow_tf32 and torch.version.hip is None
    grid = (_cdiv(rows, block_m), _cdiv(out_features, block_n))
    gemm[grid](
        *args, rows, out_features, in_features, group_size, num_groups(in_features, group_size), *row_strides,
        **flags, GROUP_ALIGNED=aligned, DOT_PRECISION="tf32" if tf32 else "ieee",
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=4, num_stages=3,
    )
    return y
