"""The lattice KL of distillation: zero for a student equal to its teacher, positive otherwise, blind to nodes
outside each utterance's lattice, and the T**2-scaled KL of the softened distributions; per family, the KL of the
distributions each model's output holds (RNN-T: tokens per node, TDT: tokens and durations per node, CTC: tokens
per frame), written out node by node."""

from __future__ import annotations

import pytest
import torch

from hf_binarize.training import distillation_loss, lattice_kl_loss

LOGIT_LENGTHS, LABEL_LENGTHS = torch.tensor([5, 3]), torch.tensor([2, 1])


def logits(seed: int) -> torch.Tensor:
    return torch.randn(2, 5, 3, 7, generator=torch.Generator().manual_seed(seed))


def test_zero_for_the_teacher_itself_positive_otherwise():
    teacher = logits(0)
    assert lattice_kl_loss(teacher, teacher, LOGIT_LENGTHS, LABEL_LENGTHS).item() == pytest.approx(0.0, abs=1e-6)
    assert lattice_kl_loss(logits(1), teacher, LOGIT_LENGTHS, LABEL_LENGTHS) > 0


def test_nodes_outside_the_lattice_do_not_count():
    student, teacher = logits(1), logits(0)
    loss = lattice_kl_loss(student, teacher, LOGIT_LENGTHS, LABEL_LENGTHS)
    changed = student.clone()
    changed[1, 3:] = 100.0  # frames past utterance 1's length
    changed[1, :, 2:] = -100.0  # label positions past its single label
    assert lattice_kl_loss(changed, teacher, LOGIT_LENGTHS, LABEL_LENGTHS) == loss
    # A teacher with more frames (computed on a longer padding) is cut to the student's.
    longer = torch.cat([teacher, logits(2)], dim=1)
    assert lattice_kl_loss(student, longer, LOGIT_LENGTHS, LABEL_LENGTHS) == loss


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_matches_the_mean_scaled_kl_over_valid_nodes(temperature):
    student, teacher = logits(1), logits(0)
    nodes = [(0, t, u) for t in range(5) for u in range(3)] + [(1, t, u) for t in range(3) for u in range(2)]
    kls = []
    for b, t, u in nodes:
        p = (teacher[b, t, u] / temperature).softmax(-1)
        kls.append((p * (p.log() - (student[b, t, u] / temperature).log_softmax(-1))).sum())
    expected = torch.stack(kls).mean() * temperature**2
    got = lattice_kl_loss(student, teacher, LOGIT_LENGTHS, LABEL_LENGTHS, temperature)
    torch.testing.assert_close(got, expected)


def test_gradient_reaches_the_student_only():
    student, teacher = logits(1).requires_grad_(), logits(0)
    lattice_kl_loss(student, teacher, LOGIT_LENGTHS, LABEL_LENGTHS, 2.0).backward()
    assert student.grad.abs().sum() > 0 and student.grad[1, 3:].abs().sum() == 0
    with pytest.raises(ValueError, match="temperature"):
        lattice_kl_loss(student, teacher, LOGIT_LENGTHS, LABEL_LENGTHS, 0.0)


def _kl(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """KL(softmax(teacher) || softmax(student)) of one distribution, from its definition."""
    p = teacher.softmax(-1)
    return (p * (p.log() - student.log_softmax(-1))).sum()


def test_independent_parts_add_up_to_the_kl_of_their_product():
    # TDT's joint output at a node: 4 token logits, then 3 duration logits, two independent distributions.
    student, teacher = logits(1), logits(0)
    got = lattice_kl_loss(student, teacher, LOGIT_LENGTHS, LABEL_LENGTHS, 2.0, splits=(4, 3))

    def pairs(node_logits):
        # The joint distribution over (token, duration) pairs: the outer product of the two softmaxes.
        x = node_logits / 2.0
        return (x[:4].log_softmax(-1)[:, None] + x[4:].log_softmax(-1)[None, :]).flatten()

    nodes = [(0, t, u) for t in range(5) for u in range(3)] + [(1, t, u) for t in range(3) for u in range(2)]
    kls = [_kl(pairs(teacher[node]), pairs(student[node])) for node in nodes]
    torch.testing.assert_close(got, torch.stack(kls).mean() * 4.0)
    with pytest.raises(ValueError, match="do not add up"):
        lattice_kl_loss(student, teacher, LOGIT_LENGTHS, LABEL_LENGTHS, splits=(4, 2))


def _models(family: str):
    from training_helpers import tiny_model

    return tiny_model(family=family, seed=0), tiny_model(family=family, seed=1)


@pytest.mark.parametrize("family", ["rnnt", "tdt"])
def test_a_transducer_is_distilled_on_its_lattice(family):
    student, _ = _models(family)
    config = student.config
    width = config.vocab_size + (len(config.durations) if family == "tdt" else 0)
    generator = torch.Generator().manual_seed(3)
    s, t = (torch.randn(2, 4, 3, width, generator=generator) for _ in range(2))
    lengths, labels = torch.tensor([4, 2]), torch.tensor([2, 1])
    kls = []
    for b in range(2):
        for frame in range(int(lengths[b])):
            for node in range(int(labels[b]) + 1):
                kl = _kl(t[b, frame, node, :config.vocab_size], s[b, frame, node, :config.vocab_size])
                if family == "tdt":
                    kl = kl + _kl(t[b, frame, node, config.vocab_size:], s[b, frame, node, config.vocab_size:])
                kls.append(kl)
    torch.testing.assert_close(distillation_loss(config, s, t, lengths, labels), torch.stack(kls).mean())


def test_a_ctc_model_is_distilled_frame_by_frame():
    student, _ = _models("ctc")
    vocab = student.config.vocab_size
    generator = torch.Generator().manual_seed(4)
    s, t = (torch.randn(3, 6, vocab, generator=generator) for _ in range(2))
    lengths = torch.tensor([6, 1, 4])
    kls = [_kl(t[b, frame] / 1.5, s[b, frame] / 1.5) for b in range(3) for frame in range(int(lengths[b]))]
    # The labels play no part: a CTC head's output does not depend on them.
    got = distillation_loss(student.config, s, t, lengths, torch.tensor([9, 9, 9]), temperature=1.5)
    torch.testing.assert_close(got, torch.stack(kls).mean() * 1.5**2)
