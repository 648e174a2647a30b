"""The lattice KL of distillation: zero for a student equal to its teacher, positive otherwise, blind to nodes
outside each utterance's lattice, and the T**2-scaled KL of the softened distributions."""

from __future__ import annotations

import pytest
import torch

from hf_binarize.training import lattice_kl_loss

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
