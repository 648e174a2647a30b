"""Speech data for training: audio I/O, transcript normalisation and error rates, dataset loading and preparation,
collation for the Parakeet losses, and a synthetic espeak-ng corpus (:mod:`hf_binarize.data.synthetic`).

Needs the ``data`` extra (``pip install 'hf-binarize[data]'``: datasets, soundfile, scipy), imported only where
used, so that ``import hf_binarize.data`` and the text utilities work without it.
"""

from .audio import AudioDecodeError, check_audio, decode_audio, load_audio, peak_dbfs, resample, to_mono
from .dataset import (
    BadExampleError,
    LengthGroupedBatchSampler,
    PreparedStream,
    SpeechCollator,
    SpeechPreparer,
    detect_source,
    load_speech_dataset,
)
from .text import ErrorRate, cer, edit_operations, normalize_transcript, spell_integer, wer

__all__ = [
    "AudioDecodeError",
    "BadExampleError",
    "ErrorRate",
    "LengthGroupedBatchSampler",
    "PreparedStream",
    "SpeechCollator",
    "SpeechPreparer",
    "cer",
    "check_audio",
    "decode_audio",
    "detect_source",
    "edit_operations",
    "load_audio",
    "load_speech_dataset",
    "normalize_transcript",
    "peak_dbfs",
    "resample",
    "spell_integer",
    "to_mono",
    "wer",
]
