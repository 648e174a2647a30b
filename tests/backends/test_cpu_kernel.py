"""The native CPU kernels of ``binary_linear`` (csrc/, loaded by ``hf_binarize.backends.cpu``).

Every instruction set this machine runs (and always the portable C path) is checked against a dense float64
``x @ (offset + scale * sign).T + bias`` whose signs are unpacked here bit by bit, never by hf_binarize. Packed
bytes are random, pad bits included, so the kernels must also ignore whatever the pad bits hold.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import hf_binarize  # noqa: F401  (registers the ops)
from hf_binarize.backends import cpu, current_backend, use_backend

pytestmark = pytest.mark.skipif(not cpu.native_available(), reason="the native CPU library is not built")

ISAS = cpu.available_isas()
# Unit roundoff of the output dtype.
EPS = {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}
SCALE_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def reference(x, packed, scale, offset, bias, in_features, group_size):
    """Float64 ``x @ W_hat.T + bias``, and the bound that float32 rounding errors scale with.

    The kernels sum ``scale * sum(+-x) + offset * sum(x)`` per group, so the bound is ``|x| @ (|scale| +
    |offset|).T + |bias|``, not ``|x| @ |W_hat|.T``: where ``offset`` and ``scale`` nearly cancel, so do the terms.
    """
    k = torch.arange(in_features)
    bits = (packed[:, k // 8].long() >> (k % 8)) & 1
    groups = k // group_size
    weight = scale.double()[:, groups] * (2.0 * bits - 1.0)
    magnitude = scale.double().abs()[:, groups]
    if offset is not None:
        weight = weight + offset.double()[:, groups]
        magnitude = magnitude + offset.double().abs()[:, groups]
    x64 = x.double().reshape(-1, in_features)
    out, bound = x64 @ weight.T, x64.abs() @ magnitude.T
    if bias is not None:
        out, bound = out + bias.double(), bound + bias.double().abs()
    shape = (*x.shape[:-1], packed.shape[0])
    return out.reshape(shape), bound.reshape(shape)


def make_case(m, n, k, group_size=None, centred=False, bias=True, dtype=torch.float32, scale_dtype=torch.float16,
              seed=0):
    gen = torch.Generator().manual_seed(seed)
    group_size = k if group_size is None else group_size
    groups = -(-k // group_size)
    packed = torch.randint(0, 256, (n, -(-k // 8)), dtype=torch.uint8, generator=gen)
    scale = (torch.rand(n, groups, generator=gen) + 0.05).to(scale_dtype)
    offset = (torch.randn(n, groups, generator=gen) * 0.1).to(scale_dtype) if centred else None
    b = torch.randn(n, generator=gen).to(dtype) if bias else None
    x = torch.randn(m, k, generator=gen).to(dtype)
    return x, packed, scale, offset, b, k, group_size


def assert_close(y, x, packed, scale, offset, bias, in_features, group_size, rounded_product=False):
    """``rounded_product``: the product ``x @ W_hat.T`` may also be rounded to the output dtype before the bias is
    added (as torch's bfloat16 GEMM, and the reference, do)."""
    assert y.dtype == x.dtype and y.shape == (*x.shape[:-1], packed.shape[0])
    expected, bound = reference(x, packed, scale, offset, bias, in_features, group_size)
    # float32 accumulation over K terms, then one rounding to the output dtype.
    tolerance = 64 * EPS[torch.float32] * bound + 2 * EPS[x.dtype] * expected.abs() + 1e-30
    if rounded_product:
        product = expected if bias is None else expected - bias.double()
        tolerance = tolerance + EPS[x.dtype] * product.abs()
    error = (y.double() - expected).abs()
    assert (error <= tolerance).all(), f"max error {error.max().item():.3g}, tolerance there {tolerance.flatten()[error.argmax()]:.3g}"


def group_sizes(k):
    """One group per channel, and where K allows several groups: 8 (groups end inside 32-bit words) and 32."""
    return [None] + [gs for gs in (8, 32) if gs < k]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("k", [1, 7, 9, 64, 65, 130, 1000])
def test_matches_dense_reference(isa, k):
    # Every shape with every group size; dtypes, centring and bias rotate over the shapes.
    for n in (1, 3, 17, 64):
        for m in (1, 2, 7, 64, 300):
            for i, gs in enumerate(group_sizes(k)):
                turn = n + m + i
                case = make_case(m, n, k, gs, centred=turn % 2 == 0, bias=turn % 4 < 2,
                                 dtype=(torch.float32, torch.bfloat16)[turn // 2 % 2], scale_dtype=SCALE_DTYPES[turn % 3])
                assert_close(cpu.native_binary_linear(*case, isa=isa), *case)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("m", [5, 600])  # the lookup kernel and (from cpu.GEMM_MIN_ROWS rows) the GEMM path
def test_dtypes_3d_and_strided_inputs(isa, dtype, m):
    x, packed, scale, offset, bias, k, gs = make_case(m, 40, 96, 32, centred=True, dtype=dtype, scale_dtype=torch.bfloat16)
    assert_close(cpu.native_binary_linear(x.reshape(m, 1, k), packed, scale, offset, bias, k, gs, isa=isa),
                 x.reshape(m, 1, k), packed, scale, offset, bias, k, gs)
    strided = torch.randn(k, 2 * m).to(dtype).T[::2]  # every other row of a transposed matrix
    assert not strided.is_contiguous()
    assert_close(cpu.native_binary_linear(strided, packed, scale, offset, bias, k, gs, isa=isa),
                 strided, packed, scale, offset, bias, k, gs)
    # Float64 scales and a strided bias are converted on the way in.
    scale64, bias_strided = scale.double(), torch.randn(80)[::2].to(dtype)
    assert_close(cpu.native_binary_linear(x, packed, scale64, None, bias_strided, k, gs, isa=isa),
                 x, packed, scale64, None, bias_strided, k, gs)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("scale_dtype", SCALE_DTYPES)
@pytest.mark.parametrize("m", [cpu.BF16_GEMM_MIN_ROWS - 1, cpu.BF16_GEMM_MIN_ROWS + 37])
def test_bfloat16_gemm_path(isa, scale_dtype, m):
    # From BF16_GEMM_MIN_ROWS rows, bfloat16 inputs with one scale per row and no offset run torch's bfloat16 GEMM
    # on sign tiles where the CPU has bfloat16 units; fewer rows, or offsets, stay on the lookups.
    if not cpu.has_bf16_units():
        pytest.skip("this CPU has no bfloat16 dot-product units (AVX512-BF16): the bfloat16 GEMM path never runs")
    for k, n, bias, centred in ((1000, 300, True, False), (4100, 520, False, False), (1000, 40, True, True)):
        case = make_case(m, n, k, None, centred=centred, bias=bias, dtype=torch.bfloat16, scale_dtype=scale_dtype)
        assert_close(cpu.native_binary_linear(*case, isa=isa), *case, rounded_product=True)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(
    ("m", "n", "k", "group_size"),
    [
        (8, 520, 1030, None),  # output rows split between threads, the last block ragged
        (70, 17, 4100, 64),  # one block of output rows: activation rows split instead
        (3, 1000, 2000, 8),
        (5, 20, 41000, None),  # activation rows split 2 + 3: the threads pick different K chunks
    ],
)
def test_threads_give_identical_results(isa, m, n, k, group_size):
    case = make_case(m, n, k, group_size, centred=True)
    one = cpu.native_binary_linear(*case, isa=isa, num_threads=1)
    for threads in (2, 3, 8):
        assert torch.equal(cpu.native_binary_linear(*case, isa=isa, num_threads=threads), one)
    assert_close(one, *case)


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(1, 40),
    n=st.integers(1, 80),
    k=st.integers(1, 300),
    group_choice=st.sampled_from([None, 8, 16, 24, 64]),
    centred=st.booleans(),
    bias=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.bfloat16]),
    scale_dtype=st.sampled_from(SCALE_DTYPES),
    isa=st.sampled_from(ISAS),
    seed=st.integers(0, 2**16),
)
def test_random_shapes(m, n, k, group_choice, centred, bias, dtype, scale_dtype, isa, seed):
    group_size = None if group_choice is None or group_choice >= k else group_choice
    case = make_case(m, n, k, group_size, centred, bias, dtype, scale_dtype, seed)
    assert_close(cpu.native_binary_linear(*case, isa=isa), *case)


