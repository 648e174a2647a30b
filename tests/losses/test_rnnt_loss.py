"""``hf_binarize.losses.rnnt_loss`` and the ``ParakeetForRNNT`` loss entry.

References are written here from the definition, never from hf_binarize: an enumeration of every alignment (tiny
lattices) and a plain alpha recursion that autograd differentiates (for the gradient).
"""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from transformers import ParakeetForRNNT, ParakeetRNNTConfig

import hf_binarize.losses as losses_pkg
from hf_binarize.losses import _lattice, parakeet_rnnt_loss, register, rnnt_loss

TORCH_REDUCTIONS = ("none", "mean", "sum")
PARAKEET_REDUCTIONS = ("mean_volume", "mean_batch", "mean", "sum", "none")


def batch(seed, b, t, u, v, dtype=torch.float64, logit_lengths=None, target_lengths=None, blank=None):
    """Random logits and targets (never blank) with per-sample lengths; padding holds blank."""
    gen = torch.Generator().manual_seed(seed)
    blank = v - 1 if blank is None else blank
    logits = torch.randn(b, t, u + 1, v, generator=gen, dtype=torch.float64).mul_(2).to(dtype)
    labels = [i for i in range(v) if i != blank]
    targets = torch.tensor(labels)[torch.randint(0, len(labels), (b, u), generator=gen)]
    logit_lengths = torch.full((b,), t) if logit_lengths is None else torch.tensor(logit_lengths)
    target_lengths = torch.full((b,), u) if target_lengths is None else torch.tensor(target_lengths)
    targets[torch.arange(u)[None, :] >= target_lengths[:, None]] = blank
    return logits, targets, logit_lengths, target_lengths


def brute_force(log_probs, targets, t_len, u_len, blank):
    """-log of the summed probability of every alignment of one sample, enumerated path by path."""
    scores = []

    def walk(t, u, score):
        if t == t_len - 1 and u == u_len:
            scores.append(score + log_probs[t, u, blank])
            return
        if t < t_len - 1:
            walk(t + 1, u, score + log_probs[t, u, blank])
        if u < u_len:
            walk(t, u + 1, score + log_probs[t, u, targets[u]])

    walk(0, 0, log_probs.new_zeros(()))
    return -torch.logsumexp(torch.stack(scores), dim=0)


def naive_dp(logits, targets, logit_lengths, target_lengths, blank, fused=True):
    """The alpha recursion node by node, differentiable by autograd."""
    log_probs = torch.log_softmax(logits, dim=-1) if fused else logits
    out = []
    for b in range(logits.shape[0]):
        t_len, u_len, lp = int(logit_lengths[b]), int(target_lengths[b]), log_probs[b]
        alpha = {(0, 0): lp.new_zeros(())}
        for t in range(t_len):
            for u in range(u_len + 1):
                terms = []
                if t > 0:
                    terms.append(alpha[t - 1, u] + lp[t - 1, u, blank])
                if u > 0:
                    terms.append(alpha[t, u - 1] + lp[t, u - 1, targets[b, u - 1]])
                if terms:
                    alpha[t, u] = torch.logsumexp(torch.stack(terms), dim=0)
        out.append(-(alpha[t_len - 1, u_len] + lp[t_len - 1, u_len, blank]))
    return torch.stack(out)


def per_sample_brute_force(logits, targets, logit_lengths, target_lengths, blank, fused=True):
    log_probs = torch.log_softmax(logits, dim=-1) if fused else logits
    return torch.stack([
        brute_force(log_probs[b], targets[b], int(logit_lengths[b]), int(target_lengths[b]), blank)
        for b in range(logits.shape[0])
    ])


