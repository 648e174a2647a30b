"""The auxiliary CTC head: attached for training, absent from save_pretrained's checkpoint, saved and loaded on its
own for resuming, refused to a CTC model; its loss is torch's CTC loss in nats per label, with the transducer's
blank."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
from training_helpers import tiny_model
from transformers import AutoModelForRNNT

from hf_binarize.training import (
    attach_aux_ctc_head,
    aux_ctc_loss,
    detach_aux_ctc_head,
    load_aux_ctc_head,
    save_aux_ctc_head,
)


def test_the_head_is_trained_but_not_saved_with_the_model(tmp_path):
    model = tiny_model()
    head = attach_aux_ctc_head(model)
    assert attach_aux_ctc_head(model) is head
    assert head.in_features == model.config.encoder_config.hidden_size and head.out_features == model.config.vocab_size
    assert any(parameter is head.weight for parameter in model.parameters())

    model.save_pretrained(tmp_path / "model")
    saved = safetensors.torch.load_file(tmp_path / "model" / "model.safetensors")
    assert not any(key.startswith("aux_ctc_head") for key in saved)
    reloaded, info = AutoModelForRNNT.from_pretrained(tmp_path / "model", output_loading_info=True)
    assert not any(info.values()), info

    assert save_aux_ctc_head(model, tmp_path)
    assert not load_aux_ctc_head(reloaded, tmp_path / "model")
    assert load_aux_ctc_head(reloaded, tmp_path)
    torch.testing.assert_close(reloaded.aux_ctc_head.state_dict(), head.state_dict(), rtol=0, atol=0)

    assert detach_aux_ctc_head(model) is head and not hasattr(model, "aux_ctc_head")
    assert detach_aux_ctc_head(model) is None and not save_aux_ctc_head(model, tmp_path / "none")
    model.save_pretrained(tmp_path / "after")
    assert set(safetensors.torch.load_file(tmp_path / "after" / "model.safetensors")) == set(saved)


def test_loss_is_ctc_per_label_with_the_transducer_blank():
    generator = torch.Generator().manual_seed(0)
    blank, vocab, frames = 9, 10, 12
    logits = torch.randn(3, frames, vocab, generator=generator)
    lengths = torch.tensor([12, 10, 7])
    labels = torch.tensor([[1, 2, 2, 3], [4, 5, blank, blank], [6, blank, blank, blank]])
    label_lengths = torch.tensor([4, 2, 1])
    expected = torch.nn.functional.ctc_loss(logits.log_softmax(-1).transpose(0, 1), labels, lengths, label_lengths,
                                            blank=blank, reduction="sum") / label_lengths.sum()
    torch.testing.assert_close(aux_ctc_loss(logits, lengths, labels, label_lengths, blank), expected)
    # Labels padded with another id (the TDT collation pads with the pad id): the lengths say where they end.
    padded = torch.where(labels == blank, 0, labels)
    torch.testing.assert_close(aux_ctc_loss(logits, lengths, padded, label_lengths, blank), expected)


def test_an_utterance_without_alignment_counts_zero_not_infinity():
    blank = 4
    logits = torch.zeros(2, 3, 5, requires_grad=True)
    labels = torch.tensor([[1, 2], [1, 1]])  # "1 1" needs a blank between: 3 frames, but only 2 valid
    loss = aux_ctc_loss(logits, torch.tensor([3, 2]), labels, torch.tensor([2, 2]), blank)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[1].abs().sum() == 0
    alone = aux_ctc_loss(logits[:1], torch.tensor([3]), labels[:1], torch.tensor([2]), blank)
    assert loss.item() == pytest.approx(alone.item() * 2 / 4)


def test_a_ctc_model_gets_no_second_ctc_head():
    model = tiny_model(family="ctc")
    with pytest.raises(ValueError, match="ParakeetForCTC is trained with its own CTC loss"):
        attach_aux_ctc_head(model)
    assert not hasattr(model, "aux_ctc_head")
