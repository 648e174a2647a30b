"""from_pretrained with BinaryQuantizationConfig: binarize on load, save packed, load packed, fail loudly."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ALL_KINDS, BLANK, SPEECH_KINDS, audio_batch, build_model
from int8_activations_reference import int8_act_linear
from reference import dense_weight, reference_model
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForCTC, AutoModelForRNNT, AutoModelForTDT

from hf_binarize import (
    PACKING_FORMAT,
    BinaryQuantizationConfig,
    PackedConv1d,
    PackedEmbedding,
    PackedLinear,
    PackedLSTM,
    PackedModule,
    size_report,
)

AUTO = {"rnnt": AutoModelForRNNT, "tdt": AutoModelForTDT, "ctc": AutoModelForCTC, "llama": AutoModelForCausalLM}


def load(kind: str, path, **kwargs) -> nn.Module:
    model = AUTO[kind].from_pretrained(path, **kwargs).eval()
    if kind in ("rnnt", "tdt"):
        model.generation_config.decoder_start_token_id = BLANK
    return model


def model_inputs(kind: str) -> dict[str, torch.Tensor]:
    if kind == "llama":
        return {"input_ids": torch.randint(0, 29, (2, 11), generator=torch.Generator().manual_seed(3))}
    return audio_batch()


def generate(model: nn.Module, kind: str) -> torch.Tensor:
    inputs = model_inputs(kind)
    if kind == "llama":
        return model.generate(**inputs, max_new_tokens=8, do_sample=False)
    out = model.generate(**inputs)
    return out if isinstance(out, torch.Tensor) else out.sequences


@pytest.fixture(scope="module")
def packed(float_folder):
    cache = {}

    def get(kind: str):
        if kind not in cache:
            cache[kind] = load(kind, float_folder(kind), quantization_config=BinaryQuantizationConfig())
        return cache[kind]

    return get


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_target_module_is_packed(kind, packed):
    model = packed(kind)
    for name, module in model.named_modules():
        assert type(module) is not nn.Linear, name
        assert type(module) is not nn.LSTM, name
        if isinstance(module, nn.Conv1d):
            assert module.kernel_size != (1,), name
    kinds = {type(m) for m in model.modules()}
    assert PackedLinear in kinds
    if kind != "llama":
        assert PackedConv1d in kinds
    if kind in ("rnnt", "tdt"):
        assert PackedLSTM in kinds
    if kind == "ctc":
        assert isinstance(model.ctc_head, PackedConv1d) and model.ctc_head.channels_last


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_packed_module_outputs_equal_dense_reference(kind, packed, float_folder):
    """Every packed module, fed what it sees inside the model, matches a float module holding W_hat."""
    model = packed(kind)
    seen: dict[str, tuple] = {}

    def record(name):
        def hook(module, args, out):
            seen.setdefault(name, (args, out))

        return hook

    hooks = [module.register_forward_hook(record(name)) for name, module in model.named_modules()
             if isinstance(module, PackedModule)]
    with torch.no_grad():
        model(**model_inputs(kind)) if kind in ("ctc", "llama") else model.get_audio_features(**model_inputs(kind))
        if kind in ("rnnt", "tdt"):
            model.decoder(torch.tensor([[BLANK, 3, 5, 7]]))
            model.joint(torch.randn(1, 1, 48), torch.randn(1, 1, 48))
    for hook in hooks:
        hook.remove()
    reference = reference_model(AUTO[kind].from_pretrained(float_folder(kind)).double(), model)
    assert len(seen) == sum(isinstance(m, PackedModule) for m in model.modules())
    for name, (args, out) in seen.items():
        expected = reference.get_submodule(name)(*[a.double() if torch.is_tensor(a) and a.is_floating_point() else a for a in args])
        if isinstance(out, tuple):
            out, expected = out[0], expected[0]
        torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-4, msg=name)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_generate_matches_dense_reference_token_for_token(kind, packed, float_folder):
    model = packed(kind)
    reference = reference_model(load(kind, float_folder(kind)), model)
    ours, theirs = generate(model, kind), generate(reference, kind)
    assert torch.equal(ours, theirs)
    # The tokens vary: a collapsed random model would make this comparison vacuous.
    assert ours.unique().numel() > 2


def test_rnnt_lattice_logits_match_dense_reference(packed, float_folder):
    model = packed("rnnt")
    reference = reference_model(load("rnnt", float_folder("rnnt")), model)
    labels = torch.tensor([[BLANK, 1, 2, 3], [BLANK, 4, 5, 6]])
    with torch.no_grad():
        ours = model(**audio_batch(), decoder_input_ids=labels).logits
        theirs = reference(**audio_batch(), decoder_input_ids=labels).logits
    assert ours.shape[-1] == 29 and ours.dim() == 4
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def safetensors_header(path: Path) -> tuple[dict[str, dict], int]:
    """The tensor entries of a safetensors file (dtype, shape, data_offsets) and the bytes of its tensor data, read
    from the format's own layout: an 8-byte little-endian header length, the JSON header, then the data."""
    with open(path, "rb") as file:
        length = int.from_bytes(file.read(8), "little")
        header = json.loads(file.read(length))
    header.pop("__metadata__", None)
    return header, path.stat().st_size - 8 - length


