"""An independent dense reference for packed modules: numpy's own bit unpacking and the published formulas."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hf_binarize import PackedModule


def dense_weight(module: PackedModule, name: str) -> torch.Tensor:
    """W_hat for matrix ``name`` of ``module``, float64, built from its stored tensors with numpy."""
    _out_features, in_features = module.matrices[name]
    stored = getattr(module, name).cpu()
    scale = getattr(module, name + "_scale").double().cpu().numpy()
    if module.fmt.method == "int8":
        # Stored flat, row-major ([N * K]).
        return torch.from_numpy(stored.numpy().reshape(-1, in_features).astype(np.float64) * scale)
    signs = np.unpackbits(stored.numpy(), axis=1, bitorder="little")[:, :in_features].astype(np.float64) * 2 - 1
    group = module.fmt.group_size or in_features
    columns = np.arange(in_features) // group
    dense = signs * scale[:, columns]
    if module.fmt.centred:
        dense += getattr(module, name + "_offset").double().cpu().numpy()[:, columns]
    return torch.from_numpy(dense)


def reference_model(float_model: nn.Module, packed_model: nn.Module) -> nn.Module:
    """``float_model`` with every weight that ``packed_model`` stores packed replaced by its dense reference."""
    with torch.no_grad():
        for name, module in packed_model.named_modules():
            if not isinstance(module, PackedModule):
                continue
            target = float_model.get_submodule(name)
            for matrix in module.quantized_names:
                param = getattr(target, matrix)
                param.copy_(dense_weight(module, matrix).reshape(param.shape).to(param.dtype))
    return float_model
