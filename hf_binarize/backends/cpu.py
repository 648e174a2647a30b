"""The native CPU implementation of ``torch.ops.hf_binarize.binary_linear`` and ``binary_linear_int8_act``.

The kernels are C (``csrc/``, built by ``pip install``), loaded here with ctypes from ``libhfb_cpu.so`` next to
this file. Where the library is missing, fails to load or is of another ABI version, a warning is logged once and
the op runs the plain-torch reference of :mod:`hf_binarize.ops`. So does ``HF_BINARIZE_BACKEND=torch``.

The library has one code path per instruction set, chosen at run time: ``"avx512"`` (AVX-512F), ``"avx2"``
(AVX2 + FMA) and ``"portable"`` (plain C). The best one the CPU supports runs unless ``use_backend(cpu_isa=...)`` or
the ``HF_BINARIZE_CPU_ISA`` environment variable names another. It uses ``torch.get_num_threads()`` threads.

Below :data:`GEMM_MIN_ROWS` activation rows the library's lookup-table kernel runs (csrc/hfb.h explains it):
each run of 2 or 4 inputs gets a table of its signed sums, and the packed bits index it, 8 or 16 output rows per
instruction. From that many rows on (never on AVX-512, whose lookups outran the GEMM at every M measured), the
library dequantizes tiles of the weight to float32 and torch's GEMM multiplies them. Small products stay on one
thread (the library decides, from M * N * K).

Inputs are float32, bfloat16 or float16; the kernel computes in float32 and returns the input's dtype, so bfloat16
and float16 inputs come out more accurate than from the reference, which rounds the weight to the input's dtype.
One exception: on a CPU with bfloat16 dot-product units (:func:`has_bf16_units`), bfloat16 inputs of at least
:data:`BF16_GEMM_MIN_ROWS` rows against a weight with one scale per row and no offset (the default layout) run
torch's bfloat16 GEMM on tiles of the weight's signs (exact in bfloat16; the GEMM accumulates in float32), and the
scales and bias are applied to its bfloat16 result in float32: two roundings to bfloat16 instead of one. Ask for this with
``BinaryQuantizationConfig(compute_dtype="bfloat16")``, which makes the packed modules multiply in bfloat16.
Scales and offsets may be float32, float16 or bfloat16. ``group_size`` must be a multiple of 8 unless there is a
single group per row; other cases (and empty inputs) run the reference.

Sums accumulate in float32, as in a dense float32 matmul (and the reference): outputs are finite and accurate while
``|x| @ (|scale| + |offset|).T + |bias|`` stays below the float32 maximum (about 3.4e38). Beyond it partial sums
may overflow to inf or NaN even where the exact product is finite; float64 accumulation would halve the speed
for inputs no speech model produces.

``binary_linear_int8_act`` (int8 activations, :func:`native_binary_linear_int8_act`) quantizes each activation row
to int8 and multiplies it by the signs with integer dot products: ``vpdpbusd`` where the CPU has AVX512-VNNI (on
the ``"avx512"`` instruction set; for one or two activation rows straight from the packed bytes, each 8 of them the
mask of a masked load), ``vpmaddubsw``/``vpmaddwd`` on AVX2 (and on AVX-512 without VNNI), plain C on
``"portable"`` (:func:`int8_kernel` says which runs), the portable one for a few rows only
(:data:`INT8_REFERENCE_MIN_ROWS`). Its results are bit-identical to the reference's (csrc/hfb.h explains why), on every
instruction set and thread count.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from ..formats.binary import num_groups, packed_width

logger = logging.getLogger(__name__)

# Index = the instruction set's number in csrc/hfb.h.
ISAS = ("portable", "avx2", "avx512")
# Index = the int8 kernel's number in csrc/hfb.h (HFB_INT8_*).
INT8_KERNELS = ("portable", "avx2", "avx512-vnni")
# Inputs whose int8 dot products the kernels sum in int32 without overflow (254 * K below 2^31); beyond, the
# reference runs.
INT8_MAX_IN_FEATURES = (2**31 - 1) // 254
# From this many activation rows on, the int8-activation op runs the plain-torch reference (a float32 GEMM of the int8
# rows by +-1 tiles, exact too) instead of the library's kernel (None: never). The portable kernel's scalar loop
# lost to it from 4 rows at 1024 x 1024, 4096 x 1024 and 640 x 8193 (one thread, CPU time, AVX-512 Zen 5).
INT8_REFERENCE_MIN_ROWS = {"portable": 4, "avx2": None, "avx512": None}
_ABI_VERSION = 4
_DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
_ERRORS = {1: "invalid arguments", 2: "instruction set not supported by this CPU", 3: "out of memory"}
_LIBRARY_FILE = "libhfb_cpu" + (".dll" if sys.platform == "win32" else ".dylib" if sys.platform == "darwin" else ".so")

# From this many activation rows on, dequantizing tiles of the weight for torch's float32 GEMM beats the lookup
# kernel (None: never). With SIMD lookups it takes many rows: at 256 rows the lookups were still 1.0-1.5x faster
# than the GEMM on an AVX2 Zen 3 (`hf-binarize bench kernels`), and the two were level at 1024. The
# 16-row AVX-512 lookups were 2.9-4.8x faster than the float32 GEMM at every M up to 1024 on an AVX-512 Zen
# (bench/gemm_crossover.py), so they never hand over. The scalar lookups of the portable path lose to the GEMM (and
# to dense float32) from about 8 rows.
GEMM_MIN_ROWS = {"portable": 8, "avx2": 512, "avx512": None}
# The same for bfloat16 inputs on a CPU with bfloat16 units, where torch's bfloat16 GEMM takes over (see above).
BF16_GEMM_MIN_ROWS = 256
# Weights dequantized at once on the GEMM path: 4 MiB of float32, as in the reference implementation, but at
# least 256 rows: narrower tiles made torch's GEMM 1.5x slower (640 x 8193 at M = 256).
_GEMM_TILE_ELEMENTS = 1 << 20
_GEMM_TILE_MIN_ROWS = 256

_forked = False


def _mark_forked() -> None:
    global _forked
    _forked = True


# GNU OpenMP hangs in a forked child of a process that ran a parallel region (torch runs them on the same
# threads). The library's own fork handler exists only once it is loaded, so a child forked before the first
# packed op would hang; registered here, at import, every child runs the kernels on one thread.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked)


@functools.cache
def _library() -> ctypes.CDLL | None:
    path = Path(__file__).with_name(_LIBRARY_FILE)
    try:
        lib = ctypes.CDLL(str(path))
        version = lib.hfb_abi_version()
        if version != _ABI_VERSION:
            raise OSError(f"{path} has ABI version {version}, this package needs {_ABI_VERSION}; reinstall it")
    except (OSError, AttributeError) as error:
        logger.warning(
            "hf_binarize: native CPU kernels unavailable (%s); binary_linear runs the plain-torch implementation. "
            "Reinstall hf-binarize with a C compiler present to build them.",
            error,
        )
        return None
    ptr, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.hfb_isa_supported.argtypes = [i32]
    lib.hfb_binary_linear.argtypes = [ptr, i64, i64, ptr, i64, ptr, i32, ptr, i32, i64, ptr, ptr, i32, i32]
    lib.hfb_dequantize.argtypes = [ptr, i64, i64, ptr, i32, ptr, i32, i64, i64, i64, ptr, i32, i32, i32]
    lib.hfb_int8_kernel.argtypes = [i32]
    lib.hfb_binary_linear_int8.argtypes = [ptr, i32, i64, i64, ptr, i64, ptr, i32, ptr, ptr, i32, i32]
    return lib


def native_available() -> bool:
    """Whether the native library loaded."""
    return _library() is not None


@functools.cache
def has_bf16_units() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX), so that bfloat16 GEMMs beat
    float32 ones; False without the library."""
    lib = _library()
    return lib is not None and bool(lib.hfb_has_bf16_units())