def test_op_runs_native_kernel_unless_backend_is_torch(monkeypatch):
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        return native_binary_linear(*args, **kwargs)

    native_binary_linear = cpu.native_binary_linear
    monkeypatch.setattr(cpu, "native_binary_linear", spy)
    case = make_case(9, 33, 200, 64, centred=True)
    assert torch.equal(torch.ops.hf_binarize.binary_linear(*case), native_binary_linear(*case))
    assert len(calls) == 1
    with use_backend("torch"):
        assert_close(torch.ops.hf_binarize.binary_linear(*case), *case)
    assert len(calls) == 1


def test_op_falls_back_where_kernel_does_not_apply():
    # Several groups that do not start on byte boundaries, and empty inputs, run the reference.
    case = make_case(4, 6, 30, 12)
    assert not cpu.supports(30, 12)
    assert_close(torch.ops.hf_binarize.binary_linear(*case), *case)
    x, packed, scale, offset, bias, k, gs = make_case(1, 6, 30)
    assert torch.ops.hf_binarize.binary_linear(x[:0], packed, scale, offset, bias, k, gs).shape == (0, 6)


def test_gradients_through_native_forward():
    x, packed, scale, offset, bias, k, gs = make_case(5, 12, 70, 8, centred=True)
    x.requires_grad_(True)
    bias.requires_grad_(True)
    torch.ops.hf_binarize.binary_linear(x, packed, scale, offset, bias, k, gs).square().sum().backward()
    x64 = x.detach().double().requires_grad_(True)
    bias64 = bias.detach().double().requires_grad_(True)
    reference(x64, packed, scale, offset, bias64, k, gs)[0].square().sum().backward()
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(bias.grad.double(), bias64.grad, rtol=1e-4, atol=1e-4)


