"""Times the Triton GEMV of ``binary_linear`` at one activation row over a grid of tile shapes (BLOCK_K inputs x
BLOCK_N output channels per program, num_warps), beside a dense float16 ``F.linear``; prints the fastest tiles per
weight shape. How ``_GEMV_MAX_BLOCK_K`` and the GEMV's tile width were chosen (bench/RESULTS.md). Needs a CUDA GPU.

    python bench/triton_gemv_sweep.py
"""

from __future__ import annotations

import itertools

SHAPES = [(1024, 1024), (4096, 4096), (640, 8193), (4096, 1024), (1024, 4096)]
TILES = list(itertools.product([256, 512, 1024], [2, 4, 8, 16], [2, 4, 8]))


def sweep_shape(out_features: int, in_features: int) -> str:
    """One line: the dense time and the fastest and slowest tiles for an ``out_features x in_features`` weight."""
    import torch
    import torch.nn.functional as F
    from triton.testing import do_bench

    from hf_binarize.backends import _triton_kernels
    from hf_binarize.backends.triton import _cdiv
    from hf_binarize.formats.binary import binarize, dequantize

    binarized = binarize(torch.randn(out_features, in_features, device="cuda"))
    packed, scale = binarized.packed.contiguous(), binarized.scale.contiguous()
    x = torch.randn(1, in_features, device="cuda", dtype=torch.float16)
    dense = dequantize(packed, scale, None, in_features, in_features, torch.float16)
    expected = F.linear(x.float(), dense.float())
    y = x.new_empty(1, out_features)

    def launcher(block_k: int, block_n: int, warps: int):
        def run():
            _triton_kernels.gemv[(_cdiv(out_features, block_n), 1)](
                x, packed, scale, scale, scale, y, 1, out_features, in_features, in_features, x.stride(0),
                x.stride(1), packed.stride(0), scale.stride(0), scale.stride(0), y.stride(0), HAS_OFFSET=False,
                HAS_BIAS=False, GROUP_ALIGNED=True, BLOCK_M=1, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=warps)
        return run

    dense_us = do_bench(lambda: F.linear(x, dense), return_mode="median") * 1000
    timed = []
    for block_k, block_n, warps in TILES:
        run = launcher(block_k, block_n, warps)
        run()
        error = ((y.float() - expected).abs().max() / expected.abs().max()).item()
        timed.append((do_bench(run, return_mode="median") * 1000, block_k, block_n, warps, error))
    timed.sort()
    best = " ".join(f"({k},{n},{w}: {us:.1f} us, {e:.0e})" for us, k, n, w, e in timed[:6])
    worst = " ".join(f"({k},{n},{w}: {us:.1f} us)" for us, k, n, w, _ in timed[-3:])
    return f"{out_features} {in_features} {dense_us:.1f} | {best} | {worst}"


def main() -> None:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(f"bench/triton_gemv_sweep.py times CUDA kernels, but torch {torch.__version__} sees no GPU")
    torch.manual_seed(0)
    print(f"{torch.cuda.get_device_name()}, float16, one row, one scale per channel")
    print("N K dense_us | fastest (BLOCK_K, BLOCK_N, warps: us, error) | slowest")
    for out_features, in_features in SHAPES:
        print(sweep_shape(out_features, in_features))


if __name__ == "__main__":
    main()
