"""Speech data for training: audio I/O, transcript normalisation and error rates, labels in the form a vocabulary
writes (:mod:`.vocabulary`), dataset loading and preparation, collation for the Parakeet losses, and a synthetic
espeak-ng corpus (:mod:`hf_binarize.data.synthetic`).

Pipeline::

    raw = load_speech_dataset("path/or/hub-id", split="train", text_column="sentence")     # .loading
    preparer = SpeechPreparer.from_processor(processor, text_column="sentence")             # .preparation
    train = preparer.prepare(raw)          # decode, resample, normalise as the vocabulary writes, extract, tokenize
    collator = SpeechCollator.for_model(model)          # .collation: pads; builds labels and decoder_input_ids
    sampler = LengthGroupedBatchSampler(train["length"], batch_size=16)                     # .sampling

:mod:`.splits` does the first three steps for one split, as training and evaluation both need.

Needs the ``data`` extra (``pip install 'hf-binarize[data]'``: datasets, soundfile, scipy), imported only where
used, so that ``import hf_binarize.data`` and the text utilities work without it.
"""

from .audio import AudioDecodeError, check_audio, decode_audio, load_audio, peak_dbfs, resample, to_mono
from .collation import SpeechCollator
from .loading import detect_source, load_speech_dataset
from .preparation import BadExampleError, SpeechPreparer
from .sampling import LengthGroupedBatchSampler
from .text import (
    SCORING_NORMALIZERS,
    ErrorRate,
    cer,
    edit_operations,
    normalize_transcript,
    normalize_whisper,
    scoring_normalizer,
    spell_integer,
    wer,
)
from .vocabulary import LabelNormalizer, UnknownLabels, label_normalizer

__all__ = [
    "SCORING_NORMALIZERS",
    "AudioDecodeError",
    "BadExampleError",
    "ErrorRate",
    "LabelNormalizer",
    "LengthGroupedBatchSampler",
    "SpeechCollator",
    "SpeechPreparer",
    "UnknownLabels",
    "cer",
    "check_audio",
    "decode_audio",
    "detect_source",
    "edit_operations",
    "label_normalizer",
    "load_audio",
    "load_speech_dataset",
    "normalize_transcript",
    "normalize_whisper",
    "peak_dbfs",
    "resample",
    "scoring_normalizer",
    "spell_integer",
    "to_mono",
    "wer",
]
