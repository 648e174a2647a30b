"""LoRA adapters (PEFT) on a packed, frozen 1-bit base, with plain peft calls.

The packed modules hold signs and scales in buffers, so a packed model has nothing to train by itself; LoRA adds a
trainable float low-rank path ``scaling * B(A(dropout(x)))`` beside each targeted packed layer, and the packed
matmul passes gradients through to the layers below. :class:`LoraPackedLinear` wraps :class:`PackedLinear`,
:class:`LoraPackedConv1d` wraps :class:`PackedConv1d` (channels-first and ``channels_last``). Importing
``hf_binarize`` (which loading a packed model needs anyway) puts them in front of peft's LoRA dispatch as soon as
peft is imported (:func:`install`), so peft is used as for any model::

    from peft import LoraConfig, PeftModel, get_peft_model

    config = LoraConfig(r=8, target_modules=["q_proj", "v_proj", "linear1", "pointwise_conv1"])
    model = get_peft_model(packed_model, config)        # train, then model.save_pretrained("adapter")

    model = PeftModel.from_pretrained(packed_model, "adapter")

These behave as for ``nn.Linear`` and ``nn.Conv1d``: ``r``, ``lora_alpha``, ``use_rslora``, ``lora_dropout``,
``lora_bias``, several adapters, ``set_adapter``, ``disable_adapter()``, ``adapter_names`` batches,
``modules_to_save`` (for float modules: a packed module has no parameters to train). Int8 packed layers
(``module_overrides``) get the same LoRA layers. The adapter tensors have the shapes PEFT gives the float layer
(``[r, in]`` for a Linear, ``[r, in, 1]`` for a 1x1 conv), so an adapter trained on the packed model loads onto
the float or dequantized model, and back. Only plain LoRA is supported: DoRA and the other variants, and
initialisations computed from the base weight (PiSSA, OLoRA, LoftQ, ...), need a float weight and raise
``ValueError``.

Merging. ``merge``, ``merge_adapter`` and ``merge_and_unload`` raise ``RuntimeError`` on a packed layer:
``W_hat + scaling * B @ A`` is a dense matrix, not signs and scales. Re-binarizing it would keep only the entries
of the update large enough to flip a sign, plus a shift of each channel's scale; for a typical low-rank update
(small next to the scales) most of it would be lost, while the model would still be called binary. Either keep
the adapter unmerged (it runs beside the packed matmuls), or merge into float weights, knowingly::

    model.get_base_model().dequantize()   # packed modules become float ones; quantization_config is removed
    float_model = model.merge_and_unload()

(the same as loading the adapter onto ``AutoModel.from_pretrained(packed).dequantize()``). Use transformers'
``dequantize()``, not :func:`hf_binarize.dequantize_model`: the latter swaps the modules but leaves
``config.quantization_config``, so the merged model would be saved as if it were packed. Re-binarizing the merged
float model needs quantization-aware training again (``BinaryQuantizationConfig(mode="qat")``) to recover
accuracy. ``merge_and_unload`` visits layers in order, so a float layer targeted next to packed ones may already
be merged when a packed layer raises; the model still computes the same function.

PEFT has no LoRA layer for ``nn.LSTM``: a :class:`PackedLSTM` (the RNN-T prediction network) stays frozen, and
targeting it raises ``ValueError``; adapt the projection after it (``decoder.decoder_projector``) or the joint
instead. Other packed modules (:class:`PackedEmbedding`) raise too.

Needs ``peft>=0.19``, the first release that passes the ``LoraConfig`` to custom layers; tested with 0.19 to 0.21.
"""

from __future__ import annotations

import functools
from typing import Any, NoReturn

import peft
import torch
from packaging.version import Version
from peft import LoraConfig
from peft.tuners.lora.layer import Linear as LoraLinear
from peft.tuners.lora.model import LoraModel
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from ..nn import PackedConv1d, PackedLinear, PackedLSTM, PackedModule

