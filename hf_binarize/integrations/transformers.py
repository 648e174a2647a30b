"""The transformers quantizer for ``quant_method="hf_binarize"``.

Policy only: when modules are swapped (before weights load, on the meta device), which checkpoint tensors are
quantized while loading, what is checked after. The mechanism lives in :mod:`hf_binarize.quantize` (the walk),
:mod:`hf_binarize.nn` (the modules) and :mod:`hf_binarize.formats` (the tensors).

A float checkpoint is quantized tensor by tensor as it is read, so no second float copy of the model exists. A
packed checkpoint stores the packed tensors under the modules' own names and loads into the packed modules as is.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

import torch
from transformers.core_model_loading import ConversionOps
from transformers.quantizers import HfQuantizer, register_quantization_config, register_quantizer
from transformers.quantizers.auto import AUTO_QUANTIZATION_CONFIG_MAPPING, AUTO_QUANTIZER_MAPPING

from ..config import QUANT_METHOD, BinaryQuantizationConfig
from ..nn import PackedModule
from ..nn.qat import QATModule
from ..quantize import (
    is_packed,
    kept_float,
    packed_state_dict,
    plan_model,
    replace_modules,
    replace_packed_with_float,
)
from .tdt_generation import suppress_durations


def _module_and_tensor(model: torch.nn.Module, param_name: str) -> tuple[torch.nn.Module, str]:
    module_name, _, tensor_name = param_name.rpartition(".")
    return (model.get_submodule(module_name) if module_name else model), tensor_name


# Float bytes converted between two trims. On the 0.6B shape (2.4 GB float, bench/load_memory.py) trimming after
# every matrix held the peak to 10% of the float size but took the load from 7 s to 12.6 s; every 64 MiB it peaked
# at 15% in 9.5 s; every 512 MiB, 32% in 7.9 s.
TRIM_EVERY_BYTES = 64 << 20


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or ``None`` where the C library is another (musl, macOS, Windows)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Give the heap's free pages back to the system where the C library is glibc.

    glibc keeps freed float tensors of up to 32 MiB in its heap (its mmap threshold rises to the size of the
    largest freed block), so without this a process that binarized a 2.4 GB checkpoint on load kept 1.7-2.3 GB of
    anonymous memory it no longer used: the float matrices, each freed after its conversion.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class _QuantizeOnLoad(ConversionOps):
    """Turns one float matrix read from a checkpoint into the packed tensors of its module."""

    def __init__(self, hf_quantizer: BinaryHfQuantizer):
        self.hf_quantizer = hf_quantizer

    def convert(self, input_dict: dict[str, Any], model=None, full_layer_name: str | None = None, **kwargs):
        (value,) = input_dict.values()
        value = value[0] if isinstance(value, list) else value
        module, tensor_name = _module_and_tensor(model, full_layer_name)
        prefix = full_layer_name[: -len(tensor_name)]
        # transformers frees each float matrix after its conversion returns, so a trim here returns the earlier
        # ones' memory. Not after every matrix: each trim costs its pages' faults again on the next matrix.
        self.hf_quantizer.bytes_since_trim += value.numel() * value.element_size()
        if self.hf_quantizer.bytes_since_trim >= TRIM_EVERY_BYTES:
            release_freed_memory()
            self.hf_quantizer.bytes_since_trim = 0
        return {prefix + key: tensor for key, tensor in module.quantize_matrix(tensor_name, value).items()}


class BinaryHfQuantizer(HfQuantizer):
    """Binarizes Linear, 1x1 Conv1d and LSTM weights while loading; loads packed checkpoints back.

    In ``mode="qat"`` the modules keep latent float weights (loaded as they are) and quantize them in every forward;
    :func:`hf_binarize.freeze` packs them at the end of training.
    """

    requires_calibration = False
    # Float bytes converted since glibc last trimmed the heap (see _QuantizeOnLoad.convert).
    bytes_since_trim = 0
    quantization_config: BinaryQuantizationConfig

    def _process_model_before_weight_loading(self, model, keep_in_fp32_modules: list[str] | None = None, **kwargs):
        keep_float = kept_float(model) | set(keep_in_fp32_modules or [])
        self.plans = plan_model(model, self.quantization_config, keep_float)
        replace_modules(model, self.plans, self.quantization_config, fill=False)
        if self.quantization_config.learnable_scales:
            # Learned scales start from the weights after loading, unless a QAT checkpoint carries them.
            model._keys_to_ignore_on_load_missing = [*(model._keys_to_ignore_on_load_missing or []), r"_alpha$"]
        return model

    def param_needs_quantization(self, model, param_name: str, **kwargs) -> bool:
        if self.quantization_config.mode == "qat":
            return False
        module, tensor_name = _module_and_tensor(model, param_name)
        if self.pre_quantized:
            # True lets a tensor of an older layout past transformers' shape check (the only use of this answer
            # for pre-quantized checkpoints); adopt_legacy_layout converts it and check_tensors checks every shape.
            return isinstance(module, PackedModule) and module.is_legacy_tensor(tensor_name)
        return isinstance(module, PackedModule) and tensor_name in module.quantized_names

    def get_new_dtype(self, converter, param, dtype: torch.dtype | None) -> torch.dtype | None:
        """No cast into an integer tensor: transformers would turn a float tensor stored where packed bits or int8
        weights belong into random signs or integers; kept as stored, check_tensors names its dtype instead."""
        dtype = super().get_new_dtype(converter, param, dtype)
        return None if dtype is not None and not dtype.is_floating_point else dtype

    def get_quantize_ops(self) -> ConversionOps:
        return _QuantizeOnLoad(self)

    def param_element_size(self, model, param_name: str, param: torch.Tensor) -> float:
        module, tensor_name = _module_and_tensor(model, param_name)
        if not self.pre_quantized and isinstance(module, PackedModule) and tensor_name in module.quantized_names:
            in_features = module.matrices[tensor_name][1]
            return module.fmt.bits_per_weight(in_features) / 8
        return param.element_size()

    def _process_model_after_weight_loading(self, model, **kwargs):
        if not self.pre_quantized and self.quantization_config.mode != "qat":
            release_freed_memory()  # the last float matrix's
        for name, module in model.named_modules():
            if isinstance(module, PackedModule):
                module.adopt_legacy_layout()
                module.check_tensors(name, from_checkpoint=True)
            elif isinstance(module, QATModule) and module.learnable_scales:
                alphas = [getattr(module, n + "_alpha") for n in module.quantized_names]
                if not all(getattr(alpha, "_is_hf_initialized", False) for alpha in alphas):
                    module.reset_scales()
        # Here rather than at save time: a TDT checkpoint from the Hub, packed or float, lacks it, and loading is
        # the one path every packed and QAT model takes (from_pretrained reads the generation config before this).
        if getattr(model, "generation_config", None) is not None:
            suppress_durations(model.generation_config, model.config)
        return model

    def get_state_dict_and_metadata(self, model):
        """What ``save_pretrained`` writes: a packed model's state dict with its unquantized float tensors in
        float16 (:func:`hf_binarize.quantize.storage_dtypes`); ``None`` (the model's own state dict) for a QAT model,
        and for adapters, which peft saves from that state dict at their own precision."""
        if getattr(model, "_hf_peft_config_loaded", False) or not is_packed(model):
            return None, {}
        return packed_state_dict(model), {}

    def _dequantize(self, model, dtype=None):
        return replace_packed_with_float(model)

    def is_serializable(self) -> bool:
        return True

    @property
    def is_trainable(self) -> bool:
        # Adapters (PEFT) train on a packed base: the packed ops have a backward for their input.
        return True

    @property
    def is_qat_trainable(self) -> bool:
        # Packed weights hold signs, not latent floats: only mode "qat" has weights for training to update.
        return self.quantization_config.mode == "qat"

    @property
    def is_compileable(self) -> bool:
        return True


def register() -> None:
    """Make ``quant_method="hf_binarize"`` known to transformers (idempotent)."""
    if QUANT_METHOD not in AUTO_QUANTIZATION_CONFIG_MAPPING:
        register_quantization_config(QUANT_METHOD)(BinaryQuantizationConfig)
    if QUANT_METHOD not in AUTO_QUANTIZER_MAPPING:
        register_quantizer(QUANT_METHOD)(BinaryHfQuantizer)