# Padded batches: full lengths, short frames, no targets, a single frame, more targets than frames.
CASES = [
    dict(b=4, t=4, u=3, v=4, logit_lengths=[4, 2, 3, 1], target_lengths=[3, 2, 0, 1]),
    dict(b=3, t=3, u=2, v=3, logit_lengths=[3, 3, 1], target_lengths=[2, 1, 2]),
    dict(b=2, t=4, u=1, v=4, logit_lengths=[4, 3], target_lengths=[1, 0], blank=0),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("reduction", TORCH_REDUCTIONS)
def test_matches_enumeration_of_all_alignments(case, reduction):
    logits, targets, t_lens, u_lens = batch(0, **{k: v for k, v in case.items() if k != "blank"},
                                            blank=case.get("blank"))
    blank = case.get("blank", case["v"] - 1)
    expected = per_sample_brute_force(logits, targets, t_lens, u_lens, blank)
    expected = {"none": expected, "mean": expected.mean(), "sum": expected.sum()}[reduction]
    got = rnnt_loss(logits, targets, t_lens, u_lens, blank=blank, reduction=reduction)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("normalised", [True, False])
def test_without_fused_log_softmax_logits_are_log_probs(normalised):
    logits, targets, t_lens, u_lens = batch(1, 3, 4, 3, 4, logit_lengths=[4, 3, 2], target_lengths=[3, 1, 2])
    if normalised:
        logits = torch.log_softmax(logits, dim=-1)
    expected = per_sample_brute_force(logits, targets, t_lens, u_lens, 3, fused=False)
    got = rnnt_loss(logits, targets, t_lens, u_lens, blank=3, reduction="none", fused_log_softmax=False)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    if normalised:
        fused = rnnt_loss(logits, targets, t_lens, u_lens, blank=3, reduction="none")
        torch.testing.assert_close(got, fused, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", PARAKEET_REDUCTIONS)
def test_parakeet_reductions(reduction):
    logits, targets, t_lens, u_lens = batch(2, **CASES[0])
    per_sample = per_sample_brute_force(logits, targets, t_lens, u_lens, 3)
    lengths = u_lens.double()
    expected = {
        "mean_volume": per_sample.sum() / lengths.sum(),
        "mean_batch": per_sample.mean(),
        "mean": (per_sample / lengths).mean(),
        "sum": per_sample.sum(),
        "none": per_sample,
    }[reduction]
    got = parakeet_rnnt_loss(logits, targets, t_lens, u_lens, blank_token_id=3, reduction=reduction,
                             output_attentions=False)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck(fused):
    logits, targets, t_lens, u_lens = batch(3, 3, 4, 2, 4, logit_lengths=[4, 2, 3], target_lengths=[2, 1, 0])
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: rnnt_loss(x, targets, t_lens, u_lens, blank=3, reduction="none", fused_log_softmax=fused),
        (logits,),
    )


@pytest.mark.parametrize("fused", [True, False])
def test_backward_matches_autograd_through_naive_recursion(fused):
    logits, targets, t_lens, u_lens = batch(4, 3, 7, 4, 6, logit_lengths=[7, 5, 6], target_lengths=[4, 4, 2])
    weights = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    ours = logits.clone().requires_grad_(True)
    ref = logits.clone().requires_grad_(True)
    loss = rnnt_loss(ours, targets, t_lens, u_lens, blank=5, reduction="none", fused_log_softmax=fused)
    expected = naive_dp(ref, targets, t_lens, u_lens, 5, fused=fused)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    (loss * weights).sum().backward()
    (expected * weights).sum().backward()
    torch.testing.assert_close(ours.grad, ref.grad, rtol=1e-10, atol=1e-12)


def test_clamp_bounds_each_gradient_entry():
    logits, targets, t_lens, u_lens = batch(5, 2, 5, 3, 5)
    free = logits.clone().requires_grad_(True)
    clamped = logits.clone().requires_grad_(True)
    rnnt_loss(free, targets, t_lens, u_lens, blank=4, reduction="sum").backward()
    rnnt_loss(clamped, targets, t_lens, u_lens, blank=4, clamp=0.05, reduction="sum").backward()
    assert free.grad.abs().max() > 0.05
    torch.testing.assert_close(clamped.grad, free.grad.clamp(-0.05, 0.05))


def test_chunked_passes_match_one_pass(monkeypatch):
    logits, targets, t_lens, u_lens = batch(6, 3, 6, 3, 5, dtype=torch.float32, logit_lengths=[6, 4, 5])
    whole = logits.clone().requires_grad_(True)
    rnnt_loss(whole, targets, t_lens, u_lens, reduction="sum").backward()
    monkeypatch.setattr(_lattice, "CHUNK_ELEMENTS", 1)
    chunked = logits.clone().requires_grad_(True)
    loss = rnnt_loss(chunked, targets, t_lens, u_lens, reduction="sum")
    loss.backward()
    torch.testing.assert_close(loss, rnnt_loss(logits, targets, t_lens, u_lens, reduction="sum"))
    torch.testing.assert_close(chunked.grad, whole.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_low_precision_logits_are_computed_in_float32(dtype):
    logits, targets, t_lens, u_lens = batch(7, 3, 6, 3, 7, dtype=dtype, logit_lengths=[6, 5, 3])
    logits.requires_grad_(True)
    ref = logits.detach().double().requires_grad_(True)
    loss = rnnt_loss(logits, targets, t_lens, u_lens, reduction="none")
    expected = rnnt_loss(ref, targets, t_lens, u_lens, reduction="none")
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-5)
    loss.sum().backward()
    expected.sum().backward()
    assert logits.grad.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(logits.grad.double(), ref.grad, rtol=tol, atol=tol)


def test_negative_blank_counts_from_the_end():
    logits, targets, t_lens, u_lens = batch(8, 2, 4, 2, 5)
    torch.testing.assert_close(rnnt_loss(logits, targets, t_lens, u_lens, blank=-1),
                               rnnt_loss(logits, targets, t_lens, u_lens, blank=4))


def test_sample_without_frames_has_infinite_loss_and_zero_gradient():
    logits, targets, t_lens, u_lens = batch(9, 2, 3, 2, 4, logit_lengths=[3, 0])
    logits.requires_grad_(True)
    loss = rnnt_loss(logits, targets, t_lens, u_lens, blank=3, reduction="none")
    assert math.isfinite(loss[0].item()) and loss[1].item() == math.inf
    loss[0].backward()
    assert logits.grad[1].abs().sum() == 0 and torch.isfinite(logits.grad).all()


def test_gradient_is_zero_outside_each_sample():
    logits, targets, t_lens, u_lens = batch(10, 2, 5, 3, 4, logit_lengths=[5, 3], target_lengths=[3, 1])
    logits.requires_grad_(True)
    rnnt_loss(logits, targets, t_lens, u_lens, blank=3, reduction="sum").backward()
    assert logits.grad[1, 3:].abs().sum() == 0 and logits.grad[1, :, 2:].abs().sum() == 0
    # Each node's gradient sums to zero over the vocabulary under the softmax.
    torch.testing.assert_close(logits.grad.sum(-1), torch.zeros_like(logits.grad.sum(-1)))


def test_no_graph_without_grad():
    logits, targets, t_lens, u_lens = batch(11, 2, 4, 2, 4)
    logits.requires_grad_(True)
    with torch.no_grad():
        loss = rnnt_loss(logits, targets, t_lens, u_lens)
    assert loss.grad_fn is None and torch.isfinite(loss)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(reduction="mean_volume"), "reduction"),
        (dict(blank=7), "blank"),
        (dict(targets=torch.zeros(2, 3, dtype=torch.long)), "targets must be"),
        (dict(logit_lengths=torch.tensor([5, 2])), "logit_lengths"),
        (dict(target_lengths=torch.tensor([3, 2])), "target_lengths"),
        (dict(targets=torch.tensor([[9, 0], [1, 1]])), r"\[0, 4\)"),
    ],
)
def test_rejects_bad_inputs(change, message):
    logits, targets, t_lens, u_lens = batch(12, 2, 4, 2, 4)
    args = dict(logits=logits, targets=targets, logit_lengths=t_lens, target_lengths=u_lens, blank=3)
    with pytest.raises(ValueError, match=message):
        rnnt_loss(**{**args, **change})


