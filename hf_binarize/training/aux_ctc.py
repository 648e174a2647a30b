"""The auxiliary CTC head on the transducer's encoder output, and its loss.

A transducer trained from scratch can lower its loss through the prediction network alone and ignore the audio;
a CTC loss on the encoder output (weight 0.3 in this project's measurements) forces the encoder to align with the
labels. The head exists only for training: it is attached to the model as ``aux_ctc_head`` so that DDP averages its
gradients, gradient clipping and the optimizer see it and Trainer checkpoints carry its optimizer state, but it is
listed in the model's ``_keys_to_ignore_on_save``, so ``save_pretrained`` writes a plain ``ParakeetForRNNT`` (or
``ParakeetForTDT``) checkpoint. Its weights go to their own file (:data:`HEAD_FILE`) beside the checkpoint, for
resuming and for QAT. A ``ParakeetForCTC`` gets no such head: it is a CTC model already.

The head is applied to the forward's ``last_hidden_state`` outside the model's forward. Under DDP that requires
``find_unused_parameters=False`` (which :class:`hf_binarize.training.ParakeetTrainer` sets): otherwise DDP marks
the head unused when the forward ends, then again when its gradient arrives, and stops with an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from ..evaluation.families import family_of

HEAD_NAME = "aux_ctc_head"
HEAD_FILE = "aux_ctc_head.safetensors"


def attach_aux_ctc_head(model: nn.Module) -> nn.Linear:
    """Adds (or returns the existing) float ``Linear(encoder hidden -> vocab)`` head as ``model.aux_ctc_head``.

    Raises ``ValueError`` for a ``ParakeetForCTC``: its own head and loss are CTC already, on the same encoder
    output, so a second one would only repeat its loss under another weight.
    """
    if hasattr(model, HEAD_NAME):
        return getattr(model, HEAD_NAME)
    config = model.config
    if family_of(config) == "ctc":
        raise ValueError(f"a {type(model).__name__} is trained with its own CTC loss: the auxiliary CTC loss is for "
                         "transducers (RNN-T, TDT); set its weight (--ctc-weight) to 0")
    parameter = next(model.parameters())
    head = nn.Linear(config.encoder_config.hidden_size, config.vocab_size, device=parameter.device)
    model.add_module(HEAD_NAME, head)
    model._keys_to_ignore_on_save = set(model._keys_to_ignore_on_save or ()) | {
        f"{HEAD_NAME}.{name}" for name in head.state_dict()
    }
    return head


def detach_aux_ctc_head(model: nn.Module) -> nn.Linear | None:
    """Removes ``model.aux_ctc_head`` and its save exclusions; returns the head, or ``None`` when there was none."""
    head = getattr(model, HEAD_NAME, None)
    if head is None:
        return None
    delattr(model, HEAD_NAME)
    model._keys_to_ignore_on_save = set(model._keys_to_ignore_on_save or ()) - {
        f"{HEAD_NAME}.{name}" for name in head.state_dict()
    }
    return head


def save_aux_ctc_head(model: nn.Module, folder: str | os.PathLike) -> bool:
    """Writes ``model.aux_ctc_head`` to ``folder/aux_ctc_head.safetensors``; returns whether there was a head."""
    head = getattr(model, HEAD_NAME, None)
    if head is None:
        return False
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in head.state_dict().items()}
    safetensors.torch.save_file(tensors, str(Path(folder) / HEAD_FILE))
    return True


def load_aux_ctc_head(model: nn.Module, folder: str | os.PathLike) -> bool:
    """Loads ``folder/aux_ctc_head.safetensors`` into ``model.aux_ctc_head`` (attached first if missing); returns
    ``False`` without touching the model when the file does not exist."""
    path = Path(folder) / HEAD_FILE
    if not path.is_file():
        return False
    head = attach_aux_ctc_head(model)
    head.load_state_dict(safetensors.torch.load_file(str(path), device=str(head.weight.device)))
    return True


def aux_ctc_loss(logits: torch.Tensor, encoder_lengths: torch.Tensor, labels: torch.Tensor,
                 label_lengths: torch.Tensor, blank_token_id: int) -> torch.Tensor:
    """CTC loss of the head's ``logits`` ``(B, T, V)``, in nats per label: summed over the batch and divided by the
    number of labels, the ``mean_volume`` reduction of the transducer loss, so that the two add up on one scale.

    The CTC blank is the transducer's blank; ``labels`` ``(B, U)`` hold ``label_lengths`` labels each, whatever pads
    the rest (the RNN-T collation pads with the blank, the TDT one with the pad id). Utterances with more labels
    than frames have no alignment and contribute zero (``zero_infinity``), not infinity.
    """
    log_probs = logits.float().log_softmax(-1)
    input_lengths = encoder_lengths.long().clamp(max=logits.shape[1])
    losses = nn.functional.ctc_loss(log_probs.transpose(0, 1), labels, input_lengths, label_lengths,
                                    blank=blank_token_id, reduction="none", zero_infinity=True)
    return losses.sum() / label_lengths.sum().clamp(min=1)
