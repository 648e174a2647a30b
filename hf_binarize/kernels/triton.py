"""Triton kernels for ``torch.ops.hf_binarize.binary_linear`` on CUDA.

The kernels read the ``sign-lsb-v1`` bytes (see :mod:`hf_binarize.packing`) straight from global memory and unpack
the signs in registers, so the dense weight never exists in memory; products are accumulated in float32 and the
output has the input's dtype.

``_gemv`` (``M <= _GEMV_MAX_M`` rows)
    Each program owns a few output channels and walks K with plain multiply-adds. Small ``BLOCK_N`` gives enough
    programs to fill the GPU when only one or two activation rows exist, which a tensor-core tile cannot.
``_gemm`` (more rows)
    Tensor-core tiles. When every K block lies inside one scale group (one group per channel, or ``group_size`` a
    multiple of ``BLOCK_K``) the +1/-1 signs go through ``tl.dot`` as they are and the scale multiplies the group's
    partial sum once, with the offset term ``offset * sum(x)`` added per group; otherwise each weight is
    dequantized in registers before the dot.

Triton is imported on first use, never at import time, so ``import hf_binarize`` works without it and touches no
GPU. :func:`register` makes the kernels the CUDA implementation of the op; :func:`triton_binary_linear` is the
launcher, which also runs on CPU tensors under ``TRITON_INTERPRET=1`` (that is how the tests run it).
"""

from __future__ import annotations

import functools

import torch

from ..ops import _binary_rows, _check_binary, _tiled_linear, binary_linear
from ..packing import num_groups
from . import get_backend

# Above this many rows the multiply-adds of the GEMV (M per weight) cost more than the tensor-core tile's padding.
# A guess until measured: bench/triton_bench.py times both kernels for small M.
_GEMV_MAX_M = 4
# The GEMV keeps BLOCK_M * BLOCK_N * BLOCK_K float32 partial sums; 4096 is 32 registers a thread at 4 warps.
_GEMV_ACC_ELEMENTS = 4096
KERNELS = ("gemv", "gemm")


