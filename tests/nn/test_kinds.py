"""The module-kind registry: which float modules convert, as what, and how a new kind plugs in."""

import pytest
import torch
from torch import nn

from hf_binarize import BinaryQuantizationConfig, freeze, quantize_model
from hf_binarize.nn import MODULE_KINDS, ModuleKind, PackedLinear, register_kind
from hf_binarize.nn.kinds import kind_of
from hf_binarize.nn.qat import QATLinear


class ScaledLinear(nn.Linear):
    """A Linear subclass with its own forward: converting it as a plain Linear would drop the scaling."""

    def forward(self, x):
        return 2 * super().forward(x)


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (nn.Linear(4, 3), "linear"),
        (nn.Conv1d(4, 3, 1), "conv1d"),
        (nn.Conv1d(4, 3, 3), None),  # not a channel mix
        (nn.Conv1d(4, 4, 1, groups=2), None),
        (nn.LSTM(4, 3), "lstm"),
        (nn.LSTM(4, 3, proj_size=2), None),
        (nn.GRU(4, 3), None),
        (nn.Embedding(10, 4), "embedding"),
        (nn.Embedding(10, 4, max_norm=1.0), None),
        (ScaledLinear(4, 3), None),
        (nn.LayerNorm(4), None),
    ],
)
def test_kind_of(module, expected):
    kind = kind_of(module)
    assert (kind.name if kind else None) == expected


def test_attention_out_proj_is_left_alone():
    attention = nn.MultiheadAttention(8, 2)
    assert kind_of(attention.out_proj) is not None
    assert kind_of(attention.out_proj, parent=attention) is None


def test_registered_kinds_match_config_names():
    assert set(BinaryQuantizationConfig().module_types) <= set(MODULE_KINDS)
    for kind in MODULE_KINDS.values():
        assert issubclass(kind.qat, kind.replaces), kind


def test_duplicate_kind_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_kind(ModuleKind("linear", PackedLinear, QATLinear))


def test_packed_linear_from_float_keeps_shape_and_dtype():
    linear = nn.Linear(16, 5, bias=False, dtype=torch.float64)
    packed = MODULE_KINDS["linear"].packed.from_float(linear, BinaryQuantizationConfig().format_for("binary"), None)
    assert packed.matrices == {"weight": (5, 16)} and packed.bias is None and packed.dtype == torch.float64


def test_freeze_packs_each_qat_kind_into_its_registered_class():
    model = nn.ModuleDict({"linear": nn.Linear(16, 8), "conv": nn.Conv1d(16, 8, 1), "lstm": nn.LSTM(16, 8),
                           "embedding": nn.Embedding(20, 16)})
    config = BinaryQuantizationConfig(mode="qat", module_overrides={"embedding": "int8"})
    quantize_model(model, config)
    assert {name: type(m).__name__ for name, m in model.items()} == {
        "linear": "QATLinear", "conv": "QATConv1d", "lstm": "QATLSTM", "embedding": "QATEmbedding"}
    freeze(model)
    assert {name: type(m) for name, m in model.items()} == {
        "linear": MODULE_KINDS["linear"].packed, "conv": MODULE_KINDS["conv1d"].packed,
        "lstm": MODULE_KINDS["lstm"].packed, "embedding": MODULE_KINDS["embedding"].packed}
