"""LoRA (PEFT) on a packed 1-bit base: the layer maths against plain matmuls, a frozen base, Trainer, adapter
save/load, merge refused on packed weights and done on dequantized ones, the LSTM refused."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F
from conftest import BLANK, audio_batch
from safetensors.torch import load_file
from transformers import AutoModelForCTC, AutoModelForRNNT, Trainer, TrainingArguments

from hf_binarize import BinaryQuantizationConfig, Int8Format, PackedConv1d, PackedLinear, PackedModule

peft = pytest.importorskip("peft", minversion="0.19", reason="pip install 'hf-binarize[peft]'")
lora = pytest.importorskip("hf_binarize.integrations.peft")

# get_peft_model reads a transformers property that transformers 5 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

AUTO = {"rnnt": AutoModelForRNNT, "ctc": AutoModelForCTC}
TARGETS = {
    "rnnt": ["q_proj", "v_proj", "linear1", "pointwise_conv1", "joint.head"],
    "ctc": ["q_proj", "linear1", "pointwise_conv1", "ctc_head"],
}
RANK, ALPHA = 4, 8


@pytest.fixture
def packed(float_folder):
    """A fresh packed model per call: get_peft_model and dequantize() change the model they are given."""

    def load(kind: str, **config):
        return AUTO[kind].from_pretrained(
            float_folder(kind), quantization_config=BinaryQuantizationConfig(**config)
        ).eval()

    return load


def lora_config(kind: str, **kwargs):
    kwargs.setdefault("target_modules", TARGETS[kind])
    return peft.LoraConfig(r=RANK, lora_alpha=ALPHA, **kwargs)


def inputs(kind: str, frames: int = 32) -> dict[str, torch.Tensor]:
    batch = audio_batch(frames=frames)
    if kind == "rnnt":
        batch["decoder_input_ids"] = torch.tensor([[BLANK, 3, 7], [BLANK, 5, 2]])
    return batch


def logits(model, kind: str) -> torch.Tensor:
    model.eval()  # LoRA layers are new modules, created in training mode
    with torch.no_grad():
        return model(**inputs(kind)).logits


def randomize_adapters(model, seed: int = 0) -> None:
    """LoRA starts with B = 0, which would make every adapter check pass trivially."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)


def packed_buffers(model) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": buffer.clone()
        for name, module in model.named_modules()
        if isinstance(module, PackedModule)
        for key, buffer in module.named_buffers(recurse=False)
    }


@pytest.mark.parametrize("use_rslora", [False, True])
@pytest.mark.parametrize(
    ("kind", "name", "quantization"),
    [("rnnt", "encoder.layers.1.self_attn.q_proj", {}), ("rnnt", "encoder.layers.0.conv.pointwise_conv1", {}),
     ("ctc", "ctc_head", {}), ("rnnt", "joint.head", {"module_overrides": {"joint": "int8"}})],
    ids=["linear", "conv1d", "conv1d-channels-last", "linear-int8"],
)
def test_lora_layer_is_packed_output_plus_scaled_low_rank_path(packed, kind, name, quantization, use_rslora):
    dropout = 0.25
    model = peft.get_peft_model(
        packed(kind, **quantization),
        lora_config(kind, target_modules=[name], lora_dropout=dropout, use_rslora=use_rslora, lora_bias=True),
    )
    layer = model.get_submodule(f"base_model.model.{name}")
    base = layer.get_base_layer()
    is_conv = isinstance(base, PackedConv1d)
    assert type(layer) is (lora.LoraPackedConv1d if is_conv else lora.LoraPackedLinear)
    assert isinstance(base.fmt, Int8Format) == bool(quantization)
    randomize_adapters(model)

    scaling = ALPHA / math.sqrt(RANK) if use_rslora else ALPHA / RANK
    assert layer.scaling["default"] == scaling
    weight = base.dequantize_matrix("weight", torch.float32)
    bias = base.bias if base.bias is not None else torch.zeros(base.out_features)
    a = layer.lora_A["default"].weight.reshape(RANK, base.in_features)
    b = layer.lora_B["default"].weight.reshape(base.out_features, RANK)
    b_bias = layer.lora_B["default"].bias
    channels_first = is_conv and not base.channels_last
    x = torch.randn((2, base.in_features, 7) if channels_first else (2, 7, base.in_features))

    def reference(dropped: torch.Tensor) -> torch.Tensor:
        inp = x.transpose(1, 2) if channels_first else x
        dropped = dropped.transpose(1, 2) if channels_first else dropped
        out = inp @ weight.T + bias + scaling * ((dropped @ a.T) @ b.T + b_bias)
        return out.transpose(1, 2) if channels_first else out

    with torch.no_grad():
        model.eval()  # LoRA layers are new modules, created in training mode
        torch.testing.assert_close(layer(x), reference(x), rtol=1e-5, atol=1e-5)
        model.train()
        torch.manual_seed(1)
        trained = layer(x)
        torch.manual_seed(1)
        dropped = F.dropout(x, dropout, training=True)
    assert not torch.equal(dropped, x)
    torch.testing.assert_close(trained, reference(dropped), rtol=1e-5, atol=1e-5)


