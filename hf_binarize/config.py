"""``BinaryQuantizationConfig``: what to binarize, what to keep at int8 or float, and how to scale."""

from __future__ import annotations

import copy
import re
from typing import Any

import torch
from transformers.utils.quantization_config import QuantizationConfigMixin

from .formats import BinaryFormat, Int8Format, WeightFormat
from .formats.binary import PACKING_FORMAT
from .formats.int8 import INT8_FORMAT

QUANT_METHOD = "hf_binarize"
MODULE_TYPES = ("linear", "conv1d", "lstm")
METHODS = ("binary", "int8", "float")
MODES = ("packed", "qat")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_OVERRIDE_KEYS = {"method", "group_size", "centred"}


class BinaryQuantizationConfig(QuantizationConfigMixin):
    """Configuration of 1-bit weight binarization for ``from_pretrained(..., quantization_config=...)``.

    Every ``nn.Linear``, 1x1 ``nn.Conv1d`` and ``nn.LSTM`` (those named in ``module_types``) is stored as
    ``W ~ offset + scale * sign(W - offset)`` with signs packed 8 per byte; everything else stays float.

    Module patterns (in ``modules_to_not_convert`` and ``module_overrides``) follow transformers' rules: a pattern
    matches a module name from the start up to a ``.`` boundary (``"decoder"`` matches ``decoder.lstm``), as a
    regular expression with the same boundary (``"encoder.layers.*.feed_forward1"``), or as a suffix (``"head"``).

    Args:
        module_types: which torch module types to binarize by default, any of ``"linear"``, ``"conv1d"`` (kernel
            size 1 only), ``"lstm"``.
        modules_to_not_convert: patterns of modules to keep in float. Wins over ``module_overrides``.
        module_overrides: pattern -> ``"binary"``, ``"int8"``, ``"float"`` or a dict ``{"method": ..., "group_size":
            ..., "centred": ...}``. The first matching pattern, in order, decides a module. ``"int8"`` (one scale per
            output channel, weights only) also applies to ``nn.Embedding``, e.g. ``{"decoder.embedding": "int8",
            "joint": "int8"}``.
        group_size: inputs per scale; ``None`` gives one scale per output channel. A positive multiple of 8.
        centred: binarize ``W - mean`` and keep the mean as a per-channel (or per-group) offset.
        scale_dtype: dtype of stored scales and offsets: ``"float16"``, ``"bfloat16"`` or ``"float32"``.
        compute_dtype: dtype the packed matmuls run in; ``None`` runs them in the input's dtype.
        activations: ``"float"`` (default) multiplies the binary layers' inputs as they are; ``"int8"`` quantizes each
            input row of a binary layer to int8 with its own scale (``max |x| / 127``, computed at run time) and
            multiplies it by the signs with integer dot products (AVX512-VNNI or AVX2 on CPU): faster where many
            rows are multiplied at once (an encoder's frames), at some accuracy cost to measure on your data. Needs
            one scale per output channel and no offset (``group_size=None``, ``centred=False``, no override setting
            either). Stored weights are the same either way; int8 and float layers are unaffected, and in
            ``mode="qat"`` training runs with float activations (the setting applies to the packed model).
        packing_format: the packed layout; only ``"sign-lsb-v1"`` exists (see :mod:`hf_binarize.formats.binary`). Stored so a
            checkpoint says how to read it.
        int8_format: the int8 layout; only ``"int8-flat-v2"`` exists (see :class:`hf_binarize.Int8Format`; folders
            of ``int8-per-channel-v1``, from before the field existed, load too).
        mode: ``"packed"`` stores packed weights for inference; ``"qat"`` keeps latent float weights that every
            forward quantizes (straight-through gradients) for quantization-aware training, until
            :func:`hf_binarize.freeze` packs them.
        learnable_scales: in ``"qat"`` mode, train the binary scales as parameters (initialised to ``mean |W|``)
            instead of recomputing them from the weights.
    """

    def __init__(
        self,
        module_types: list[str] | tuple[str, ...] = MODULE_TYPES,
        modules_to_not_convert: list[str] | None = None,
        module_overrides: dict[str, str | dict[str, Any]] | None = None,
        group_size: int | None = None,
        centred: bool = False,
        scale_dtype: str = "float16",
        compute_dtype: str | None = None,
        activations: str = "float",
        packing_format: str = PACKING_FORMAT,
        int8_format: str = INT8_FORMAT,
        mode: str = "packed",
        learnable_scales: bool = False,
        **kwargs: Any,
    ):
        kwargs.pop("quant_method", None)
        if kwargs:
            raise ValueError(
                f"BinaryQuantizationConfig got unknown fields {sorted(kwargs)}; "
                "the checkpoint was written by a newer hf_binarize or the config is misspelt"
            )
        self.quant_method = QUANT_METHOD
        self.module_types = list(module_types)
        self.modules_to_not_convert = None if modules_to_not_convert is None else list(modules_to_not_convert)
        self.module_overrides = {
            pattern: _normalise_override(pattern, value) for pattern, value in (module_overrides or {}).items()
        }
        self.group_size = group_size
        self.centred = centred
        self.scale_dtype = scale_dtype
        self.compute_dtype = compute_dtype
        self.activations = activations
        self.packing_format = packing_format
        self.int8_format = int8_format
        self.mode = mode
        self.learnable_scales = learnable_scales
        self.post_init()

    def post_init(self) -> None:
        """Check every field; raises ``ValueError`` naming the field and the accepted values."""
        unknown = [t for t in self.module_types if t not in MODULE_TYPES]
        if unknown:
            raise ValueError(f"module_types: unknown type(s) {unknown}; choose from {list(MODULE_TYPES)}")
        _check_group_size("group_size", self.group_size)
        if not isinstance(self.centred, bool):
            raise ValueError(f"centred must be True or False, got {self.centred!r}")
        if self.scale_dtype not in _DTYPES:
            raise ValueError(f"scale_dtype must be one of {list(_DTYPES)}, got {self.scale_dtype!r}")
        if self.compute_dtype is not None and self.compute_dtype not in _DTYPES:
            raise ValueError(f"compute_dtype must be None or one of {list(_DTYPES)}, got {self.compute_dtype!r}")
        self._check_binary_formats()
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if not isinstance(self.learnable_scales, bool):
            raise ValueError(f"learnable_scales must be True or False, got {self.learnable_scales!r}")
        if self.learnable_scales and self.mode != "qat":
            raise ValueError("learnable_scales needs mode='qat': packed scales are fixed")
        if self.packing_format != PACKING_FORMAT:
            raise ValueError(
                f"packing_format {self.packing_format!r} is not known to this hf_binarize (it reads {PACKING_FORMAT!r}); "
                "upgrade hf_binarize"
            )
        if self.int8_format != INT8_FORMAT:
            raise ValueError(
                f"int8_format {self.int8_format!r} is not known to this hf_binarize (it reads {INT8_FORMAT!r}); "
                "upgrade hf_binarize"
            )
        for name in ("modules_to_not_convert",):
            patterns = getattr(self, name)
            if patterns is not None and not all(isinstance(p, str) and p for p in patterns):
                raise ValueError(f"{name} must be a list of non-empty strings, got {patterns!r}")
        for pattern in list(self.modules_to_not_convert or []) + list(self.module_overrides):
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"module pattern {pattern!r} is not a valid regular expression: {error}") from None

    def _check_binary_formats(self) -> None:
        """Build every binary format the config makes, so that an invalid ``activations`` (or one the format cannot
        take with these scale options) fails here, naming the override it comes from."""
        scopes = {"": None} | {f"module_overrides[{pattern!r}]: ": override
                               for pattern, override in self.module_overrides.items() if override["method"] == "binary"}
        for where, override in scopes.items():
            try:
                self.format_for("binary", override)
            except ValueError as error:
                raise ValueError(f"{where}{error}") from None

    @property
    def torch_scale_dtype(self) -> torch.dtype:
        return _DTYPES[self.scale_dtype]

    @property
    def torch_compute_dtype(self) -> torch.dtype | None:
        return None if self.compute_dtype is None else _DTYPES[self.compute_dtype]

    def format_for(self, method: str, override: dict[str, Any] | None = None) -> WeightFormat:
        """The weight format for ``method`` (``"binary"`` or ``"int8"``), with an override's scale options."""
        if method == "int8":
            return Int8Format(self.torch_scale_dtype)
        override = override or {}
        return BinaryFormat(
            group_size=override.get("group_size", self.group_size),
            centred=override.get("centred", self.centred),
            scale_dtype=self.torch_scale_dtype,
            activations=self.activations,
        )

    def override_for(self, module_name: str) -> tuple[str | None, dict[str, Any] | None]:
        """The first override pattern matching ``module_name`` and its settings, or ``(None, None)``."""
        for pattern, override in self.module_overrides.items():
            if matches(module_name, pattern):
                return pattern, override
        return None, None

    def is_excluded(self, module_name: str) -> bool:
        return any(matches(module_name, p) for p in self.modules_to_not_convert or [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "quant_method": self.quant_method,
            "module_types": list(self.module_types),
            "modules_to_not_convert": copy.deepcopy(self.modules_to_not_convert),
            "module_overrides": copy.deepcopy(self.module_overrides),
            "group_size": self.group_size,
            "centred": self.centred,
            "scale_dtype": self.scale_dtype,
            "compute_dtype": self.compute_dtype,
            "activations": self.activations,
            "packing_format": self.packing_format,
            "int8_format": self.int8_format,
            "mode": self.mode,
            "learnable_scales": self.learnable_scales,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BinaryQuantizationConfig) and self.to_dict() == other.to_dict()


def matches(module_name: str, pattern: str) -> bool:
    """transformers' module-pattern rule: prefix or regex up to a ``.`` boundary, or a suffix."""
    boundary = r"(?:(?<=\.)|(?=\.|$))"
    return bool(re.match(rf"(?:{pattern}){boundary}", module_name)) or module_name.endswith(pattern)


def _check_group_size(field: str, group_size: Any) -> None:
    if group_size is None:
        return
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size <= 0 or group_size % 8:
        raise ValueError(f"{field} must be None or a positive multiple of 8, got {group_size!r}")


def _normalise_override(pattern: str, value: str | dict[str, Any]) -> dict[str, Any]:
    field = f"module_overrides[{pattern!r}]"
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"module_overrides keys must be non-empty module patterns, got {pattern!r}")
    override = {"method": value} if isinstance(value, str) else dict(value) if isinstance(value, dict) else None
    if override is None:
        raise ValueError(f"{field} must be a method name or a dict, got {value!r}")
    unknown = set(override) - _OVERRIDE_KEYS
    if unknown:
        raise ValueError(f"{field}: unknown keys {sorted(unknown)}; allowed are {sorted(_OVERRIDE_KEYS)}")
    if override.get("method") not in METHODS:
        raise ValueError(f"{field}: method must be one of {list(METHODS)}, got {override.get('method')!r}")
    if override["method"] != "binary" and len(override) > 1:
        raise ValueError(f"{field}: group_size and centred apply only to method 'binary'")
    _check_group_size(f"{field}['group_size']", override.get("group_size"))
    if "centred" in override and not isinstance(override["centred"], bool):
        raise ValueError(f"{field}['centred'] must be True or False, got {override['centred']!r}")
    return override
