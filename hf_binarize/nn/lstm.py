"""Packed ``nn.LSTM``: the four gate matrices of every layer and direction stored packed.

Same parameter names, gate order (input, forget, cell, output), ``batch_first``, ``(h_0, c_0)`` state and
unbatched-input semantics as ``nn.LSTM``, so a prediction network that calls it (Parakeet's RNN-T decoder) is
unchanged. The input projection of a whole sequence is one matmul; the recurrent one runs per time step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ..formats import WeightFormat
from .base import PackedModule


class PackedLSTM(PackedModule):
    """``nn.LSTM`` (no ``proj_size``) with packed weights. Buffers per layer ``k`` and direction:
    ``weight_ih_l{k}[_reverse]``, ``weight_hh_l{k}[_reverse]`` (+ companions) and ``bias_ih/hh_l{k}[_reverse]``."""

    replaces = nn.LSTM

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, bias: bool, batch_first: bool,
                 dropout: float, bidirectional: bool, fmt: WeightFormat, compute_dtype: torch.dtype | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__(fmt, compute_dtype)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, bidirectional
        self.dtype = dtype
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                self._register_matrix(f"weight_ih{suffix}", 4 * hidden_size, layer_input)
                self._register_matrix(f"weight_hh{suffix}", 4 * hidden_size, hidden_size)
                if bias:
                    self._register_float(f"bias_ih{suffix}", (4 * hidden_size,), dtype)
                    self._register_float(f"bias_hh{suffix}", (4 * hidden_size,), dtype)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    @classmethod
    def accepts(cls, module: nn.Module) -> bool:
        return (isinstance(module, nn.LSTM) and type(module).forward is nn.LSTM.forward and module.proj_size == 0
                and module.mode == "LSTM")

    @classmethod
    def from_float(cls, module: nn.Module, fmt: WeightFormat, compute_dtype: torch.dtype | None) -> PackedLSTM:
        return cls(module.input_size, module.hidden_size, module.num_layers, module.bias, module.batch_first,
                   module.dropout, module.bidirectional, fmt, compute_dtype, module.weight_ih_l0.dtype)


    def forward(self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None):
        if isinstance(input, PackedSequence):
            raise TypeError("PackedLSTM takes a padded tensor, not a PackedSequence; pad the batch first")
        if input.dim() not in (2, 3):
            raise ValueError(f"LSTM input must be 2-D (unbatched) or 3-D, got shape {tuple(input.shape)}")
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
        batch = x.shape[1]
        h0, c0 = self._initial_state(hx, batch, unbatched, x)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                index = layer * self.num_directions + direction
                out, h, c = self._run_direction(x, suffix, h0[index], c0[index], reverse=direction == 1)
                outputs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)
        if unbatched:
            return x.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if self.batch_first:
            x = x.transpose(0, 1)
        return x, (h_n, c_n)

    def _initial_state(self, hx, batch: int, unbatched: bool, x: torch.Tensor):
        shape = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if hx is None:
            zeros = x.new_zeros(shape)
            return zeros, zeros
        h0, c0 = hx
        if unbatched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        for name, state in (("h_0", h0), ("c_0", c0)):
            if tuple(state.shape) != shape:
                raise ValueError(f"LSTM {name} has shape {tuple(state.shape)}, expected {shape}")
        return h0.to(x.dtype), c0.to(x.dtype)

    def _run_direction(self, x, suffix: str, h, c, reverse: bool):
        bias_ih = getattr(self, f"bias_ih{suffix}") if self.bias else None
        bias_hh = getattr(self, f"bias_hh{suffix}") if self.bias else None
        input_gates = self._matmul(f"weight_ih{suffix}", x, bias_ih)
        outputs = [None] * x.shape[0]
        for t in (range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])):
            gates = input_gates[t] + self._matmul(f"weight_hh{suffix}", h, bias_hh)
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs[t] = h
        return torch.stack(outputs), h, c

    def dequantize(self) -> nn.LSTM:
        lstm = nn.LSTM(self.input_size, self.hidden_size, self.num_layers, bias=self.bias,
                       batch_first=self.batch_first, dropout=self.dropout, bidirectional=self.bidirectional,
                       dtype=self.dtype)
        with torch.no_grad():
            for name in self.quantized_names:
                getattr(lstm, name).copy_(self.dequantize_matrix(name, self.dtype))
            for name, buffer in self._buffers.items():
                if name.startswith("bias_"):
                    getattr(lstm, name).copy_(buffer)
        return lstm

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first={self.batch_first}, "
                f"bidirectional={self.bidirectional}, {super().extra_repr()}")
