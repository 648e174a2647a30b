"""Packed replacements for ``nn.Linear`` and 1x1 ``nn.Conv1d``: both are one matrix multiply over channels."""

from __future__ import annotations

import torch
from torch import nn

from ..formats import WeightFormat
from .base import PackedModule
from .conv_layout import CHANNELS_LAST_CONV1D, channels_last


class PackedLinear(PackedModule):
    """``nn.Linear`` with its weight stored packed (binary or int8). Buffers: ``weight`` (+ companions), ``bias``."""

    replaces = nn.Linear

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool,
        fmt: WeightFormat,
        compute_dtype: torch.dtype | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(fmt, compute_dtype)
        self.in_features, self.out_features = in_features, out_features
        self.dtype = dtype
        self._register_matrix("weight", out_features, in_features)
        self.bias: torch.Tensor | None
        if bias:
            self._register_float("bias", (out_features,), dtype)
        else:
            self.register_buffer("bias", None)

    @classmethod
    def accepts(cls, module: nn.Module) -> bool:
        return isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward

    @classmethod
    def from_float(cls, module: nn.Module, fmt: WeightFormat, compute_dtype: torch.dtype | None) -> PackedLinear:
        return cls(module.in_features, module.out_features, module.bias is not None, fmt, compute_dtype,
                   module.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._matmul("weight", x, self.bias)

    def dequantize(self) -> nn.Linear:
        """A float ``nn.Linear`` holding the dense weight this module stands for."""
        dtype = self.bias.dtype if self.bias is not None else self.dtype
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(self.dequantize_matrix("weight", dtype))
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, {super().extra_repr()}"


class PackedConv1d(PackedLinear):
    """A 1x1 ``nn.Conv1d`` (stride 1, no padding, one group) with its weight packed.

    Input ``[B, C, T]`` or ``[C, T]`` like ``nn.Conv1d``; ``channels_last=True`` takes ``[..., T, C]`` instead, for
    conv subclasses whose forward transposes around the convolution (Parakeet's CTC head).
    """

    replaces = nn.Conv1d

    def __init__(self, *args, channels_last: bool = False, float_class: type[nn.Conv1d] = nn.Conv1d, **kwargs):
        super().__init__(*args, **kwargs)
        self.channels_last = channels_last
        self.float_class = float_class

    @classmethod
    def accepts(cls, module: nn.Module) -> bool:
        if not isinstance(module, nn.Conv1d) or not cls.is_pointwise(module):
            return False
        return type(module).forward is nn.Conv1d.forward or type(module).__name__ in CHANNELS_LAST_CONV1D

    @classmethod
    def from_float(cls, module: nn.Module, fmt: WeightFormat, compute_dtype: torch.dtype | None) -> PackedConv1d:
        # A QAT conv carries the layout and class of the float conv it replaced.
        return cls(module.in_channels, module.out_channels, module.bias is not None, fmt, compute_dtype,
                   module.weight.dtype, channels_last=channels_last(module),
                   float_class=getattr(module, "float_class", type(module)))

    @staticmethod
    def is_pointwise(module: nn.Conv1d) -> bool:
        """Whether a Conv1d is a plain channel mix that a matrix multiply reproduces exactly."""
        return (
            module.kernel_size == (1,)
            and module.stride == (1,)
            and module.dilation == (1,)
            and module.groups == 1
            and module.padding in ((0,), "valid")
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            return super().forward(x)
        return super().forward(x.transpose(-1, -2)).transpose(-1, -2)

    def dequantize(self) -> nn.Conv1d:
        """A float conv of the original class holding the dense weight this module stands for."""
        linear = super().dequantize()
        conv = self.float_class(self.in_features, self.out_features, kernel_size=1, bias=self.bias is not None,
                                dtype=linear.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(linear.weight.unsqueeze(-1))
            if self.bias is not None:
                conv.bias.copy_(linear.bias)
        return conv