def test_isa_selection():
    assert ISAS[0] == "portable" and cpu.resolve_isa() == ISAS[-1]
    with pytest.raises(ValueError, match="instruction set"), use_backend(cpu_isa="sse9"):
        pass
    case = make_case(3, 40, 100)
    with use_backend(cpu_isa="portable"):
        assert torch.equal(torch.ops.hf_binarize.binary_linear(*case), cpu.native_binary_linear(*case, isa="portable"))
    unsupported = [isa for isa in cpu.ISAS if isa not in ISAS]
    if unsupported:
        with use_backend(cpu_isa=unsupported[0]), pytest.raises(RuntimeError, match="supports only"):
            torch.ops.hf_binarize.binary_linear(*case)
    # The choice is scoped: outside the blocks the best instruction set runs again.
    assert torch.equal(torch.ops.hf_binarize.binary_linear(*case), cpu.native_binary_linear(*case))


def test_backend_choice_is_per_thread(monkeypatch):
    # A `with use_backend("torch")` block in one thread must not switch another thread to the reference.
    calls = []
    native_binary_linear = cpu.native_binary_linear
    monkeypatch.setattr(cpu, "native_binary_linear", lambda *a, **k: calls.append(1) or native_binary_linear(*a, **k))
    case = make_case(2, 8, 64)
    started, release = threading.Event(), threading.Event()

    def hold_torch_backend():
        with use_backend("torch"):
            started.set()
            release.wait(10)

    thread = threading.Thread(target=hold_torch_backend)
    thread.start()
    started.wait(10)
    try:
        assert current_backend().name == "auto"
        torch.ops.hf_binarize.binary_linear(*case)
    finally:
        release.set()
        thread.join()
    assert calls == [1]


