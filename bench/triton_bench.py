"""GPU benchmark of the Triton ``binary_linear`` kernels against a dense ``F.linear`` of the same shape.

    python bench/triton_bench.py                           # float16, one scale per output channel
    python bench/triton_bench.py --group-size 128 --centred --dtype bfloat16

For each weight shape ``N x K`` (outputs x inputs) and batch rows M it prints the median time of: ``F.linear`` with
a dense weight in the activation dtype, the Triton kernel as dispatched (``auto``), each Triton kernel forced (for
M <= 16, to place ``_GEMV_MAX_M``), and the plain-torch reference; ``speedup`` is dense time / Triton time. ``err`` is
the Triton result's largest difference from ``F.linear`` on the dequantized weight, relative to that output's
largest magnitude. Times come from ``triton.testing.do_bench``, which flushes the L2 cache between runs so that a
dense weight that fits in L2 is not read from it. Needs a CUDA GPU and triton.
"""

from __future__ import annotations

import argparse

SHAPES = [(1024, 1024), (4096, 4096), (640, 8193)]
ROWS = [1, 8, 64, 256]
# Rows up to which both kernels are timed: where the GEMV/GEMM switch belongs.
FORCED_MAX_ROWS = 16


def time_case(x, binarized, dense, in_features: int, group_size: int) -> list:
    """The table cells of one activation batch ``x`` against one binarized weight."""
    import torch
    import torch.nn.functional as F
    from triton.testing import do_bench

    from hf_binarize.backends import use_backend
    from hf_binarize.backends.triton import triton_binary_linear

    tensors = (binarized.packed, binarized.scale, binarized.offset, None, in_features, group_size)

    def microseconds(fn) -> float:
        return do_bench(fn, return_mode="median") * 1000

    def run(kernel=None):
        return triton_binary_linear(x, *tensors, kernel=kernel)

    expected = F.linear(x, dense).float()
    err = ((run().float() - expected).abs().max() / expected.abs().max()).item()
    dense_us = microseconds(lambda: F.linear(x, dense))
    triton_us = microseconds(run)
    rows = x.shape[0]
    forced = ["-", "-"]
    if rows <= FORCED_MAX_ROWS:
        forced = [f"{microseconds(lambda kernel=kernel: run(kernel)):.1f}" for kernel in ("gemv", "gemm")]
    with use_backend("torch"):
        reference_us = microseconds(lambda: torch.ops.hf_binarize.binary_linear(x, *tensors))
    return [f"{dense_us:.1f}", f"{triton_us:.1f}", f"{dense_us / triton_us:.2f}x", *forced, f"{reference_us:.1f}",
            f"{err:.1e}"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    parser.add_argument("--group-size", type=int, default=None, help="inputs per scale (default: one per channel)")
    parser.add_argument("--centred", action="store_true", help="binarize around the group mean (adds offsets)")
    parser.add_argument("--rows", type=int, nargs="+", default=ROWS, help="batch rows M (default %(default)s)")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        raise SystemExit(f"bench/triton_bench.py times CUDA kernels, but torch {torch.__version__} sees no CUDA device")

    from hf_binarize.backends.triton import triton_available
    from hf_binarize.formats.binary import binarize, dequantize

    if not triton_available():
        raise SystemExit("bench/triton_bench.py needs triton: pip install 'hf-binarize[cuda]'")

    dtype = getattr(torch, args.dtype)
    print(f"{torch.cuda.get_device_name()}, {args.dtype}, group_size={args.group_size or 'K'}, centred={args.centred}")
    header = ["N", "K", "M", "dense us", "triton us", "speedup", "gemv us", "gemm us", "torch ref us", "err"]
    print("".join(f"{name:>13}" for name in header))
    generator = torch.Generator(device="cuda").manual_seed(0)
    for out_features, in_features in SHAPES:
        weight = torch.randn(out_features, in_features, device="cuda", generator=generator)
        # A centred group of one input (K = 8193) has a scale of about 1e-8, the rounding of its stored offset,
        # which float16 cannot hold.
        binarized = binarize(weight, args.group_size, args.centred, torch.float32 if args.centred else torch.float16)
        group_size = args.group_size or in_features
        dense = dequantize(binarized.packed, binarized.scale, binarized.offset, in_features, group_size, dtype)
        for rows in args.rows:
            x = torch.randn(rows, in_features, device="cuda", generator=generator).to(dtype)
            cells = [out_features, in_features, rows, *time_case(x, binarized, dense, in_features, group_size)]
            print("".join(f"{cell:>13}" for cell in cells))


if __name__ == "__main__":
    main()