def available_isas() -> tuple[str, ...]:
    """The instruction sets this CPU runs, fastest last; empty without the library."""
    lib = _library()
    return tuple(name for code, name in enumerate(ISAS) if lib is not None and lib.hfb_isa_supported(code))


@functools.cache
def resolve_isa(name: str = "auto") -> str:
    """The instruction set ``name`` stands for on this CPU (``"auto"``: the fastest); raises where it cannot run."""
    if name != "auto" and name not in ISAS:
        raise ValueError(f"CPU instruction set must be 'auto' or one of {list(ISAS)}, got {name!r}")
    isas = available_isas()
    if not isas:
        raise RuntimeError("the native CPU kernels of hf_binarize are not available")
    if name == "auto":
        return isas[-1]
    if name not in isas:
        raise RuntimeError(f"CPU instruction set {name!r} requested, but this CPU supports only {list(isas)}")
    return name


def int8_kernel(isa: str = "auto") -> str:
    """The int8-activation kernel (:data:`INT8_KERNELS`) that instruction set ``isa`` runs on this CPU."""
    lib = _library()
    code = ISAS.index(resolve_isa(isa))
    return INT8_KERNELS[lib.hfb_int8_kernel(code)]


def int8_kernel_runs(rows: int, in_features: int, isa: str = "auto") -> bool:
    """Whether ``binary_linear_int8_act`` of ``rows`` activation rows runs the library's kernel on instruction set
    ``isa`` (else the reference, which is faster there or the only one that sums long rows exactly)."""
    if in_features > INT8_MAX_IN_FEATURES:
        return False
    threshold = INT8_REFERENCE_MIN_ROWS[resolve_isa(isa)]
    return threshold is None or rows < threshold