def test_matches_torchaudio_published_example():
    """The B=1, T=2, U=2, V=5 example (from warp-transducer) whose cost and gradient torchaudio's own tests pin."""
    logits = torch.tensor([
        [[0.1, 0.6, 0.1, 0.1, 0.1], [0.1, 0.1, 0.6, 0.1, 0.1], [0.1, 0.1, 0.2, 0.8, 0.1]],
        [[0.1, 0.6, 0.1, 0.1, 0.1], [0.1, 0.1, 0.2, 0.1, 0.1], [0.7, 0.1, 0.2, 0.1, 0.1]],
    ])[None].requires_grad_(True)
    expected_grad = torch.tensor([
        [[0.17703132, -0.39992708, 0.17703132, 0.17703132, -0.13116692],
         [0.12247062, 0.12247062, -0.181684, 0.12247062, -0.1857276],
         [0.06269141, 0.06269141, 0.06928471, 0.12624498, -0.32091248]],
        [[0.05456069, -0.2182428, 0.05456069, 0.05456069, 0.05456069],
         [0.12073967, 0.12073967, -0.48295838, 0.12073967, 0.12073967],
         [0.30741188, 0.16871123, 0.18645471, 0.16871123, -0.83128875]],
    ])[None]
    loss = rnnt_loss(logits, torch.tensor([[1, 2]]), torch.tensor([2]), torch.tensor([2]), blank=-1,
                     reduction="sum")
    loss.backward()
    torch.testing.assert_close(loss, torch.tensor(5.09566688538), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(logits.grad, expected_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("torchaudio") is None, reason="torchaudio is not installed")
@pytest.mark.parametrize("fused", [True, False])
def test_matches_torchaudio(fused):
    import torchaudio

    logits, targets, t_lens, u_lens = batch(13, 4, 12, 5, 9, dtype=torch.float32,
                                            logit_lengths=[12, 7, 9, 3], target_lengths=[3, 5, 0, 2])
    if not fused:
        logits = torch.log_softmax(logits, dim=-1)
    ours = logits.clone().requires_grad_(True)
    ref = logits.clone().requires_grad_(True)
    loss = rnnt_loss(ours, targets, t_lens, u_lens, blank=8, reduction="none", fused_log_softmax=fused)
    expected = torchaudio.functional.rnnt_loss(ref, targets.int(), t_lens.int(), u_lens.int(), blank=8,
                                               reduction="none", fused_log_softmax=fused)
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-5)
    weights = torch.rand(4)
    (loss * weights).sum().backward()
    (expected * weights).sum().backward()
    torch.testing.assert_close(ours.grad, ref.grad, rtol=1e-4, atol=1e-5)


