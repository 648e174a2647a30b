"""What every packed module shares: buffers laid out by a weight format, filled from float weights and checked."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..formats import Int8Format, WeightFormat
from .qat import QATModule

_FIX = "; the checkpoint is corrupted or was not written by this hf_binarize: save the model again"


class PackedModule(nn.Module):
    """Base of the inference modules whose weight matrices are stored in a :data:`WeightFormat`.

    Each quantized matrix is registered under its original name (``weight``, ``weight_ih_l0``, ...) with the
    format's companion tensors beside it, all as buffers: a packed module has no trainable parameters and holds
    no dense float copy of its weights.
    """

    replaces: ClassVar[type[nn.Module]]
    """The float torch module this class stands in for."""

    def __init__(self, fmt: WeightFormat, compute_dtype: torch.dtype | None = None):
        super().__init__()
        self.fmt = fmt
        self.compute_dtype = compute_dtype
        self.matrices: dict[str, tuple[int, int]] = {}
        """``(out_features, in_features)`` of every quantized matrix, by name: the module's shape table."""
        self.float_names: list[str] = []
        """Names of the tensors kept in float (biases)."""

    @classmethod
    def accepts(cls, module: nn.Module) -> bool:
        """Whether ``module`` is a float module this class reproduces exactly (same forward, supported options)."""
        raise NotImplementedError

    @classmethod
    def from_float(cls, module: nn.Module, fmt: WeightFormat, compute_dtype: torch.dtype | None) -> PackedModule:
        """An empty module shaped like ``module`` (float or QAT), on the current default device; fill it with
        :meth:`fill_from`, or let transformers' loader fill it from a packed checkpoint."""
        raise NotImplementedError

    def _register_matrix(self, name: str, out_features: int, in_features: int) -> None:
        self.matrices[name] = (out_features, in_features)
        for suffix, (shape, dtype) in self.fmt.spec(out_features, in_features).items():
            self.register_buffer(name + suffix, torch.empty(shape, dtype=dtype))

    def _register_float(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self.float_names.append(name)
        self.register_buffer(name, torch.empty(shape, dtype=dtype))

    def fill_from(self, module: nn.Module) -> None:
        """Quantize the float weights of ``module`` (the torch or QAT module this one replaces) into this module."""
        for matrix in self.quantized_names:
            scale = module.learned_scale(matrix) if isinstance(module, QATModule) else None
            for key, tensor in self.quantize_matrix(matrix, getattr(module, matrix), scale).items():
                setattr(self, key, tensor)
        for name in self.float_names:
            setattr(self, name, getattr(module, name).detach().clone())

    @property
    def quantized_names(self) -> tuple[str, ...]:
        """Names of the float matrices this module stores quantized (``weight``, ``weight_ih_l0``, ...)."""
        return tuple(self.matrices)

    def matrix_tensors(self, name: str) -> dict[str, torch.Tensor]:
        return {suffix: getattr(self, name + suffix) for suffix in self.fmt.spec(*self.matrices[name])}

    def quantize_matrix(self, name: str, weight: torch.Tensor, scale: torch.Tensor | None = None
                        ) -> dict[str, torch.Tensor]:
        """Quantize the float matrix ``name`` (any shape with the right element count, e.g. a 1x1 conv kernel);
        ``scale`` replaces the computed scales (learned in QAT)."""
        out_features, in_features = self.matrices[name]
        if weight.numel() != out_features * in_features or weight.shape[0] != out_features:
            raise ValueError(
                f"{name} has shape {tuple(weight.shape)}; this {type(self).__name__} expects "
                f"{out_features} x {in_features} weights"
            )
        tensors = self.fmt.quantize(weight.reshape(out_features, in_features), scale)
        return {name + suffix: t for suffix, t in tensors.items()}

    def dequantize_matrix(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        """The dense float matrix ``name`` stands for (allocates it: for export and inspection, not forward)."""
        return self.fmt.dequantize(self.matrix_tensors(name), self.matrices[name][1], dtype)

    def expected_tensors(self) -> dict[str, tuple[tuple[int, ...], torch.dtype | None]]:
        """Shape and dtype of every stored tensor; ``None`` dtype means any floating point dtype."""
        expected: dict[str, tuple[tuple[int, ...], torch.dtype | None]] = {}
        for name, dims in self.matrices.items():
            for suffix, (shape, dtype) in self.fmt.spec(*dims).items():
                expected[name + suffix] = (shape, dtype if suffix == "" else None)
        for name, buffer in self._buffers.items():
            if name not in expected and buffer is not None:
                expected[name] = (tuple(buffer.shape), None)
        return expected

    def is_legacy_tensor(self, name: str) -> bool:
        """Whether checkpoint tensor ``name`` may arrive in a layout of an older format version (int8 ``[N, K]``)."""
        return isinstance(self.fmt, Int8Format) and name in self.matrices

    def adopt_legacy_layout(self) -> None:
        """Flatten int8 matrices loaded from an ``int8-per-channel-v1`` checkpoint (``[N, K]``) to ``[N * K]``."""
        for name in self.matrices:
            tensor = getattr(self, name)
            if self.is_legacy_tensor(name) and tuple(tensor.shape) == self.matrices[name]:
                flat = tensor.reshape(-1)
                flat._is_hf_initialized = getattr(tensor, "_is_hf_initialized", False)
                setattr(self, name, flat)

    def check_tensors(self, module_name: str, from_checkpoint: bool = False) -> None:
        """Raise ``ValueError`` naming the tensor if a stored tensor is missing, has the wrong shape or dtype, or
        holds NaN or inf.

        ``from_checkpoint``: the module was just filled by transformers' loader, which flags every tensor it read
        (``_is_hf_initialized``); an unflagged tensor was absent from the checkpoint and holds garbage.
        """
        for name, (shape, dtype) in self.expected_tensors().items():
            tensor = getattr(self, name)
            where = f"{module_name}.{name}" if module_name else name
            if tensor.is_meta or (from_checkpoint and not getattr(tensor, "_is_hf_initialized", False)):
                raise ValueError(f"{where} was not found in the checkpoint; the packed checkpoint is incomplete")
            if tuple(tensor.shape) != shape:
                raise ValueError(f"{where} has shape {tuple(tensor.shape)}, expected {shape}{_FIX}")
            if dtype is not None and tensor.dtype != dtype:
                raise ValueError(f"{where} has dtype {tensor.dtype}, expected {dtype}{_FIX}")
            if dtype is None and not tensor.is_floating_point():
                raise ValueError(f"{where} has dtype {tensor.dtype}, expected a floating point dtype{_FIX}")
            # A NaN or inf scale, offset or bias makes whole output channels NaN: corruption, not a trained value.
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise ValueError(f"{where} holds NaN or inf{_FIX}")

    def _matmul(self, name: str, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        run_dtype = self.compute_dtype or x.dtype
        y = self.fmt.linear(x.to(run_dtype), self.matrix_tensors(name), self.matrices[name][1], bias)
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"format={self.fmt}, compute_dtype={self.compute_dtype}"
