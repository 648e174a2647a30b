"""mean_loss: a model's own loss per utterance, checked against the loss written out from its logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import BLANK, MEL_BINS, build_model

from hf_binarize.evaluation.loss import mean_loss
from hf_binarize.losses import rnnt_loss


def examples(count: int = 3) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"input_features": rng.standard_normal((frames, MEL_BINS)).astype(np.float32),
             "labels": rng.integers(0, BLANK, labels).tolist(), "length": frames, "text": ""}
            for frames, labels in zip((40, 64, 24)[:count], (3, 5, 2)[:count], strict=True)]


def per_label_nll(model, kind: str, row: dict) -> float:
    """The utterance's negative log-likelihood over its labels: the RNN-T lattice loss of its logits (the loss the
    tests of hf_binarize.losses check by brute force), or CTC's from torch."""
    features = torch.from_numpy(row["input_features"])[None]
    mask = torch.ones(1, features.shape[1], dtype=torch.long)
    labels = torch.tensor([row["labels"]])
    with torch.no_grad():
        if kind == "ctc":
            logits = model(input_features=features, attention_mask=mask).logits
            frames = model._get_subsampling_output_length(mask.sum(-1))
            nll = torch.nn.functional.ctc_loss(logits.log_softmax(-1).transpose(0, 1), labels, frames,
                                               torch.tensor([labels.shape[1]]), blank=BLANK, reduction="sum")
        else:
            decoder_input = torch.cat([torch.tensor([[BLANK]]), labels], dim=1)
            logits = model(input_features=features, attention_mask=mask, decoder_input_ids=decoder_input).logits
            frames = model._get_subsampling_output_length(mask.sum(-1))
            nll = rnnt_loss(logits[:, : int(frames.max())], labels, frames, torch.tensor([labels.shape[1]]),
                            blank=BLANK, reduction="sum")
    return float(nll) / labels.shape[1]


@pytest.mark.parametrize("kind", ["rnnt", "ctc"])
def test_mean_loss_is_the_mean_per_label_nll_of_each_utterance(kind, installed):
    model = build_model(kind).train()
    rows = examples()
    expected = np.mean([per_label_nll(model.eval(), kind, row) for row in rows])
    model.train()
    assert mean_loss(model, rows) == pytest.approx(expected, rel=1e-5)
    # The model goes back to the mode it was in; one utterance alone scores its own loss.
    assert model.training
    assert mean_loss(model, rows[:1]) == pytest.approx(per_label_nll(model.eval(), kind, rows[0]), rel=1e-5)
