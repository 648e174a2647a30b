"""Knowledge distillation of a transducer on its lattice: the student's joint logits follow the teacher's.

At every node ``(t, u)`` of the RNN-T lattice (encoder frame ``t``, ``u`` labels emitted) the joint network gives a
distribution over the vocabulary and blank; the loss is ``KL(teacher || student)`` of those distributions at
temperature ``T``, times ``T**2`` (Hinton et al. 2015: keeps gradient magnitudes comparable across temperatures),
averaged over the valid nodes of the batch. Both models read the same labels, so their lattices line up node for
node.
"""

from __future__ import annotations

import torch


def lattice_kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, logit_lengths: torch.Tensor,
                    label_lengths: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Mean ``T**2 * KL(softmax(teacher / T) || softmax(student / T))`` over the valid lattice nodes.

    Args:
        student_logits: ``(B, T, U + 1, V)`` joint logits of the model being trained.
        teacher_logits: the teacher's logits for the same inputs and labels, at least as many frames.
        logit_lengths: ``(B,)`` valid encoder frames per utterance.
        label_lengths: ``(B,)`` labels per utterance (nodes ``u = 0 .. label_length`` are valid).
        temperature: softening temperature, positive.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    frames, nodes = student_logits.shape[1], student_logits.shape[2]
    teacher_logits = teacher_logits[:, :frames, :nodes]
    device = student_logits.device
    valid = ((torch.arange(frames, device=device)[None, :, None] < logit_lengths.to(device)[:, None, None])
             & (torch.arange(nodes, device=device)[None, None, :] <= label_lengths.to(device)[:, None, None]))
    student = (student_logits.float() / temperature).log_softmax(-1)
    teacher = (teacher_logits.float() / temperature).log_softmax(-1)
    kl = (teacher.exp() * (teacher - student)).sum(-1)
    return kl[valid].mean() * temperature**2