if Version(peft.__version__) < Version("0.19"):
    # Older releases call custom LoRA layers with unpacked keyword arguments instead of the LoraConfig.
    raise ImportError(f"hf_binarize.integrations.peft needs peft>=0.19, found {peft.__version__}")

__all__ = ["LoraPackedConv1d", "LoraPackedLinear", "install", "register_lora"]

# LoRA initialisations that only need the shapes; the others read the base weight, which is packed here.
_SHAPE_ONLY_INITS = (True, False, "gaussian")


class LoraPackedLinear(LoraLinear):
    """PEFT's LoRA ``Linear`` around a :class:`PackedLinear`: the packed output plus ``scaling * B(A(dropout(x)))``.

    Created by PEFT's dispatch (see :func:`register_lora`), not by hand. ``merge`` raises while the base layer is
    packed and merges as PEFT does once it has been dequantized to a float layer.
    """

    def _get_in_out_features(self, module: nn.Module) -> tuple[int, int]:
        # PEFT's own lookup warns "unsupported layer type" for anything it does not know.
        return module.in_features, module.out_features

    def update_layer(self, adapter_name: str, r: int, lora_alpha: int, config: LoraConfig, **kwargs: Any) -> None:
        init = config.init_lora_weights
        if init not in _SHAPE_ONLY_INITS:
            raise ValueError(
                f"init_lora_weights={init!r} is computed from the base weight, which {type(self).__name__} keeps "
                "packed; use init_lora_weights=True, False or 'gaussian'"
            )
        super().update_layer(adapter_name, r, lora_alpha=lora_alpha, config=config, **kwargs)

    def resolve_lora_variant(self, *, config: LoraConfig, **kwargs: Any) -> None:
        variant = super().resolve_lora_variant(config=config, **kwargs)
        if variant is not None:
            raise ValueError(
                f"{type(self).__name__} supports plain LoRA only, not {type(variant).__name__} (DoRA and the other "
                "variants read or rescale the dense base weight, which is packed here)"
            )
        return None

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        """Merge into a dequantized (float) base layer; raise ``RuntimeError`` while the base layer is packed."""
        base = self.get_base_layer()
        if isinstance(base, PackedModule):
            raise RuntimeError(
                f"Cannot merge a LoRA adapter into a {type(base).__name__}: its weight is stored quantized "
                f"({base.fmt}), and adding the dense LoRA update makes it a float matrix. Keep the adapter "
                "unmerged (PeftModel runs it beside the packed matmul), or merge into float weights: call "
                "`model.get_base_model().dequantize()` first, then `merge_and_unload()`, which gives a float "
                "model without quantization_config. See hf_binarize.integrations.peft."
            )
        super().merge(safe_merge=safe_merge, adapter_names=adapter_names)


class LoraPackedConv1d(LoraPackedLinear):
    """LoRA around a 1x1 :class:`PackedConv1d`, channels-first or ``channels_last``.

    ``A`` and ``B`` are 1x1 convolutions of the class the packed conv replaced, as PEFT builds them for a float
    ``nn.Conv1d``: they take the input in the same layout as the base layer (a ``channels_last`` class transposes
    around its convolution) and their weights have the float layer's adapter shapes ``[r, in, 1]``, ``[out, r, 1]``.
    """

    def update_layer(self, adapter_name: str, r: int, lora_alpha: int, config: LoraConfig, **kwargs: Any) -> None:
        # PEFT's update_layer owns scaling, dropout, initialisation, device and trainability; it builds Linear
        # factors, which are swapped for convs holding the same (already initialised) weights.
        super().update_layer(adapter_name, r, lora_alpha=lora_alpha, config=config, **kwargs)
        base = self.get_base_layer()
        # After dequantize() the base is already the float conv class.
        conv_class = base.float_class if isinstance(base, PackedConv1d) else type(base)
        for factors in (self.lora_A, self.lora_B):
            factors[adapter_name] = _pointwise_conv(factors[adapter_name], conv_class)

    def get_delta_weight(self, adapter: str) -> torch.Tensor:
        """``scaling * B @ A`` as a 1x1 conv kernel ``[out, in, 1]`` (the shape of the dequantized conv weight)."""
        weight_a = self.lora_A[adapter].weight.squeeze(-1)
        weight_b = self.lora_B[adapter].weight.squeeze(-1)
        # Half-precision matmuls on CPU are slow or missing: compute in float32 as PEFT does.
        delta = weight_b.float() @ weight_a.float() * self.scaling[adapter]
        return delta.to(weight_b.dtype).unsqueeze(-1)