def test_only_adapters_train_and_the_packed_base_stays_unchanged(packed):
    model = peft.get_peft_model(packed("rnnt"), lora_config("rnnt"))
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    lora_names = {name for name, _ in model.named_parameters() if "lora_" in name}
    assert trainable == lora_names
    assert any(".pointwise_conv1.lora_A." in name for name in trainable)
    frozen = {name: param.clone() for name, param in model.named_parameters() if not param.requires_grad}
    before_packed = packed_buffers(model)
    before_lora = {name: param.clone() for name, param in model.named_parameters() if param.requires_grad}

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    torch.manual_seed(0)
    got_gradient: set[str] = set()
    for _ in range(3):
        optimizer.zero_grad()
        model(**inputs("rnnt")).logits.square().mean().backward()
        # Layerdrop skips a random encoder layer now and then, so a factor may miss a step; and A only gets a
        # gradient once B != 0, after the first step. Down to the first layer, it flows through the packed matmuls.
        got_gradient |= {name for name, p in model.named_parameters() if p.grad is not None and p.grad.any()}
        optimizer.step()

    assert got_gradient == lora_names
    for name, param in model.named_parameters():
        if name in lora_names:
            assert not torch.equal(param, before_lora[name]), name
        else:
            assert param.grad is None, name
            assert torch.equal(param, frozen[name]), name
    after_packed = packed_buffers(model)
    assert after_packed.keys() == before_packed.keys() and len(before_packed) > 0
    for key, buffer in before_packed.items():
        assert torch.equal(after_packed[key], buffer), key


def joint_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, object]:
    """Cross-entropy of the joint logits against fixed tokens: differentiable, and independent of the RNN-T loss."""
    outputs = model(**{key: value for key, value in batch.items() if key != "targets"})
    return F.cross_entropy(outputs.logits.flatten(0, -2), batch["targets"].flatten()), outputs


class JointLossTrainer(Trainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = joint_loss(model, inputs)
        return (loss, outputs) if return_outputs else loss


def test_trainer_fits_adapters_on_a_packed_base(packed, tmp_path):
    model = peft.get_peft_model(packed("rnnt"), lora_config("rnnt"))
    features = audio_batch(seed=2, frames=16)["input_features"]
    with torch.no_grad():
        out_frames = model(**inputs("rnnt", frames=16)).logits.shape[1]
    generator = torch.Generator().manual_seed(0)
    dataset = [
        {
            "input_features": features[i % 2],
            "attention_mask": torch.ones(16, dtype=torch.long),
            "decoder_input_ids": torch.randint(0, BLANK, (3,), generator=generator),
            "targets": torch.randint(0, BLANK + 1, (out_frames, 3), generator=generator),
        }
        for i in range(4)
    ]
    everything = {key: torch.stack([item[key] for item in dataset]) for key in dataset[0]}

    def mean_loss() -> float:
        model.eval()
        with torch.no_grad():
            return joint_loss(model, everything)[0].item()

    before = mean_loss()
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=6, learning_rate=2e-2,
        use_cpu=True, report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True,
        remove_unused_columns=False, seed=0,
    )
    JointLossTrainer(model=model, args=args, train_dataset=dataset).train()
    assert mean_loss() < 0.9 * before


