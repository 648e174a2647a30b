"""Module groups of the sensitivity analysis, for every Parakeet family and a Llama: the names a reader of the
models would pick, each a config pattern that converts exactly its own modules."""

from __future__ import annotations

import pytest
from conftest import ALL_KINDS, build_model

from hf_binarize import BinaryQuantizationConfig
from hf_binarize.analysis import group_of, module_groups
from hf_binarize.quantize import plan_model

LAYER_BLOCKS = [f"encoder.layers.{i}.{block}" for i in (0, 1)
                for block in ("feed_forward1", "self_attn", "conv", "feed_forward2")]
EXPECTED = {
    "rnnt": ["encoder.subsampling", *LAYER_BLOCKS, "encoder_projector", "decoder.embedding", "decoder.lstm",
             "decoder.decoder_projector", "joint.head"],
    "ctc": ["encoder.subsampling", *LAYER_BLOCKS, "ctc_head"],
    "llama": ["model.embed_tokens", *[f"model.layers.{i}.{block}" for i in (0, 1) for block in ("self_attn", "mlp")],
              "lm_head"],
}
EXPECTED["tdt"] = EXPECTED["rnnt"]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_groups_follow_the_models_structure(kind):
    model = build_model(kind)
    groups = module_groups(model)
    assert list(groups) == EXPECTED[kind]
    if kind != "llama":
        assert groups["encoder.layers.1.conv"] == {"encoder.layers.1.conv.pointwise_conv1": "conv1d",
                                                   "encoder.layers.1.conv.pointwise_conv2": "conv1d"}
        assert set(groups["encoder.layers.0.self_attn"]) == {
            f"encoder.layers.0.self_attn.{p}_proj" for p in ("q", "k", "v", "o", "relative_k")}
    # As a config pattern, each group converts exactly its own modules.
    for group, members in groups.items():
        plans = plan_model(model, BinaryQuantizationConfig(module_types=[], module_overrides={group: "int8"}))
        assert {name for name, plan in plans.items() if plan.method != "float"} == set(members), group


def test_modules_the_model_keeps_float_are_in_no_group():
    groups = module_groups(build_model("rnnt"), keep_float={"decoder.lstm", "joint"})
    assert "decoder.lstm" not in groups and "joint.head" not in groups and "decoder.embedding" in groups


@pytest.mark.parametrize(("name", "group"), [("encoder.layers.12.self_attn.q_proj", "encoder.layers.12.self_attn"),
                                             ("encoder.layers.1.conv", "encoder.layers.1.conv"),
                                             ("layers.3.mlp.up", "layers.3.mlp"), ("decoder.lstm", "decoder.lstm"),
                                             ("encoder.subsampling.linear", "encoder.subsampling"),
                                             ("lm_head", "lm_head")])
def test_group_of(name, group):
    assert group_of(name) == group
