"""Scoring speech models: greedy transcription and error rates (:mod:`.transcription`, what training reports too),
and a checkpoint's WER, size and speed on a dataset split with its JSON record (:mod:`.report`, ``hf-binarize
evaluate``).

Imports no training code (no Trainer), so that scoring a checkpoint needs only the model, its processor and the
``data`` extra.
"""

from .report import MAX_DURATION, RECORD_SCHEMA, Evaluation, evaluate_model, score_model
from .transcription import Transcripts, transcribe

__all__ = ["MAX_DURATION", "RECORD_SCHEMA", "Evaluation", "Transcripts", "evaluate_model", "score_model",
           "transcribe"]
