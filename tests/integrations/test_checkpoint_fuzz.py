"""Random corruptions of a saved packed checkpoint (tensor dtypes, shapes, values, missing or extra tensors,
config.json fields). Each must load to exactly the outputs of the intact folder or raise an exception with a
message; only what no format can detect may change the outputs silently: flipped bits inside packed or int8
bytes, finite changes of scales, offsets and biases, and scales stored in another float dtype (converted to the
config's ``scale_dtype``, as transformers converts any float tensor)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import BLANK, audio_batch, build_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from transformers import AutoModelForRNNT

from hf_binarize import BinaryQuantizationConfig, PackedModule

CONFIG = {
    "group_size": 16,
    "module_overrides": {"joint": "int8", "decoder.embedding": "int8", "encoder.layers.1": {"method": "binary",
                                                                                           "centred": True}},
}
LABELS = torch.tensor([[BLANK, 1, 2, 3], [BLANK, 4, 5, 6]])
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.uint8, torch.int8, torch.int32]
CONFIG_CHANGES = [
    ("group_size", None), ("group_size", 8), ("group_size", 32), ("group_size", 12), ("group_size", "16"),
    ("centred", True), ("scale_dtype", "float32"), ("scale_dtype", "bfloat16"), ("scale_dtype", "int8"),
    ("packing_format", "sign-msb-v1"), ("int8_format", "int8-per-channel-v1"), ("module_overrides", {}), ("mode", "qat"), ("quant_method", "bogus"),
    ("module_types", ["linear", "conv1d"]), ("quantization_config", None),
]


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(**audio_batch(), decoder_input_ids=LABELS).logits


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    """The packed folder, its outputs, and its packed-module tensors by role: packed bytes, scales/offsets, biases."""
    root = tmp_path_factory.mktemp("fuzz")
    build_model("rnnt").save_pretrained(root / "float")
    model = AutoModelForRNNT.from_pretrained(root / "float", quantization_config=BinaryQuantizationConfig(**CONFIG))
    model.save_pretrained(root / "packed")
    model = AutoModelForRNNT.from_pretrained(root / "packed").eval()
    roles: dict[str, str] = {}
    for module_name, module in model.named_modules():
        if isinstance(module, PackedModule):
            for name in module.expected_tensors():
                matrix = name in module.quantized_names
                role = "bytes" if matrix else "scale" if name.endswith(("_scale", "_offset")) else "float"
                roles[f"{module_name}.{name}"] = role
    assert set(roles.values()) == {"bytes", "scale", "float"}
    return root / "packed", logits(model), roles


def corrupt(folder: Path, change: tuple, roles: dict[str, str]) -> bool:
    """Apply ``change``; return whether the outputs may then differ silently (a change no format can detect)."""
    kind, key, arg = change
    if kind == "config":
        config = json.loads((folder / "config.json").read_text())
        if key == "quantization_config":
            del config["quantization_config"]
        else:
            config["quantization_config"][key] = arg
        (folder / "config.json").write_text(json.dumps(config))
        return (key, arg) == ("scale_dtype", "bfloat16")
    tensors = load_file(folder / "model.safetensors")
    tensor = tensors.get(key)
    undetectable = False
    if kind == "dtype":
        tensors[key] = tensor.to(arg)
        undetectable = roles[key] != "bytes" and tensor.is_floating_point() and arg.is_floating_point
    elif kind == "shape":
        tensors[key] = {"drop_row": tensor[:-1], "drop_column": tensor[..., :-1], "flatten": tensor.reshape(-1),
                        "add_dim": tensor.unsqueeze(-1)}[arg].contiguous()
    elif kind == "value":
        flat = tensor.reshape(-1).clone()
        index = arg[0] % flat.numel()
        if tensor.is_floating_point():
            flat[index] = arg[1]
            undetectable = bool(torch.isfinite(torch.tensor(arg[1])))
        else:  # flip one bit of a packed or int8 byte
            flat.view(torch.uint8)[index] ^= 1 << arg[2]
            undetectable = True
        tensors[key] = flat.reshape(tensor.shape)
    elif kind == "remove":
        del tensors[key]
    elif kind == "extra":
        tensors[key + "_extra"] = torch.zeros(3)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return undetectable


def changes(roles: dict[str, str]):
    keys = st.sampled_from(sorted(roles))
    values = st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, 2.5, -1e4])
    return st.one_of(
        st.tuples(st.just("dtype"), keys, st.sampled_from(DTYPES)),
        st.tuples(st.just("shape"), keys, st.sampled_from(["drop_row", "drop_column", "flatten", "add_dim"])),
        st.tuples(st.just("value"), keys, st.tuples(st.integers(0, 10**6), values, st.integers(0, 7))),
        st.tuples(st.just("remove"), keys, st.none()),
        st.tuples(st.just("extra"), keys, st.none()),
        st.sampled_from(CONFIG_CHANGES).map(lambda c: ("config", *c)),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_checkpoint_loads_identically_or_raises_clearly(intact, tmp_path_factory, data):
    folder, expected, roles = intact
    change = data.draw(changes(roles))
    target = tmp_path_factory.mktemp("corrupt") / "model"
    shutil.copytree(folder, target)
    undetectable = corrupt(target, change, roles)
    try:
        model = AutoModelForRNNT.from_pretrained(target).eval()
    except (ValueError, TypeError, OSError, RuntimeError, KeyError) as error:
        assert str(error).strip(), f"{change}: {type(error).__name__} without a message"
        return
    got = logits(model)
    if not undetectable:
        assert torch.equal(got, expected), f"{change} loaded silently with different outputs"
