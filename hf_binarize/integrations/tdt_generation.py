"""Keeps a TDT model's duration outputs out of the tokens transformers' ``generate`` emits.

A TDT joint outputs ``vocab_size`` token logits followed by one per duration. transformers 5.24 advances the frame
pointer by the argmax of the duration part, but picks the next token by the argmax of all outputs, so a duration
can be emitted as a token id past the vocabulary, which crashes the prediction network's embedding (``IndexError:
index out of range in self``) in ``generate`` and in the ASR pipeline. Suppressing those ids in the generation
config fixes both: the suppression masks the token choice only, the durations are read from the raw logits.
"""

from __future__ import annotations

from transformers import GenerationConfig, PretrainedConfig


def suppress_durations(generation: GenerationConfig, config: PretrainedConfig) -> None:
    """Adds the duration ids of a TDT ``config`` to ``generation.suppress_tokens`` (in place; no change for a model
    without durations, and the ids the config already suppresses are kept)."""
    durations = getattr(config, "durations", None)
    if not durations:
        return
    suppressed = list(generation.suppress_tokens or [])
    extra = range(config.vocab_size, config.vocab_size + len(durations))
    generation.suppress_tokens = suppressed + [token for token in extra if token not in suppressed]
