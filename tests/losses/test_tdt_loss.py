"""``hf_binarize.losses.tdt_loss`` and the ``ParakeetForTDT`` loss entry.

The reference is an enumeration of every alignment written here from the TDT definition (blank advances by a
positive duration, a label by any duration, the path ends with a blank landing exactly on the last frame), plus
transformers' own pure-PyTorch ``tdt_loss``, which autograd differentiates.
"""

from __future__ import annotations

import pytest
import torch
from transformers import ParakeetForTDT, ParakeetTDTConfig
from transformers.loss.loss_tdt import ParakeetForTDTLoss
from transformers.loss.loss_tdt import tdt_loss as transformers_tdt_loss

from hf_binarize.losses import _lattice, parakeet_tdt_loss, tdt_loss

REDUCTIONS = ("mean_volume", "mean_batch", "mean", "sum", "none")


def batch(seed, b, t, u, v, durations, dtype=torch.float64, logit_lengths=None, target_lengths=None):
    """Random token/duration logits and targets (never blank, which is v - 1); padding holds blank."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randn(b, t, u + 1, v, generator=gen, dtype=torch.float64).mul_(2).to(dtype)
    durs = torch.randn(b, t, u + 1, len(durations), generator=gen, dtype=torch.float64).mul_(2).to(dtype)
    targets = torch.randint(0, v - 1, (b, u), generator=gen)
    logit_lengths = torch.full((b,), t) if logit_lengths is None else torch.tensor(logit_lengths)
    target_lengths = torch.full((b,), u) if target_lengths is None else torch.tensor(target_lengths)
    targets[torch.arange(u)[None, :] >= target_lengths[:, None]] = v - 1
    return tokens, durs, targets, logit_lengths, target_lengths


def brute_force(token_lp, duration_lp, targets, t_len, u_len, blank, durations):
    """-log of the summed probability of every TDT alignment of one sample, enumerated path by path."""
    scores = []

    def walk(t, u, score):
        for i, d in enumerate(durations):
            if d > 0:
                step = score + token_lp[t, u, blank] + duration_lp[t, u, i]
                if t + d < t_len:
                    walk(t + d, u, step)
                elif t + d == t_len and u == u_len:
                    scores.append(step)
            if u < u_len and t + d < t_len:
                walk(t + d, u + 1, score + token_lp[t, u, targets[u]] + duration_lp[t, u, i])

    walk(0, 0, token_lp.new_zeros(()))
    return -torch.logsumexp(torch.stack(scores), dim=0) if scores else token_lp.new_tensor(float("inf"))


def per_sample_brute_force(tokens, durs, targets, t_lens, u_lens, durations, sigma=0.0):
    token_lp = torch.log_softmax(tokens, dim=-1) - sigma
    duration_lp = torch.log_softmax(durs, dim=-1)
    blank = tokens.shape[-1] - 1
    return torch.stack([
        brute_force(token_lp[b], duration_lp[b], targets[b], int(t_lens[b]), int(u_lens[b]), blank, durations)
        for b in range(tokens.shape[0])
    ])


CASES = [
    dict(b=4, t=4, u=3, v=4, durations=(0, 1, 2, 3, 4), logit_lengths=[4, 2, 3, 1], target_lengths=[3, 2, 0, 1]),
    dict(b=3, t=4, u=2, v=3, durations=(0, 1, 2), logit_lengths=[4, 3, 2], target_lengths=[2, 1, 2]),
    # No zero duration: every label must advance, so long targets on short inputs have no path at all.
    dict(b=2, t=4, u=2, v=4, durations=(1, 2), logit_lengths=[4, 1], target_lengths=[2, 1]),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("sigma", [0.0, 0.05])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_enumeration_of_all_alignments(case, sigma, reduction):
    tokens, durs, targets, t_lens, u_lens = batch(0, **case)
    per_sample = per_sample_brute_force(tokens, durs, targets, t_lens, u_lens, case["durations"], sigma)
    lengths = u_lens.double()
    expected = {
        "mean_volume": per_sample.sum() / lengths.sum(),
        "mean_batch": per_sample.mean(),
        "mean": (per_sample / lengths).mean(),
        "sum": per_sample.sum(),
        "none": per_sample,
    }[reduction]
    blank = case["v"] - 1
    got = tdt_loss(tokens, durs, targets, t_lens, u_lens, blank, case["durations"], sigma=sigma,
                   reduction=reduction)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


# Without a zero duration, transformers' autograd gradient is NaN (logsumexp over unreachable nodes, all -inf);
# that case is covered by test_gradient_matches_autograd_through_enumeration.
@pytest.mark.parametrize("durations", [(0, 1, 2, 3, 4), (0, 2, 1)])
def test_matches_transformers_loss_and_its_autograd_gradient(durations):
    tokens, durs, targets, t_lens, u_lens = batch(1, 3, 8, 4, 6, durations, logit_lengths=[8, 6, 7],
                                                  target_lengths=[4, 2, 3])
    weights = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    ours = [tokens.clone().requires_grad_(True), durs.clone().requires_grad_(True)]
    ref = [tokens.clone().requires_grad_(True), durs.clone().requires_grad_(True)]
    loss = tdt_loss(*ours, targets, t_lens, u_lens, 5, durations, sigma=0.02, reduction="none")
    # transformers computes in float32 whatever the input dtype.
    expected = transformers_tdt_loss(*ref, targets.int(), t_lens.int(), u_lens.int(), 5, list(durations),
                                     sigma=0.02, reduction="none")
    torch.testing.assert_close(loss, expected.double(), rtol=1e-5, atol=1e-5)
    (loss * weights).sum().backward()
    (expected.double() * weights).sum().backward()
    for mine, theirs in zip(ours, ref, strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("durations", [(1, 3), (0, 1, 2)])
def test_gradient_matches_autograd_through_enumeration(durations):
    tokens, durs, targets, t_lens, u_lens = batch(7, 2, 5, 2, 4, durations, logit_lengths=[5, 4],
                                                  target_lengths=[2, 1])
    ours = [tokens.clone().requires_grad_(True), durs.clone().requires_grad_(True)]
    ref = [tokens.clone().requires_grad_(True), durs.clone().requires_grad_(True)]
    tdt_loss(*ours, targets, t_lens, u_lens, 3, durations, sigma=0.1, reduction="sum").backward()
    per_sample_brute_force(*ref, targets, t_lens, u_lens, durations, sigma=0.1).sum().backward()
    for mine, theirs in zip(ours, ref, strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-10, atol=1e-12)


def test_gradcheck():
    tokens, durs, targets, t_lens, u_lens = batch(2, 2, 4, 2, 3, (0, 1, 2), logit_lengths=[4, 3],
                                                  target_lengths=[2, 1])
    tokens.requires_grad_(True)
    durs.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, d: tdt_loss(x, d, targets, t_lens, u_lens, 2, (0, 1, 2), sigma=0.1, reduction="none"),
        (tokens, durs),
    )


def test_gradient_only_for_inputs_that_need_it():
    tokens, durs, targets, t_lens, u_lens = batch(3, 2, 5, 3, 4, (0, 1, 2, 3))
    tokens.requires_grad_(True)
    tdt_loss(tokens, durs, targets, t_lens, u_lens, 3, (0, 1, 2, 3)).backward()
    assert tokens.grad is not None and durs.grad is None


def test_chunked_passes_match_one_pass(monkeypatch):
    tokens, durs, targets, t_lens, u_lens = batch(4, 3, 6, 3, 5, (0, 1, 2), dtype=torch.float32,
                                                  logit_lengths=[6, 4, 5])
    whole = tokens.clone().requires_grad_(True)
    tdt_loss(whole, durs, targets, t_lens, u_lens, 4, (0, 1, 2)).backward()
    monkeypatch.setattr(_lattice, "CHUNK_ELEMENTS", 1)
    chunked = tokens.clone().requires_grad_(True)
    tdt_loss(chunked, durs, targets, t_lens, u_lens, 4, (0, 1, 2)).backward()
    torch.testing.assert_close(chunked.grad, whole.grad)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_logits(dtype):
    tokens, durs, targets, t_lens, u_lens = batch(5, 2, 6, 3, 7, (0, 1, 2, 3, 4), dtype=dtype)
    low = [tokens.clone().requires_grad_(True), durs.clone().requires_grad_(True)]
    ref = [tokens.double().requires_grad_(True), durs.double().requires_grad_(True)]
    loss = tdt_loss(*low, targets, t_lens, u_lens, 6, (0, 1, 2, 3, 4))
    expected = tdt_loss(*ref, targets, t_lens, u_lens, 6, (0, 1, 2, 3, 4))
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-5)
    loss.backward()
    expected.backward()
    for mine, theirs in zip(low, ref, strict=True):
        assert mine.grad.dtype == dtype
        torch.testing.assert_close(mine.grad.double(), theirs.grad, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_halves_of_one_joint_output_get_one_gradient(dtype):
    """ParakeetForTDT passes two slices of its joint output; the loss then differentiates the joint output."""
    tokens, durs, targets, t_lens, u_lens = batch(8, 3, 6, 3, 5, (0, 1, 2), dtype=dtype, logit_lengths=[6, 4, 5])
    joint = torch.cat([tokens, durs], dim=-1).requires_grad_(True)
    split = [tokens.clone().requires_grad_(True), durs.clone().requires_grad_(True)]
    weights = torch.tensor([1.0, -0.5, 2.0])
    loss = tdt_loss(joint[..., :5], joint[..., 5:], targets, t_lens, u_lens, 4, (0, 1, 2), reduction="none")
    expected = tdt_loss(*split, targets, t_lens, u_lens, 4, (0, 1, 2), reduction="none")
    torch.testing.assert_close(loss, expected, rtol=0, atol=0)
    assert loss.grad_fn.next_functions[0][0].variable is joint
    (loss * weights.to(loss.dtype)).sum().backward()
    (expected * weights.to(loss.dtype)).sum().backward()
    torch.testing.assert_close(joint.grad, torch.cat([g.grad for g in split], dim=-1), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(durations=(0,)), "durations"),
        (dict(durations=(0, -1, 1)), "durations"),
        (dict(durations=(0, 1)), "duration_logits"),
        (dict(reduction="average"), "reduction"),
        (dict(blank_token_id=4), "blank_token_id"),
    ],
)
def test_rejects_bad_inputs(change, message):
    tokens, durs, targets, t_lens, u_lens = batch(6, 2, 4, 2, 4, (0, 1, 2))
    args = dict(token_logits=tokens, duration_logits=durs, targets=targets, logit_lengths=t_lens,
                target_lengths=u_lens, blank_token_id=3, durations=(0, 1, 2))
    with pytest.raises(ValueError, match=message):
        tdt_loss(**{**args, **change})


def tiny_tdt(vocab=12):
    torch.manual_seed(0)
    encoder = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                   subsampling_conv_channels=8, num_mel_bins=16, subsampling_factor=4)
    return ParakeetForTDT(ParakeetTDTConfig(encoder_config=encoder, vocab_size=vocab, blank_token_id=vocab - 1,
                                            pad_token_id=vocab - 1, decoder_hidden_size=16, num_decoder_layers=1,
                                            durations=[0, 1, 2, 3]))


def test_parakeet_for_tdt_trains_with_our_loss_like_transformers_loss(installed):
    blank = 11
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(2, 64, 16, generator=gen)
    mask = torch.ones(2, 64, dtype=torch.long)
    mask[1, 40:] = 0
    labels = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 6, blank, blank]])
    inputs = dict(input_features=features, attention_mask=mask, labels=labels,
                  decoder_input_ids=torch.cat([torch.full((2, 1), blank), labels], dim=1))

    model = tiny_tdt().eval()
    assert model.loss_function is parakeet_tdt_loss
    out = model(**inputs)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}

    reference = tiny_tdt().eval()
    reference.loss_function = ParakeetForTDTLoss
    expected = reference(**inputs)
    expected.loss.backward()
    torch.testing.assert_close(out.loss, expected.loss, rtol=1e-5, atol=1e-6)
    for name, p in reference.named_parameters():
        if p.grad is None:
            assert grads[name] is None, name
            continue
        assert torch.isfinite(grads[name]).all(), name
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert grads["joint.head.weight"].abs().sum() > 0