def test_missing_library_warns_and_falls_back(monkeypatch, caplog):
    monkeypatch.setattr(cpu, "_LIBRARY_FILE", "libhfb_cpu_missing.so")
    with caplog.at_level(logging.WARNING, logger=cpu.__name__):
        assert cpu._library.__wrapped__() is None
    assert "native CPU kernels unavailable" in caplog.text
    monkeypatch.setattr(cpu, "_library", lambda: None)
    assert cpu.available_isas() == ()
    with pytest.raises(RuntimeError, match="not available"):
        cpu.resolve_isa.__wrapped__()
    case = make_case(2, 5, 20, centred=True)
    assert_close(torch.ops.hf_binarize.binary_linear(*case), *case)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_concurrent_callers_and_forked_child():
    case = make_case(16, 300, 3000, 64, centred=True)
    expected = cpu.native_binary_linear(*case, num_threads=1)
    # Python threads release the GIL inside the kernel: one gets the thread pool, the others run alone.
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: cpu.native_binary_linear(*case, num_threads=2), range(8)))
    assert all(torch.equal(result, expected) for result in results)
    # The pool's threads do not survive fork; the child must start its own.
    pid = os.fork()
    if pid == 0:
        os._exit(0 if torch.equal(cpu.native_binary_linear(*case, num_threads=2), expected) else 1)
    assert os.waitpid(pid, 0)[1] == 0


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code: str, timeout: float) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter importing this checkout: a memory error or a hang must not take pytest down."""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("default_dtype", ["bfloat16", "float16", "float64"])
def test_default_dtype_does_not_change_kernel_buffers(tmp_path, default_dtype):
    # Output buffers once took the default dtype while the C code wrote float32: heap corruption or NaN.
    # The lookups, the float32 GEMM path (where this ISA has one) and the bfloat16 GEMM path (where the CPU has one).
    m_gemm = cpu.GEMM_MIN_ROWS[cpu.resolve_isa()] or 5
    cases = {m: make_case(m, 40, 200, 64, centred=True) for m in (5, m_gemm)}
    cases["bf16"] = make_case(cpu.BF16_GEMM_MIN_ROWS, 40, 200, dtype=torch.bfloat16)
    torch.save(cases, tmp_path / "cases.pt")
    code = f"""
import torch, hf_binarize
cases = torch.load({str(tmp_path / "cases.pt")!r})
torch.set_default_dtype(torch.{default_dtype})
torch.save({{m: torch.ops.hf_binarize.binary_linear(*case) for m, case in cases.items()}}, {str(tmp_path / "y.pt")!r})
"""
    result = run_python(code, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = torch.load(tmp_path / "y.pt")
    for m, case in cases.items():
        assert_close(outputs[m], *case, rounded_product=m == "bf16")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_child_forked_before_first_packed_op_does_not_hang(tmp_path):
    # The library (and its own fork handler) loads at the first packed op; the fork comes before it here.
    case = make_case(16, 300, 3000, 64, centred=True)
    torch.save(case, tmp_path / "case.pt")
    code = f"""
import os, signal, torch, hf_binarize
torch.set_num_threads(2)
a = torch.randn(512, 512)
(a @ a).sum()  # a parallel region on torch's OpenMP threads, before the fork
case = torch.load({str(tmp_path / "case.pt")!r})
pid = os.fork()
if pid == 0:
    signal.alarm(60)  # a hung child ends itself rather than outliving the test
    torch.save(torch.ops.hf_binarize.binary_linear(*case), {str(tmp_path / "y.pt")!r})
    os._exit(0)
status = os.waitpid(pid, 0)[1]
assert status == 0, f"child ended with status {{status}} (SIGALRM: it hung)"
"""
    result = run_python(code, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_close(torch.load(tmp_path / "y.pt"), *case)


def test_buffers_of_another_dtype_or_size_raise_before_reaching_native_code():
    y = torch.empty(4, 3, dtype=torch.float32)
    cpu._check_buffers(y=(y, torch.float32, 12), offset=(None, None, 3))
    for bad in (y.double(), y[:, :2], y.T, y[:3]):
        with pytest.raises(RuntimeError, match="native kernel: y is"):
            cpu._check_buffers(y=(bad, torch.float32, 12))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("m", [5, 600])
def test_inputs_near_float32_max_within_the_documented_range(isa, m):
    # Documented range: |x| @ (|scale| + |offset|).T + |bias| below the float32 maximum. Here it reaches half of it,
    # with single inputs of about 1e36: lookup tables and float32 partial sums must not overflow.
    x, packed, scale, offset, bias, k, group_size = make_case(m, 24, 200, 64, centred=True, scale_dtype=torch.float32)
    case = (x, packed, scale, offset, bias * 1e36, k, group_size)
    _, bound = reference(*case)
    case = (x * (0.5 * torch.finfo(torch.float32).max / bound.max().item()), *case[1:])
    y = cpu.native_binary_linear(*case, isa=isa)
    assert torch.isfinite(y).all()
    assert_close(y, *case)