def test_adapter_saves_small_and_loads_back_onto_a_packed_base(packed, tmp_path):
    # modules_to_save takes a float module (the decoder embedding stays float by default): a full trainable copy.
    model = peft.get_peft_model(packed("rnnt"), lora_config("rnnt", modules_to_save=["decoder.embedding"]))
    randomize_adapters(model)
    with torch.no_grad():
        model.base_model.model.decoder.embedding.modules_to_save["default"].weight.add_(1.0)
    expected = logits(model, "rnnt")
    model.save_pretrained(tmp_path)

    assert set(os.listdir(tmp_path)) <= {"adapter_config.json", "adapter_model.safetensors", "README.md"}
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert saved and all("lora_" in key or "decoder.embedding" in key for key in saved), sorted(saved)
    assert all(tensor.is_floating_point() for tensor in saved.values())
    conv_factors = [t for key, t in saved.items() if key.endswith("pointwise_conv1.lora_A.weight")]
    assert conv_factors and all(t.shape == (RANK, 64, 1) for t in conv_factors)
    trained = {name for name, param in model.named_parameters() if param.requires_grad}
    assert len(saved) == len(trained)
    weight_bytes = sum(t.numel() * t.element_size() for t in saved.values())
    assert os.path.getsize(tmp_path / "adapter_model.safetensors") < weight_bytes + 16_384

    reloaded = peft.PeftModel.from_pretrained(packed("rnnt"), tmp_path)
    assert isinstance(reloaded.base_model.model.joint.head, lora.LoraPackedLinear)
    assert torch.equal(logits(reloaded, "rnnt"), expected)


def test_register_lora_from_0_1_0_still_works(packed):
    config = lora.register_lora(lora_config("rnnt"))
    model = peft.get_peft_model(packed("rnnt"), config)
    assert isinstance(model.base_model.model.joint.head, lora.LoraPackedLinear)


# A user's script, run in a fresh process: no hf_binarize call beyond the import that loading a packed model needs.
# {order} puts peft before or after hf_binarize, whose import hook must catch either.
_PLAIN_PEFT_TRAIN = """
{order}
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForRNNT
sys.path.insert(0, {tests!r})
from conftest import BLANK, audio_batch

torch.manual_seed(0)
model = AutoModelForRNNT.from_pretrained({packed!r})
model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules={targets!r}, init_lora_weights="gaussian"))
batch = audio_batch(frames=32)
batch["decoder_input_ids"] = torch.tensor([[BLANK, 3, 7], [BLANK, 5, 2]])
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
for _ in range(3):
    loss = model(**batch).logits.square().mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
model.save_pretrained({adapter!r})
model.eval()
with torch.no_grad():
    torch.save(model(**batch).logits, {expected!r})
"""

_PLAIN_PEFT_LOAD = """
import sys
import torch
import hf_binarize
from peft import PeftModel
from transformers import AutoModelForRNNT
sys.path.insert(0, {tests!r})
from conftest import BLANK, audio_batch

torch.manual_seed(0)
batch = audio_batch(frames=32)
batch["decoder_input_ids"] = torch.tensor([[BLANK, 3, 7], [BLANK, 5, 2]])
model = PeftModel.from_pretrained(AutoModelForRNNT.from_pretrained({packed!r}), {adapter!r}).eval()
with torch.no_grad():
    assert torch.equal(model(**batch).logits, torch.load({expected!r})), "reloaded adapter gives other outputs"
print("same outputs")
"""


@pytest.mark.parametrize("peft_first", [False, True])
def test_plain_peft_trains_saves_and_reloads_in_a_fresh_process(packed, tmp_path, peft_first):
    import subprocess
    import sys
    from pathlib import Path

    folder = tmp_path / "packed"
    packed("rnnt").save_pretrained(folder)
    order = "import sys\nimport peft\nimport hf_binarize" if peft_first else "import sys\nimport hf_binarize\nimport peft"
    names = {"packed": str(folder), "adapter": str(tmp_path / "adapter"), "expected": str(tmp_path / "expected.pt"),
             "tests": str(Path(__file__).resolve().parents[1]), "targets": TARGETS["rnnt"]}
    for script in (_PLAIN_PEFT_TRAIN.format(order=order, **names), _PLAIN_PEFT_LOAD.format(**names)):
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
    assert "same outputs" in run.stdout
    adapter = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    # Trained: gaussian init and three steps leave no B factor at zero.
    assert all(t.abs().sum() > 0 for key, t in adapter.items() if "lora_B" in key)


