"""Tests of int8 weights-only quantization (hf_binarize.formats.int8) against a numpy float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hf_binarize.formats import Int8Format
from hf_binarize.formats.int8 import INT8_MAX, dequantize_int8, quantize_int8

SCALE_DTYPES = [torch.float32, torch.bfloat16, torch.float16]
HALF_ULP = {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}


def f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).cpu().numpy()


def ref_scale(w: np.ndarray) -> np.ndarray:
    """scale[n] = max_k |W[n, k]| / 127, one row at a time, float64."""
    return np.array([[max(abs(float(v)) for v in row) / 127.0] for row in w])


def ref_q(w: np.ndarray, stored_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """q = clip(round(W / scale), -127, 127) against the stored scale (0 for an all-zero row), and a mask of the
    quotients within 1e-4 of a rounding tie (where float32 division may round the other way)."""
    q = np.zeros(w.shape)
    near_tie = np.zeros(w.shape, dtype=bool)
    for n in range(w.shape[0]):
        s = float(stored_scale[n, 0])
        for k in range(w.shape[1]):
            if s > 0:
                ratio = float(w[n, k]) / s
                q[n, k] = min(max(np.round(ratio), -127), 127)
                near_tie[n, k] = abs(abs(ratio - np.floor(ratio)) - 0.5) < 1e-4
    return q, near_tie


def _weights(shape, seed: int, magnitude: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen) * magnitude


def check_against_reference(w: torch.Tensor, scale_dtype: torch.dtype) -> None:
    q, scale = quantize_int8(w, scale_dtype)
    rows, cols = w.shape
    assert q.dtype == torch.int8 and q.shape == (rows, cols)
    assert scale.dtype == scale_dtype and scale.shape == (rows, 1)
    w64 = f64(w)
    exact = ref_scale(w64)
    # The stored scale is the exact scale rounded once to scale_dtype.
    err = np.abs(f64(scale) - exact)
    assert (err <= (HALF_ULP[scale_dtype] + 1e-7) * exact).all()
    stored = f64(scale)
    q_ref, near_tie = ref_q(w64, stored)
    q64 = f64(q)
    assert (np.abs(q64) <= INT8_MAX).all()
    np.testing.assert_array_equal(q64[~near_tie], q_ref[~near_tie])
    assert (np.abs(q64 - q_ref) <= 1).all()
    # Error bound of rounding to the nearest step: |W - q * scale| <= scale / 2 (the clip at 127 costs
    # at most 127 * (relative rounding of the scale) of a step, far below half a step).
    bound = stored / 2 * (1 + 1e-6) + 1e-12
    assert (np.abs(w64 - q64 * stored) <= bound).all()
    # Each nonzero row's largest |W| lands on +-127.
    for n in range(rows):
        if exact[n, 0] > 0:
            k = int(np.argmax(np.abs(w64[n])))
            assert q64[n, k] == np.sign(w64[n, k]) * 127


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (4, 8), (7, 9), (16, 130), (257, 63)])
@pytest.mark.parametrize("scale_dtype", SCALE_DTYPES)
def test_quantize_matches_reference(shape, scale_dtype):
    check_against_reference(_weights(shape, seed=shape[0] + 31 * shape[1]), scale_dtype)


@pytest.mark.parametrize("weight_dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_quantize_other_weight_dtypes(weight_dtype):
    check_against_reference(_weights((6, 33), seed=2).to(weight_dtype), torch.float32)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 50),
    st.sampled_from(SCALE_DTYPES),
    st.sampled_from([1e-2, 1.0, 30.0, 1000.0]),
    st.integers(0, 2**31 - 1),
)
def test_quantize_property(rows, cols, scale_dtype, magnitude, seed):
    w = _weights((rows, cols), seed, magnitude)
    # Keep every scale in the normal range of scale_dtype (float16 scales of rows with max |W| < 127 * 2**-14
    # become subnormal and lose relative precision; that limit is by design, not tested here).
    assume(float(w.abs().amax(1).min()) / 127 > torch.finfo(scale_dtype).tiny)
    check_against_reference(w, scale_dtype)


def test_worked_row():
    w = torch.tensor([[1.27, -0.5, 0.0, 0.006, -1.0]])
    q, scale = quantize_int8(w, torch.float32)
    assert scale.item() == pytest.approx(0.01, rel=1e-6)
    assert q.tolist() == [[127, -50, 0, 1, -100]]


def test_all_zero_rows():
    w = _weights((4, 10), seed=3)
    w[1] = 0.0
    w[3] = -0.0
    q, scale = quantize_int8(w)
    assert scale[1].item() == 0.0 and scale[3].item() == 0.0
    assert (q[1] == 0).all() and (q[3] == 0).all()
    dense = dequantize_int8(q, scale)
    assert torch.isfinite(dense).all()
    assert (dense[1] == 0).all() and (dense[3] == 0).all()
    check_against_reference(w, torch.float16)


def test_all_zero_matrix():
    q, scale = quantize_int8(torch.zeros(3, 7))
    assert (q == 0).all() and (scale == 0).all()


@pytest.mark.parametrize("dtype", SCALE_DTYPES)
def test_dequantize_is_q_times_scale(dtype):
    gen = torch.Generator().manual_seed(0)
    q = torch.randint(-127, 128, (9, 13), dtype=torch.int8, generator=gen)
    scale = torch.rand(9, 1, generator=gen).to(torch.float16)
    dense = dequantize_int8(q, scale, dtype)
    assert dense.dtype == dtype and dense.shape == (9, 13)
    expected = f64(q) * f64(scale)
    np.testing.assert_allclose(f64(dense), expected, rtol=2 * HALF_ULP[dtype], atol=0)


@pytest.mark.parametrize("shape", [(8,), (2, 3, 4), ()])
def test_weight_must_be_2d(shape):
    with pytest.raises(ValueError, match="2-D float"):
        quantize_int8(torch.randn(shape))


def test_weight_must_be_float():
    with pytest.raises(ValueError, match="2-D float"):
        quantize_int8(torch.ones(2, 3, dtype=torch.int64))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_raise(bad):
    w = torch.randn(2, 5)
    w[0, 2] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        quantize_int8(w)


def test_scale_overflowing_float16_raises():
    w = torch.full((2, 4), 1e7)  # 1e7 / 127 > 65504
    with pytest.raises(ValueError, match="scale_dtype"):
        quantize_int8(w, torch.float16)
    q, scale = quantize_int8(w, torch.float32)
    assert (q == 127).all() and torch.isfinite(scale).all()


@pytest.mark.parametrize("scale_dtype", SCALE_DTYPES)
def test_int8_format_spec_and_bits(scale_dtype):
    fmt = Int8Format(scale_dtype)
    expected = {"": ((5 * 11,), torch.int8), "_scale": ((5, 1), scale_dtype)}  # flat: no float weight has it
    assert fmt.spec(5, 11) == expected
    tensors = fmt.quantize(_weights((5, 11), seed=4))
    assert {k: (tuple(v.shape), v.dtype) for k, v in tensors.items()} == expected
    bits = {torch.float32: 32, torch.bfloat16: 16, torch.float16: 16}[scale_dtype]
    assert fmt.bits_per_weight(11) == pytest.approx(8 + bits / 11)
