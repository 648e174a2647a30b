"""TDT (Token-and-Duration Transducer, https://arxiv.org/abs/2304.06795) loss with analytic gradients.

Same definition as ``transformers.loss.loss_tdt.tdt_loss`` (a port of NeMo's ``TDTLossPytorch``): the joint network
predicts a token and, separately, how many frames ``durations[i]`` to advance. Blank arcs advance by a positive
duration only (a duration of 0 is skipped for blank), label arcs by any duration including 0, and a path ends with a
blank arc from the last target that lands exactly on the last frame. ``sigma`` is subtracted from every token
log-probability (logit under-normalisation); NeMo's ``omega`` (mixing in the plain RNN-T loss) is not used by
transformers and is not offered.

transformers' version needs no torchaudio but lets autograd record every diagonal of the recursion on top of the
full-size log-softmax; this one keeps one autograd node and creates no logits-sized tensor but the gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ._lattice import check_inputs, compute_dtype, lattice_forward_backward, token_grad, token_log_probs
from .rnnt import REDUCTIONS, reduce_losses


class _TDTLoss(torch.autograd.Function):
    # Takes either (token_logits, duration_logits) or (joint, None): the joint output whose first `vocab` columns
    # are the tokens. The second form returns one gradient for the joint output instead of one per slice, which
    # autograd would otherwise scatter into two more joint-sized tensors.
    @staticmethod
    def forward(
        ctx: Any,
        logits: Tensor,
        duration_logits: Tensor | None,
        vocab: int,
        targets: Tensor,
        logit_lengths: Tensor,
        target_lengths: Tensor,
        blank: int,
        durations: tuple[int, ...],
        sigma: float,
        track: bool,
    ) -> Tensor:
        ctx.joint = duration_logits is None
        token_logits = logits[..., :vocab]
        duration_logits = logits[..., vocab:] if duration_logits is None else duration_logits
        dtype = compute_dtype(token_logits.dtype)
        lse, blank_lp, label_lp = token_log_probs(token_logits, targets, blank, True, dtype)
        blank_lp -= sigma
        label_lp -= sigma
        duration_lp = torch.log_softmax(duration_logits.to(dtype), dim=-1)
        blank_index = [i for i, d in enumerate(durations) if d > 0]
        log_likelihood, blank_occ, label_occ = lattice_forward_backward(
            [(durations[i], blank_lp + duration_lp[..., i]) for i in blank_index],
            [(d, label_lp + duration_lp[..., i]) for i, d in enumerate(durations)],
            logit_lengths,
            target_lengths,
            occupancy=track,
        )
        if track:
            duration_occ = torch.stack(label_occ, dim=-1)
            for i, occ in zip(blank_index, blank_occ, strict=True):
                duration_occ[..., i] += occ
            ctx.save_for_backward(logits, targets, lse, sum(blank_occ), sum(label_occ), duration_lp, duration_occ)
            ctx.blank, ctx.vocab, ctx.duration_dtype = blank, vocab, duration_logits.dtype
        return -log_likelihood

    @staticmethod
    def backward(ctx: Any, grad_costs: Tensor) -> tuple[Tensor | None, ...]:
        logits, targets, lse, blank_occ, label_occ, duration_lp, duration_occ = ctx.saved_tensors
        vocab, none = ctx.vocab, (None,) * 8
        if ctx.joint:
            grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)
            token_grad(logits[..., :vocab], targets, ctx.blank, lse, blank_occ, label_occ, grad_costs,
                       grad=grad[..., :vocab])
            grad[..., vocab:] = _duration_grad(duration_lp, blank_occ + label_occ, duration_occ, grad_costs)
            return grad, None, *none
        token_g = duration_g = None
        if ctx.needs_input_grad[0]:
            token_g = token_grad(logits, targets, ctx.blank, lse, blank_occ, label_occ, grad_costs)
        if ctx.needs_input_grad[1]:
            duration_g = _duration_grad(duration_lp, blank_occ + label_occ, duration_occ, grad_costs)
            duration_g = duration_g.to(ctx.duration_dtype)
        return token_g, duration_g, *none


def _duration_grad(duration_lp: Tensor, node_occ: Tensor, duration_occ: Tensor, scale: Tensor) -> Tensor:
    # Every arc leaving a node draws one duration, so the node's total occupancy multiplies the softmax.
    grad = duration_lp.exp().mul_(node_occ[..., None]).sub_(duration_occ)
    return grad.mul_(scale.to(grad.dtype)[:, None, None, None])


def _joint_of(token_logits: Tensor, duration_logits: Tensor) -> Tensor | None:
    """The tensor both arguments are the two halves of along the last dim (``ParakeetForTDT`` slices its joint
    output this way), when autograd can use it in their place; ``None`` otherwise."""
    base = token_logits._base
    if base is None or duration_logits._base is not base:
        return None
    vocab = token_logits.shape[-1]
    return base if (
        base.requires_grad
        and token_logits.requires_grad
        and duration_logits.requires_grad
        and base.shape == (*token_logits.shape[:-1], vocab + duration_logits.shape[-1])
        and token_logits.stride() == base.stride() == duration_logits.stride()
        and token_logits.storage_offset() == base.storage_offset()
        and duration_logits.storage_offset() == base.storage_offset() + vocab * base.stride(-1)
    ) else None


def tdt_loss(
    token_logits: Tensor,
    duration_logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank_token_id: int,
    durations: Sequence[int],
    sigma: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """TDT loss, a drop-in for ``transformers.loss.loss_tdt.tdt_loss`` (same arguments and results).

    Args:
        token_logits: ``(B, T, U+1, V)`` token logits (blank included in ``V``); any float dtype, half precision is
            computed in float32 a few frames at a time.
        duration_logits: ``(B, T, U+1, len(durations))`` duration logits.
        targets: ``(B, U)`` integer targets; entries past ``target_lengths`` are ignored.
        logit_lengths: ``(B,)`` valid frames per sample, at most ``T``.
        target_lengths: ``(B,)`` valid targets per sample, at most ``U``.
        blank_token_id: Blank index in ``V``.
        durations: Frame advance of each duration class, e.g. ``(0, 1, 2, 3, 4)``; at least one must be positive.
        sigma: Constant subtracted from every token log-probability (the TDT paper's under-normalisation).
        reduction: ``"mean_volume"``, ``"mean_batch"``, ``"mean"``, ``"sum"`` or ``"none"``, see
            :func:`hf_binarize.losses.reduce_losses`.

    Returns:
        The reduced loss, or per-sample losses ``(B,)``, in float32 (float64 for float64 logits).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"Invalid reduction mode {reduction!r}. Expected one of {', '.join(map(repr, REDUCTIONS))}.")
    durations = tuple(int(d) for d in durations)
    if not durations or min(durations) < 0 or max(durations) < 1:
        raise ValueError(f"durations must be non-negative with at least one positive value, got {durations}")
    if duration_logits.shape != (*token_logits.shape[:3], len(durations)):
        raise ValueError(
            f"duration_logits must have shape {(*token_logits.shape[:3], len(durations))}, "
            f"got {tuple(duration_logits.shape)}"
        )
    vocab = token_logits.shape[-1]
    if not 0 <= blank_token_id < vocab:
        raise ValueError(f"blank_token_id must be within [0, {vocab})")
    targets, logit_lengths, target_lengths = check_inputs(token_logits, targets, logit_lengths, target_lengths)
    track = torch.is_grad_enabled() and (token_logits.requires_grad or duration_logits.requires_grad)
    joint = _joint_of(token_logits, duration_logits) if track else None
    losses = _TDTLoss.apply(
        token_logits if joint is None else joint,
        duration_logits if joint is None else None,
        vocab,
        targets,
        logit_lengths,
        target_lengths,
        blank_token_id,
        durations,
        float(sigma),
        track,
    )
    return reduce_losses(losses, target_lengths, reduction)


def parakeet_tdt_loss(
    token_logits: Tensor,
    duration_logits: Tensor,
    labels: Tensor,
    logit_lengths: Tensor,
    label_lengths: Tensor,
    blank_token_id: int,
    durations: Sequence[int],
    sigma: float = 0.0,
    reduction: str = "mean",
    **kwargs: Any,
) -> Tensor:
    """Replacement for ``transformers.loss.loss_tdt.ParakeetForTDTLoss`` (same arguments and reductions).

    ``ParakeetForTDT.forward`` passes the token and duration slices of the joint output (not cut to the longest
    encoder output), ``label_lengths = (labels != pad_token_id).sum(-1)``, ``config.durations`` and any extra
    model kwargs, which are ignored here as there.
    """
    return tdt_loss(
        token_logits,
        duration_logits,
        labels,
        logit_lengths,
        label_lengths,
        blank_token_id,
        durations,
        sigma=sigma,
        reduction=reduction,
    )
