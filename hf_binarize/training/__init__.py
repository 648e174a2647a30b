"""Training Parakeet models for binarization: a float model from scratch, then quantization-aware training, for the
three families (RNN-T, TDT, CTC; see :mod:`hf_binarize.evaluation.families`).

The recipes (``recipes/train_float.py``, ``recipes/qat.py``) are thin command lines over these pieces:

* :mod:`.tokenizer`: the character tokenizer and processor (and why characters);
* :mod:`.model`: a small Parakeet model of any family with 4x subsampling, and the labels-versus-frames check;
* :mod:`.aux_ctc`: the auxiliary CTC head and loss that make a transducer's encoder align with the labels;
* :mod:`.distillation`: the KL to a float teacher, on the lattice (transducers) or the frames (CTC);
* :mod:`.trainer`: ``ParakeetTrainer``, the Trainer combining the losses, with resumable data order and WER;
* :mod:`.run`: ``TrainingArguments`` from the recipes' options, where checkpoints go and which one to resume;
* :mod:`.callbacks`: decoding training utterances during training, the binarization warm-up.

Splits are loaded and prepared by :mod:`hf_binarize.data.splits` and scored by :mod:`hf_binarize.evaluation`, as
after training (both re-exported here for the recipes); the recipes' options are in
:mod:`hf_binarize.commands.options`. Needs the ``data`` extra (``datasets``, ``soundfile``, ``scipy``).
"""

from ..data.splits import first_examples, load_split, normalised_texts, prepare_split
from ..evaluation.transcription import Transcripts, transcribe
from .aux_ctc import (
    attach_aux_ctc_head,
    aux_ctc_loss,
    detach_aux_ctc_head,
    load_aux_ctc_head,
    save_aux_ctc_head,
)
from .callbacks import BinarizationWarmupCallback, DecodeTrainingSamplesCallback
from .distillation import distillation_loss, lattice_kl_loss
from .model import ParakeetArchitecture, build_parakeet_model, encoder_frames, labels_over_frames
from .tokenizer import BLANK_TOKEN, build_character_tokenizer, build_processor
from .trainer import ParakeetTrainer

__all__ = [
    "BLANK_TOKEN",
    "BinarizationWarmupCallback",
    "DecodeTrainingSamplesCallback",
    "ParakeetArchitecture",
    "ParakeetTrainer",
    "Transcripts",
    "attach_aux_ctc_head",
    "aux_ctc_loss",
    "build_character_tokenizer",
    "build_parakeet_model",
    "build_processor",
    "detach_aux_ctc_head",
    "distillation_loss",
    "encoder_frames",
    "first_examples",
    "labels_over_frames",
    "lattice_kl_loss",
    "load_aux_ctc_head",
    "load_split",
    "normalised_texts",
    "prepare_split",
    "save_aux_ctc_head",
    "transcribe",
]