def stored_in_float16(name: str) -> bool:
    """What the packed format promises to store in float16, by name: biases (of any module, an LSTM's
    ``bias_ih_l0`` and attention's positional ``bias_u`` included), norms and their statistics, depthwise and
    subsampling convolutions (not the batch norms' integer batch counts)."""
    module, _, tensor = name.rpartition(".")
    if tensor == "num_batches_tracked":
        return False
    return (tensor.startswith("bias") or "norm" in module or module.endswith("depthwise_conv")
            or ".subsampling.layers." in f".{module}.")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_save_and_reload_keeps_every_tensor(kind, packed, tmp_path):
    model = packed(kind)
    model.save_pretrained(tmp_path / "once")
    config = json.loads((tmp_path / "once" / "config.json").read_text())["quantization_config"]
    assert config["quant_method"] == "hf_binarize" and config["packing_format"] == PACKING_FORMAT
    assert config["int8_format"] == "int8-flat-v2"
    reloaded = load(kind, tmp_path / "once")
    before, after = model.state_dict(), reloaded.state_dict()
    assert before.keys() == after.keys()
    header, _ = safetensors_header(tmp_path / "once" / "model.safetensors")
    for key in before:
        assert before[key].dtype == after[key].dtype, key
        # Tensors stored in float16 come back as their float16 rounding; everything else bit for bit.
        expected = before[key].half().to(before[key].dtype) if header[key]["dtype"] == "F16" and not key.endswith(
            ("_scale", "_offset")) else before[key]
        assert torch.equal(expected, after[key]), key
    assert torch.equal(generate(model, kind), generate(reloaded, kind))
    packed_types = [type(m).__name__ for m in model.modules() if isinstance(m, PackedModule)]
    assert packed_types == [type(m).__name__ for m in reloaded.modules() if isinstance(m, PackedModule)]
    # The rounding happens once: saving the reloaded model writes the same bytes.
    reloaded.save_pretrained(tmp_path / "twice")
    assert (tmp_path / "once" / "model.safetensors").read_bytes() == (tmp_path / "twice" / "model.safetensors").read_bytes()


