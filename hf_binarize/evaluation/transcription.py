"""Greedy transcription and word error rate of a transducer on prepared speech examples.

The same code scores a float or QAT model during training (:mod:`hf_binarize.training.trainer`) and a float or
packed checkpoint from the command line (:mod:`hf_binarize.evaluation.report`, ``hf-binarize evaluate``).

Examples are the rows :class:`hf_binarize.data.preparation.SpeechPreparer` makes (``input_features``, ``labels``,
``length``, and the transcript ``text``, which is the reference). References and hypotheses are scored after one
of :data:`hf_binarize.data.text.SCORING_NORMALIZERS`, ``basic`` unless told otherwise. Decoding keeps repeated
tokens (``group_tokens=False``): collapsing them is right for CTC output only.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.collation import SpeechCollator
from ..data.text import ErrorRate, cer, scoring_normalizer, wer
from ..integrations.tdt_generation import suppress_durations
from .families import blank_id, family_of


@dataclass(frozen=True)
class Transcripts:
    """References and greedy hypotheses, pairwise, with their corpus-level error rates after the scoring
    normaliser called ``normalizer`` (one of :data:`hf_binarize.data.text.SCORING_NORMALIZERS`)."""

    references: list[str]
    hypotheses: list[str]
    normalizer: str = "basic"

    def __post_init__(self) -> None:
        scoring_normalizer(self.normalizer)

    @property
    def wer(self) -> ErrorRate:
        return wer(self.references, self.hypotheses, normalizer=scoring_normalizer(self.normalizer))

    @property
    def cer(self) -> ErrorRate:
        return cer(self.references, self.hypotheses, normalizer=scoring_normalizer(self.normalizer))

    def samples(self, count: int = 3) -> str:
        """The first ``count`` pairs as ``ref: ... / hyp: ...`` lines, for logs."""
        return "\n".join(f"  ref: {reference}\n  hyp: {hypothesis}"
                         for reference, hypothesis in zip(self.references[:count], self.hypotheses[:count],
                                                          strict=True))

    def summary(self) -> str:
        word, character = self.wer, self.cer
        return (f"WER {100 * word.rate:.2f}% ({word.errors}/{word.reference_length} words), "
                f"CER {100 * character.rate:.2f}% on {len(self.references)} utterances")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer, for a packed model without parameters)."""
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers())
    return tensor.device


@dataclass(frozen=True)
class GreedyOutput:
    """What one batched greedy decode gives: ``tokens`` ``[B, S]`` (blank where nothing was emitted, including the
    steps past each utterance's last frame), the encoder frame each step's token was emitted at (``[B, S]``) and
    the encoder frames of each utterance (``[B]``)."""

    tokens: torch.Tensor
    emitted_at: torch.Tensor
    frames: torch.Tensor


def greedy_generation_config(model: nn.Module) -> Any:
    """A copy of the model's generation config that greedy transducer decoding can run with: the caller's model
    keeps its own, the prediction network starts from blank when the checkpoint names no start token, and a TDT
    model never emits a duration as a token (:mod:`hf_binarize.integrations.tdt_generation`)."""
    generation = copy.deepcopy(model.generation_config)
    suppress_durations(generation, model.config)
    if generation.decoder_start_token_id is None and family_of(model.config) != "ctc":
        generation.decoder_start_token_id = model.config.blank_token_id
    return generation


def greedy_decode(model: nn.Module, generation: Any, input_features: torch.Tensor,
                  attention_mask: torch.Tensor) -> GreedyOutput:
    """Greedy decoding of one padded batch of features (no gradients): transducers with ``model.generate``, CTC
    models by the argmax of each frame with repeats merged (a repeat becomes blank, so that decoding the tokens
    without grouping gives the CTC transcript and each kept token the frame it started at).

    transformers 5.24's greedy transducer decoding only stops a finished utterance of a batch when the generation
    config has an ``eos_token_id`` (a transducer has none): until the longest utterance ends, the others keep
    decoding their padding frames and append garbage. ``durations`` (the frame advance of every step) tell at which
    frame each token was emitted, so those tokens are blanked here.
    """
    device = model_device(model)
    blank = blank_id(model.config)
    if family_of(model.config) == "ctc":
        return _ctc_greedy(model, input_features.to(device), attention_mask.to(device), blank)
    frames = model._get_subsampling_output_length(attention_mask.sum(-1)).to(device)
    if int(frames.max()) <= 0:
        # Audio shorter than one encoder frame (the tail of a long file, say): nothing to decode, and generate
        # would refuse a budget of 0 new tokens.
        nothing = torch.zeros(len(frames), 0, dtype=torch.long, device=device)
        return GreedyOutput(nothing, nothing, frames)
    # Greedy RNN-T emits at most max_symbols_per_step tokens per frame (blanks included): the bound generate would
    # guess itself, with a warning.
    generation.max_new_tokens = int(frames.max()) * model.config.max_symbols_per_step
    with torch.no_grad():
        output = model.generate(input_features=input_features.to(device), attention_mask=attention_mask.to(device),
                                generation_config=generation)
    emitted_at = output.durations.cumsum(-1) - output.durations
    tokens = output.sequences.masked_fill(emitted_at >= frames[:, None], blank)
    return GreedyOutput(tokens, emitted_at, frames)