@functools.cache
def _kernels():
    """Import triton and define the kernels; ``None`` where triton is not installed."""
    # The kernels find ``tl`` in this module's globals when compiled: Triton 3.2 and older do not see closures.
    global tl
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return None

    @triton.jit
    def _gemv(
        x_ptr, packed_ptr, scale_ptr, offset_ptr, bias_ptr, y_ptr,
        M, N, K, group_size,
        stride_xm, stride_xk, stride_pn, stride_sn, stride_on, stride_ym,
        HAS_OFFSET: tl.constexpr, HAS_BIAS: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):
        offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        # int64 rows: M * K activations or M * N outputs can pass 2**31 elements (long batches, wide heads).
        offs_m = tl.program_id(1).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
        mask_n = offs_n < N
        mask_m = offs_m < M
        # Partial sums stay spread over K until the end: one reduction instead of one per iteration.
        acc = tl.zeros((BLOCK_M, BLOCK_N, BLOCK_K), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            offs_k = k0 + tl.arange(0, BLOCK_K)
            mask_k = offs_k < K
            x = tl.load(
                x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :] * stride_xk,
                mask=mask_m[:, None] & mask_k[None, :],
                other=0.0,
            ).to(tl.float32)
            w_mask = mask_n[:, None] & mask_k[None, :]
            # Eight neighbouring k share a byte (and a whole group a scale): the repeated addresses are served by
            # one transaction per warp, so DRAM sees each packed byte once.
            byte = tl.load(packed_ptr + offs_n[:, None] * stride_pn + (offs_k // 8)[None, :], mask=w_mask, other=0)
            positive = ((byte.to(tl.int32) >> (offs_k % 8)[None, :]) & 1) != 0
            group = (offs_k // group_size)[None, :]
            scale = tl.load(scale_ptr + offs_n[:, None] * stride_sn + group, mask=w_mask, other=0.0).to(tl.float32)
            w = tl.where(positive, scale, -scale)
            if HAS_OFFSET:
                w += tl.load(offset_ptr + offs_n[:, None] * stride_on + group, mask=w_mask, other=0.0).to(tl.float32)
            acc += x[:, None, :] * w[None, :, :]
        y = tl.sum(acc, axis=2)
        if HAS_BIAS:
            y += tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
        tl.store(
            y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :],
            y.to(y_ptr.dtype.element_ty),
            mask=mask_m[:, None] & mask_n[None, :],
        )

    @triton.jit
    def _gemm(
        x_ptr, packed_ptr, scale_ptr, offset_ptr, bias_ptr, y_ptr,
        M, N, K, group_size, groups,
        stride_xm, stride_xk, stride_pn, stride_sn, stride_on, stride_ym,
        HAS_OFFSET: tl.constexpr, HAS_BIAS: tl.constexpr, GROUP_ALIGNED: tl.constexpr,
        DOT_PRECISION: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):
        offs_m = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_m = offs_m < M
        mask_n = offs_n < N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        if GROUP_ALIGNED:
            for g in range(0, groups):
                k_start = g * group_size
                partial = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
                x_sum = tl.zeros((BLOCK_M,), dtype=tl.float32)
                for k0 in range(k_start, min(k_start + group_size, K), BLOCK_K):
                    offs_k = k0 + tl.arange(0, BLOCK_K)
                    mask_k = offs_k < K
                    x = tl.load(
                        x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :] * stride_xk,
                        mask=mask_m[:, None] & mask_k[None, :],
                        other=0.0,
                    )
                    # Masked tails read as -1 signs, harmless because the matching x are 0.
                    byte = tl.load(
                        packed_ptr + offs_n[None, :] * stride_pn + (offs_k // 8)[:, None],
                        mask=mask_k[:, None] & mask_n[None, :],
                        other=0,
                    )
                    positive = ((byte.to(tl.int32) >> (offs_k % 8)[:, None]) & 1) != 0
                    # +1/-1 are exact in every activation dtype, so the dot itself loses nothing.
                    signs = tl.where(positive, 1.0, -1.0).to(x.dtype)
                    partial = tl.dot(x, signs, partial, input_precision=DOT_PRECISION)
                    if HAS_OFFSET:
                        x_sum += tl.sum(x.to(tl.float32), axis=1)
                scale = tl.load(scale_ptr + offs_n * stride_sn + g, mask=mask_n, other=0.0).to(tl.float32)
                acc += partial * scale[None, :]
                if HAS_OFFSET:
                    offset = tl.load(offset_ptr + offs_n * stride_on + g, mask=mask_n, other=0.0).to(tl.float32)
                    acc += x_sum[:, None] * offset[None, :]
        else:
            for k0 in range(0, K, BLOCK_K):
                offs_k = k0 + tl.arange(0, BLOCK_K)
                mask_k = offs_k < K
                x = tl.load(
                    x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :] * stride_xk,
                    mask=mask_m[:, None] & mask_k[None, :],
                    other=0.0,
                )
                w_mask = mask_k[:, None] & mask_n[None, :]
                byte = tl.load(packed_ptr + offs_n[None, :] * stride_pn + (offs_k // 8)[:, None], mask=w_mask, other=0)
                positive = ((byte.to(tl.int32) >> (offs_k % 8)[:, None]) & 1) != 0
                group = (offs_k // group_size)[:, None]
                scale = tl.load(scale_ptr + offs_n[None, :] * stride_sn + group, mask=w_mask, other=0.0)
                w = tl.where(positive, scale.to(tl.float32), -scale.to(tl.float32))
                if HAS_OFFSET:
                    offset = tl.load(offset_ptr + offs_n[None, :] * stride_on + group, mask=w_mask, other=0.0)
                    w += offset.to(tl.float32)
                # Rounding W_hat to the activation dtype is what the reference does too.
                acc = tl.dot(x, w.to(x.dtype), acc, input_precision=DOT_PRECISION)
        if HAS_BIAS:
            acc += tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
        tl.store(
            y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :],
            acc.to(y_ptr.dtype.element_ty),
            mask=mask_m[:, None] & mask_n[None, :],
        )

    return _gemv, _gemm


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


def _gemm_block_k(in_features: int, group_size: int) -> tuple[int, bool]:
    """``(BLOCK_K, GROUP_ALIGNED)``: aligned when no K block straddles two scale groups."""
    if num_groups(in_features, group_size) == 1:
        return 64, True
    for block_k in (64, 32, 16):  # tl.dot needs K >= 16
        if group_size % block_k == 0:
            return block_k, True
    return 64, False


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
        block_k = min(256, max(16, _next_power_of_2(in_features)))
        block_n = max(1, min(_GEMV_ACC_ELEMENTS // (block_m * block_k), 16, _next_power_of_2(out_features)))
        block_n = _fill_gpu(block_n, 2, out_features, _cdiv(rows, block_m), sms)
        grid = (_cdiv(out_features, block_n), _cdiv(rows, block_m))
        gemv[grid](
            *args, rows, out_features, in_features, group_size, *row_strides, **flags,
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


def _cuda_binary_linear(x, packed, scale, offset, bias, in_features, group_size):
    _check_binary(x, packed, scale, offset, bias, in_features, group_size)
    if get_backend() == "torch" or not triton_available():
        rows = _binary_rows(packed, scale, offset, in_features, group_size, x.dtype)
        return _tiled_linear(x, packed.shape[0], rows, bias)
    y = triton_binary_linear(x.reshape(-1, in_features), packed, scale, offset, bias, in_features, group_size)
    return y.reshape(*x.shape[:-1], packed.shape[0])


@functools.cache
def register() -> None:
    """Make the Triton kernels the CUDA implementation of ``binary_linear`` (idempotent; imports no triton)."""
    binary_linear.register_kernel("cuda")(_cuda_binary_linear)
