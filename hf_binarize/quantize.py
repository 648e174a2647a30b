"""The model walk: decide for every module whether it is binarized, kept at int8 or kept float, and swap it; and the
dtype every other tensor of a packed model is saved in.

**What a packed checkpoint stores in float16.** The tensors no weight format covers: the biases of packed modules
and every floating tensor of the modules the walk never converts (norms and their running statistics, depthwise
and 2-D convolutions, attention's positional biases), except in modules the model keeps in float32 itself
(``_keep_in_fp32_modules``) or ties. Modules the config keeps ``"float"`` are quantizable modules left as they are
and keep the checkpoint's dtype, biases included. float16 and not bfloat16: these tensors sit in affine maps where
their relative error passes straight to the activations, float16 rounds 8x finer (11 significant bits against 8)
at the same size, and their magnitudes are far inside its range; a tensor that would overflow it or lose precision
in its subnormal range (:func:`hf_binarize.formats.storage.fits`) keeps its dtype. Loading casts them back to the
dtype of the model being loaded (float32 unless asked otherwise), so the kernels see what they saw before: only
the file is smaller. :func:`storage_dtypes` decides, for ``save_pretrained`` and :func:`hf_binarize.size_report`
alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .config import BinaryQuantizationConfig, matches
from .formats import WeightFormat
from .formats.storage import fits
from .nn import PackedModule
from .nn.kinds import MODULE_KINDS, kind_of, kind_of_qat
from .nn.qat import QATModule

logger = logging.getLogger(__name__)

STORAGE_DTYPE = torch.float16
"""The dtype a packed checkpoint stores its unquantized float tensors in (see the module docstring)."""


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


def kept_float(model: nn.Module) -> set[str]:
    """Names of the modules a model keeps float whatever a config says: its tied weights' modules and its
    ``_keep_in_fp32_modules`` (and ``_strict``)."""
    tied = {key.rpartition(".")[0] for pair in getattr(model, "all_tied_weights_keys", {}).items() for key in pair}
    fp32 = [*(getattr(model, "_keep_in_fp32_modules", None) or []),
            *(getattr(model, "_keep_in_fp32_modules_strict", None) or [])]
    return tied | set(fp32)


def own_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors ``module`` itself (not its children) puts in a state dict: parameters and persistent buffers."""
    tensors = {key: t for key, t in module.named_buffers(recurse=False) if key not in module._non_persistent_buffers_set}
    tensors.update(module.named_parameters(recurse=False))
    return {key: t for key, t in tensors.items() if t is not None}


def is_packed(model: nn.Module) -> bool:
    """Whether ``model`` holds packed modules, i.e. saves as a packed checkpoint."""
    return any(isinstance(module, PackedModule) for module in model.modules())


def storage_dtypes(model: nn.Module) -> dict[str, torch.dtype]:
    """State-dict name -> dtype of every tensor a packed checkpoint stores in another dtype than the model holds it
    (:data:`STORAGE_DTYPE`; see the module docstring for which tensors and why). Empty for a model without packed
    modules: float and QAT checkpoints keep every tensor as it is."""
    if not is_packed(model):
        return {}
    keep = [pattern for pattern in kept_float(model) if pattern]
    parents = dict(model.named_modules())
    dtypes = {}
    for name, module in model.named_modules():
        if any(matches(name, pattern) for pattern in keep):
            continue
        if isinstance(module, PackedModule):
            tensors = {key: getattr(module, key) for key in module.float_names}
        elif kind_of(module, parents.get(name.rpartition(".")[0]) if name else None) is None:
            tensors = own_tensors(module)
        else:
            continue
        for key, tensor in tensors.items():
            if tensor is not None and tensor.is_floating_point() and tensor.element_size() > STORAGE_DTYPE.itemsize:
                values = tensor.detach()
                # Judged against the tensor's largest value: an entry deep in float16's subnormal range (a bias of
                # 1e-7 beside biases of 0.1) may lose its own digits; what it adds beside the others does not change.
                if values.numel() == 0 or fits(values, STORAGE_DTYPE, values.abs().max()):
                    dtypes[f"{name}.{key}" if name else key] = STORAGE_DTYPE
    return dtypes


def packed_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with each tensor in the dtype a packed checkpoint stores it in (:func:`storage_dtypes`)."""
    dtypes = storage_dtypes(model)
    return {key: tensor.to(dtypes[key]) if key in dtypes else tensor for key, tensor in model.state_dict().items()}
