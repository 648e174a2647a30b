"""The Triton kernels of ``binary_linear``: on a CUDA GPU where there is one, else on CPU tensors in the Triton
interpreter.

Triton fixes interpreter mode for its own library functions when it is first imported, so ``TRITON_INTERPRET=1``
must be set before that. Where something imported triton earlier (the shared conftest does, through
transformers), the kernel tests run in a child pytest that starts with the variable set.

The interpreter does arithmetic on bfloat16 bit patterns inside ``tl.dot`` (triton-lang/triton#11584, "not supported
yet"); the bfloat16 GEMM cases patch its ``create_dot`` to convert the operands first, as the GPU does.
"""

import os
import subprocess
import sys
from pathlib import Path

if "triton" not in sys.modules:
    os.environ.setdefault("TRITON_INTERPRET", "1")
IN_PROCESS = os.environ.get("TRITON_INTERPRET") == "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

triton = pytest.importorskip("triton", reason="triton is not installed (pip install 'hf-binarize[cuda]')")

from hf_binarize.backends import _on_cuda, use_backend  # noqa: E402
from hf_binarize.backends.triton import triton_binary_linear  # noqa: E402
from hf_binarize.formats.binary import binarize  # noqa: E402

# Without the interpreter the kernels compile for the GPU; CPU-only machines run them in the interpreter instead.
ON_GPU = not IN_PROCESS and torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"
interpreted = pytest.mark.skipif(
    not (IN_PROCESS or ON_GPU),
    reason="no CUDA GPU, and triton was imported before TRITON_INTERPRET=1; test_interpreted_in_child_process runs it",
)

# Machine epsilon of each activation dtype: bounds the rounding of the output and of W_hat.
EPS = {torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7, torch.float32: 2.0**-23}
# (name, group_size (None = one group per channel), centred)
MODES = [("channel", None, False), ("channel-centred", None, True), ("group", 16, False), ("group-centred", 16, True)]