@pytest.mark.parametrize("kind", SPEECH_KINDS)
def test_packed_checkpoint_stores_norms_biases_and_depthwise_convs_in_float16(kind, packed, tmp_path):
    model = packed(kind)
    model.save_pretrained(tmp_path)
    header, data_bytes = safetensors_header(tmp_path / "model.safetensors")
    dtypes = {name: entry["dtype"] for name, entry in header.items()}
    half = {name for name in dtypes if stored_in_float16(name)}
    assert {"encoder.layers.0.conv.depthwise_conv.weight", "encoder.layers.0.conv.norm.running_var",
            "encoder.layers.0.norm_out.weight", "encoder.layers.0.feed_forward1.linear1.bias",
            "encoder.layers.0.self_attn.bias_u", "encoder.subsampling.layers.0.weight"} <= half
    assert {dtypes[name] for name in half} == {"F16"}
    # Nothing else is float32 but the prediction network's embedding, which the default config keeps float.
    float32 = {name for name, dtype in dtypes.items() if dtype == "F32"}
    assert float32 == ({"decoder.embedding.weight"} if kind != "ctc" else set())
    assert {dtypes[name] for name in dtypes if name.endswith("_scale")} == {"F16"}
    assert {dtypes[name] for name in dtypes if name.endswith(".weight") and name not in half | float32} == {"U8"}

    # The loaded model holds them in float32 again and computes what the in-memory packed model computes with
    # its float16-stored tensors rounded to float16: exactly.
    reloaded = load(kind, tmp_path)
    assert reloaded.encoder.layers[0].conv.norm.running_var.dtype == torch.float32
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for name, tensor in rounded.state_dict(keep_vars=True).items():
            if name in half:
                tensor.copy_(tensor.half().float())
    ours, exact, unrounded = (encoder_and_logits(m, kind) for m in (reloaded, rounded, model))
    for a, b in zip(ours, exact, strict=True):
        assert torch.equal(a, b)
    # Against the unrounded model: each stored value moved by at most 2^-11 of itself (float16's rounding); to first
    # order the errors of the rounded tensors on a path add, and a path through these two-layer models crosses
    # about ten of them (norms, biases, depthwise convolution per layer): at most ~10 x 2^-11 = 5e-3 of the output's
    # range. Measured: 2-4e-4. A tensor stored wrongly (not rounded) moves outputs by its own size and fails.
    for a, b in zip(ours, unrounded, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=5e-3 * b.abs().max().item())

    # The size report counts what is on disk, byte for byte.
    assert size_report(reloaded).total_bytes == size_report(model).total_bytes == data_bytes
    assert data_bytes == sum(end - start for entry in header.values() for start, end in [entry["data_offsets"]])


def encoder_and_logits(model: nn.Module, kind: str) -> tuple[torch.Tensor, ...]:
    """The encoder's output and the model's logits (the RNN-T/TDT lattice over a few labels)."""
    with torch.no_grad():
        encoded = model.get_audio_features(**audio_batch()).pooler_output if kind != "ctc" else \
            model.encoder(**audio_batch()).last_hidden_state
        if kind == "ctc":
            return encoded, model(**audio_batch()).logits
        labels = torch.tensor([[BLANK, 1, 2, 3], [BLANK, 4, 5, 6]])
        return encoded, model(**audio_batch(), decoder_input_ids=labels).logits


def test_int8_activations_are_saved_with_the_model_and_used_after_reload(float_folder, tmp_path):
    model = load("rnnt", float_folder("rnnt"), quantization_config=BinaryQuantizationConfig(activations="int8"))
    binary = {name: m for name, m in model.named_modules() if isinstance(m, PackedModule) and m.fmt.method == "binary"}
    assert binary and all(m.fmt.activations == "int8" for m in binary.values())
    # Every binary Linear, on what it sees inside the model, computes the int8-activation definition.
    seen = {}

    def record(name):
        def hook(module, args, out):
            seen.setdefault(name, (args[0], out))

        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in binary.items() if type(m) is PackedLinear]
    with torch.no_grad():
        model.get_audio_features(**audio_batch())
    for hook in hooks:
        hook.remove()
    assert seen
    for name, (x, out) in seen.items():
        m = binary[name]
        torch.testing.assert_close(out, int8_act_linear(x, m.weight, m.weight_scale, m.bias, m.in_features), rtol=0,
                                   atol=0, msg=name)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["quantization_config"]["activations"] == "int8"
    reloaded = load("rnnt", tmp_path)
    assert reloaded.config.quantization_config.activations == "int8"
    assert all(m.fmt.activations == "int8" for m in reloaded.modules() if isinstance(m, PackedModule)
               and m.fmt.method == "binary")
    assert torch.equal(generate(model, "rnnt"), generate(reloaded, "rnnt"))


def test_packed_checkpoint_stores_no_float_weight_matrix(packed, tmp_path):
    packed("rnnt").save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    assert tensors["encoder.layers.0.feed_forward1.linear1.weight"].dtype == torch.uint8
    assert tensors["decoder.lstm.weight_hh_l1"].shape == (4 * 48, 6)
    assert tensors["encoder.layers.0.conv.pointwise_conv1.weight"].shape == (128, 8)
    assert tensors["encoder.layers.0.feed_forward1.linear1.weight_scale"].dtype == torch.float16


