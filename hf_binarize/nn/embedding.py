"""Packed ``nn.Embedding``: int8 rows with one scale each (a lookup reads rows; there is no matmul to binarize)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..formats import Int8Format
from .base import PackedModule


class PackedEmbedding(PackedModule):
    """``nn.Embedding`` with int8 rows. Buffers: ``weight`` (int8 ``[V * D]``), ``weight_scale`` (``[V, 1]``)."""

    replaces = nn.Embedding

    def __init__(self, num_embeddings: int, embedding_dim: int, fmt: Int8Format, padding_idx: int | None = None,
                 compute_dtype: torch.dtype | None = None, dtype: torch.dtype = torch.float32):
        if not isinstance(fmt, Int8Format):
            raise ValueError("embeddings can only be stored as int8 (or kept float); binarize the layers after them")
        super().__init__(fmt, compute_dtype)
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.dtype = dtype
        self._register_matrix("weight", num_embeddings, embedding_dim)

    @classmethod
    def accepts(cls, module: nn.Module) -> bool:
        return isinstance(module, nn.Embedding) and module.max_norm is None and not module.sparse

    @classmethod
    def from_float(cls, module: nn.Module, fmt: Int8Format, compute_dtype: torch.dtype | None) -> PackedEmbedding:
        return cls(module.num_embeddings, module.embedding_dim, fmt, module.padding_idx, compute_dtype,
                   module.weight.dtype)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        dtype = self.compute_dtype or self.dtype
        rows = self.weight.view(self.num_embeddings, self.embedding_dim)
        return F.embedding(ids, rows).to(dtype) * F.embedding(ids, self.weight_scale).to(dtype)

    def dequantize(self) -> nn.Embedding:
        embedding = nn.Embedding(self.num_embeddings, self.embedding_dim, self.padding_idx, dtype=self.dtype)
        with torch.no_grad():
            embedding.weight.copy_(self.dequantize_matrix("weight", self.dtype))
        return embedding

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, {super().extra_repr()}"
