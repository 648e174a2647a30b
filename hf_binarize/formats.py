"""Weight formats: how one float weight matrix becomes named tensors on a packed module, and back.

A packed module stores each quantized weight ``W`` under its original name (``weight``, ``weight_ih_l0``,
...) plus companions named by suffix (``weight_scale``, ``weight_offset``). The format object knows the
names, shapes and dtypes of those tensors, how to fill them from a float weight, how to multiply by them
and how to check tensors read from a checkpoint. Every format stores the tensor under the original name with
a shape no float layer has (packed bytes ``[N, ceil(K/8)]``, flat int8 ``[N*K]``), so a checkpoint loaded
without hf_binarize fails on a shape mismatch instead of loading garbage.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import ops
from .int8 import INT8_FORMAT, dequantize_int8, fake_quantize_int8, quantize_int8
from .packing import (
    PACKING_FORMAT,
    binarize,
    dequantize,
    fake_binarize,
    num_groups,
    packed_width,
    to_scale_dtype,
)

TensorSpec = tuple[tuple[int, ...], torch.dtype]


@dataclass(frozen=True)
class BinaryFormat:
    """1-bit signs packed 8 per byte (``sign-lsb-v1``) with a scale per output channel or group."""

    group_size: int | None = None
    centred: bool = False
    scale_dtype: torch.dtype = torch.float16

    method = "binary"
    name = PACKING_FORMAT

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
            tensors["_scale"] = to_scale_dtype(scale.detach().to(torch.float32), self.scale_dtype, "learned scale")
        if self.centred:
            tensors["_offset"] = packed.offset
        return tensors

    def fake_quantize(self, weight: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The dense weight ``quantize`` stands for, differentiable (straight-through sign), for QAT."""
        return fake_binarize(weight, self.group_size, self.centred, self.scale_dtype, scale)

    def linear(self, x: torch.Tensor, tensors: dict[str, torch.Tensor], in_features: int, bias) -> torch.Tensor:
        return ops.binary_linear(
            x, tensors[""], tensors["_scale"], tensors.get("_offset"), bias, in_features, self.group_for(in_features)
        )

    def dequantize(self, tensors: dict[str, torch.Tensor], in_features: int, dtype: torch.dtype) -> torch.Tensor:
        return dequantize(
            tensors[""], tensors["_scale"], tensors.get("_offset"), in_features, self.group_for(in_features), dtype
        )

    def bits_per_weight(self, in_features: int) -> float:
        per_group = torch.finfo(self.scale_dtype).bits * (2 if self.centred else 1)
        return 1 + per_group / self.group_for(in_features)


@dataclass(frozen=True)
class Int8Format:
    """Int8 weights with one scale per output channel (see :mod:`hf_binarize.int8`), the ``[N, K]`` weight stored
    flat as ``int8[N*K]`` (row-major): under the float weight's name with the float shape, transformers without
    hf_binarize would load the integers as float weights. Checkpoints of ``int8-per-channel-v1`` stored
    ``int8[N, K]``; the loader flattens them (:meth:`hf_binarize.nn.PackedModule.adopt_legacy_layout`)."""

    scale_dtype: torch.dtype = torch.float16

    method = "int8"
    name = INT8_FORMAT

    def spec(self, out_features: int, in_features: int) -> dict[str, TensorSpec]:
        return {"": ((out_features * in_features,), torch.int8), "_scale": ((out_features, 1), self.scale_dtype)}

    def quantize(self, weight: torch.Tensor, scale: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if scale is not None:
            raise ValueError("int8 weights take no learned scale")
        q, scale = quantize_int8(weight, self.scale_dtype)
        return {"": q.reshape(-1), "_scale": scale}

    def fake_quantize(self, weight: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The dense weight ``quantize`` stands for, with rounding passed straight through, for QAT."""
        return fake_quantize_int8(weight, self.scale_dtype)

    def linear(self, x: torch.Tensor, tensors: dict[str, torch.Tensor], in_features: int, bias) -> torch.Tensor:
        return ops.int8_linear(x, tensors[""].view(-1, in_features), tensors["_scale"], bias)

    def dequantize(self, tensors: dict[str, torch.Tensor], in_features: int, dtype: torch.dtype) -> torch.Tensor:
        return dequantize_int8(tensors[""].view(-1, in_features), tensors["_scale"], dtype)

    def bits_per_weight(self, in_features: int) -> float:
        return 8 + torch.finfo(self.scale_dtype).bits / in_features


WeightFormat = BinaryFormat | Int8Format
