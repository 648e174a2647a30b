"""The Parakeet families hf-binarize evaluates, quantizes and transcribes, told apart by their checkpoint's config.

``rnnt`` and ``tdt`` transducers decode greedily with ``generate``, which reports the frame advance of every step;
``ctc`` models emit one token per encoder frame (the argmax), repeats merged and blanks (the config's
``pad_token_id``) dropped. Each family loads with its own transformers auto class.
"""

from __future__ import annotations

from transformers import AutoModelForCTC, AutoModelForRNNT, AutoModelForTDT, PretrainedConfig
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CTC_MAPPING_NAMES,
    MODEL_FOR_RNNT_MAPPING_NAMES,
    MODEL_FOR_TDT_MAPPING_NAMES,
)

# TDT before RNN-T: a model type is looked up in this order.
FAMILIES = {
    "tdt": (AutoModelForTDT, MODEL_FOR_TDT_MAPPING_NAMES),
    "rnnt": (AutoModelForRNNT, MODEL_FOR_RNNT_MAPPING_NAMES),
    "ctc": (AutoModelForCTC, MODEL_FOR_CTC_MAPPING_NAMES),
}


def family_of(config: PretrainedConfig) -> str | None:
    """``"rnnt"``, ``"tdt"`` or ``"ctc"`` for a speech model's config, ``None`` for anything else."""
    return next((name for name, (_, types) in FAMILIES.items() if config.model_type in types), None)


def supported_model_types() -> list[str]:
    return [model_type for _, types in FAMILIES.values() for model_type in types]


def auto_class(config: PretrainedConfig) -> type:
    """The transformers auto class that loads a checkpoint with this config."""
    family = family_of(config)
    if family is None:
        raise ValueError(f"a {config.model_type!r} model is not a speech model hf-binarize reads; it reads "
                         f"{', '.join(supported_model_types())}")
    return FAMILIES[family][0]


def blank_id(config: PretrainedConfig) -> int:
    """The id a model emits for 'no token': the transducers' blank, CTC's pad token."""
    return config.pad_token_id if family_of(config) == "ctc" else config.blank_token_id