def test_folder_is_at_least_20x_smaller_for_a_linear_heavy_model(tmp_path):
    build_model("rnnt", hidden=256, intermediate=1024).save_pretrained(tmp_path / "float")
    model = load("rnnt", tmp_path / "float", quantization_config=BinaryQuantizationConfig())
    model.save_pretrained(tmp_path / "packed")
    float_bytes = sum(f.stat().st_size for f in (tmp_path / "float").iterdir())
    packed_report = size_report(model, tmp_path / "packed")
    assert float_bytes / packed_report.folder_bytes >= 20, (float_bytes, packed_report.folder_bytes)
    assert packed_report.compression >= 20


def test_overrides_and_exclusions_are_honoured_and_reported(float_folder, tmp_path):
    config = BinaryQuantizationConfig(
        modules_to_not_convert=["encoder.subsampling"],
        module_overrides={"decoder.embedding": "int8", "joint": "int8", "decoder.lstm": {"method": "binary",
                                                                                          "centred": True}},
        group_size=32,
    )
    model = load("rnnt", float_folder("rnnt"), quantization_config=config)
    assert type(model.encoder.subsampling.linear) is nn.Linear
    assert isinstance(model.decoder.embedding, PackedEmbedding)
    assert model.joint.head.fmt.method == "int8"
    assert model.decoder.lstm.fmt.centred and model.decoder.lstm.fmt.group_size == 32
    assert model.encoder_projector.fmt.group_size == 32 and not model.encoder_projector.fmt.centred
    report = size_report(model)
    by_name = {m.name: m for m in report.modules}
    assert by_name["decoder.embedding"].precision == "int8"
    assert by_name["joint.head"].precision == "int8" and by_name["joint.head"].group == "joint/head"
    assert by_name["encoder.subsampling.linear"].precision == "float"
    assert by_name["decoder.lstm"].precision == "binary"
    assert {(r["group"], r["precision"]) for r in report.groups} >= {("embedding", "int8"), ("linear", "float")}
    assert "int8" in str(report)
    # The overridden model saves and reloads with the same layout and outputs.
    model.save_pretrained(tmp_path)
    reloaded = load("rnnt", tmp_path)
    assert isinstance(reloaded.decoder.embedding, PackedEmbedding) and reloaded.decoder.lstm.fmt.centred
    assert torch.equal(generate(model, "rnnt"), generate(reloaded, "rnnt"))
    torch.testing.assert_close(reloaded.decoder.embedding(torch.tensor([3])).double(),
                               dense_weight(reloaded.decoder.embedding, "weight")[3:4])


def test_bfloat16_load_runs_in_bfloat16(float_folder):
    model = load("rnnt", float_folder("rnnt"), quantization_config=BinaryQuantizationConfig(), dtype=torch.bfloat16)
    assert model.encoder_projector.bias.dtype == torch.bfloat16
    inputs = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in audio_batch().items()}
    with torch.no_grad():
        out = model.get_audio_features(**inputs).pooler_output
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


def test_pattern_matching_no_module_names_the_field(float_folder):
    with pytest.raises(ValueError, match=r"modules_to_not_convert: pattern 'decoder\.gru'"):
        load("rnnt", float_folder("rnnt"), quantization_config=BinaryQuantizationConfig(
            modules_to_not_convert=["decoder.gru"]))
    with pytest.raises(ValueError, match=r"module_overrides: pattern 'missing_head'"):
        load("rnnt", float_folder("rnnt"), quantization_config=BinaryQuantizationConfig(
            module_overrides={"missing_head": "int8"}))
    with pytest.raises(ValueError, match="cannot be binarized"):
        load("rnnt", float_folder("rnnt"), quantization_config=BinaryQuantizationConfig(
            module_overrides={"decoder.embedding": "binary"}))


@pytest.fixture(scope="module")
def packed_folder(packed, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("packed-rnnt")
    packed("rnnt").save_pretrained(path)
    return path


def _copy_folder(source: Path, target: Path) -> Path:
    target.mkdir()
    for item in source.iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    return target


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_checkpoint_raises(packed_folder, tmp_path, cut):
    folder = _copy_folder(packed_folder, tmp_path / "truncated")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(Exception, match=r"(?i)incomplete|invalid|error|deserializ|truncat|metadata"):
        load("rnnt", folder)


def test_corrupted_header_raises(packed_folder, tmp_path):
    folder = _copy_folder(packed_folder, tmp_path / "corrupt")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:40] = b"#" * 32
    weights.write_bytes(bytes(data))
    with pytest.raises(Exception, match=r"(?i)header|invalid|error|deserializ|metadata"):
        load("rnnt", folder)