def brute_force_weight(packed, scale, offset, in_features, group_size):
    """The dense float64 weight, bit by bit from the format's definition."""
    packed, scale = packed.tolist(), scale.double().tolist()
    offset = None if offset is None else offset.double().tolist()
    weight = [[0.0] * in_features for _ in packed]
    for n, row in enumerate(packed):
        for k in range(in_features):
            bit = (row[k // 8] >> (k % 8)) & 1
            g = k // group_size
            weight[n][k] = scale[n][g] * (1.0 if bit else -1.0) + (0.0 if offset is None else offset[n][g])
    return torch.tensor(weight, dtype=torch.float64).reshape(len(packed), in_features)


def make_case(m, n, k, group_size, centred, bias, dtype, seed=0, scale_dtype=torch.float16):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(n, k, generator=gen) + (0.3 if centred else 0.0)
    binarized = binarize(weight, group_size, centred, scale_dtype)
    x = torch.randn(m, k, generator=gen).to(dtype)
    b = torch.randn(n, generator=gen).to(dtype) if bias else None
    return x, binarized.packed, binarized.scale, binarized.offset, b, k, k if group_size is None else group_size


def on_device(*arguments):
    """The arguments with their tensors moved to :data:`DEVICE` (sizes and ``None`` as they are)."""
    return [a.to(DEVICE) if isinstance(a, torch.Tensor) else a for a in arguments]


def check(x, packed, scale, offset, bias, in_features, group_size, **launch):
    y = triton_binary_linear(*on_device(x, packed, scale, offset, bias), in_features, group_size, **launch).cpu()
    weight = brute_force_weight(packed, scale, offset, in_features, group_size)
    expected = x.double() @ weight.T
    if bias is not None:
        expected += bias.double()
    # Output rounding plus, where the GEMM dequantizes in registers, rounding of W_hat to x's dtype.
    tol = EPS[x.dtype] * (expected.abs() + x.double().abs() @ weight.abs().T) + 1e-6
    assert y.dtype == x.dtype and y.shape == expected.shape
    assert ((y.double() - expected).abs() <= tol).all(), (y.double() - expected).abs().max()


@pytest.fixture
def bf16_dot(monkeypatch):
    """Make the interpreter's ``tl.dot`` multiply bfloat16 values rather than their bit patterns (a GPU does)."""
    if not IN_PROCESS:
        return
    from triton.runtime import interpreter

    if not all(hasattr(interpreter, name) for name in ("InterpreterBuilder", "TensorHandle", "_convert_float")):
        pytest.skip("this triton's interpreter cannot be patched for bfloat16 tl.dot")
    original = interpreter.InterpreterBuilder.create_dot
    tl = triton.language

    def to_float32(handle):
        if handle.dtype.scalar != tl.bfloat16:
            return handle
        data = interpreter._convert_float(handle.data, tl.bfloat16, tl.float32, None)
        return interpreter.TensorHandle(data.view(np.float32), tl.float32)

    def create_dot(self, a, b, *args):
        return original(self, to_float32(a), to_float32(b), *args)

    monkeypatch.setattr(interpreter.InterpreterBuilder, "create_dot", create_dot)


@interpreted
@pytest.mark.parametrize("mode", MODES, ids=[mode[0] for mode in MODES])
@pytest.mark.parametrize("k", [1, 9, 64, 130])
@pytest.mark.parametrize("n", [1, 17, 64])
@pytest.mark.parametrize("m", [1, 5, 33])
def test_shapes_and_modes(m, n, k, mode):
    _, group_size, centred = mode
    # Bias on for half the modes (each of per-channel and per-group gets it once, plain and centred alike).
    bias = mode[0] in ("channel-centred", "group")
    # Centred groups of one input have scale 0, which float16 refuses to store (subnormal).
    scale_dtype = torch.float32 if centred else torch.float16
    check(*make_case(m, n, k, group_size, centred, bias, torch.float32, m * n * k, scale_dtype))


@interpreted
@pytest.mark.parametrize("kernel", ["gemv", "gemm"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=str)
@pytest.mark.parametrize(
    ("m", "n", "k", "group_size", "centred", "bias", "scale_dtype"),
    [
        (1, 17, 9, None, False, True, torch.float16),
        (5, 17, 130, 32, True, True, torch.float32),
        (3, 64, 130, 24, True, False, torch.bfloat16),
    ],
    ids=["channel", "group32-centred", "group24-centred"],
)
def test_dtypes_and_both_kernels(request, kernel, dtype, m, n, k, group_size, centred, bias, scale_dtype):
    if dtype == torch.bfloat16 and kernel == "gemm":
        request.getfixturevalue("bf16_dot")
    check(*make_case(m, n, k, group_size, centred, bias, dtype, scale_dtype=scale_dtype), kernel=kernel)


@interpreted
@pytest.mark.parametrize("kernel", ["gemv", "gemm"])
@pytest.mark.parametrize("group_size", [8, 16, 24, 32, 48, 64, 128])
def test_group_sizes(kernel, group_size):
    """Groups smaller than, equal to and straddling the GEMM's K blocks; the last group is partial."""
    check(*make_case(3, 17, 130, group_size, True, True, torch.float32), kernel=kernel)


@interpreted
@pytest.mark.parametrize(("kernel", "m", "n"), [("gemv", 20, 40), ("gemm", 70, 130)])
@pytest.mark.parametrize("group_size", [None, 32])
def test_several_tiles(kernel, m, n, group_size):
    """Several row and column tiles (GEMV: 16 rows; GEMM: 64 x 64 on CPU), the last ones partial."""
    check(*make_case(m, n, 100, group_size, True, True, torch.float16), kernel=kernel)


@interpreted
@pytest.mark.parametrize("kernel", ["gemv", "gemm"])
def test_strided_input(kernel):
    x, packed, scale, offset, bias, k, group_size = make_case(5, 17, 72, 24, False, True, torch.float32)
    strided = x.T.contiguous().T
    assert strided.stride() == (1, 5)
    check(strided, packed, scale, offset, bias, k, group_size, kernel=kernel)


@interpreted
def test_empty_batch():
    x, packed, scale, offset, bias, k, group_size = make_case(0, 17, 9, None, False, True, torch.float16)
    assert triton_binary_linear(*on_device(x, packed, scale, offset, bias), k, group_size).shape == (0, 17)


@interpreted
def test_unknown_kernel():
    with pytest.raises(ValueError, match="kernel must be one of"):
        triton_binary_linear(*on_device(*make_case(1, 1, 8, None, False, False, torch.float32)), kernel="wmma")


@interpreted
def test_cuda_implementation_follows_backend():
    """The function registered for CUDA runs the kernels, or the reference under backend "torch"; it takes any
    leading shape. Through the op on a GPU; called directly on CPU tensors in the interpreter."""
    x, packed, scale, offset, bias, k, group_size = make_case(6, 17, 40, 8, True, True, torch.float32)
    x = x.reshape(2, 3, k)
    expected = x.double() @ brute_force_weight(packed, scale, offset, k, group_size).T + bias.double()
    implementation = torch.ops.hf_binarize.binary_linear if ON_GPU else _on_cuda
    for backend in ("auto", "torch"):
        with use_backend(backend):
            y = implementation(*on_device(x, packed, scale, offset, bias), k, group_size)
        assert y.shape == (2, 3, 17) and y.device.type == DEVICE
        torch.testing.assert_close(y.double().cpu(), expected, rtol=1e-5, atol=1e-5)


def test_registered_for_cuda():
    assert torch._C._dispatch_has_kernel_for_dispatch_key("hf_binarize::binary_linear", "CUDA")


def test_import_needs_no_triton_and_no_gpu():
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch, hf_binarize, hf_binarize.backends.triton as t\n"
        "assert not t.triton_available() and not torch.cuda.is_initialized()\n"
        "x = torch.ones(2, 8)\n"
        "try:\n"
        "    t.triton_binary_linear(x, torch.zeros(1, 1, dtype=torch.uint8), torch.ones(1, 1), None, None, 8, 8)\n"
        "except RuntimeError as error:\n"
        "    assert 'need triton' in str(error)\n"
        "else:\n"
        "    raise AssertionError('ran without triton')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.skipif(IN_PROCESS, reason="the kernel tests ran in this process")
def test_interpreted_in_child_process():
    child = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "--noconftest"]
    child += ["-k", "not test_import_needs_no_triton and not test_interpreted_in_child_process", "-rs"]
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run(child, env=env, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    # A child that skipped for the same reason would pass without running a kernel.
    assert " passed" in run.stdout and "imported before" not in run.stdout, run.stdout[-6000:]
