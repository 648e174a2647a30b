"""Greedy transcription and word error rate of a transducer on prepared speech examples.

The same code scores a float or QAT model during training (:mod:`hf_binarize.training.trainer`) and a float or
packed checkpoint from the command line (:mod:`hf_binarize.evaluation.report`, ``hf-binarize evaluate``).

Examples are the rows :class:`hf_binarize.data.preparation.SpeechPreparer` makes (``input_features``, ``labels``,
``length``, and the normalised transcript ``text``, which is the reference). Decoding keeps repeated tokens
(``group_tokens=False``): collapsing them is right for CTC output only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.collation import SpeechCollator
from ..data.text import ErrorRate, cer, wer


@dataclass(frozen=True)
class Transcripts:
    """References and greedy hypotheses, pairwise, with their corpus-level error rates."""

    references: list[str]
    hypotheses: list[str]

    @property
    def wer(self) -> ErrorRate:
        return wer(self.references, self.hypotheses)

    @property
    def cer(self) -> ErrorRate:
        return cer(self.references, self.hypotheses)

    def samples(self, count: int = 3) -> str:
        """The first ``count`` pairs as ``ref: ... / hyp: ...`` lines, for logs."""
        return "\n".join(f"  ref: {reference}\n  hyp: {hypothesis}"
                         for reference, hypothesis in zip(self.references[:count], self.hypotheses[:count],
                                                          strict=True))

    def summary(self) -> str:
        word, character = self.wer, self.cer
        return (f"WER {100 * word.rate:.2f}% ({word.errors}/{word.reference_length} words), "
                f"CER {100 * character.rate:.2f}% on {len(self.references)} utterances")


def _device(model: nn.Module) -> torch.device:
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers())
    return tensor.device


def _drop_tokens_past_the_end(output: Any, frames: torch.Tensor, blank: int) -> torch.Tensor:
    """``output.sequences`` without the tokens emitted past each utterance's last encoder frame.

    transformers 5.24's greedy transducer decoding only stops a finished utterance of a batch when the generation
    config has an ``eos_token_id`` (a transducer has none): until the longest utterance ends, the others keep
    decoding their padding frames and append garbage. ``durations`` (the frame advance of every step) tell at which
    frame each token was emitted.
    """
    emitted_at = output.durations.cumsum(-1) - output.durations
    return output.sequences.masked_fill(emitted_at >= frames[:, None], blank)


def transcribe(model: nn.Module, tokenizer: Any, examples: Any, batch_size: int = 16, *,
               progress: bool = False) -> Transcripts:
    """Greedy-decodes prepared ``examples`` (a ``datasets.Dataset`` or a sequence of rows) with ``model.generate``.

    Batches are formed from utterances of similar length (less padding) and results returned in the examples'
    order. Padding moves encoder outputs by rounding errors (about 1e-6), which can flip a greedy decision of a
    barely trained model: compare runs at equal ``batch_size``. The model runs in eval mode and is put back in its
    previous mode afterwards; no random numbers are drawn, so a call in the middle of training does not change what
    training does next. ``progress`` shows a progress bar over the utterances (tqdm, on stderr).
    """
    config = model.config
    blank = config.blank_token_id
    # A copy, so that the caller's model keeps its own generation config; the prediction network starts from blank
    # when the checkpoint names no start token, and the token budget is set per batch below.
    generation = copy.deepcopy(model.generation_config)
    if generation.decoder_start_token_id is None:
        generation.decoder_start_token_id = blank
    collator = SpeechCollator(label_pad_token_id=blank)
    if hasattr(examples, "column_names"):
        lengths, references = list(examples["length"]), list(examples["text"])
    else:
        lengths, references = [row["length"] for row in examples], [row["text"] for row in examples]
    order = np.argsort(-np.asarray(lengths), kind="stable").tolist()
    hypotheses: list[str] = [""] * len(order)
    device = _device(model)
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(order), desc="transcribing", unit="utt", disable=not progress)
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = collator([examples[index] for index in chunk])
            # Greedy RNN-T emits at most max_symbols_per_step tokens per frame (blanks included): the bound
            # generate would guess itself, with a warning.
            frames = model._get_subsampling_output_length(batch["attention_mask"].sum(-1)).to(device)
            generation.max_new_tokens = int(frames.max()) * config.max_symbols_per_step
            with torch.no_grad():
                output = model.generate(input_features=batch["input_features"].to(device),
                                        attention_mask=batch["attention_mask"].to(device), generation_config=generation)
            texts = tokenizer.batch_decode(_drop_tokens_past_the_end(output, frames, blank),
                                           skip_special_tokens=True, group_tokens=False)
            for index, text in zip(chunk, texts, strict=True):
                hypotheses[index] = text.strip()
            bar.update(len(chunk))
    finally:
        bar.close()
        model.train(was_training)
    return Transcripts(references, hypotheses)
