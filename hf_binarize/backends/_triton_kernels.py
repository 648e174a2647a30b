"""The Triton kernels of ``binary_linear`` (see :mod:`hf_binarize.backends.triton`, which imports this module only
when a kernel first runs, so that ``import hf_binarize`` never needs triton).

``gemv`` multiplies a few activation rows with plain multiply-adds; ``gemm`` uses tensor-core tiles.
"""

import triton
import triton.language as tl


@triton.jit
def gemv(
    x_ptr, packed_ptr, scale_ptr, offset_ptr, bias_ptr, y_ptr,
    M, N, K, group_size,
    stride_xm, stride_xk, stride_pn, stride_sn, stride_on, stride_ym,
    HAS_OFFSET: tl.constexpr, HAS_BIAS: tl.constexpr, GROUP_ALIGNED: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    # int64 rows: M * K activations or M * N outputs can pass 2**31 elements (long batches, wide heads).
    offs_m = tl.program_id(1).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_n = offs_n < N
    mask_m = offs_m < M
    offs_byte = tl.arange(0, BLOCK_K // 8)
    bit = tl.arange(0, 8)
    y = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        mask_k = offs_k < K
        x = tl.load(
            x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :] * stride_xk,
            mask=mask_m[:, None] & mask_k[None, :],
            other=0.0,
        ).to(tl.float32)
        # Each packed byte is loaded once and its eight signs expanded in registers (input k = 8 * byte + bit):
        # loading a byte per input instead made the kernel instruction-bound (56 us for 4096 x 4096 on an H200).
        byte_k = k0 // 8 + offs_byte
        byte = tl.load(packed_ptr + offs_n[:, None] * stride_pn + byte_k[None, :],
                       mask=mask_n[:, None] & (byte_k * 8 < K)[None, :], other=0)
        bits = (byte.to(tl.int32)[:, :, None] >> bit[None, None, :]) & 1
        # Masked tails read as -1 signs, harmless because the matching x are 0.
        signs = tl.reshape(bits, (BLOCK_N, BLOCK_K)).to(tl.float32) * 2.0 - 1.0
        if GROUP_ALIGNED:
            # The block lies inside one scale group: its scale (and offset) multiply the block's sums once.
            g = k0 // group_size
            scale = tl.load(scale_ptr + offs_n * stride_sn + g, mask=mask_n, other=0.0).to(tl.float32)
            y += tl.sum(x[:, None, :] * signs[None, :, :], axis=2) * scale[None, :]
            if HAS_OFFSET:
                offset = tl.load(offset_ptr + offs_n * stride_on + g, mask=mask_n, other=0.0).to(tl.float32)
                y += tl.sum(x, axis=1)[:, None] * offset[None, :]
        else:
            w_mask = mask_n[:, None] & mask_k[None, :]
            group = (offs_k // group_size)[None, :]
            w = signs * tl.load(scale_ptr + offs_n[:, None] * stride_sn + group, mask=w_mask, other=0.0).to(tl.float32)
            if HAS_OFFSET:
                w += tl.load(offset_ptr + offs_n[:, None] * stride_on + group, mask=w_mask, other=0.0).to(tl.float32)
            y += tl.sum(x[:, None, :] * w[None, :, :], axis=2)
    if HAS_BIAS:
        y += tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    tl.store(
        y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :],
        y.to(y_ptr.dtype.element_ty),
        mask=mask_m[:, None] & mask_n[None, :],
    )

@triton.jit
def gemm(
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
