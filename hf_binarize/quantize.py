"""The model walk: decide for every module whether it is binarized, kept at int8 or kept float, and swap it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .config import BinaryQuantizationConfig, matches
from .formats import WeightFormat
from .nn import PackedModule
from .nn.kinds import MODULE_KINDS, kind_of, kind_of_qat
from .nn.qat import QATModule

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class ModulePlan:
    """What happens to one candidate module."""

    kind: str
    method: str
    fmt: WeightFormat | None
    reason: str


def plan_model(
    model: nn.Module, config: BinaryQuantizationConfig, keep_float: Iterable[str] = ()
) -> dict[str, ModulePlan]:
    """Decide binary / int8 / float for every Linear, 1x1 Conv1d, LSTM and Embedding of ``model``.

    ``keep_float``: module names or patterns that must stay float whatever the config says (tied weights,
    a model's ``_keep_in_fp32_modules``). Raises
    ``ValueError`` naming the field when a pattern of the config matches no module.
    """
    keep_float = [pattern for pattern in keep_float if pattern]
    parents = {name: module for name, module in model.named_modules()}
    names = [name for name in parents if name]
    for pattern in config.modules_to_not_convert or []:
        if not any(matches(name, pattern) for name in names):
            raise ValueError(_no_match("modules_to_not_convert", pattern, model, names))

    plans: dict[str, ModulePlan] = {}
    used_overrides: set[str] = set()
    for name, module in model.named_modules():
        found = kind_of(module, parents.get(name.rpartition(".")[0]) if name else None)
        if found is None or not name:
            continue
        kind = found.name
        pattern, override = config.override_for(name)
        if pattern is not None:
            used_overrides.add(pattern)
        if any(matches(name, pattern) for pattern in keep_float):
            plans[name] = ModulePlan(kind, "float", None, "tied or kept in fp32 by the model")
        elif config.is_excluded(name):
            plans[name] = ModulePlan(kind, "float", None, "modules_to_not_convert")
        elif override is not None:
            method = override["method"]
            if method == "binary" and kind == "embedding":
                raise ValueError(
                    f"module_overrides[{pattern!r}]: {name} is an nn.Embedding, which cannot be binarized; "
                    "use 'int8' or 'float'"
                )
            fmt = None if method == "float" else config.format_for(method, override)
            plans[name] = ModulePlan(kind, method, fmt, f"module_overrides[{pattern!r}]")
        elif kind in config.module_types:
            plans[name] = ModulePlan(kind, "binary", config.format_for("binary"), "module_types")
        else:
            plans[name] = ModulePlan(kind, "float", None, "not in module_types")
    for pattern in config.module_overrides:
        if pattern not in used_overrides:
            raise ValueError(_no_match("module_overrides", pattern, model, list(plans) or names))
    return plans


def _no_match(field: str, pattern: str, model: nn.Module, names: list[str]) -> str:
    examples = ", ".join(names[:6])
    return (
        f"{field}: pattern {pattern!r} matches no quantizable module of {type(model).__name__}; "
        f"module names look like: {examples}"
    )


def replace_modules(model: nn.Module, plans: dict[str, ModulePlan], config: BinaryQuantizationConfig,
                    fill: bool) -> nn.Module:
    """Swap every planned module for its packed form (``config.mode == "packed"``) or its QAT form (``"qat"``).

    ``fill=False`` builds empty shells on the meta device, for transformers' loader to fill. ``fill=True`` converts
    the module's float weights: quantized into a packed module, or copied as the latent weights of a QAT module.
    """
    for name, plan in plans.items():
        if plan.method == "float":
            continue
        module = model.get_submodule(name)
        device = _device_of(module) if fill else torch.device("meta")
        kind = MODULE_KINDS[plan.kind]
        with torch.device(device):
            if config.mode == "qat":
                learnable = config.learnable_scales and plan.method == "binary"
                new = kind.qat.from_float(module, plan.fmt, learnable)
            else:
                new = kind.packed.from_float(module, plan.fmt, config.torch_compute_dtype)
        if fill and config.mode == "qat":
            new.load_state_dict(module.state_dict(), strict=False)
            if new.learnable_scales:
                new.reset_scales()
        elif fill:
            new.fill_from(module)
        model.set_submodule(name, new)
    return model


def freeze(model: nn.Module) -> nn.Module:
    """End quantization-aware training: replace every QAT module by the packed module of its quantized weights.

    In place; also switches a transformers model's ``quantization_config.mode`` to ``"packed"`` so that
    ``save_pretrained`` writes a packed checkpoint (not the latent floats) that loads back packed.
    """
    config = getattr(getattr(model, "config", None), "quantization_config", None)
    is_ours = isinstance(config, BinaryQuantizationConfig)
    compute_dtype = config.torch_compute_dtype if is_ours else None
    for name, module in list(model.named_modules()):
        if isinstance(module, QATModule):
            with torch.device(_device_of(module)):
                packed = kind_of_qat(module).packed.from_float(module, module.fmt, compute_dtype)
            packed.fill_from(module)
            model.set_submodule(name, packed)
    if is_ours:
        config.mode, config.learnable_scales = "packed", False
    return model


def set_binarization_mix(model: nn.Module, mix: float) -> None:
    """Blend the QAT forward weights: ``mix * quantized + (1 - mix) * float`` (1.0, the default, is fully quantized).

    Raising ``mix`` from 0 to 1 over the first steps phases binarization in during a warm-up.
    """
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"mix must be within [0, 1], got {mix}")
    for module in model.modules():
        if isinstance(module, QATModule):
            module.mix = mix


def _device_of(module: nn.Module) -> torch.device:
    return next(iter(module.parameters())).device


def quantize_model(
    model: nn.Module, config: BinaryQuantizationConfig | None = None, keep_float: Iterable[str] = ()
) -> nn.Module:
    """Binarize a float model in memory, in place, and return it (QAT modules instead if ``config.mode == "qat"``).

    The same walk ``from_pretrained(..., quantization_config=config)`` runs, for models that are already loaded or
    are not transformers models. ``keep_float`` names modules to leave untouched.
    """
    config = config or BinaryQuantizationConfig()
    return replace_modules(model, plan_model(model, config, keep_float), config, fill=True)


def dequantize_model(model: nn.Module) -> nn.Module:
    """Replace every packed module by the float module holding the dense weights it stands for, in place.

    A transformers model also loses its ``quantization_config``, so that it saves and reloads as a float model.
    """
    replace_packed_with_float(model)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    return model


def replace_packed_with_float(model: nn.Module) -> nn.Module:
    for name, module in list(model.named_modules()):
        if isinstance(module, PackedModule):
            float_module = module.dequantize()
            model.set_submodule(name, float_module.to(_device_of_buffers(module)))
    return model


def _device_of_buffers(module: nn.Module) -> torch.device:
    return next(iter(module.buffers())).device
