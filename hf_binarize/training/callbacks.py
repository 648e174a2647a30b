"""Trainer callbacks of the recipes: decoding training utterances as training goes, and the binarization warm-up."""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..evaluation.transcription import Transcripts, transcribe
from ..quantize import set_binarization_mix

logger = logging.getLogger(__name__)


class DecodeTrainingSamplesCallback(TrainerCallback):
    """Every ``every_steps`` optimizer steps, greedy-decodes a few TRAINING utterances and logs reference against
    hypothesis with their WER.

    A transducer can bring its loss down with the prediction network alone, writing fluent sentences unrelated to
    the audio (measured here: 98% WER at a healthy-looking loss). On utterances it trains on, a model that uses its
    audio soon reproduces them; one that does not keeps emitting generic text, which these lines show early. Runs on
    the main process only, with a progress bar unless ``args.disable_tqdm``; draws no random numbers, so training
    continues exactly as without it.
    """

    def __init__(self, tokenizer: Any, examples: Any, every_steps: int, batch_size: int = 16) -> None:
        if every_steps < 1:
            raise ValueError(f"every_steps must be positive, got {every_steps}")
        self.tokenizer = tokenizer
        self.examples = examples
        self.every_steps = every_steps
        self.batch_size = batch_size
        self.last: Transcripts | None = None

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        if state.global_step % self.every_steps or not state.is_world_process_zero:
            return
        self.last = transcribe(kwargs["model"], self.tokenizer, self.examples, self.batch_size,
                               progress=not args.disable_tqdm,
                               desc=f"step {state.global_step}: decoding training utterances")
        logger.info("step %d, training utterances: %s\n%s", state.global_step, self.last.summary(),
                    self.last.samples(len(self.last.references)))


class BinarizationWarmupCallback(TrainerCallback):
    """Ramps :func:`hf_binarize.set_binarization_mix` linearly from 0 (float weights) to 1 (fully binarized) over
    the first ``warmup_steps`` optimizer steps of quantization-aware training.

    The mix is a function of the global step, set before every step, so a resumed run continues the ramp where it
    stopped; training always ends fully binarized, the state :func:`hf_binarize.freeze` packs.
    """

    def __init__(self, warmup_steps: int) -> None:
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be non-negative, got {warmup_steps}")
        self.warmup_steps = warmup_steps

    def mix_at(self, step: int) -> float:
        return 1.0 if step >= self.warmup_steps else step / self.warmup_steps

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        set_binarization_mix(kwargs["model"], self.mix_at(state.global_step))

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                      **kwargs: Any) -> None:
        set_binarization_mix(kwargs["model"], self.mix_at(state.global_step))

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        set_binarization_mix(kwargs["model"], 1.0)
