"""ParakeetTrainer's loss for each Parakeet family, recomputed here from the model's own outputs with independent
references: every alignment enumerated for the transducers (the brute force of tests/losses), torch's CTC loss for
CTC and for the transducers' auxiliary head, and the distillation KL written out node by node (frame by frame for
CTC); a CTC model is refused an auxiliary CTC head."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from losses.test_rnnt_loss import per_sample_brute_force as rnnt_alignments
from losses.test_tdt_loss import per_sample_brute_force as tdt_alignments
from training_helpers import MEL_BINS, TINY_SIZE, tiny_model, tiny_processor
from transformers import TrainingArguments

from hf_binarize.data.collation import SpeechCollator
from hf_binarize.training import ParakeetTrainer

TEMPERATURE, DISTILL_WEIGHT, CTC_WEIGHT = 2.0, 0.7, 0.3
# Short utterances with few labels, so that the transducer lattices are small enough to enumerate.
FRAMES, LABELS = (36, 29, 24), ([3, 7, 7], [12, 4], [5, 9, 2])


def models(family: str):
    size = dataclasses.replace(TINY_SIZE, dropout=0.0)  # deterministic forwards in training mode
    student, teacher = tiny_model(family=family, size=size, seed=0), tiny_model(family=family, size=size, seed=1)
    # An opinionated teacher: random initialisation alone gives both models near-uniform outputs, and a KL near 0.
    head = teacher.ctc_head if family == "ctc" else teacher.joint.head
    with torch.no_grad():
        head.weight.mul_(20)
        head.bias.normal_(0, 2, generator=torch.Generator().manual_seed(2))
    return student, teacher


def batch(model) -> dict[str, torch.Tensor]:
    generator = np.random.default_rng(0)
    rows = [{"input_features": generator.standard_normal((frames, MEL_BINS), dtype=np.float32), "labels": labels}
            for frames, labels in zip(FRAMES, LABELS, strict=True)]
    return SpeechCollator.for_model(model)(rows)


def trainer(model, teacher, tmp_path, **kwargs) -> ParakeetTrainer:
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    return ParakeetTrainer(model, args, processor=tiny_processor(), teacher=teacher, distill_weight=DISTILL_WEIGHT,
                           distill_temperature=TEMPERATURE, **kwargs)


def kl(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """T**2 * KL(softmax(teacher / T) || softmax(student / T)) of one distribution, from the definition."""
    p = (teacher / TEMPERATURE).softmax(-1)
    return (p * (p.log() - (student / TEMPERATURE).log_softmax(-1))).sum() * TEMPERATURE**2


def ctc_per_utterance(logits, lengths, blank):
    targets = torch.tensor([label for labels in LABELS for label in labels])
    label_lengths = torch.tensor([len(labels) for labels in LABELS])
    losses = torch.nn.functional.ctc_loss(logits.double().log_softmax(-1).transpose(0, 1), targets, lengths,
                                          label_lengths, blank=blank, reduction="none")
    return losses, label_lengths


@pytest.mark.parametrize("family", ["rnnt", "tdt"])
def test_a_transducer_trains_on_its_loss_the_auxiliary_ctc_and_the_lattice_kl(family, tmp_path):
    model, teacher = models(family)
    inputs = batch(model)
    train = trainer(model.train(), teacher, tmp_path, ctc_weight=CTC_WEIGHT)
    loss, outputs = train.compute_loss(model, inputs, return_outputs=True)

    config = model.config
    vocab, blank = config.vocab_size, config.blank_token_id
    lengths = model.encoder(inputs["input_features"], attention_mask=inputs["attention_mask"]).attention_mask.sum(-1)
    label_lengths = torch.tensor([len(labels) for labels in LABELS])
    logits = outputs.logits.detach().double()
    if family == "rnnt":
        # transformers' RNN-T reduction, mean_volume: nats per label over the batch.
        per_utterance = rnnt_alignments(logits[:, : int(lengths.max())], inputs["labels"], lengths, label_lengths,
                                        blank)
        model_loss = per_utterance.sum() / label_lengths.sum()
    else:
        # transformers' TDT reduction, mean: nats per label of each utterance, averaged.
        per_utterance = tdt_alignments(logits[..., :vocab], logits[..., vocab:], inputs["labels"], lengths,
                                       label_lengths, config.durations)
        model_loss = (per_utterance / label_lengths).mean()
    head = model.aux_ctc_head(outputs.last_hidden_state.detach()).detach()
    aux_losses, _ = ctc_per_utterance(head, lengths, blank)
    aux = aux_losses.sum() / label_lengths.sum()

    with torch.no_grad():
        taught = teacher(input_features=inputs["input_features"], attention_mask=inputs["attention_mask"],
                         decoder_input_ids=inputs["decoder_input_ids"]).logits.double()
    nodes = []
    for b in range(len(LABELS)):
        for t in range(int(lengths[b])):
            for u in range(len(LABELS[b]) + 1):
                node = kl(taught[b, t, u, :vocab], logits[b, t, u, :vocab])
                if family == "tdt":  # the duration distribution, independent of the token's
                    node = node + kl(taught[b, t, u, vocab:], logits[b, t, u, vocab:])
                nodes.append(node)
    distilled = torch.stack(nodes).mean()

    expected = model_loss + CTC_WEIGHT * aux + DISTILL_WEIGHT * distilled
    torch.testing.assert_close(loss.detach().double(), expected, rtol=1e-4, atol=1e-5)
    parts = {name: values[0].item() for name, values in train._loss_parts.items()}
    assert parts.keys() == {f"{family}_loss", "aux_ctc_loss", "kl_loss"}
    assert parts[f"{family}_loss"] == pytest.approx(model_loss.item(), rel=1e-4)
    assert parts["kl_loss"] == pytest.approx(distilled.item(), rel=1e-4)


def test_a_ctc_model_trains_on_torch_ctc_loss_and_the_frame_kl(tmp_path):
    model, teacher = models("ctc")
    inputs = batch(model)
    assert "decoder_input_ids" not in inputs
    train = trainer(model.train(), teacher, tmp_path)  # the default weight of the auxiliary loss: none for CTC
    loss, outputs = train.compute_loss(model, inputs, return_outputs=True)
    assert not hasattr(model, "aux_ctc_head")

    blank = model.config.pad_token_id
    lengths = model.encoder(inputs["input_features"], attention_mask=inputs["attention_mask"]).attention_mask.sum(-1)
    logits = outputs.logits.detach().double()
    losses, label_lengths = ctc_per_utterance(logits, lengths, blank)
    # The config's reduction, transformers' default "mean": each utterance per label, then the batch mean.
    assert model.config.ctc_loss_reduction == "mean"
    ctc = (losses / label_lengths).mean()
    with torch.no_grad():
        taught = teacher(input_features=inputs["input_features"], attention_mask=inputs["attention_mask"]).logits
    distilled = torch.stack([kl(taught[b, t].double(), logits[b, t])
                             for b in range(len(LABELS)) for t in range(int(lengths[b]))]).mean()
    torch.testing.assert_close(loss.detach().double(), ctc + DISTILL_WEIGHT * distilled, rtol=1e-4, atol=1e-5)
    assert {name: values[0].item() for name, values in train._loss_parts.items()} == pytest.approx(
        {"ctc_loss": ctc.item(), "kl_loss": distilled.item()}, rel=1e-4)

    with pytest.raises(ValueError, match="auxiliary CTC loss is for transducers"):
        trainer(model, teacher, tmp_path, ctc_weight=CTC_WEIGHT)


def test_the_teacher_must_be_of_the_students_family(tmp_path):
    with pytest.raises(ValueError, match=r"teacher \(ParakeetForRNNT.*ParakeetForTDT"):
        trainer(models("tdt")[0], models("rnnt")[1], tmp_path)
