"""The native CPU kernels of ``binary_linear_int8_act`` (csrc/int8_activations.c and the int8 parts of csrc/isa_*.c).

Each int8 kernel (plain C, AVX2 ``vpmaddubsw``, AVX512-VNNI ``vpdpbusd``) is forced through the instruction set that
runs it and compared bit for bit with the numpy replica of the definition (tests/int8_activations_reference.py);
a kernel this CPU cannot run is reported as skipped, with the reason. Packed bytes are random, pad bits included.
Shapes with 1 and 2 activation rows run the direct products of the kernels that have them (hfb_int8_ops.direct).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from int8_activations_reference import assert_exact, assert_within_bound, random_case

import hf_binarize  # noqa: F401  (registers the ops)
from hf_binarize.backends import cpu, use_backend

pytestmark = pytest.mark.skipif(not cpu.native_available(), reason="the native CPU library is not built")

# The instruction set that runs each int8 kernel where the CPU has it.
KERNEL_ISA = {"portable": "portable", "avx2": "avx2", "avx512-vnni": "avx512"}


def isa_running(kernel: str) -> str:
    """The instruction set to force for ``kernel``; skips, saying why, where this CPU cannot run it."""
    isa = KERNEL_ISA[kernel]
    if isa not in cpu.available_isas():
        pytest.skip(f"this CPU lacks {isa}: the {kernel} int8 kernel is not tested here")
    if cpu.int8_kernel(isa) != kernel:
        pytest.skip(f"this CPU has {isa} but not what the {kernel} int8 kernel needs (AVX512-VNNI and BW): "
                    f"{isa} runs the {cpu.int8_kernel(isa)} int8 kernel")
    return isa


@pytest.mark.parametrize("kernel", list(KERNEL_ISA))
@pytest.mark.parametrize("k", [1, 7, 9, 31, 33, 64, 65, 130, 1000])
def test_matches_the_definition_exactly(kernel, k):
    isa = isa_running(kernel)
    for n in (1, 3, 31, 33, 64):
        for m in (1, 2, 7, 8, 9, 64):
            turn = n + m
            case = random_case(m, n, k, bias=turn % 2 == 0, dtype=(torch.float32, torch.bfloat16)[turn // 2 % 2],
                             scale_dtype=(torch.float16, torch.bfloat16, torch.float32)[turn % 3], seed=turn * k)
            assert_exact(cpu.native_binary_linear_int8_act(*case, isa=isa), *case)


@pytest.mark.parametrize("kernel", list(KERNEL_ISA))
def test_many_rows_long_inputs_and_the_dense_bound(kernel):
    # 600 rows of 4100 inputs take several passes over the weights (csrc/int8_activations.c, PASS_BYTES); 70 outputs
    # end in a ragged block of 32.
    isa = isa_running(kernel)
    case = random_case(600, 70, 4100, seed=3)
    y = cpu.native_binary_linear_int8_act(*case, isa=isa)
    assert_exact(y, *case)
    assert_within_bound(y, *case)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])  # bfloat16 rows are widened and rounded natively
@pytest.mark.parametrize("kernel", list(KERNEL_ISA))
def test_rows_of_zeros_nan_inf_and_extreme_values(kernel, dtype):
    isa = isa_running(kernel)
    x, packed, scale, bias, k = random_case(8, 40, 100, dtype=dtype, seed=4)
    x[0] = 0.0
    x[1, 17] = float("nan")
    x[2, 99] = float("inf")  # in the scalar tail of the vectorised maximum
    x[3] = 1e-44  # its scale rounds to 0
    x[4] *= 1e-38  # a subnormal scale
    x[5] *= 1e37  # a scale near the float32 maximum
    x[6, ::3] = -x[6, ::3].abs().max()  # many inputs at -127
    y = cpu.native_binary_linear_int8_act(x, packed, scale, bias, k, isa=isa)
    assert_exact(y, x, packed, scale, bias, k)
    assert torch.equal(y[0], bias) and y[1].isnan().all() and y[2].isnan().all()


@pytest.mark.parametrize("kernel", list(KERNEL_ISA))
@pytest.mark.parametrize(("m", "n", "k"), [(8, 520, 1030), (70, 17, 4100), (5, 20, 41000), (300, 64, 256),
                                           (1, 520, 1030), (4, 17, 4100)])
def test_threads_give_identical_results(kernel, m, n, k):
    # Output blocks split between threads (520 rows), or activation rows where there are fewer blocks than threads;
    # 1 row, and 4 rows split in 2, run the direct products where the kernel has them (DIRECT_MAX_ROWS).
    isa = isa_running(kernel)
    case = random_case(m, n, k, seed=5)
    one = cpu.native_binary_linear_int8_act(*case, isa=isa, num_threads=1)
    for threads in (2, 3, 8):
        assert torch.equal(cpu.native_binary_linear_int8_act(*case, isa=isa, num_threads=threads), one)
    assert_exact(one, *case)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 80), k=st.integers(1, 300), bias=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.float16]),
       kernel=st.sampled_from([kernel for kernel, isa in KERNEL_ISA.items()
                               if isa in cpu.available_isas() and cpu.int8_kernel(isa) == kernel]),
       seed=st.integers(0, 2**16))
def test_random_shapes(m, n, k, bias, dtype, kernel, seed):
    case = random_case(m, n, k, bias=bias, dtype=dtype, seed=seed)
    assert_exact(cpu.native_binary_linear_int8_act(*case, isa=KERNEL_ISA[kernel]), *case)


def test_op_runs_the_chosen_kernel_and_the_reference_where_asked(monkeypatch):
    calls = []
    native = cpu.native_binary_linear_int8_act

    def spy(*args, **kwargs):
        calls.append((args[0].shape[0], kwargs["isa"]))
        return native(*args, **kwargs)

    monkeypatch.setattr(cpu, "native_binary_linear_int8_act", spy)
    case = random_case(9, 33, 200)
    few = (case[0][: cpu.INT8_REFERENCE_MIN_ROWS["portable"] - 1], *case[1:])
    op = torch.ops.hf_binarize.binary_linear_int8_act
    assert torch.equal(op(*case), native(*case))
    # The portable kernel takes a few rows; more run the reference, exact as well.
    with use_backend(cpu_isa="portable"):
        assert_exact(op(*few), *few)
        assert_exact(op(*case), *case)
    with use_backend("torch"):
        assert_exact(op(*case), *case)
    # Inputs too long for int32 sums run the reference.
    monkeypatch.setattr(cpu, "INT8_MAX_IN_FEATURES", 100)
    assert_exact(op(*case), *case)
    assert calls == [(9, "auto"), (len(few[0]), "portable")]


def test_unsupported_instruction_set_raises():
    unsupported = [isa for isa in cpu.ISAS if isa not in cpu.available_isas()]
    if not unsupported:
        pytest.skip(f"this CPU runs every instruction set ({', '.join(cpu.ISAS)})")
    with use_backend(cpu_isa=unsupported[0]), pytest.raises(RuntimeError, match="supports only"):
        torch.ops.hf_binarize.binary_linear_int8_act(*random_case(2, 3, 10))