def _ctc_greedy(model: nn.Module, input_features: torch.Tensor, attention_mask: torch.Tensor,
                blank: int) -> GreedyOutput:
    with torch.no_grad():
        logits = model(input_features=input_features, attention_mask=attention_mask).logits
    frames = model._get_subsampling_output_length(attention_mask.sum(-1))
    best = logits.argmax(-1)
    positions = torch.arange(best.shape[1], device=best.device).expand_as(best)
    repeat = torch.zeros_like(best, dtype=torch.bool)
    repeat[:, 1:] = best[:, 1:] == best[:, :-1]
    tokens = best.masked_fill(repeat | (positions >= frames[:, None]), blank)
    return GreedyOutput(tokens, positions, frames)


def transcribe(model: nn.Module, tokenizer: Any, examples: Any, batch_size: int = 16, *,
               progress: bool = False, normalizer: str = "basic", desc: str = "transcribing") -> Transcripts:
    """Greedy-decodes prepared ``examples`` (a ``datasets.Dataset`` or a sequence of rows) with ``model.generate``.

    Batches are formed from utterances of similar length (less padding) and results returned in the examples'
    order. Padding moves encoder outputs by rounding errors (about 1e-6), which can flip a greedy decision of a
    barely trained model: compare runs at equal ``batch_size``. The model runs in eval mode and is put back in its
    previous mode afterwards; no random numbers are drawn, so a call in the middle of training does not change what
    training does next. ``progress`` shows a progress bar over the utterances (tqdm, on stderr), labelled ``desc``;
    ``normalizer`` names the scoring normaliser of the result.
    """
    scoring_normalizer(normalizer)
    blank = blank_id(model.config)
    generation = greedy_generation_config(model)
    collator = SpeechCollator(label_pad_token_id=blank)
    if hasattr(examples, "column_names"):
        lengths, references = list(examples["length"]), list(examples["text"])
    else:
        lengths, references = [row["length"] for row in examples], [row["text"] for row in examples]
    order = np.argsort(-np.asarray(lengths), kind="stable").tolist()
    hypotheses: list[str] = [""] * len(order)
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(order), desc=desc, unit="utt", disable=not progress)
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = collator([examples[index] for index in chunk])
            decoded = greedy_decode(model, generation, batch["input_features"], batch["attention_mask"])
            texts = tokenizer.batch_decode(decoded.tokens, skip_special_tokens=True, group_tokens=False)
            for index, text in zip(chunk, texts, strict=True):
                hypotheses[index] = text.strip()
            bar.update(len(chunk))
    finally:
        bar.close()
        model.train(was_training)
    return Transcripts(references, hypotheses, normalizer)


# Utterances a stream is transcribed in at a time: sorted by length within a window, as transcribe sorts them.
STREAM_WINDOW = 512


def transcribe_stream(model: nn.Module, tokenizer: Any, examples: Any, batch_size: int = 16, *,
                      progress: bool = False, normalizer: str = "basic",
                      desc: str = "transcribing") -> tuple[Transcripts, int]:
    """:func:`transcribe` for prepared examples that arrive as a stream (a ``datasets.IterableDataset``): windows of
    :data:`STREAM_WINDOW` examples are transcribed one after the other, so memory holds one window whatever the
    stream's length. Returns the transcripts in stream order and the feature frames transcribed."""
    references: list[str] = []
    hypotheses: list[str] = []
    frames = 0
    rows = iter(examples)
    bar = tqdm(desc=desc, unit="utt", disable=not progress)
    try:
        while window := list(itertools.islice(rows, STREAM_WINDOW)):
            part = transcribe(model, tokenizer, window, batch_size, normalizer=normalizer)
            references += part.references
            hypotheses += part.hypotheses
            frames += sum(row["length"] for row in window)
            bar.update(len(window))
    finally:
        bar.close()
    return Transcripts(references, hypotheses, normalizer), frames
