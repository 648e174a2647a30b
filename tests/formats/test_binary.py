"""Tests of the ``sign-lsb-v1`` packed format (hf_binarize.formats.binary).

Every expectation comes from an independent reference written here: a per-element Python bit loop for the packed
bytes (bit ``j`` of byte ``b`` = sign of input ``8 * b + j``, LSB first, 1 = +1) and float64 loops for the scales
and offsets. Nothing is checked against hf_binarize itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hf_binarize.formats import BinaryFormat
from hf_binarize.formats.binary import (
    PACKING_FORMAT,
    binarize,
    dequantize,
    expand_groups,
    num_groups,
    pack_signs,
    packed_width,
    unpack_signs,
)

SCALE_DTYPES = [torch.float32, torch.bfloat16, torch.float16]
# Half the distance between neighbouring floats, relative: the worst rounding error of one conversion.
HALF_ULP = {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}


# --------------------------------------------------------------------------------------------------------------------
# Independent references
# --------------------------------------------------------------------------------------------------------------------


def ref_pack(positive: np.ndarray) -> np.ndarray:
    """Pack a bool [N, K] array element by element: bit k % 8 of byte k // 8, LSB first, 1 = +1."""
    rows, cols = positive.shape
    out = np.zeros((rows, (cols + 7) // 8), dtype=np.uint8)
    for n in range(rows):
        for k in range(cols):
            if positive[n, k]:
                out[n, k // 8] |= 1 << (k % 8)
    return out


def ref_unpack(packed: np.ndarray, cols: int) -> np.ndarray:
    """Unpack uint8 [N, ceil(K / 8)] into float64 +1/-1 [N, K], element by element."""
    rows = packed.shape[0]
    out = np.empty((rows, cols), dtype=np.float64)
    for n in range(rows):
        for k in range(cols):
            out[n, k] = 1.0 if (int(packed[n, k // 8]) >> (k % 8)) & 1 else -1.0
    return out


def ref_groups(cols: int, group_size: int | None) -> list[range]:
    size = cols if group_size is None else group_size
    return [range(start, min(start + size, cols)) for start in range(0, cols, size)]


def ref_binarize(w: np.ndarray, group_size: int | None, centred: bool):
    """Float64 loops: per group, offset = mean(W) (centred) and scale = mean |W - offset|."""
    w = w.astype(np.float64)
    rows, cols = w.shape
    groups = ref_groups(cols, group_size)
    scale = np.zeros((rows, len(groups)))
    offset = np.zeros((rows, len(groups)))
    for n in range(rows):
        for g, cols_g in enumerate(groups):
            values = [float(w[n, k]) for k in cols_g]
            centre = math.fsum(values) / len(values) if centred else 0.0
            offset[n, g] = centre
            scale[n, g] = math.fsum(abs(v - centre) for v in values) / len(values)
    return scale, offset


def ref_dense(packed: np.ndarray, scale: np.ndarray, offset: np.ndarray | None, cols: int, group_size: int) -> np.ndarray:
    signs = ref_unpack(packed, cols)
    dense = np.empty_like(signs)
    for k in range(cols):
        g = k // group_size
        dense[:, k] = (0.0 if offset is None else offset[:, g]) + scale[:, g] * signs[:, k]
    return dense


def f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).cpu().numpy()


def assert_rounded_from(
    stored: torch.Tensor, exact: np.ndarray, dtype: torch.dtype, slack: float = 1e-6, magnitude=None
) -> None:
    """``stored`` is ``exact`` rounded once to ``dtype``, after float32 arithmetic whose error is at most
    ``slack * magnitude`` (``magnitude`` defaults to ``|exact|``)."""
    assert stored.dtype == dtype
    magnitude = np.abs(exact) if magnitude is None else magnitude
    err = np.abs(f64(stored) - exact)
    bound = HALF_ULP[dtype] * np.abs(exact) + 2 * slack * magnitude + 1e-30
    assert (err <= bound).all(), f"max error / bound {np.max(err / bound):.3g}"


# --------------------------------------------------------------------------------------------------------------------
# The documented worked example
# --------------------------------------------------------------------------------------------------------------------

EXAMPLE_ROW = [0.5, -1.0, 2.0, 0.0, -0.1, 0.3, -0.2, 0.9, 1.1]


def test_format_name():
    assert PACKING_FORMAT == "sign-lsb-v1"


def test_worked_example_from_docstring():
    result = binarize(torch.tensor([EXAMPLE_ROW]), scale_dtype=torch.float32)
    assert result.packed.dtype == torch.uint8
    assert result.packed.tolist() == [[173, 1]]
    assert 0b10101101 == 173
    assert result.scale.shape == (1, 1)
    assert result.scale.item() == pytest.approx(6.1 / 9, rel=1e-6)
    assert result.offset is None


def test_worked_example_unpacks_to_documented_signs_and_dense_row():
    packed = torch.tensor([[173, 1]], dtype=torch.uint8)
    signs = [1, -1, 1, 1, -1, 1, -1, 1, 1]
    assert unpack_signs(packed, 9).tolist() == [signs]
    dense = dequantize(packed, torch.tensor([[6.1 / 9]]), None, 9, 9)
    np.testing.assert_allclose(f64(dense), [[s * 6.1 / 9 for s in signs]], rtol=1e-6)


def test_worked_example_default_float16_scale():
    result = binarize(torch.tensor([EXAMPLE_ROW]))
    assert result.scale.dtype == torch.float16
    assert result.packed.tolist() == [[173, 1]]
    assert_rounded_from(result.scale, np.array([[6.1 / 9]]), torch.float16)


# --------------------------------------------------------------------------------------------------------------------
# pack_signs / unpack_signs against the bit loop
# --------------------------------------------------------------------------------------------------------------------

bool_matrices = hnp.arrays(
    dtype=np.bool_, shape=st.tuples(st.integers(0, 6), st.integers(0, 41)), elements=st.booleans()
)


@settings(max_examples=150, deadline=None)
@given(bool_matrices)
def test_pack_signs_matches_bit_loop(positive):
    packed = pack_signs(torch.from_numpy(positive))
    assert packed.dtype == torch.uint8
    assert packed.shape == (positive.shape[0], (positive.shape[1] + 7) // 8)
    np.testing.assert_array_equal(packed.numpy(), ref_pack(positive))


@settings(max_examples=150, deadline=None)
@given(bool_matrices)
def test_pack_then_unpack_round_trips(positive):
    cols = positive.shape[1]
    signs = unpack_signs(pack_signs(torch.from_numpy(positive)), cols)
    assert signs.shape == positive.shape
    np.testing.assert_array_equal(signs.numpy(), np.where(positive, 1.0, -1.0))


@st.composite
def packed_rows(draw):
    """Random canonical packed bytes (padding bits zero) and the K they stand for."""
    rows = draw(st.integers(1, 5))
    cols = draw(st.integers(1, 41))
    raw = draw(hnp.arrays(np.uint8, (rows, (cols + 7) // 8)))
    if cols % 8:
        raw[:, -1] &= (1 << (cols % 8)) - 1
    return raw, cols


@settings(max_examples=150, deadline=None)
@given(packed_rows(), st.sampled_from(SCALE_DTYPES))
def test_unpack_matches_bit_loop_and_repacks(case, dtype):
    raw, cols = case
    signs = unpack_signs(torch.from_numpy(raw), cols, dtype)
    assert signs.dtype == dtype
    np.testing.assert_array_equal(f64(signs), ref_unpack(raw, cols))
    np.testing.assert_array_equal(pack_signs(signs > 0).numpy(), raw)


@pytest.mark.parametrize("cols", [1, 3, 7, 8, 9, 15, 16, 17, 63, 65])
def test_padding_bits_are_zero(cols):
    # All weights positive: every real bit is 1, so any nonzero bit past K is padding written by mistake.
    result = binarize(torch.rand(4, cols) + 0.1)
    last = result.packed[:, -1].to(torch.int32)
    used = cols - 8 * (packed_width(cols) - 1)
    assert (last == (1 << used) - 1).all()
    assert (result.packed[:, :-1] == 255).all()
    # Bit-pattern check with negative weights too.
    neg = binarize(-torch.rand(4, cols) - 0.1)
    assert (neg.packed == 0).all()


def test_bit_position_of_each_single_input():
    # One positive input per row at position k: exactly bit k % 8 of byte k // 8 is set.
    cols = 20
    w = -torch.ones(cols, cols)
    w.fill_diagonal_(1.0)
    packed = binarize(w).packed.numpy()
    for k in range(cols):
        expected = np.zeros(3, dtype=np.uint8)
        expected[k // 8] = 1 << (k % 8)
        np.testing.assert_array_equal(packed[k], expected)


def test_helpers_widths_and_groups():
    for cols in range(1, 70):
        assert packed_width(cols) == math.ceil(cols / 8)
        for group_size in (8, 16, 24, 64):
            assert num_groups(cols, group_size) == math.ceil(cols / group_size)
    per_group = torch.tensor([[1.0, 2.0, 3.0]])
    assert expand_groups(per_group, 19, 8).tolist() == [[1.0] * 8 + [2.0] * 8 + [3.0] * 3]


def test_pack_unpack_errors():
    with pytest.raises(ValueError, match="2-D bool"):
        pack_signs(torch.ones(2, 3))
    with pytest.raises(ValueError, match="2-D bool"):
        pack_signs(torch.ones(8, dtype=torch.bool))
    with pytest.raises(ValueError, match="uint8"):
        unpack_signs(torch.zeros(2, 1, dtype=torch.int8), 8)
    with pytest.raises(ValueError, match="bytes per row"):
        unpack_signs(torch.zeros(2, 1, dtype=torch.uint8), 9)


# --------------------------------------------------------------------------------------------------------------------
# binarize: signs, scales and offsets against float64 loops
# --------------------------------------------------------------------------------------------------------------------

SHAPES = [(1, 1), (3, 5), (2, 7), (4, 8), (3, 9), (5, 24), (2, 37), (6, 64), (3, 130)]
GROUPINGS = [(None, False), (8, False), (16, False), (24, False), (None, True), (8, True), (16, True)]


def _weights(shape, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen) * 0.7 + 0.2


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("group_size", "centred"), GROUPINGS)
def test_binarize_matches_float64_reference(shape, group_size, centred):
    w = _weights(shape, seed=shape[0] * 1000 + shape[1])
    result = binarize(w, group_size, centred, torch.float32)
    rows, cols = shape
    expected_groups = len(ref_groups(cols, group_size))
    assert result.packed.shape == (rows, (cols + 7) // 8)
    assert result.scale.shape == (rows, expected_groups)
    w64 = f64(w)
    scale_ref, offset_ref = ref_binarize(w64, group_size, centred)
    if centred:
        assert result.offset is not None and result.offset.shape == (rows, expected_groups)
        assert_rounded_from(
            result.offset, offset_ref, torch.float32, slack=1e-5, magnitude=ref_binarize(w64, group_size, False)[0]
        )
        # Signs are taken around the stored offset: W >= offset -> +1, exactly.
        centre = f64(result.offset)
        gs = cols if group_size is None else group_size
        positive = np.stack([w64[:, k] >= centre[:, k // gs] for k in range(cols)], axis=1)
        # The scale is mean |W - stored offset| (the least-squares alpha for those signs).
        scale_ref, _ = ref_binarize_around(w64, group_size, centre)
    else:
        assert result.offset is None
        positive = w64 >= 0
    np.testing.assert_array_equal(result.packed.numpy(), ref_pack(positive))
    assert_rounded_from(result.scale, scale_ref, torch.float32, slack=1e-5)


def ref_binarize_around(w: np.ndarray, group_size: int | None, centre: np.ndarray):
    rows, cols = w.shape
    groups = ref_groups(cols, group_size)
    scale = np.zeros((rows, len(groups)))
    for n in range(rows):
        for g, cols_g in enumerate(groups):
            scale[n, g] = math.fsum(abs(float(w[n, k]) - centre[n, g]) for k in cols_g) / len(cols_g)
    return scale, centre


@pytest.mark.parametrize("scale_dtype", SCALE_DTYPES)
@pytest.mark.parametrize(("group_size", "centred"), [(None, False), (8, False), (None, True), (16, True)])
def test_binarize_scale_dtypes(scale_dtype, group_size, centred):
    w = _weights((5, 37), seed=7)
    result = binarize(w, group_size, centred, scale_dtype)
    assert result.scale.dtype == scale_dtype
    w64 = f64(w)
    if centred:
        assert result.offset.dtype == scale_dtype
        _, offset_ref = ref_binarize(w64, group_size, True)
        assert_rounded_from(
            result.offset, offset_ref, scale_dtype, slack=1e-5, magnitude=ref_binarize(w64, group_size, False)[0]
        )
        scale_ref, _ = ref_binarize_around(w64, group_size, f64(result.offset))
    else:
        scale_ref, _ = ref_binarize(w64, group_size, False)
    assert_rounded_from(result.scale, scale_ref, scale_dtype, slack=1e-5)


@pytest.mark.parametrize("weight_dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_binarize_accepts_any_float_weight_dtype(weight_dtype):
    w = _weights((3, 20), seed=3).to(weight_dtype)
    result = binarize(w, scale_dtype=torch.float32)
    w64 = f64(w)
    np.testing.assert_array_equal(result.packed.numpy(), ref_pack(w64 >= 0))
    assert_rounded_from(result.scale, ref_binarize(w64, None, False)[0], torch.float32, slack=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 40),
    st.sampled_from([None, 8, 16, 24]),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_binarize_property(rows, cols, group_size, centred, seed):
    w = _weights((rows, cols), seed)
    result = binarize(w, group_size, centred, torch.float32)
    w64 = f64(w)
    gs = cols if group_size is None else group_size
    centre = f64(result.offset) if centred else np.zeros((rows, len(ref_groups(cols, group_size))))
    positive = np.stack([w64[:, k] >= centre[:, k // gs] for k in range(cols)], axis=1)
    np.testing.assert_array_equal(result.packed.numpy(), ref_pack(positive))
    scale_ref, _ = ref_binarize_around(w64, group_size, centre)
    assert_rounded_from(result.scale, scale_ref, torch.float32, slack=1e-5)
    # And the public dequantize gives offset + scale * sign, computed here independently.
    dense = dequantize(result.packed, result.scale, result.offset, cols, gs)
    expected = ref_dense(result.packed.numpy(), f64(result.scale), centre if centred else None, cols, gs)
    np.testing.assert_allclose(f64(dense), expected, rtol=1e-6, atol=1e-7)


def test_partial_last_group_uses_only_its_own_inputs():
    # K = 19, group_size 8: groups [0, 8), [8, 16), [16, 19); the last mean divides by 3, not 8.
    w = torch.tensor([[1.0] * 8 + [-2.0] * 8 + [3.0, -6.0, 9.0]])
    result = binarize(w, group_size=8, scale_dtype=torch.float32)
    assert result.scale.tolist() == [[1.0, 2.0, 6.0]]
    centred = binarize(w, group_size=8, centred=True, scale_dtype=torch.float32)
    assert centred.offset.tolist() == [[1.0, -2.0, 2.0]]
    # Deviations from 2: [1, -8, 7] -> mean |.| = 16 / 3.
    assert centred.scale[0, :2].tolist() == [0.0, 0.0]
    assert centred.scale[0, 2].item() == pytest.approx(16 / 3, rel=1e-6)
    assert centred.packed.tolist() == [[255, 255, 0b101]]


def test_group_size_equal_to_k_is_per_channel():
    w = _weights((4, 13), seed=11)
    a = binarize(w, None)
    b = binarize(w, 13)
    assert torch.equal(a.packed, b.packed) and torch.equal(a.scale, b.scale)
    assert a.scale.shape == (4, 1)


@pytest.mark.parametrize("scale_dtype", SCALE_DTYPES)
def test_scale_is_least_squares_optimal(scale_dtype):
    # For fixed signs s, ||W - a s||^2 is minimised at a = mean |W|: compare against a grid of nearby a.
    w = _weights((6, 45), seed=5)
    result = binarize(w, group_size=16, scale_dtype=torch.float32)
    w64 = f64(w)
    signs = ref_unpack(result.packed.numpy(), 45)
    for n in range(6):
        for g, cols_g in enumerate(ref_groups(45, 16)):
            wg = w64[n, list(cols_g)]
            sg = signs[n, list(cols_g)]
            np.testing.assert_array_equal(sg, np.where(wg >= 0, 1.0, -1.0))
            alpha = float(result.scale[n, g])

            def loss(a, wg=wg, sg=sg):
                return float(np.sum((wg - a * sg) ** 2))

            grid = alpha * (1.0 + np.linspace(-0.25, 0.25, 51))
            losses = np.array([loss(a) for a in grid])
            assert int(np.argmin(losses)) == 25
            assert loss(alpha) <= losses.min() + 1e-12
            # Closed form: d/da loss = 0 at a = mean |W|.
            assert alpha == pytest.approx(np.mean(np.abs(wg)), rel=1e-6)


def test_centred_scale_is_least_squares_optimal_around_offset():
    w = _weights((4, 32), seed=9) + 1.5
    result = binarize(w, group_size=8, centred=True, scale_dtype=torch.float32)
    w64 = f64(w)
    signs = ref_unpack(result.packed.numpy(), 32)
    offset = f64(result.offset)
    for n in range(4):
        for g in range(4):
            wg, sg = w64[n, 8 * g : 8 * g + 8], signs[n, 8 * g : 8 * g + 8]
            alpha = float(result.scale[n, g])
            losses = [np.sum((wg - offset[n, g] - a * sg) ** 2) for a in alpha * (1 + np.linspace(-0.2, 0.2, 41))]
            assert int(np.argmin(losses)) == 20


def test_exact_zeros_map_to_plus_one():
    w = torch.tensor([[0.0, -0.0, -1.0, 0.0, 2.0, -0.0, 0.0, -3.0, 0.0, -0.0]])
    result = binarize(w, scale_dtype=torch.float32)
    assert unpack_signs(result.packed, 10).tolist() == [[1, 1, -1, 1, 1, 1, 1, -1, 1, 1]]
    np.testing.assert_array_equal(result.packed.numpy(), ref_pack(np.array([[1, 1, 0, 1, 1, 1, 1, 0, 1, 1]], bool)))


def test_all_zero_and_constant_rows():
    w = torch.zeros(3, 11)
    w[1] = 0.25  # constant row: centred deviation is exactly 0 everywhere
    plain = binarize(w, scale_dtype=torch.float32)
    assert (unpack_signs(plain.packed, 11) == 1).all()
    assert plain.scale.tolist() == [[0.0], [0.25], [0.0]]
    centred = binarize(w, centred=True, scale_dtype=torch.float32)
    assert (unpack_signs(centred.packed, 11) == 1).all()
    assert centred.scale.tolist() == [[0.0], [0.0], [0.0]]
    assert centred.offset.tolist() == [[0.0], [0.25], [0.0]]
    assert torch.isfinite(dequantize(centred.packed, centred.scale, centred.offset, 11, 11)).all()


# --------------------------------------------------------------------------------------------------------------------
# binarize errors
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("group_size", [0, -8, 4, 12, 20, 7])
def test_group_size_must_be_positive_multiple_of_8(group_size):
    with pytest.raises(ValueError, match="positive multiple of 8"):
        binarize(torch.randn(4, 32), group_size)


@pytest.mark.parametrize("shape", [(8,), (2, 3, 8), ()])
def test_weight_must_be_2d(shape):
    with pytest.raises(ValueError, match="2-D"):
        binarize(torch.randn(shape))


def test_weight_must_be_float():
    with pytest.raises(ValueError, match="floating point"):
        binarize(torch.ones(2, 8, dtype=torch.int32))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_raise(bad):
    w = torch.randn(3, 16)
    w[1, 5] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        binarize(w)


@pytest.mark.parametrize("centred", [False, True])
def test_scale_overflowing_float16_raises(centred):
    w = torch.randn(4, 16).sign() * 1e6
    w[:, 0] = 1e6  # keep the mean large when centred
    with pytest.raises(ValueError, match="scale_dtype") as info:
        binarize(w, centred=centred, scale_dtype=torch.float16)
    assert "float16" in str(info.value)
    # The same weight fits float32 and bfloat16 scales.
    for dtype in (torch.float32, torch.bfloat16):
        result = binarize(w, centred=centred, scale_dtype=dtype)
        assert torch.isfinite(result.scale).all()


def test_a_near_zero_offset_fits_float16():
    """A group whose mean is ~1e-7 (subnormal in float16, so relatively far off) is fine: the offset only has to be
    exact relative to the weights it is subtracted from, and the dense weight stays within float16 rounding."""
    w = torch.tensor([[0.02, -0.02, 0.03, -0.03 + 8e-7] * 4, [0.5, -0.25, 0.25, -0.5] * 4])
    result = binarize(w, centred=True, scale_dtype=torch.float16)
    assert result.offset.dtype == torch.float16
    dense = dequantize(result.packed, result.scale, result.offset, 16, 16).double()
    w64 = w.double()
    offset = w64.mean(1, keepdim=True)
    expected = offset + (w64 - offset).abs().mean(1, keepdim=True) * torch.where(w64 >= offset, 1.0, -1.0)
    torch.testing.assert_close(dense, expected, rtol=2**-10, atol=1e-6)


def test_offset_overflow_is_reported():
    w = torch.full((2, 8), 1e6)
    with pytest.raises(ValueError, match="offset") as info:
        binarize(w, centred=True, scale_dtype=torch.float16)
    assert "scale_dtype" in str(info.value)


# --------------------------------------------------------------------------------------------------------------------
# BinaryFormat: tensor layout and bit budget
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("group_size", "centred"), [(None, False), (8, False), (16, True)])
@pytest.mark.parametrize("scale_dtype", SCALE_DTYPES)
def test_binary_format_spec_and_bits(group_size, centred, scale_dtype):
    fmt = BinaryFormat(group_size, centred, scale_dtype)
    out_features, in_features = 5, 37
    groups = math.ceil(in_features / (group_size or in_features))
    expected = {"": ((5, 5), torch.uint8), "_scale": ((5, groups), scale_dtype)}
    if centred:
        expected["_offset"] = ((5, groups), scale_dtype)
    assert fmt.spec(out_features, in_features) == expected
    tensors = fmt.quantize(_weights((out_features, in_features), seed=1))
    assert {k: (tuple(v.shape), v.dtype) for k, v in tensors.items()} == expected
    scale_bits = {torch.float32: 32, torch.bfloat16: 16, torch.float16: 16}[scale_dtype]
    per_group = scale_bits * (2 if centred else 1)
    assert fmt.bits_per_weight(in_features) == pytest.approx(1 + per_group / (group_size or in_features))


@pytest.mark.parametrize("cols", [0, 5, 17])
def test_pack_and_unpack_zero_rows(cols):
    packed = pack_signs(torch.zeros(0, cols, dtype=torch.bool))
    assert packed.dtype == torch.uint8 and packed.shape == (0, (cols + 7) // 8)
    signs = unpack_signs(torch.zeros(0, (cols + 7) // 8, dtype=torch.uint8), cols)
    assert signs.shape == (0, cols)


def test_a_learned_scale_near_zero_is_stored_relative_to_the_weights():
    # QAT can drive a channel's learned scale to about zero, even below it (seen in a 2-process QAT run: -2.89e-6).
    # Stored in float16 it is subnormal, but its rounding error is tiny next to the weights it scales.
    weight = torch.full((3, 16), 0.1).mul(torch.tensor([1.0, -1.0]).repeat(8))
    learned = torch.tensor([[0.1], [-2.89e-6], [3e-7]])
    tensors = BinaryFormat().quantize(weight, learned)
    stored = tensors["_scale"].to(torch.float32)
    assert tensors["_scale"].dtype == torch.float16
    assert torch.allclose(stored, learned, rtol=0, atol=2.0**-8 * 0.1)
    dense = BinaryFormat().dequantize(tensors, 16, torch.float64)
    signs = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(8)
    assert torch.equal(dense, stored.double() * signs)
    # Overflow is still refused.
    with pytest.raises(ValueError, match="learned scale"):
        BinaryFormat().quantize(weight, torch.tensor([[0.1], [1e6], [0.1]]))
