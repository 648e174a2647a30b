"""Knowledge distillation of a Parakeet model: the student's output distributions follow the teacher's.

A transducer's joint network gives, at every node ``(t, u)`` of the lattice (encoder frame ``t``, ``u`` labels
emitted), a distribution over the vocabulary and blank; a TDT joint gives two independent ones there, the token and
the frame advance (duration); a CTC head gives one per encoder frame. The loss is ``KL(teacher || student)`` of those
distributions at temperature ``T``, times ``T**2`` (Hinton et al. 2015: keeps gradient magnitudes comparable across
temperatures), averaged over the valid nodes (frames, for CTC) of the batch. Both models read the same labels, so
their lattices line up node for node.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PretrainedConfig

from ..evaluation.families import family_of


def lattice_kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, logit_lengths: torch.Tensor,
                    label_lengths: torch.Tensor, temperature: float = 1.0,
                    splits: Sequence[int] | None = None) -> torch.Tensor:
    """Mean ``T**2 * KL(softmax(teacher / T) || softmax(student / T))`` over the valid lattice nodes.

    Args:
        student_logits: ``(B, T, U + 1, V)`` joint logits of the model being trained.
        teacher_logits: the teacher's logits for the same inputs and labels, at least as many frames.
        logit_lengths: ``(B,)`` valid encoder frames per utterance.
        label_lengths: ``(B,)`` labels per utterance (nodes ``u = 0 .. label_length`` are valid).
        temperature: softening temperature, positive.
        splits: the sizes of the independent distributions the last dimension holds, in order (TDT: the vocabulary,
            then the durations): the KL of their product is the sum of their KLs. ``None``: one distribution.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    splits = [student_logits.shape[-1]] if splits is None else list(splits)
    if sum(splits) != student_logits.shape[-1]:
        raise ValueError(f"splits {splits} do not add up to the {student_logits.shape[-1]} logits of a node")
    frames, nodes = student_logits.shape[1], student_logits.shape[2]
    teacher_logits = teacher_logits[:, :frames, :nodes]
    device = student_logits.device
    valid = ((torch.arange(frames, device=device)[None, :, None] < logit_lengths.to(device)[:, None, None])
             & (torch.arange(nodes, device=device)[None, None, :] <= label_lengths.to(device)[:, None, None]))
    kl = 0
    for student_part, teacher_part in zip((student_logits.float() / temperature).split(splits, -1),
                                          (teacher_logits.float() / temperature).split(splits, -1), strict=True):
        student, teacher = student_part.log_softmax(-1), teacher_part.log_softmax(-1)
        kl = kl + (teacher.exp() * (teacher - student)).sum(-1)
    return kl[valid].mean() * temperature**2


def distillation_loss(config: PretrainedConfig, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      logit_lengths: torch.Tensor, label_lengths: torch.Tensor,
                      temperature: float = 1.0) -> torch.Tensor:
    """:func:`lattice_kl_loss` of the ``logits`` of a Parakeet model with this ``config`` and of its teacher: the
    RNN-T joint's distribution at every lattice node, the TDT joint's token and duration distributions at every
    node, or the CTC head's distribution at every encoder frame (``label_lengths`` are then unused)."""
    family = family_of(config)
    if family == "ctc":
        # One node per frame: the lattice of a model whose output does not depend on the labels emitted.
        return lattice_kl_loss(student_logits[:, :, None], teacher_logits[:, :, None], logit_lengths,
                               torch.zeros_like(logit_lengths), temperature)
    splits = (config.vocab_size, len(config.durations)) if family == "tdt" else None
    return lattice_kl_loss(student_logits, teacher_logits, logit_lengths, label_lengths, temperature, splits)