def _rewrite(folder: Path, change) -> None:
    weights = folder / "model.safetensors"
    tensors = load_file(weights)
    change(tensors)
    save_file(tensors, weights, metadata={"format": "pt"})


KEY = "encoder.layers.0.feed_forward1.linear1.weight"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.__setitem__(KEY, t[KEY].to(torch.int32)), rf"{KEY} has dtype torch.int32, expected torch.uint8"),
        (lambda t: t.__setitem__(KEY, t[KEY][:, :-1].contiguous()), r"ignore_mismatched_sizes|mismatch"),
        (lambda t: t.__setitem__(KEY + "_scale", t[KEY + "_scale"].to(torch.int16)), rf"{KEY}_scale has dtype"),
        (lambda t: t.pop(KEY + "_scale"), rf"{KEY}_scale was not found in the checkpoint"),
        (lambda t: t.pop("decoder.lstm.weight_ih_l1"), r"decoder.lstm.weight_ih_l1 was not found in the checkpoint"),
    ],
    ids=["packed-dtype", "packed-shape", "scale-dtype", "missing-scale", "missing-lstm-matrix"],
)
def test_bad_packed_tensors_raise_naming_the_tensor(packed_folder, tmp_path, change, message):
    folder = _copy_folder(packed_folder, tmp_path / "bad")
    _rewrite(folder, change)
    with pytest.raises((ValueError, RuntimeError), match=message):
        load("rnnt", folder)


# Every stored layout. "int8" leaves the 1x1 convolutions float: their float weights are [N, K, 1], so int8 [N, K]
# failed on shape even in int8-per-channel-v1, while Linear and LSTM weights had exactly the float shape.
FORMATS = {
    "binary": {},
    "centred": {"centred": True},
    "grouped": {"group_size": 16},
    "int8": {"module_types": ["linear", "lstm"], "modules_to_not_convert": [r"encoder.layers.*.conv"],
             "module_overrides": {".*": "int8"}},
    "mixed": {"module_overrides": {"joint": "int8", "decoder.embedding": "int8",
                                   "encoder.layers.0": {"method": "binary", "centred": True, "group_size": 16}}},
}


@pytest.fixture(scope="module")
def format_folder(float_folder, tmp_path_factory):
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            path = tmp_path_factory.mktemp(f"packed-{name}")
            load("rnnt", float_folder("rnnt"), quantization_config=BinaryQuantizationConfig(**FORMATS[name])
                 ).save_pretrained(path)
            cache[name] = path
        return cache[name]

    return get


@pytest.mark.parametrize("name", FORMATS)
def test_loading_packed_checkpoint_without_import_fails_loudly(format_folder, name):
    """Without hf_binarize, transformers only warns about the unknown method and loads the model unquantized: the
    packed tensors must then fail on shape, never load as garbage floats."""
    code = (
        "import sys, transformers\n"
        "assert 'hf_binarize' not in sys.modules\n"
        f"transformers.AutoModelForRNNT.from_pretrained({str(format_folder(name))!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TRANSFORMERS_VERBOSITY": "warning"})
    assert result.returncode != 0
    assert "hf_binarize" in result.stderr
    assert "mismatch" in result.stderr.lower()


def test_int8_per_channel_v1_checkpoint_still_loads(format_folder, tmp_path):
    """Folders written before int8 weights were stored flat hold them as int8[N, K]; they load into the new layout."""
    folder = _copy_folder(format_folder("mixed"), tmp_path / "v1")
    model = load("rnnt", format_folder("mixed"))
    _rewrite(folder, lambda t: t.update({key: t[key].reshape(model.get_submodule(key.rpartition(".")[0])
                                                             .matrices[key.rpartition(".")[2]])
                                         for key in t if t[key].dtype == torch.int8}))
    old = load("rnnt", folder)
    for module_name in ("joint.head", "decoder.embedding"):
        module = old.get_submodule(module_name)
        assert module.weight.shape == (module.matrices["weight"][0] * module.matrices["weight"][1],)
        torch.testing.assert_close(dense_weight(module, "weight"), dense_weight(model.get_submodule(module_name), "weight"),
                                   rtol=0, atol=0)
    assert generate(old, "rnnt").tolist() == generate(model, "rnnt").tolist()


