"""Int8 weights-only quantization, for the sensitive layers a user keeps at 8 bits.

Symmetric, one scale per output channel: ``scale[n] = max_k |W[n, k]| / 127`` and
``q[n, k] = round(W[n, k] / scale[n])`` in ``[-127, 127]``; the dense weight is ``q * scale``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .storage import TensorSpec, to_scale_dtype

INT8_MAX = 127
# The stored layout, written into config.json (``quantization_config.int8_format``): ``[N, K]`` stored flat.
INT8_FORMAT = "int8-flat-v2"


def quantize_int8(weight: torch.Tensor, scale_dtype: torch.dtype = torch.float16) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize a float ``[N, K]`` weight to ``(int8[N, K], scale[N, 1])``."""
    if weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError(f"quantize_int8 expects a 2-D float weight, got {weight.dim()}-D {weight.dtype}")
    w = weight.detach().to(torch.float32)
    if not torch.isfinite(w).all():
        raise ValueError("weight contains NaN or inf and cannot be quantized to int8")
    scale = to_scale_dtype(_scale(w), scale_dtype, "int8 scale")
    # Quantize against the stored (rounded) scale so that q * scale is the closest representable weight.
    stored = scale.to(torch.float32)
    q = torch.where(stored > 0, w / stored.clamp_min(torch.finfo(torch.float32).tiny), 0.0)
    return q.round().clamp(-INT8_MAX, INT8_MAX).to(torch.int8), scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The dense weight ``q * scale`` in ``dtype``."""
    return q.to(dtype) * scale.to(dtype)


def fake_quantize_int8(weight: torch.Tensor, scale_dtype: torch.dtype = torch.float16) -> torch.Tensor:
    """The dense weight :func:`quantize_int8` stands for, with rounding passed straight through (for QAT)."""
    w = weight.to(torch.float32)
    scale = _scale(w).detach().to(scale_dtype).to(torch.float32).clamp_min(torch.finfo(torch.float32).tiny)
    scaled = w / scale
    q = scaled + (scaled.round().clamp(-INT8_MAX, INT8_MAX) - scaled).detach()
    return (q * scale).to(weight.dtype)


def _scale(w: torch.Tensor) -> torch.Tensor:
    return w.abs().amax(dim=1, keepdim=True) / INT8_MAX


@dataclass(frozen=True)
class Int8Format:
    """Int8 weights with one scale per output channel (see the module docstring), the ``[N, K]`` weight stored
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
        return torch.ops.hf_binarize.int8_linear(x, tensors[""].view(-1, in_features), tensors["_scale"], bias)

    def dequantize(self, tensors: dict[str, torch.Tensor], in_features: int, dtype: torch.dtype) -> torch.Tensor:
        return dequantize_int8(tensors[""].view(-1, in_features), tensors["_scale"], dtype)

    def bits_per_weight(self, in_features: int) -> float:
        return 8 + torch.finfo(self.scale_dtype).bits / in_features
