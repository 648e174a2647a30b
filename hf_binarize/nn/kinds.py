"""The registry of module kinds: for each float torch module hf_binarize converts, its packed and QAT classes.

The model walk (:mod:`hf_binarize.quantize`), ``freeze`` and the size report read this table instead of testing
types themselves, so a new kind is one :func:`register_kind` call: a :class:`PackedModule` subclass that says
which float class it ``replaces``, which instances it ``accepts`` and how it is built ``from_float``, and a QAT
module with its own ``from_float``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .base import PackedModule
from .embedding import PackedEmbedding
from .linear import PackedConv1d, PackedLinear
from .lstm import PackedLSTM
from .qat import QATLSTM, QATConv1d, QATEmbedding, QATLinear, QATModule


@dataclass(frozen=True)
class ModuleKind:
    """One kind of convertible module: ``name`` (as in ``module_types``), its packed and its QAT class."""

    name: str
    packed: type[PackedModule]
    qat: type[QATModule]

    @property
    def replaces(self) -> type[nn.Module]:
        return self.packed.replaces


MODULE_KINDS: dict[str, ModuleKind] = {}
"""Registered kinds by name, in lookup order."""


def register_kind(kind: ModuleKind) -> ModuleKind:
    """Add a kind; its name must be new."""
    if kind.name in MODULE_KINDS:
        raise ValueError(f"module kind {kind.name!r} is already registered")
    MODULE_KINDS[kind.name] = kind
    return kind


def kind_of(module: nn.Module, parent: nn.Module | None = None) -> ModuleKind | None:
    """The kind a float ``module`` converts as, or ``None`` where no packed class reproduces it exactly."""
    # MultiheadAttention reads out_proj.weight directly instead of calling out_proj.
    if isinstance(parent, nn.MultiheadAttention):
        return None
    return next((kind for kind in MODULE_KINDS.values() if kind.packed.accepts(module)), None)


def kind_of_qat(module: QATModule) -> ModuleKind:
    """The kind of a QAT module (what ``freeze`` packs it into)."""
    return next(kind for kind in MODULE_KINDS.values() if isinstance(module, kind.qat))


for _kind in (
    ModuleKind("lstm", PackedLSTM, QATLSTM),
    ModuleKind("embedding", PackedEmbedding, QATEmbedding),
    ModuleKind("conv1d", PackedConv1d, QATConv1d),
    ModuleKind("linear", PackedLinear, QATLinear),
):
    register_kind(_kind)
