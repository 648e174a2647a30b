"""The groups of quantizable modules a sensitivity analysis binarizes one at a time.

A group is a module of the model's own structure: each layer of a layer list splits into its blocks
(``encoder.layers.3.feed_forward1``, ``encoder.layers.3.self_attn``, ``encoder.layers.3.conv``), and everything
else is grouped two names deep (``encoder.subsampling``, ``encoder_projector``, ``decoder.embedding``,
``decoder.lstm``, ``decoder.decoder_projector``, ``joint.head``, CTC's ``ctc_head``). A group's name is also a
module pattern of :class:`hf_binarize.BinaryQuantizationConfig` that matches exactly its modules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from torch import nn

from ..config import BinaryQuantizationConfig, matches
from ..quantize import plan_model

# A block of one layer of a layer list: "encoder.layers.3.self_attn" of "encoder.layers.3.self_attn.q_proj".
_LAYER_BLOCK = re.compile(r"((?:.+?\.)?layers\.\d+\.[^.]+)(?:\.|$)")


def group_of(module_name: str) -> str:
    """The group of the quantizable module ``module_name`` (see the module docstring)."""
    block = _LAYER_BLOCK.match(module_name)
    return block[1] if block else ".".join(module_name.split(".")[:2])


def module_groups(model: nn.Module, keep_float: Iterable[str] = ()) -> dict[str, dict[str, str]]:
    """Group name -> ``{module name: kind}`` of every module the model walk could quantize (Linear, 1x1 Conv1d,
    LSTM, Embedding), in model order, leaving out the modules in ``keep_float`` (tied, kept in fp32 by the
    model), which no config converts."""
    keep = [pattern for pattern in keep_float if pattern]
    groups: dict[str, dict[str, str]] = {}
    for name, plan in plan_model(model, BinaryQuantizationConfig(), keep).items():
        if not any(matches(name, pattern) for pattern in keep):
            groups.setdefault(group_of(name), {})[name] = plan.kind
    return groups
