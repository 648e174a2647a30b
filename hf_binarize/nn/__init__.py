"""Packed inference modules: drop-in replacements for the torch modules a speech model binarizes."""

from .base import PackedModule
from .embedding import PackedEmbedding
from .kinds import MODULE_KINDS, ModuleKind, register_kind
from .linear import PackedConv1d, PackedLinear
from .lstm import PackedLSTM

__all__ = ["MODULE_KINDS", "ModuleKind", "PackedConv1d", "PackedEmbedding", "PackedLSTM", "PackedLinear",
           "PackedModule", "register_kind"]
