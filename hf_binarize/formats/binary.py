"""The packed 1-bit weight format: where signs are packed, unpacked and scaled.

Format ``sign-lsb-v1`` (written into saved configs as ``packing_format``) stores a weight ``W`` of shape
``[N, K]`` (N output channels, K inputs) as:

``packed``  ``uint8[N, ceil(K / 8)]``
    Bit ``j`` (value ``1 << j``, least significant bit first) of byte ``b`` in row ``n`` is the sign of
    ``W[n, 8 * b + j]``: 1 for ``+1`` (``W >= centre``, so exact zeros become ``+1``), 0 for ``-1``.
    The bits past K in the last byte are 0 and stand for no weight.
``scale``   ``float[N, G]``, ``G = ceil(K / group_size)``
    Group ``g`` covers inputs ``[g * group_size, min((g + 1) * group_size, K))``. One scale per output
    channel is the single group ``group_size == K``. The scale is ``mean |W - centre|`` over the group,
    which is the least-squares optimal ``alpha`` for ``W ~ alpha * sign(W - centre)``.
``offset``  ``float[N, G]``, centred variant only
    The group mean ``mu`` (the centre), kept so that binarizing ``W - mu`` does not lose it.

The dense weight the tensors stand for is ``W_hat[n, k] = offset[n, g] + scale[n, g] * sign[n, k]``
with ``g = k // group_size`` (``offset`` is 0 when absent).

Worked example, one row, K = 9, per-channel::

    W        = [0.5, -1.0, 2.0, 0.0, -0.1, 0.3, -0.2, 0.9, 1.1]
    signs    = [ +    -    +    +     -    +     -    +    +  ]
    byte 0   = bits 0..7 = 1,0,1,1,0,1,0,1 -> 0b10101101 = 173
    byte 1   = bit 0 = 1                   -> 1
    packed   = [173, 1]
    scale    = mean |W| = 6.1 / 9 = 0.6778
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .storage import TensorSpec, to_scale_dtype

PACKING_FORMAT = "sign-lsb-v1"

_BIT_WEIGHTS = 1 << torch.arange(8, dtype=torch.int32)


def packed_width(in_features: int) -> int:
    """Bytes per packed row for ``in_features`` inputs."""
    return (in_features + 7) // 8


def num_groups(in_features: int, group_size: int) -> int:
    """Scale groups per row: ``ceil(in_features / group_size)``."""
    return (in_features + group_size - 1) // group_size


def pack_signs(positive: torch.Tensor) -> torch.Tensor:
    """Pack a boolean ``[N, K]`` tensor (True = +1) into ``uint8[N, ceil(K / 8)]``, LSB first."""
    if positive.dim() != 2 or positive.dtype != torch.bool:
        raise ValueError(f"pack_signs expects a 2-D bool tensor, got {positive.dim()}-D {positive.dtype}")
    rows, cols = positive.shape
    padded = torch.zeros(rows, packed_width(cols) * 8, dtype=torch.int32, device=positive.device)
    padded[:, :cols] = positive
    weights = _BIT_WEIGHTS.to(positive.device)
    # Explicit sizes, not -1: a view with zero rows cannot infer a dimension.
    return (padded.view(rows, packed_width(cols), 8) * weights).sum(-1).to(torch.uint8)


def unpack_signs(packed: torch.Tensor, in_features: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Unpack ``uint8[N, ceil(K / 8)]`` into a ``[N, K]`` tensor of +1/-1 in ``dtype``."""
    if packed.dtype != torch.uint8:
        raise ValueError(f"packed signs must be uint8, got {packed.dtype}")
    if packed.shape[-1] != packed_width(in_features):
        raise ValueError(
            f"packed signs have {packed.shape[-1]} bytes per row, {in_features} inputs need {packed_width(in_features)}"
        )
    shifts = torch.arange(8, dtype=torch.uint8, device=packed.device)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    bits = bits.reshape(*packed.shape[:-1], packed.shape[-1] * 8)[..., :in_features]
    return bits.to(dtype) * 2 - 1


def expand_groups(per_group: torch.Tensor, in_features: int, group_size: int) -> torch.Tensor:
    """Broadcast a ``[N, G]`` per-group tensor to ``[N, K]``."""
    return per_group.repeat_interleave(group_size, dim=-1)[..., :in_features]


@dataclass
class BinarizedWeight:
    """The tensors of one binarized weight in format ``sign-lsb-v1`` (see the module docstring)."""

    packed: torch.Tensor
    scale: torch.Tensor
    offset: torch.Tensor | None