def _pointwise_conv(linear: nn.Linear, conv_class: type[nn.Conv1d]) -> nn.Conv1d:
    weight = linear.weight
    conv = conv_class(linear.in_features, linear.out_features, kernel_size=1, bias=linear.bias is not None,
                      device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight.unsqueeze(-1))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    conv.requires_grad_(weight.requires_grad)
    return conv


def _reject_packed(target: nn.Module, adapter_name: str, **kwargs: Any) -> NoReturn:
    """PEFT dispatch entry for packed modules that have no LoRA layer: fail with the reason instead of PEFT's
    generic "not supported"."""
    name = kwargs.get("target_name") or type(target).__name__
    if isinstance(target, PackedLSTM):
        raise ValueError(
            f"{name} is a PackedLSTM: PEFT has no LoRA layer for nn.LSTM, so the packed LSTM stays frozen. Remove "
            "it from target_modules; to adapt the prediction network, target the projection after it "
            "(e.g. decoder.decoder_projector) or the joint."
        )
    raise ValueError(
        f"{name} is a {type(target).__name__}, which has no LoRA layer in hf_binarize; LoRA is supported on "
        "PackedLinear and PackedConv1d. Keep this module float when quantizing (module_overrides) to adapt it."
    )


def dispatch_packed(target: nn.Module, adapter_name: str, config: LoraConfig, **kwargs: Any) -> nn.Module | None:
    """PEFT dispatcher: the LoRA layer for a packed module, ``None`` for anything else (peft's own dispatch)."""
    base = target.get_base_layer() if isinstance(target, BaseTunerLayer) else target
    # The subclass before its base class: a PackedConv1d is a PackedLinear.
    for packed_class, lora_class in ((PackedConv1d, LoraPackedConv1d), (PackedLinear, LoraPackedLinear)):
        if isinstance(base, packed_class):
            return lora_class(target, adapter_name, config=config, **kwargs)
    if isinstance(base, PackedModule):
        _reject_packed(base, adapter_name, **kwargs)
    return None


@functools.cache
def install() -> None:
    """Put :func:`dispatch_packed` in front of peft's LoRA dispatch (idempotent).

    peft offers third-party layers only a per-config registration (``LoraConfig._register_custom_module``), which
    ``adapter_config.json`` does not keep, so ``PeftModel.from_pretrained`` would not find it. Wrapping the one
    function that picks a LoRA layer for a module makes ``get_peft_model`` and ``PeftModel.from_pretrained`` work
    on packed models as they are called for any other model; modules that are not packed go to peft unchanged.
    """
    peft_create = LoraModel._create_new_module

    def create_new_module(lora_config, adapter_name, target, **kwargs):
        new_module = dispatch_packed(target, adapter_name, lora_config, **kwargs)
        return new_module if new_module is not None else peft_create(lora_config, adapter_name, target, **kwargs)

    LoraModel._create_new_module = staticmethod(create_new_module)


def register_lora(config: LoraConfig) -> LoraConfig:
    """Return ``config`` unchanged, with the packed dispatch installed: the explicit call that hf-binarize 0.1.0
    needed on every :class:`~peft.LoraConfig`, kept so that code written for it runs; plain peft calls need none."""
    install()
    return config
