"""Quantization-aware training: the QAT forward is the packed forward, gradients are straight-through, and a
QAT model trained in transformers freezes into a packed checkpoint."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import BLANK, audio_batch, build_model
from torch import nn
from transformers import AutoModelForRNNT

from hf_binarize import (
    QATLSTM,
    BinaryQuantizationConfig,
    PackedLinear,
    PackedLSTM,
    QATLinear,
    QATModule,
    binarize,
    dequantize,
    freeze,
    quantize_model,
    set_binarization_mix,
)
from hf_binarize.formats.binary import fake_binarize


@pytest.mark.parametrize(("group_size", "centred"), [(None, False), (16, False), (None, True), (24, True)])
@pytest.mark.parametrize("scale_dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_fake_binarize_forward_is_the_packed_weight(group_size, centred, scale_dtype):
    weight = torch.randn(13, 45)
    packed = binarize(weight, group_size, centred, scale_dtype)
    expected = dequantize(packed.packed, packed.scale, packed.offset, 45, group_size or 45, torch.float32)
    torch.testing.assert_close(fake_binarize(weight, group_size, centred, scale_dtype), expected, rtol=0, atol=0)


def test_straight_through_gradient_matches_the_closed_form():
    """W_hat = a * sign(W), a = mean|W| per row: dL/dW = G * a + sign(W) * sum_k(G * sign) / K."""
    weight = torch.randn(6, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    upstream = torch.randn(6, 10, dtype=torch.float64)
    (fake_binarize(weight, scale_dtype=torch.float64) * upstream).sum().backward()
    w = weight.detach()
    sign = torch.where(w >= 0, 1.0, -1.0).double()
    alpha = w.abs().mean(1, keepdim=True)
    expected = upstream * alpha + sign * (upstream * sign).sum(1, keepdim=True) / w.shape[1]
    torch.testing.assert_close(weight.grad, expected)


def qat_and_float(config: BinaryQuantizationConfig):
    torch.manual_seed(0)
    float_model = nn.Sequential(nn.Linear(20, 30), nn.Tanh(), nn.Linear(30, 12))
    return quantize_model(copy.deepcopy(float_model), config), float_model


def test_qat_forward_equals_frozen_packed_forward():
    qat, _ = qat_and_float(BinaryQuantizationConfig(mode="qat", group_size=8, centred=True))
    assert isinstance(qat[0], QATLinear) and isinstance(qat[0], nn.Linear)
    x = torch.randn(4, 20)
    with torch.no_grad():
        expected = qat(x)
        frozen = freeze(qat)
    assert isinstance(frozen[0], PackedLinear) and not any(isinstance(m, QATModule) for m in frozen.modules())
    torch.testing.assert_close(frozen(x), expected, rtol=1e-5, atol=1e-5)


def test_mix_zero_is_the_float_model_and_validates_range():
    qat, float_model = qat_and_float(BinaryQuantizationConfig(mode="qat"))
    set_binarization_mix(qat, 0.0)
    x = torch.randn(3, 20)
    torch.testing.assert_close(qat(x), float_model(x))
    set_binarization_mix(qat, 0.5)
    assert not torch.allclose(qat(x), float_model(x))
    with pytest.raises(ValueError, match="mix"):
        set_binarization_mix(qat, 1.5)


def test_learned_scales_train_and_are_what_freeze_stores():
    qat, _ = qat_and_float(BinaryQuantizationConfig(mode="qat", learnable_scales=True, scale_dtype="float32"))
    alpha = qat[0].weight_alpha
    torch.testing.assert_close(alpha.detach(), qat[0].weight.detach().abs().mean(1, keepdim=True))
    optimizer = torch.optim.SGD(qat.parameters(), lr=0.1)
    x, target = torch.randn(64, 20), torch.randn(64, 12)
    losses = []
    for _ in range(20):
        loss = nn.functional.mse_loss(qat(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    learned = qat[0].weight_alpha.detach().clone()
    assert not torch.allclose(learned, qat[0].weight.detach().abs().mean(1, keepdim=True))
    with torch.no_grad():
        expected = qat(x)
    frozen = freeze(qat)
    torch.testing.assert_close(frozen[0].weight_scale, learned)
    torch.testing.assert_close(frozen(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_qat_lstm_equals_lstm_with_quantized_weights(bidirectional):
    torch.manual_seed(0)
    lstm = nn.LSTM(12, 8, num_layers=2, batch_first=True, bidirectional=bidirectional)
    holder = nn.Sequential(lstm)
    reference = nn.LSTM(12, 8, num_layers=2, batch_first=True, bidirectional=bidirectional)
    reference.load_state_dict(lstm.state_dict())
    with torch.no_grad():
        for name in reference._flat_weights_names:
            if name.startswith("weight_"):
                getattr(reference, name).copy_(fake_binarize(getattr(lstm, name)))
    qat = quantize_model(holder, BinaryQuantizationConfig(mode="qat"))[0]
    assert isinstance(qat, QATLSTM)
    x = torch.randn(3, 5, 12)
    out, (h, c) = qat(x)
    ref_out, (ref_h, ref_c) = reference(x)
    for a, b in ((out, ref_out), (h, ref_h), (c, ref_c)):
        torch.testing.assert_close(a, b)
    frozen = freeze(nn.Sequential(qat))[0]
    assert isinstance(frozen, PackedLSTM)
    with torch.no_grad():
        torch.testing.assert_close(frozen(x)[0], out, rtol=1e-5, atol=1e-5)


def test_transformers_qat_loads_float_weights_trains_and_saves_packed(tmp_path):
    build_model("rnnt").save_pretrained(tmp_path / "float")
    float_model = AutoModelForRNNT.from_pretrained(tmp_path / "float")
    config = BinaryQuantizationConfig(mode="qat", learnable_scales=True, module_overrides={"joint": "int8"})
    model = AutoModelForRNNT.from_pretrained(tmp_path / "float", quantization_config=config)
    assert model.hf_quantizer.is_qat_trainable and model.hf_quantizer.is_trainable
    assert isinstance(model.encoder_projector, QATLinear) and isinstance(model.decoder.lstm, QATLSTM)
    # Latent weights are exactly the float checkpoint; learned scales start from them.
    torch.testing.assert_close(model.encoder_projector.weight, float_model.encoder_projector.weight, rtol=0, atol=0)
    torch.testing.assert_close(model.encoder_projector.weight_alpha.detach(),
                               float_model.encoder_projector.weight.abs().mean(1, keepdim=True))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    labels = torch.tensor([[BLANK, 1, 2, 3], [BLANK, 4, 5, 6]])
    for _ in range(3):
        logits = model(**audio_batch(), decoder_input_ids=labels).logits
        loss = logits.logsumexp(-1).mean() - logits[..., 1].mean()
        optimizer.zero_grad()
        loss.backward()
        assert model.encoder_projector.weight.grad is not None and model.decoder.lstm.weight_hh_l0.grad is not None
        optimizer.step()
    model.eval()
    with torch.no_grad():
        expected = model(**audio_batch(), decoder_input_ids=labels).logits
    freeze(model)
    assert model.config.quantization_config.mode == "packed"
    model.save_pretrained(tmp_path / "packed")
    reloaded = AutoModelForRNNT.from_pretrained(tmp_path / "packed")
    assert isinstance(reloaded.encoder_projector, PackedLinear) and reloaded.joint.head.fmt.method == "int8"
    # The checkpoint keeps the biases and norms in float16: the model QAT trained computes the same up to their
    # rounding (2^-11 relative; see tests/integrations/test_transformers.py for the bound).
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**audio_batch(), decoder_input_ids=labels).logits, expected,
                                   rtol=0, atol=5e-3 * expected.abs().max().item())


def test_qat_checkpoint_resumes_with_learned_scales(tmp_path):
    build_model("rnnt").save_pretrained(tmp_path / "float")
    config = BinaryQuantizationConfig(mode="qat", learnable_scales=True)
    model = AutoModelForRNNT.from_pretrained(tmp_path / "float", quantization_config=config)
    with torch.no_grad():
        model.encoder_projector.weight_alpha.mul_(1.5)
    model.save_pretrained(tmp_path / "qat")
    resumed = AutoModelForRNNT.from_pretrained(tmp_path / "qat")
    assert isinstance(resumed.encoder_projector, QATLinear)
    torch.testing.assert_close(resumed.encoder_projector.weight_alpha, model.encoder_projector.weight_alpha)
    torch.testing.assert_close(resumed.encoder_projector.weight, model.encoder_projector.weight)


@pytest.mark.parametrize("kwargs", [{"learnable_scales": True}, {"mode": "train"}])
def test_qat_config_errors(kwargs):
    with pytest.raises(ValueError, match=r"learnable_scales|mode"):
        BinaryQuantizationConfig(**kwargs)


def test_frozen_ctc_head_keeps_its_channels_last_layout(tmp_path):
    from transformers import AutoModelForCTC

    from hf_binarize import PackedConv1d

    build_model("ctc").save_pretrained(tmp_path)
    model = AutoModelForCTC.from_pretrained(tmp_path, quantization_config=BinaryQuantizationConfig(mode="qat")).eval()
    with torch.no_grad():
        expected = model(**audio_batch()).logits
        freeze(model)
        assert isinstance(model.ctc_head, PackedConv1d) and model.ctc_head.channels_last
        torch.testing.assert_close(model(**audio_batch()).logits, expected, rtol=1e-4, atol=1e-4)
    assert type(model.ctc_head.dequantize()).__name__ == "ParakeetEncoderCTCHead"
