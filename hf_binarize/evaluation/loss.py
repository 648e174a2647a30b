"""A model's own loss on prepared speech examples, utterance by utterance: how far a changed model (binarized in
part, say) moved from the data, more finely than the greedy WER that its argmax decisions give.

Each utterance is scored alone, so that the value depends neither on the batch size nor on padding, and all three
Parakeet families give the same unit: RNN-T's loss (``mean_volume``), TDT's and CTC's (``mean``) all reduce one
utterance to its negative log-likelihood divided by its label count, nats per label.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data.collation import SpeechCollator
from .transcription import model_device


def mean_loss(model: nn.Module, examples: Any) -> float:
    """The mean over ``examples`` (rows of :class:`hf_binarize.data.preparation.SpeechPreparer`) of the model's
    loss on each utterance alone, in nats per label; the model runs in eval mode without gradients and is put back
    in its previous mode afterwards."""
    collator = SpeechCollator.for_model(model)
    device = model_device(model)
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        with torch.no_grad():
            for index in range(len(examples)):
                batch = {key: value.to(device) for key, value in collator([examples[index]]).items()}
                total += float(model(**batch).loss)
    finally:
        model.train(was_training)
    return total / len(examples)