def _check_weight(weight: torch.Tensor, group_size: int | None) -> int:
    if weight.dim() != 2:
        raise ValueError(f"binarize expects a 2-D [out_features, in_features] weight, got shape {tuple(weight.shape)}")
    if not weight.is_floating_point():
        raise ValueError(f"binarize expects a floating point weight, got {weight.dtype}")
    cols = weight.shape[1]
    group_size = cols if group_size is None else group_size
    if group_size <= 0 or (group_size != cols and group_size % 8):
        raise ValueError(f"group_size must be a positive multiple of 8, got {group_size}")
    return group_size


Store = Callable[[torch.Tensor, str, torch.Tensor | None], torch.Tensor]


def binary_parts(
    weight: torch.Tensor, group_size: int, centred: bool, store: Store
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The differentiable core of binarization, shared by :func:`binarize` and quantization-aware training.

    Returns ``(deviation, scale, offset)`` in float32 (float64 for a float64 weight): ``deviation = W - offset`` (``[N, K]``, its sign is the
    stored sign), ``scale = mean |deviation|`` and ``offset = mean W`` per group (``[N, G]``; ``offset`` is ``None``
    unless ``centred``). ``store(values, what, magnitude)`` maps scales and offsets to the values they take once stored
    (rounded to the scale dtype), so the sign is taken around the stored centre and training sees stored values.
    """
    w = weight.to(torch.promote_types(weight.dtype, torch.float32))
    rows, cols = w.shape
    groups = num_groups(cols, group_size)
    padded = F.pad(w, (0, groups * group_size - cols)).view(rows, groups, group_size)
    valid = (torch.arange(groups * group_size, device=w.device) < cols).view(1, groups, group_size)
    counts = valid.sum(-1).to(w.dtype)
    offset = None
    deviation = padded
    if centred:
        magnitude = (padded.abs() * valid).sum(-1) / counts
        offset = store(padded.sum(-1) / counts, "binarization offset", magnitude)
        deviation = padded - offset.unsqueeze(-1)
    scale = store((deviation.abs() * valid).sum(-1) / counts, "binarization scale")
    return deviation.reshape(rows, -1)[:, :cols], scale, offset


def binarize(
    weight: torch.Tensor,
    group_size: int | None = None,
    centred: bool = False,
    scale_dtype: torch.dtype = torch.float16,
) -> BinarizedWeight:
    """Binarize a float ``[N, K]`` weight: signs packed 8 per byte and one scale per output channel or group.

    ``group_size=None`` gives one scale per output channel. ``centred=True`` binarizes ``W - mean`` and keeps the
    mean as ``offset``. Scales are computed in float32 and stored in ``scale_dtype``; a scale that does not fit
    ``scale_dtype`` raises instead of turning into ``inf``.
    """
    group_size = _check_weight(weight, group_size)
    if not torch.isfinite(weight).all():
        raise ValueError("weight contains NaN or inf; binarizing it would give meaningless scales")

    def store(values: torch.Tensor, what: str, magnitude: torch.Tensor | None = None) -> torch.Tensor:
        return to_scale_dtype(values, scale_dtype, what, magnitude).to(torch.float32)

    with torch.no_grad():
        deviation, scale, offset = binary_parts(weight, group_size, centred, store)
    return BinarizedWeight(
        pack_signs(deviation >= 0),
        scale.to(scale_dtype),
        None if offset is None else offset.to(scale_dtype),
    )


def fake_binarize(
    weight: torch.Tensor,
    group_size: int | None = None,
    centred: bool = False,
    scale_dtype: torch.dtype = torch.float16,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """The dense weight :func:`binarize` stands for, differentiable, for quantization-aware training.

    The sign passes gradients straight through (identity), and gradients also flow into the scale and offset, as
    in the seed paper's training. ``scale`` (``[N, G]``) replaces ``mean |W - offset|`` when scales are learned.
    Rounding to ``scale_dtype`` is applied in the forward and passed straight through in the backward.
    """
    group_size = _check_weight(weight, group_size)

    def store(values: torch.Tensor, what: str, magnitude: torch.Tensor | None = None) -> torch.Tensor:
        return values + (values.to(scale_dtype).to(values.dtype) - values).detach()

    deviation, computed, offset = binary_parts(weight, group_size, centred, store)
    scale = computed if scale is None else store(scale.to(computed.dtype), "binarization scale")
    sign = torch.where(deviation >= 0, 1.0, -1.0)
    sign = deviation + (sign - deviation).detach()
    dense = sign * expand_groups(scale, weight.shape[1], group_size)
    if offset is not None:
        dense = dense + expand_groups(offset, weight.shape[1], group_size)
    return dense.to(weight.dtype)


def dequantize(
    packed: torch.Tensor,
    scale: torch.Tensor,
    offset: torch.Tensor | None,
    in_features: int,
    group_size: int,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The dense ``[N, K]`` weight ``offset + scale * sign`` that packed tensors stand for, in ``dtype``."""
    dense = unpack_signs(packed, in_features, dtype) * expand_groups(scale.to(dtype), in_features, group_size)
    if offset is not None:
        dense += expand_groups(offset.to(dtype), in_features, group_size)
    return dense


ACTIVATIONS = ("float", "int8")


@dataclass(frozen=True)
class BinaryFormat:
    """1-bit signs packed 8 per byte (``sign-lsb-v1``) with a scale per output channel or group.

    ``activations="int8"`` changes how :meth:`linear` multiplies, not what is stored: each input row is quantized to
    int8 with its own scale and multiplied by the signs with integer dot products
    (``torch.ops.hf_binarize.binary_linear_int8_act``), which needs one scale per output channel and no offset.
    """

    group_size: int | None = None
    centred: bool = False
    scale_dtype: torch.dtype = torch.float16
    activations: str = "float"

    method = "binary"
    name = PACKING_FORMAT

    def __post_init__(self) -> None:
        if self.activations not in ACTIVATIONS:
            raise ValueError(f"activations must be one of {list(ACTIVATIONS)}, got {self.activations!r}")
        if self.activations == "int8" and (self.group_size is not None or self.centred):
            raise ValueError(
                "activations='int8' needs one scale per output channel and no offset: set group_size=None and "
                "centred=False, or keep activations='float'"
            )

    def group_for(self, in_features: int) -> int:
        return in_features if self.group_size is None else self.group_size

    def spec(self, out_features: int, in_features: int) -> dict[str, TensorSpec]:
        groups = (out_features, num_groups(in_features, self.group_for(in_features)))
        spec = {"": ((out_features, packed_width(in_features)), torch.uint8), "_scale": (groups, self.scale_dtype)}
        if self.centred:
            spec["_offset"] = (groups, self.scale_dtype)
        return spec

    def quantize(self, weight: torch.Tensor, scale: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The stored tensors of ``weight``; ``scale`` replaces the computed scales (learned in QAT)."""
        packed = binarize(weight, self.group_size, self.centred, self.scale_dtype)
        tensors = {"": packed.packed, "_scale": packed.scale}
        if scale is not None:
            # A learned scale that training drove to about zero (or past it) only has to be exact relative to the
            # size of the weights it scales, as an offset does: its rounding error is then negligible, where a
            # relative test of the value alone would refuse a subnormal float16 and fail freeze at the end of QAT.
            tensors["_scale"] = to_scale_dtype(scale.detach().to(torch.float32), self.scale_dtype, "learned scale",
                                               packed.scale.to(torch.float32))
        if self.centred:
            tensors["_offset"] = packed.offset
        return tensors

    def fake_quantize(self, weight: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The dense weight ``quantize`` stands for, differentiable (straight-through sign), for QAT."""
        return fake_binarize(weight, self.group_size, self.centred, self.scale_dtype, scale)

    def linear(self, x: torch.Tensor, tensors: dict[str, torch.Tensor], in_features: int, bias) -> torch.Tensor:
        if self.activations == "int8":
            return torch.ops.hf_binarize.binary_linear_int8_act(x, tensors[""], tensors["_scale"], bias, in_features)
        return torch.ops.hf_binarize.binary_linear(
            x, tensors[""], tensors["_scale"], tensors.get("_offset"), bias, in_features, self.group_for(in_features)
        )

    def dequantize(self, tensors: dict[str, torch.Tensor], in_features: int, dtype: torch.dtype) -> torch.Tensor:
        return dequantize(
            tensors[""], tensors["_scale"], tensors.get("_offset"), in_features, self.group_for(in_features), dtype
        )

    def bits_per_weight(self, in_features: int) -> float:
        per_group = torch.finfo(self.scale_dtype).bits * (2 if self.centred else 1)
        return 1 + per_group / self.group_for(in_features)
