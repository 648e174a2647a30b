"""BinaryQuantizationConfig: validation, serialisation, pattern rules."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoConfig
from transformers.quantizers import AutoQuantizationConfig
from transformers.quantizers.quantizers_utils import should_convert_module

from hf_binarize import PACKING_FORMAT, BinaryFormat, BinaryQuantizationConfig, Int8Format
from hf_binarize.config import matches


def full_config() -> BinaryQuantizationConfig:
    return BinaryQuantizationConfig(
        module_types=["linear", "lstm"],
        modules_to_not_convert=["encoder.subsampling"],
        module_overrides={"joint": "int8", "decoder.lstm": {"method": "binary", "group_size": 16, "centred": True},
                          "decoder.embedding": "float"},
        group_size=64,
        centred=False,
        scale_dtype="bfloat16",
        compute_dtype="float32",
    )


def test_defaults_binarize_linear_conv_lstm_with_per_channel_fp16_scales():
    config = BinaryQuantizationConfig()
    assert config.quant_method == "hf_binarize"
    assert config.module_types == ["linear", "conv1d", "lstm"]
    assert config.group_size is None and config.centred is False
    assert config.format_for("binary") == BinaryFormat(None, False, torch.float16)
    assert config.packing_format == PACKING_FORMAT and config.int8_format == "int8-flat-v2"


def test_round_trips_through_dict_and_json(tmp_path):
    config = full_config()
    assert BinaryQuantizationConfig.from_dict(config.to_dict()) == config
    path = tmp_path / "q.json"
    config.to_json_file(path)
    assert BinaryQuantizationConfig.from_dict(json.loads(path.read_text())) == config
    # transformers' own dispatcher finds our class by quant_method once hf_binarize is imported.
    assert AutoQuantizationConfig.from_dict(json.loads(path.read_text())) == config


def test_activations_default_to_float_and_round_trip():
    assert BinaryQuantizationConfig().activations == "float"
    # Configs saved before the field existed load with float activations.
    old = {key: value for key, value in BinaryQuantizationConfig().to_dict().items() if key != "activations"}
    assert BinaryQuantizationConfig.from_dict(old).format_for("binary").activations == "float"
    config = BinaryQuantizationConfig(activations="int8", module_overrides={"joint": "int8", "decoder": "binary"})
    assert BinaryQuantizationConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.format_for("binary") == BinaryFormat(activations="int8")
    assert config.format_for("int8") == Int8Format()


def test_round_trips_through_a_model_config_json(tmp_path):
    model_config = AutoConfig.for_model("llama", hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=32, vocab_size=10)
    model_config.quantization_config = full_config().to_dict()
    model_config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert BinaryQuantizationConfig.from_dict(reloaded.quantization_config) == full_config()


def test_overrides_are_normalised_to_dicts():
    config = BinaryQuantizationConfig(module_overrides={"joint": "int8"})
    assert config.module_overrides == {"joint": {"method": "int8"}}
    assert config.override_for("joint.head") == ("joint", {"method": "int8"})
    assert config.override_for("decoder.lstm") == (None, None)


def test_first_matching_override_wins():
    config = BinaryQuantizationConfig(module_overrides={"joint.head": "float", "joint": "int8"})
    assert config.override_for("joint.head")[1] == {"method": "float"}
    assert config.override_for("joint.other")[1] == {"method": "int8"}


def test_format_for_applies_override_scale_options():
    config = full_config()
    _, override = config.override_for("decoder.lstm")
    assert config.format_for("binary", override) == BinaryFormat(16, True, torch.bfloat16)
    assert config.format_for("binary") == BinaryFormat(64, False, torch.bfloat16)
    assert config.format_for("int8") == Int8Format(torch.bfloat16)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"module_types": ["linear", "gru"]}, "module_types"),
        ({"group_size": 12}, "group_size"),
        ({"group_size": 0}, "group_size"),
        ({"group_size": -8}, "group_size"),
        ({"group_size": 8.0}, "group_size"),
        ({"group_size": True}, "group_size"),
        ({"centred": "yes"}, "centred"),
        ({"scale_dtype": "float8"}, "scale_dtype"),
        ({"compute_dtype": "int8"}, "compute_dtype"),
        ({"activations": "int4"}, "activations must be one of"),
        ({"activations": "int8", "group_size": 64}, "activations='int8' needs one scale per output channel"),
        ({"activations": "int8", "centred": True}, "set group_size=None and centred=False"),
        ({"activations": "int8", "module_overrides": {"joint": {"method": "binary", "group_size": 16}}},
         r"module_overrides\['joint'\]: activations='int8'"),
        ({"packing_format": "sign-msb-v9"}, "packing_format"),
        ({"int8_format": "int8-per-channel-v9"}, "int8_format"),
        ({"modules_to_not_convert": [""]}, "modules_to_not_convert"),
        ({"modules_to_not_convert": ["joint("]}, "not a valid regular expression"),
        ({"module_overrides": {"joint": "int4"}}, r"module_overrides\['joint'\]: method"),
        ({"module_overrides": {"joint": {"method": "binary", "group_size": 10}}}, r"module_overrides\['joint'\]"),
        ({"module_overrides": {"joint": {"method": "int8", "group_size": 64}}}, "apply only to method 'binary'"),
        ({"module_overrides": {"joint": {"method": "binary", "bits": 2}}}, "unknown keys"),
        ({"module_overrides": {"joint": 8}}, "must be a method name or a dict"),
        ({"quant_method": "hf_binarize", "bits": 1}, "unknown fields"),
    ],
)
def test_invalid_values_raise_value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        BinaryQuantizationConfig(**kwargs)


@pytest.mark.parametrize(
    "name",
    ["encoder.layers.1.attn", "encoder.layers.11.attn", "joint.head", "joint", "decoder.lstm", "model.lm_head",
     "ctc_head", "mlp.gate_proj", "mlp.gate"],
)
@pytest.mark.parametrize(
    "pattern", ["encoder.layers.1", "encoder.layers.*", "head", "joint", "lstm", "mlp.gate", "layers.1.attn", "lm_head"]
)
def test_pattern_rule_matches_transformers(name, pattern):
    """Patterns mean what they mean in transformers' own modules_to_not_convert."""
    assert matches(name, pattern) == (not should_convert_module(name, [pattern]))
