"""RNN-T loss in pure PyTorch, with the semantics of ``torchaudio.functional.rnnt_loss``.

transformers computes the loss of ``ParakeetForRNNT`` through torchaudio, which cannot be installed beside every
torch build. The gradient is analytic (alpha/beta occupancies), so the autograd graph holds one node whatever the
lattice size, and the only logits-sized tensor created is the gradient itself.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._lattice import check_inputs, compute_dtype, lattice_forward_backward, token_grad, token_log_probs

# Reduction names and formulas of transformers' Parakeet losses (after NeMo's RNNTLoss).
REDUCTIONS = ("mean_volume", "mean_batch", "mean", "sum", "none")


def reduce_losses(losses: Tensor, target_lengths: Tensor, reduction: str) -> Tensor:
    """Reduce per-sample transducer losses the way ``transformers.loss.loss_rnnt`` / ``loss_tdt`` do.

    Args:
        losses: Per-sample negative log-likelihoods, shape ``(B,)``.
        target_lengths: Number of targets per sample, shape ``(B,)``.
        reduction: ``"mean_volume"`` (sum of losses / sum of target lengths), ``"mean_batch"`` (batch mean),
            ``"mean"`` (each loss divided by its target length, then batch mean), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``losses`` itself for ``"none"``.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"Invalid reduction mode {reduction!r}. Expected one of {', '.join(map(repr, REDUCTIONS))}.")
    target_lengths = target_lengths.to(device=losses.device, dtype=losses.dtype)
    if reduction == "mean_volume":
        return losses.sum() / target_lengths.sum()
    if reduction == "mean_batch":
        return losses.mean()
    if reduction == "mean":
        return (losses / target_lengths).mean()
    if reduction == "sum":
        return losses.sum()
    return losses


class _RNNTLoss(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        logits: Tensor,
        targets: Tensor,
        logit_lengths: Tensor,
        target_lengths: Tensor,
        blank: int,
        clamp: float,
        fused_log_softmax: bool,
        track: bool,
    ) -> Tensor:
        dtype = compute_dtype(logits.dtype)
        lse, blank_lp, label_lp = token_log_probs(logits, targets, blank, fused_log_softmax, dtype)
        log_likelihood, blank_occ, label_occ = lattice_forward_backward(
            [(1, blank_lp)], [(0, label_lp)], logit_lengths, target_lengths, occupancy=track
        )
        if track:
            ctx.save_for_backward(logits, targets, lse, blank_occ[0], label_occ[0])
            ctx.blank, ctx.clamp = blank, clamp
        return -log_likelihood

    @staticmethod
    def backward(ctx: Any, grad_costs: Tensor) -> tuple[Tensor | None, ...]:
        logits, targets, lse, blank_occ, label_occ = ctx.saved_tensors
        grad = token_grad(logits, targets, ctx.blank, lse, blank_occ, label_occ, grad_costs, ctx.clamp)
        return grad, None, None, None, None, None, None, None


def rnnt_loss(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    clamp: float = -1,
    reduction: str = "mean",
    fused_log_softmax: bool = True,
) -> Tensor:
    """RNN-T loss (Graves 2012), a drop-in for ``torchaudio.functional.rnnt_loss``.

    Args:
        logits: Joint network output, ``(B, T, U+1, V)``; float32, float64, float16 or bfloat16 (half precision
            is computed in float32 a few frames at a time, never copied whole).
        targets: ``(B, U)`` integer targets; entries past ``target_lengths`` are ignored.
        logit_lengths: ``(B,)`` valid frames per sample, at most ``T`` (torchaudio insists on ``max == T``; here
            trailing frames are simply ignored).
        target_lengths: ``(B,)`` valid targets per sample, at most ``U``.
        blank: Blank index; negative values count from the end of the vocabulary as in torchaudio.
        clamp: If positive, each gradient entry is clamped to ``[-clamp, clamp]`` (torchaudio's option).
        reduction: ``"none"`` (per-sample losses), ``"mean"`` (batch mean) or ``"sum"``: torchaudio's names. The
            Parakeet reductions (``"mean_volume"`` etc.) are in :func:`parakeet_rnnt_loss`.
        fused_log_softmax: If true, log-softmax is applied over ``V`` inside the loss; if false, ``logits`` are
            taken as log-probabilities as they are.

    Returns:
        The reduced loss, or per-sample losses ``(B,)``, in float32 (float64 for float64 logits). A sample without
        any path (``logit_lengths == 0``) has an infinite loss and zero gradient, like torchaudio.
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError('reduction should be one of "none", "mean", or "sum"')
    vocab = logits.shape[-1]
    if blank < 0:
        blank += vocab
    if not 0 <= blank < vocab:
        raise ValueError(f"blank must be within [0, {vocab})")
    targets, logit_lengths, target_lengths = check_inputs(logits, targets, logit_lengths, target_lengths)
    track = torch.is_grad_enabled() and logits.requires_grad
    costs = _RNNTLoss.apply(
        logits, targets, logit_lengths, target_lengths, blank, float(clamp), fused_log_softmax, track
    )
    if reduction == "mean":
        return costs.mean()
    if reduction == "sum":
        return costs.sum()
    return costs


def parakeet_rnnt_loss(
    logits: Tensor,
    labels: Tensor,
    logit_lengths: Tensor,
    label_lengths: Tensor,
    blank_token_id: int,
    reduction: str = "mean_volume",
    **kwargs: Any,
) -> Tensor:
    """Replacement for ``transformers.loss.loss_rnnt.ParakeetForRNNTLoss`` (same arguments and reductions).

    ``ParakeetForRNNT.forward`` passes ``logits`` cut to the longest encoder output, ``labels`` padded with blank,
    ``label_lengths = (labels != blank).sum(-1)`` and any extra model kwargs, which are ignored here as there.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"Invalid reduction mode {reduction!r}. Expected one of {', '.join(map(repr, REDUCTIONS))}.")
    losses = rnnt_loss(logits, labels, logit_lengths, label_lengths, blank=blank_token_id, reduction="none")
    return reduce_losses(losses, label_lengths, reduction)
