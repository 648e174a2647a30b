"""Trainable modules for quantization-aware training: latent float weights, quantized in every forward.

Each subclasses the torch module it replaces, so float checkpoints load into it unchanged (``weight``,
``weight_ih_l0``, ... are the latent floats) and code that checks ``isinstance(m, nn.Linear)`` still works. The
forward uses ``fmt.fake_quantize``: the same signs and scales the packed module will store, with the sign's gradient
passed straight through. :func:`hf_binarize.freeze` turns them into packed modules at the end of training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import _VF, nn

from ..formats import BinaryFormat, WeightFormat
from ..formats.binary import binary_parts, num_groups
from .conv_layout import channels_last


class QATModule:
    """What every QAT module shares: its format, optional learned scales and the binarization warm-up mix."""

    fmt: WeightFormat
    mix: float
    learnable_scales: bool

    @classmethod
    def from_float(cls, module: nn.Module, fmt: WeightFormat, learnable_scales: bool) -> QATModule:
        """An empty QAT module shaped like the float ``module`` (on the current default device); its latent float
        weights keep the original names, so ``load_state_dict(module.state_dict())`` fills it."""
        raise NotImplementedError

    def _setup_qat(self, fmt: WeightFormat, learnable_scales: bool) -> None:
        if learnable_scales and not isinstance(fmt, BinaryFormat):
            raise ValueError("learnable_scales applies to binary weights only")
        self.fmt = fmt
        # 1.0 trains fully binarized; a warm-up raises it from 0 so that training starts from the float model.
        self.mix = 1.0
        self.learnable_scales = learnable_scales
        if learnable_scales:
            for name in self.quantized_names:
                rows, cols = getattr(self, name).shape[0], getattr(self, name)[0].numel()
                shape = (rows, num_groups(cols, self.fmt.group_for(cols)))
                self.register_parameter(name + "_alpha", nn.Parameter(torch.empty(shape, dtype=torch.float32)))

    @property
    def quantized_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def learned_scale(self, name: str) -> torch.Tensor | None:
        return getattr(self, name + "_alpha") if self.learnable_scales else None

    def reset_scales(self) -> None:
        """Start learned scales from ``mean |W - offset|`` of the current weights."""
        for name in self.quantized_names:
            weight = getattr(self, name)
            fmt = self.fmt
            with torch.no_grad():
                _, scale, _ = binary_parts(weight.reshape(weight.shape[0], -1), fmt.group_for(weight[0].numel()),
                                           fmt.centred, lambda values, *_: values)
                getattr(self, name + "_alpha").copy_(scale)

    def qat_weight(self, name: str) -> torch.Tensor:
        weight = getattr(self, name)
        flat = weight.reshape(weight.shape[0], -1)
        quantized = self.fmt.fake_quantize(flat, self.learned_scale(name)).reshape(weight.shape)
        if self.mix >= 1.0:
            return quantized
        return self.mix * quantized + (1.0 - self.mix) * weight


class QATLinear(QATModule, nn.Linear):
    """``nn.Linear`` trained through its quantized weight."""

    def __init__(self, in_features: int, out_features: int, bias: bool, fmt: WeightFormat,
                 learnable_scales: bool = False, **factory):
        nn.Linear.__init__(self, in_features, out_features, bias, **factory)
        self._setup_qat(fmt, learnable_scales)

    @classmethod
    def from_float(cls, module: nn.Module, fmt: WeightFormat, learnable_scales: bool) -> QATLinear:
        return cls(module.in_features, module.out_features, module.bias is not None, fmt, learnable_scales,
                   dtype=module.weight.dtype)

    @property
    def quantized_names(self) -> tuple[str, ...]:
        return ("weight",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.qat_weight("weight"), self.bias)


class QATConv1d(QATModule, nn.Conv1d):
    """A 1x1 ``nn.Conv1d`` trained through its quantized weight; ``channels_last`` as in ``PackedConv1d``."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool, fmt: WeightFormat,
                 learnable_scales: bool = False, channels_last: bool = False,
                 float_class: type[nn.Conv1d] = nn.Conv1d, **factory):
        nn.Conv1d.__init__(self, in_channels, out_channels, kernel_size=1, bias=bias, **factory)
        self.channels_last = channels_last
        self.float_class = float_class
        self._setup_qat(fmt, learnable_scales)

    @classmethod
    def from_float(cls, module: nn.Module, fmt: WeightFormat, learnable_scales: bool) -> QATConv1d:
        return cls(module.in_channels, module.out_channels, module.bias is not None, fmt, learnable_scales,
                   channels_last=channels_last(module), float_class=type(module), dtype=module.weight.dtype)

    @property
    def quantized_names(self) -> tuple[str, ...]:
        return ("weight",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            return F.linear(x, self.qat_weight("weight").squeeze(-1), self.bias)
        return self._conv_forward(x, self.qat_weight("weight"), self.bias)


class QATLSTM(QATModule, nn.LSTM):
    """``nn.LSTM`` (no ``proj_size``) trained through quantized gate matrices, run by torch's own LSTM kernel."""

    def __init__(self, *args, fmt: WeightFormat, learnable_scales: bool = False, **kwargs):
        nn.LSTM.__init__(self, *args, **kwargs)
        self._setup_qat(fmt, learnable_scales)

    @classmethod
    def from_float(cls, module: nn.Module, fmt: WeightFormat, learnable_scales: bool) -> QATLSTM:
        return cls(module.input_size, module.hidden_size, module.num_layers, bias=module.bias,
                   batch_first=module.batch_first, dropout=module.dropout, bidirectional=module.bidirectional,
                   fmt=fmt, learnable_scales=learnable_scales, dtype=module.weight_ih_l0.dtype)

    @property
    def quantized_names(self) -> tuple[str, ...]:
        return tuple(name for name in self._flat_weights_names if name.startswith("weight_"))

    def forward(self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None):
        if not isinstance(input, torch.Tensor):
            raise TypeError("QATLSTM takes a padded tensor, not a PackedSequence; pad the batch first")
        unbatched = input.dim() == 2
        x = input.unsqueeze(0 if self.batch_first else 1) if unbatched else input
        batch = x.shape[0 if self.batch_first else 1]
        if hx is None:
            zeros = x.new_zeros(self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size)
            hx = (zeros, zeros)
        elif unbatched:
            hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        weights = [self.qat_weight(n) if n.startswith("weight_") else getattr(self, n) for n in self._flat_weights_names]
        output, h, c = _VF.lstm(x, hx, weights, self.bias, self.num_layers, self.dropout, self.training,
                                self.bidirectional, self.batch_first)
        if unbatched:
            return output.squeeze(0 if self.batch_first else 1), (h.squeeze(1), c.squeeze(1))
        return output, (h, c)


class QATEmbedding(QATModule, nn.Embedding):
    """``nn.Embedding`` trained through its int8 rows."""

    def __init__(self, num_embeddings: int, embedding_dim: int, fmt: WeightFormat, padding_idx: int | None = None,
                 learnable_scales: bool = False, **factory):
        nn.Embedding.__init__(self, num_embeddings, embedding_dim, padding_idx, **factory)
        self._setup_qat(fmt, learnable_scales)

    @classmethod
    def from_float(cls, module: nn.Module, fmt: WeightFormat, learnable_scales: bool) -> QATEmbedding:
        return cls(module.num_embeddings, module.embedding_dim, fmt, module.padding_idx, learnable_scales,
                   dtype=module.weight.dtype)

    @property
    def quantized_names(self) -> tuple[str, ...]:
        return ("weight",)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.qat_weight("weight"), self.padding_idx)