def test_register_leaves_torchaudio_in_place_unless_forced(loss_mapping, monkeypatch):
    original = dict(loss_mapping)
    monkeypatch.setattr(losses_pkg, "_torchaudio_available", lambda: True)
    assert not register()
    assert dict(loss_mapping) == original
    monkeypatch.setattr(losses_pkg, "_torchaudio_available", lambda: False)
    assert register()
    assert loss_mapping["ParakeetForRNNT"] is parakeet_rnnt_loss
    assert loss_mapping["ParakeetForTDT"] is losses_pkg.parakeet_tdt_loss


def tiny_rnnt(vocab=12):
    torch.manual_seed(0)
    encoder = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                   subsampling_conv_channels=8, num_mel_bins=16, subsampling_factor=4)
    return ParakeetForRNNT(ParakeetRNNTConfig(encoder_config=encoder, vocab_size=vocab, blank_token_id=vocab - 1,
                                              pad_token_id=vocab - 1, decoder_hidden_size=16, num_decoder_layers=1))


def test_parakeet_for_rnnt_trains_with_our_loss(installed):
    model = tiny_rnnt().train()
    blank = model.config.blank_token_id
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(2, 64, 16, generator=gen)
    mask = torch.ones(2, 64, dtype=torch.long)
    mask[1, 40:] = 0
    labels = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 6, blank, blank]])
    decoder_input_ids = torch.cat([torch.full((2, 1), blank), labels], dim=1)
    assert model.loss_function is parakeet_rnnt_loss
    out = model(input_features=features, attention_mask=mask, decoder_input_ids=decoder_input_ids, labels=labels)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)

    logit_lengths = model.get_audio_features(input_features=features, attention_mask=mask).attention_mask.sum(-1)
    per_sample = naive_dp(out.logits.detach().double(), labels, logit_lengths, torch.tensor([5, 3]), blank)
    torch.testing.assert_close(out.loss.detach().double(), per_sample.sum() / 8, rtol=1e-5, atol=1e-6)

    out.loss.backward()
    for name in ("joint.head.weight", "decoder.lstm.weight_hh_l0", "encoder_projector.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