def test_several_adapters_switch_disable_and_mix_in_one_batch(packed):
    base = packed("rnnt")
    base_out = logits(base, "rnnt")
    model = peft.get_peft_model(base, lora_config("rnnt"))
    model.add_adapter("other", lora_config("rnnt", target_modules=["v_proj", "pointwise_conv1"], use_rslora=True))
    randomize_adapters(model)
    default_out = logits(model, "rnnt")
    model.set_adapter("other")
    other_out = logits(model, "rnnt")
    with model.disable_adapter():
        disabled_out = logits(model, "rnnt")
    assert not torch.allclose(default_out, base_out) and not torch.allclose(other_out, default_out)
    assert torch.equal(disabled_out, base_out)

    with torch.no_grad():
        mixed = model(**inputs("rnnt"), adapter_names=["default", "__base__"]).logits
    torch.testing.assert_close(mixed[0], default_out[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mixed[1], base_out[1], rtol=1e-5, atol=1e-5)

    model.set_adapter("default")
    model.delete_adapter("other")
    assert torch.equal(logits(model, "rnnt"), default_out)


@pytest.mark.parametrize("kind", ["rnnt", "ctc"])
def test_merge_is_refused_on_packed_weights_and_done_after_dequantize(packed, kind, tmp_path):
    model = peft.get_peft_model(packed(kind), lora_config(kind))
    randomize_adapters(model)
    unmerged = logits(model, kind)
    model.save_pretrained(tmp_path)

    for merge in (model.merge_and_unload, model.merge_adapter):
        with pytest.raises(RuntimeError, match=r"stored quantized \(BinaryFormat.*dequantize\(\)"):
            merge()
    assert torch.equal(logits(model, kind), unmerged)

    # In place: the packed base layers become float ones inside the LoRA layers, which then merge as PEFT does.
    model.get_base_model().dequantize()
    merged = model.merge_and_unload()
    assert not any(isinstance(m, (PackedModule, peft.tuners.tuners_utils.BaseTunerLayer)) for m in merged.modules())
    assert getattr(merged.config, "quantization_config", None) is None
    torch.testing.assert_close(logits(merged, kind), unmerged, rtol=1e-4, atol=1e-4)

    # The saved adapter has the float layers' shapes: PEFT's own layers load it onto a dequantized base.
    float_base = packed(kind)
    float_base.dequantize()
    fresh = peft.PeftModel.from_pretrained(float_base, tmp_path).merge_and_unload()
    torch.testing.assert_close(logits(fresh, kind), unmerged, rtol=1e-4, atol=1e-4)


def test_targeting_the_packed_lstm_raises(packed):
    with pytest.raises(ValueError, match=r"decoder\.lstm is a PackedLSTM: PEFT has no LoRA layer for nn\.LSTM"):
        peft.get_peft_model(packed("rnnt"), lora_config("rnnt", target_modules=["q_proj", "decoder.lstm"]))


@pytest.mark.parametrize(
    ("option", "message"),
    [({"use_dora": True}, "plain LoRA only"), ({"init_lora_weights": "pissa"}, "computed from the base weight")],
)
def test_lora_variants_that_need_the_dense_weight_raise(packed, option, message):
    with pytest.raises(ValueError, match=message):
        peft.get_peft_model(packed("rnnt"), lora_config("rnnt", **option))


def test_packed_layers_get_packed_lora_types(packed):
    model = peft.get_peft_model(packed("rnnt"), lora_config("rnnt"))
    wrapped = {name: type(m) for name, m in model.named_modules() if isinstance(m, lora.LoraPackedLinear)}
    assert wrapped["base_model.model.joint.head"] is lora.LoraPackedLinear
    assert wrapped["base_model.model.encoder.layers.0.conv.pointwise_conv1"] is lora.LoraPackedConv1d
    assert len(wrapped) == 2 * 5 + 1  # per encoder layer: q, v, two feed-forward linear1, pointwise_conv1
    assert all(type(m.get_base_layer()) in (PackedLinear, PackedConv1d)
               for m in model.modules() if isinstance(m, lora.LoraPackedLinear))
