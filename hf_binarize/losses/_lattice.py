"""Forward-backward over a transducer lattice and the chunked passes over the joint logits.

Shared by the RNN-T and TDT losses. A node ``(t, u)`` means "``t`` frames consumed, ``u`` targets emitted". An arc
leaves a node with a weight (a log-probability) and either emits nothing (blank, ``t += d`` with ``d >= 1``) or the
next target (label, ``t += d``, ``u += 1`` with ``d >= 0``). Plain RNN-T is the special case of one blank arc with
``d = 1`` and one label arc with ``d = 0``. A path starts at ``(0, 0)`` and ends with a blank arc leaving
``(t, U_b)`` that lands exactly on ``t = T_b``; label arcs never end a path. This is torchaudio's RNN-T lattice and
NeMo's TDT lattice (as ported to ``transformers.loss.loss_tdt``).

Memory: the full ``(B, T, U+1, V)`` logits are only ever read in slices of a few frames. Everything else is
``O(B * T * (U+1))`` per arc.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

NEG_INF = float("-inf")

# Upper bound on elements of one float slice of the logits; each pass keeps about three such slices alive.
CHUNK_ELEMENTS = 1 << 22

Arc = tuple[int, Tensor]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64 (gradcheck); everything else, half precision included, is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_inputs(
    logits: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Validate shapes and lengths; returns ``targets`` (long, padding replaced by 0 so that it can index the
    vocabulary) and both lengths as long tensors on the logits' device."""
    if logits.dim() != 4:
        raise ValueError(f"logits must be (batch, time, target + 1, classes), got shape {tuple(logits.shape)}")
    batch, max_t, max_u1, vocab = logits.shape
    if targets.dim() != 2 or targets.shape[0] != batch or targets.shape[1] != max_u1 - 1:
        raise ValueError(
            f"targets must be (batch, {max_u1 - 1}) for logits of shape {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    device = logits.device
    logit_lengths = logit_lengths.to(device=device, dtype=torch.long)
    target_lengths = target_lengths.to(device=device, dtype=torch.long)
    if logit_lengths.shape != (batch,) or target_lengths.shape != (batch,):
        raise ValueError("logit_lengths and target_lengths must be 1-D with one entry per batch element")
    if bool((logit_lengths < 0).any()) or bool((logit_lengths > max_t).any()):
        raise ValueError(f"logit_lengths must lie in [0, {max_t}]")
    if bool((target_lengths < 0).any()) or bool((target_lengths > max_u1 - 1).any()):
        raise ValueError(f"target_lengths must lie in [0, {max_u1 - 1}]")
    targets = targets.to(device=device, dtype=torch.long)
    in_use = torch.arange(max_u1 - 1, device=device) < target_lengths[:, None]
    if bool((in_use & ((targets < 0) | (targets >= vocab))).any()):
        raise ValueError(f"targets within target_lengths must lie in [0, {vocab})")
    return targets.masked_fill(~in_use, 0), logit_lengths, target_lengths


def _frame_chunks(logits: Tensor) -> range:
    batch, max_t, max_u1, vocab = logits.shape
    return range(0, max_t, max(1, CHUNK_ELEMENTS // max(1, batch * max_u1 * vocab)))


def token_log_probs(
    logits: Tensor, targets: Tensor, blank: int, normalize: bool, dtype: torch.dtype
) -> tuple[Tensor | None, Tensor, Tensor]:
    """Blank and next-target log-probabilities at every node, read from ``logits`` a few frames at a time.

    Returns ``(lse, blank_lp, label_lp)``, each ``(B, T, U+1)``: ``lse`` is the log-softmax normaliser (``None``
    when ``normalize`` is false and the logits are taken as log-probabilities already); ``label_lp[..., u]`` scores
    ``targets[:, u]`` and its last column, which no target uses, is ``-inf``.
    """
    batch, max_t, max_u1, _ = logits.shape
    lse = logits.new_empty((batch, max_t, max_u1), dtype=dtype) if normalize else None
    blank_lp = logits.new_empty((batch, max_t, max_u1), dtype=dtype)
    label_lp = logits.new_full((batch, max_t, max_u1), NEG_INF, dtype=dtype)
    step = _frame_chunks(logits).step
    for t0 in _frame_chunks(logits):
        x = logits[:, t0 : t0 + step].to(dtype)
        index = targets[:, None, :, None].expand(batch, x.shape[1], max_u1 - 1, 1)
        blank_x = x[..., blank]
        label_x = x[:, :, :-1].gather(-1, index).squeeze(-1)
        if lse is not None:
            z = torch.logsumexp(x, dim=-1)
            lse[:, t0 : t0 + step] = z
            blank_x = blank_x - z
            label_x = label_x - z[:, :, :-1]
        blank_lp[:, t0 : t0 + step] = blank_x
        label_lp[:, t0 : t0 + step, :-1] = label_x
    return lse, blank_lp, label_lp


def token_grad(
    logits: Tensor,
    targets: Tensor,
    blank: int,
    lse: Tensor | None,
    blank_occupancy: Tensor,
    label_occupancy: Tensor,
    scale: Tensor,
    clamp: float = -1.0,
    grad: Tensor | None = None,
) -> Tensor:
    """Gradient of ``scale[b] * loss[b]`` w.r.t. ``logits``, built a few frames at a time into ``grad`` (a new
    tensor shaped and typed like ``logits`` unless given, possibly a view of a larger one) and returned.

    With the softmax inside the loss, d(-log P)/dx_k = softmax_k * (total occupancy of the node) - (occupancy of
    the arcs that emit k); without it, only the second term remains. ``clamp > 0`` bounds each entry before
    ``scale`` is applied, as torchaudio does.
    """
    batch, _, max_u1, _ = logits.shape
    dtype = blank_occupancy.dtype
    if grad is None:
        grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)
    scale = scale.to(dtype)[:, None, None]
    if clamp <= 0:
        # Nothing non-linear follows, so the per-sample scale goes on the small tensors instead of every logit.
        blank_occupancy = blank_occupancy * scale
        label_occupancy = label_occupancy * scale
    node_occupancy = blank_occupancy + label_occupancy if lse is not None else None
    step = _frame_chunks(logits).step
    for t0 in _frame_chunks(logits):
        frames = slice(t0, t0 + step)
        x = logits[:, frames]
        # When `grad` has the compute dtype the slice is built in place there, with no temporary.
        out = grad[:, frames] if grad.dtype == dtype else None
        if lse is None or node_occupancy is None:
            g = out.zero_() if out is not None else torch.zeros(x.shape, dtype=dtype, device=x.device)
        else:
            g = torch.sub(x.to(dtype), lse[:, frames, :, None], out=out)
            g.exp_().mul_(node_occupancy[:, frames, :, None])
        g[..., blank] -= blank_occupancy[:, frames]
        index = targets[:, None, :, None].expand(batch, x.shape[1], max_u1 - 1, 1)
        g[:, :, :-1].scatter_add_(-1, index, label_occupancy[:, frames, :-1, None].neg())
        if clamp > 0:
            g.clamp_(-clamp, clamp).mul_(scale[..., None])
        if out is None:
            grad[:, frames] = g
    return grad


def _logsumexp_into(out: Tensor, terms: list[Tensor]) -> None:
    # A chain of logaddexp rather than logsumexp over a stack: no stacked copy, and on CPU it is orders of
    # magnitude faster on these small slices than logsumexp's exp/log, which go through MKL's threaded VML.
    if len(terms) == 1:
        out.copy_(terms[0])
    elif terms:
        torch.logaddexp(terms[0], terms[1], out=out)
        for term in terms[2:]:
            torch.logaddexp(out, term, out=out)


def lattice_forward_backward(
    blank_arcs: Sequence[Arc],
    label_arcs: Sequence[Arc],
    logit_lengths: Tensor,
    target_lengths: Tensor,
    occupancy: bool,
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Log-likelihood of all paths through the lattice and, optionally, the posterior occupancy of every arc.

    Args:
        blank_arcs: ``(d, weights)`` pairs, ``d >= 1``; ``weights[b, t, u]`` is the log-weight of the blank arc
            ``(t, u) -> (t + d, u)``.
        label_arcs: ``(d, weights)`` pairs, ``d >= 0``; ``weights[b, t, u]`` is the log-weight of the arc
            ``(t, u) -> (t + d, u + 1)`` that emits target ``u``.
        logit_lengths: ``T_b``, shape ``(B,)``.
        target_lengths: ``U_b``, shape ``(B,)``.
        occupancy: whether to run the backward (beta) pass and return arc occupancies.

    Returns:
        ``(log_likelihood (B,), blank occupancies, label occupancies)``: occupancies are ``(B, T, U+1)``
        probabilities (empty lists unless ``occupancy``), zero for a sample without any path.
    """
    batch, max_t, max_u1 = blank_arcs[0][1].shape
    device, dtype = blank_arcs[0][1].device, blank_arcs[0][1].dtype
    num_diag = max_t + max_u1 - 1
    t_len = logit_lengths[:, None, None]
    u_len = target_lengths[:, None, None]
    tt = torch.arange(max_t, device=device)[None, :, None]
    uu = torch.arange(max_u1, device=device)[None, None, :]
    node_ok = (tt < t_len) & (uu <= u_len)
    label_ok = node_ok & (uu < u_len)

    # Nodes on one anti-diagonal n = t + u do not depend on each other, so both recursions advance a whole
    # diagonal per step. Weights are stored skewed, (n, b, u), so that a diagonal is one contiguous slice.
    diag = torch.arange(num_diag, device=device)[:, None]
    col = torch.arange(max_u1, device=device)[None, :]
    row = diag - col
    in_grid = (row >= 0) & (row < max_t)
    row = row.clamp(0, max_t - 1)

    def skew(weights: Tensor, ok: Tensor) -> Tensor:
        masked = weights.masked_fill(~ok, NEG_INF)
        return masked[:, row, col].masked_fill(~in_grid, NEG_INF).transpose(0, 1).contiguous()

    blank_sk = [(d, skew(w, node_ok)) for d, w in blank_arcs]
    # One -inf column in front: alpha reads "target u - 1" and beta reads "target u" as plain slices.
    label_sk = [(d, F.pad(skew(w, label_ok), (1, 0), value=NEG_INF)) for d, w in label_arcs]

    # The same -inf column in front of alpha, so that column j holds u = j - 1.
    alpha = torch.full((num_diag, batch, max_u1 + 1), NEG_INF, dtype=dtype, device=device)
    alpha[0, :, 1] = 0.0
    for n in range(1, num_diag):
        terms = [alpha[n - d, :, 1:] + w[n - d] for d, w in blank_sk if n >= d]
        terms += [alpha[n - d - 1, :, :-1] + w[n - d - 1, :, :-1] for d, w in label_sk if n > d]
        _logsumexp_into(alpha[n, :, 1:], terms)

    # Final blank arcs leave (T_b - d, U_b), which lies on diagonal T_b + U_b - d.
    batch_idx = torch.arange(batch, device=device)
    finals = []
    for d, w in blank_sk:
        n_final = logit_lengths + target_lengths - d
        ok = n_final >= 0
        n_final = n_final.clamp(min=0)
        score = alpha[n_final, batch_idx, target_lengths + 1] + w[n_final, batch_idx, target_lengths]
        finals.append((n_final, ok, score.masked_fill(~ok, NEG_INF)))
    log_likelihood = torch.logsumexp(torch.stack([score for _, _, score in finals]), dim=0)
    if not occupancy:
        return log_likelihood, [], []

    # Beta over the same diagonals, from the end. Rows past the last diagonal and the trailing column are padding
    # (-inf) so that arcs leaving the grid read "no path" without bounds checks.
    max_d = max(d for d, _ in (*blank_arcs, *label_arcs))
    final_w = torch.full((num_diag, batch, max_u1), NEG_INF, dtype=dtype, device=device)
    final_steps: set[int] = set()
    for (_, w), (n_final, ok, _) in zip(blank_sk, finals, strict=True):
        idx = (n_final[ok], batch_idx[ok], target_lengths[ok])
        final_w[idx] = torch.logaddexp(final_w[idx], w[idx])
        final_steps.update(n_final[ok].tolist())
    beta = torch.full((num_diag + max_d + 1, batch, max_u1 + 1), NEG_INF, dtype=dtype, device=device)
    for n in range(num_diag - 1, -1, -1):
        terms = [beta[n + d, :, :-1] + w[n] for d, w in blank_sk]
        terms += [beta[n + d + 1, :, 1:] + w[n, :, 1:] for d, w in label_sk]
        if n in final_steps:
            terms.append(final_w[n])
        _logsumexp_into(beta[n, :, :-1], terms)

    dead = ~torch.isfinite(log_likelihood)
    alpha_node = alpha[:, :, 1:] - log_likelihood.masked_fill(dead, 0.0)[None, :, None]
    unskew_n = torch.arange(max_t, device=device)[:, None] + col

    def unskew(log_occ: Tensor) -> Tensor:
        occ = log_occ.exp_().transpose(0, 1)[:, unskew_n, col]
        return occ.masked_fill_(dead[:, None, None], 0.0)

    blank_occ = []
    for (d, w), (n_final, ok, _) in zip(blank_sk, finals, strict=True):
        log_occ = alpha_node + w + beta[d : d + num_diag, :, :-1]
        # The final arc lands on no node: its continuation weighs log 1.
        idx = (n_final[ok], batch_idx[ok], target_lengths[ok])
        log_occ[idx] = alpha_node[idx] + w[idx]
        blank_occ.append(unskew(log_occ))
    label_occ = [
        unskew(alpha_node + w[:, :, 1:] + beta[d + 1 : d + 1 + num_diag, :, 1:]) for d, w in label_sk
    ]
    return log_likelihood, blank_occ, label_occ