def supports(in_features: int, group_size: int) -> bool:
    """Whether the native kernel takes a weight of this shape (else the reference runs)."""
    return in_features > 0 and group_size > 0 and (num_groups(in_features, group_size) == 1 or group_size % 8 == 0)


def _native_call(isa: str, num_threads: int | None) -> tuple[ctypes.CDLL, int, int]:
    """The library, the code of instruction set ``isa`` and the thread count (default: torch's) of a native call."""
    lib = _library()
    if lib is None:
        raise RuntimeError("the native CPU kernels of hf_binarize are not available")
    threads = 1 if _forked else torch.get_num_threads() if num_threads is None else num_threads
    return lib, ISAS.index(resolve_isa(isa)), threads


def _as(tensor: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """``tensor`` contiguous in ``dtype``; skipped (no call into torch) when it already is, as it mostly is."""
    if tensor is None or (tensor.dtype == dtype and tensor.is_contiguous()):
        return tensor
    return tensor.to(dtype).contiguous()


def _as_scale(tensor: torch.Tensor | None) -> tuple[torch.Tensor | None, int]:
    if tensor is None:
        return None, 0
    if tensor.dtype not in _DTYPE_CODES:
        tensor = tensor.to(torch.float32)
    if not tensor.is_contiguous():
        tensor = tensor.contiguous()
    return tensor, _DTYPE_CODES[tensor.dtype]


def native_binary_linear(
    x: torch.Tensor,
    packed: torch.Tensor,
    scale: torch.Tensor,
    offset: torch.Tensor | None,
    bias: torch.Tensor | None,
    in_features: int,
    group_size: int,
    *,
    isa: str = "auto",
    num_threads: int | None = None,
) -> torch.Tensor:
    """``binary_linear`` on the native kernel, with an instruction set (:data:`ISAS` or ``"auto"``) and thread
    count of choice (default: torch's). Arguments are those of the op, already checked; needs
    :func:`native_available` and :func:`supports`."""
    lib, code, threads = _native_call(isa, num_threads)
    out_features = packed.shape[0]
    per_row = num_groups(in_features, group_size)
    x2d = x.reshape(-1, in_features)
    m = x2d.shape[0]
    gemm_min_rows = GEMM_MIN_ROWS[ISAS[code]]
    bf16_gemm = (x.dtype == torch.bfloat16 and offset is None and per_row == 1 and m >= BF16_GEMM_MIN_ROWS
                 and has_bf16_units())
    compute_dtype = torch.bfloat16 if bf16_gemm else torch.float32
    x2d, packed, bias = _as(x2d, compute_dtype), _as(packed, torch.uint8), _as(bias, torch.float32)
    scale, scale_code = _as_scale(scale)
    offset, offset_code = _as_scale(offset)
    offset_ptr = None if offset is None else offset.data_ptr()
    # dtype given: without it the default dtype (bfloat16, float64...) decides and the kernel writes past the end.
    y = torch.empty(m, out_features, dtype=torch.bfloat16 if bf16_gemm else torch.float32)
    _check_buffers(
        x2d=(x2d, compute_dtype, m * in_features),
        packed=(packed, torch.uint8, out_features * packed_width(in_features)),
        scale=(scale, None, out_features * per_row),
        offset=(offset, None, out_features * per_row),
        bias=(bias, torch.float32, out_features),
        y=(y, y.dtype, m * out_features),
    )
    if bf16_gemm:
        _bf16_gemm(lib, x2d, packed, scale, bias, in_features, group_size, y, code, threads)
    elif gemm_min_rows is None or m < gemm_min_rows:
        status = lib.hfb_binary_linear(
            x2d.data_ptr(), m, in_features, packed.data_ptr(), out_features, scale.data_ptr(),
            scale_code, offset_ptr, offset_code, group_size, None if bias is None else bias.data_ptr(),
            y.data_ptr(), code, threads,
        )  # fmt: skip
        _check(status)
    else:
        for start, stop, tile in _weight_tiles(lib, packed, in_features, scale.data_ptr(), scale_code, offset_ptr,
                                               offset_code, group_size, torch.float32, code, threads):
            if bias is None:
                torch.mm(x2d, tile.T, out=y[:, start:stop])
            else:
                torch.addmm(bias[start:stop], x2d, tile.T, out=y[:, start:stop])
    if y.dtype != x.dtype:
        y = y.to(x.dtype)
    return y.view(*x.shape[:-1], out_features) if x.dim() != 2 else y


def native_binary_linear_int8_act(
    x: torch.Tensor,
    packed: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor | None,
    in_features: int,
    *,
    isa: str = "auto",
    num_threads: int | None = None,
) -> torch.Tensor:
    """``binary_linear_int8_act`` on the native kernel, with an instruction set (:data:`ISAS` or ``"auto"``) and
    thread count of choice (default: torch's). Arguments are those of the op, already checked; needs
    :func:`native_available` and ``in_features <=`` :data:`INT8_MAX_IN_FEATURES` (the op also asks
    :func:`int8_kernel_runs`)."""
    lib, code, threads = _native_call(isa, num_threads)
    out_features = packed.shape[0]
    # bfloat16 goes in and comes out as it is (the library widens and rounds in cache); float16 goes through float32.
    io_dtype = torch.bfloat16 if x.dtype == torch.bfloat16 else torch.float32
    x2d = _as(x.reshape(-1, in_features), io_dtype)
    m = x2d.shape[0]
    packed, bias = _as(packed, torch.uint8), _as(bias, torch.float32)
    scale, scale_code = _as_scale(scale)
    y = torch.empty(m, out_features, dtype=io_dtype)
    _check_buffers(
        x2d=(x2d, io_dtype, m * in_features),
        packed=(packed, torch.uint8, out_features * packed_width(in_features)),
        scale=(scale, None, out_features),
        bias=(bias, torch.float32, out_features),
        y=(y, io_dtype, m * out_features),
    )
    _check(lib.hfb_binary_linear_int8(
        x2d.data_ptr(), _DTYPE_CODES[io_dtype], m, in_features, packed.data_ptr(), out_features, scale.data_ptr(),
        scale_code, None if bias is None else bias.data_ptr(), y.data_ptr(), code, threads,
    ))  # fmt: skip
    if y.dtype != x.dtype:
        y = y.to(x.dtype)
    return y.view(*x.shape[:-1], out_features) if x.dim() != 2 else y


def _bf16_gemm(lib, x2d, packed, scale, bias, in_features, group_size, y, code, threads) -> None:
    """``y = (x2d @ signs.T) * scale + bias`` with torch's bfloat16 GEMM on tiles of the signs (one scale per row,
    no offset; ``x2d`` and ``y`` bfloat16). Scales and bias are applied in float32 to each tile's product while it
    is in cache: one pass over a float32 copy of the whole output cost 10-30% of the GEMM at M=1024."""
    out_features = packed.shape[0]
    ones = torch.ones(out_features, dtype=torch.float32)  # the signs alone: scales are applied in float32 after
    scale = scale.reshape(out_features).to(torch.float32)
    for start, stop, tile in _weight_tiles(lib, packed, in_features, ones.data_ptr(), _DTYPE_CODES[torch.float32],
                                           None, 0, group_size, torch.bfloat16, code, threads):
        product = torch.mm(x2d, tile.T)
        # bfloat16 times float32 computes in float32; the result is rounded once, into y.
        if bias is None:
            torch.mul(product, scale[start:stop], out=y[:, start:stop])
        else:
            torch.addcmul(bias[start:stop], product, scale[start:stop], out=y[:, start:stop])


def _weight_tiles(lib, packed, in_features, scale_ptr, scale_code, offset_ptr, offset_code, group_size, dtype, code,
                  threads) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``(start, stop, tile)`` for each block of output rows: the dense weight rows ``[start, stop)`` dequantized by
    the library into ``dtype``, in one tile reused from block to block (sized to stay in cache while torch's GEMM
    reads it)."""
    out_features = packed.shape[0]
    step = max(_GEMM_TILE_MIN_ROWS, _GEMM_TILE_ELEMENTS // in_features)
    tile = torch.empty(min(step, out_features), in_features, dtype=dtype)
    _check_buffers(tile=(tile, dtype, min(step, out_features) * in_features))
    for start in range(0, out_features, step):
        stop = min(start + step, out_features)
        _check(lib.hfb_dequantize(
            packed.data_ptr(), out_features, in_features, scale_ptr, scale_code, offset_ptr, offset_code,
            group_size, start, stop, tile.data_ptr(), _DTYPE_CODES[dtype], code, threads,
        ))  # fmt: skip
        yield start, stop, tile[: stop - start]


def _check_buffers(**buffers: tuple[torch.Tensor | None, torch.dtype | None, int]) -> None:
    """Every tensor handed to the library as ``name=(tensor, dtype, elements)``: the C code trusts pointers, so a
    buffer of another dtype, device, layout or size would be read or written out of bounds. ``None`` dtype: a
    scale dtype (float32, float16, bfloat16); a ``None`` tensor is an absent optional one."""
    for name, (tensor, dtype, elements) in buffers.items():
        if tensor is None:
            continue
        dtypes = tuple(_DTYPE_CODES) if dtype is None else (dtype,)
        if (tensor.dtype not in dtypes or tensor.device.type != "cpu" or not tensor.is_contiguous()
                or tensor.numel() != elements):
            raise RuntimeError(
                f"hf_binarize native kernel: {name} is {tensor.dtype} on {tensor.device} with {tensor.numel()} elements"
                f" (contiguous: {tensor.is_contiguous()}), expected contiguous {list(dtypes)} on cpu with {elements};"
                " this is a bug in hf_binarize, please report it"
            )


def _check(status: int) -> None:
    if status:
        raise RuntimeError(f"hf_binarize native kernel failed: {_ERRORS.get(status, status)}")