@pytest.mark.parametrize(
    ("name", "key", "change", "message"),
    [
        ("binary", KEY, lambda t: t.to(torch.float32), rf"{KEY} has dtype torch.float32, expected torch.uint8"),
        ("int8", KEY, lambda t: t.to(torch.float32), rf"{KEY} has dtype torch.float32, expected torch.int8"),
        ("int8", KEY, lambda t: t.to(torch.uint8), rf"{KEY} has dtype torch.uint8, expected torch.int8"),
        ("binary", KEY + "_scale", lambda t: t.index_put_((torch.tensor(0), torch.tensor(0)), torch.tensor(float("nan"),
                                                                                                           dtype=t.dtype)),
         rf"{KEY}_scale holds NaN or inf"),
        ("centred", KEY + "_offset", lambda t: t.fill_(float("inf")), rf"{KEY}_offset holds NaN or inf"),
        ("int8", KEY + "_scale", lambda t: -t / 0.0, rf"{KEY}_scale holds NaN or inf"),
    ],
    ids=["float-packed-bits", "float-int8", "uint8-int8", "nan-scale", "inf-offset", "inf-int8-scale"],
)
def test_wrong_dtype_or_non_finite_values_raise_naming_the_tensor(format_folder, tmp_path, name, key, change, message):
    folder = _copy_folder(format_folder(name), tmp_path / "bad")
    _rewrite(folder, lambda t: t.__setitem__(key, change(t[key].clone())))
    with pytest.raises(ValueError, match=message):
        load("rnnt", folder)


def test_base_model_class_loads_packed_encoder(packed_folder):
    """A submodel class (the bare encoder) loads its part of the packed checkpoint."""
    model = AutoModel.from_pretrained(packed_folder)
    assert any(isinstance(m, PackedLinear) for m in model.modules())


@pytest.mark.parametrize("kind", SPEECH_KINDS)
def test_dequantize_gives_float_model_with_dense_reference_weights(kind, float_folder):
    model = load(kind, float_folder(kind), quantization_config=BinaryQuantizationConfig())
    expected = {name: dense_weight(m, "weight") for name, m in model.named_modules()
                if isinstance(m, (PackedLinear, PackedConv1d))}
    model.dequantize()
    assert not any(isinstance(m, PackedModule) for m in model.modules())
    assert getattr(model, "quantization_method", None) is None
    for name, weight in expected.items():
        module = model.get_submodule(name)
        torch.testing.assert_close(module.weight.double().reshape(weight.shape), weight, rtol=1e-6, atol=1e-6)



_LOAD_AND_REPORT_ANON = """
import sys
import torch
from transformers import AutoModelForRNNT
import hf_binarize

def anon_bytes():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon:"))

def load(folder):
    return AutoModelForRNNT.from_pretrained(folder, quantization_config=hf_binarize.BinaryQuantizationConfig())

torch.set_num_threads(1)
load(sys.argv[2])  # what every load initialises once (imports, caches) is not counted
before = anon_bytes()
model = load(sys.argv[1])
print(anon_bytes() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to read anonymous memory")
def test_binarize_on_load_gives_the_float_matrices_memory_back(tmp_path):
    from hf_binarize.integrations.transformers import _malloc_trim

    if _malloc_trim() is None:
        pytest.skip("C library is not glibc: no malloc_trim, and other allocators return memory their own way")
    # 8 MiB matrices, 81 MiB in all: glibc keeps such freed blocks in its heap. Without the trims the process kept
    # 85-100 MiB after the load, with them 3 MiB (the packed model).
    build_model("rnnt").save_pretrained(tmp_path / "tiny")
    build_model("rnnt", hidden=512, intermediate=4096).save_pretrained(tmp_path / "float")
    float_bytes = sum(f.stat().st_size for f in (tmp_path / "float").glob("*.safetensors"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", _LOAD_AND_REPORT_ANON, str(tmp_path / "float"), str(tmp_path / "tiny")],
                            capture_output=True, text=True, env=env, check=True)
    kept = int(result.stdout.strip().splitlines()[-1])
    assert kept < 0.25 * float_bytes, f"kept {kept / 2**20:.0f} MiB of anonymous memory for {float_bytes / 2**20:.0f} MiB of float"
