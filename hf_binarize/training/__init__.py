"""Training transducers for binarization: a float ParakeetForRNNT from scratch, then quantization-aware training.

The recipes (``recipes/train_float.py``, ``recipes/qat.py``) are thin command lines over these pieces:

* :mod:`.tokenizer`: the character tokenizer and processor (and why characters);
* :mod:`.model`: a small ParakeetForRNNT with 4x subsampling, and the labels-versus-frames check;
* :mod:`.aux_ctc`: the auxiliary CTC head and loss that make the encoder align with the labels;
* :mod:`.distillation`: the lattice KL to a float teacher;
* :mod:`.trainer`: ``TransducerTrainer``, the Trainer combining the losses, with resumable data order and WER;
* :mod:`.run`: ``TrainingArguments`` from the recipes' options, where checkpoints go and which one to resume;
* :mod:`.callbacks`: decoding training utterances during training, the binarization warm-up.

Splits are loaded and prepared by :mod:`hf_binarize.data.splits` and scored by :mod:`hf_binarize.evaluation`, as
after training (both re-exported here for the recipes); the recipes' options are in
:mod:`hf_binarize.commands.options`. Needs the ``data`` extra (``datasets``, ``soundfile``, ``scipy``).
"""

from ..data.splits import load_split, normalised_texts, prepare_split
from ..evaluation.transcription import Transcripts, transcribe
from .aux_ctc import (
    attach_aux_ctc_head,
    aux_ctc_loss,
    detach_aux_ctc_head,
    load_aux_ctc_head,
    save_aux_ctc_head,
)
from .callbacks import BinarizationWarmupCallback, DecodeTrainingSamplesCallback
from .distillation import lattice_kl_loss
from .model import RNNTArchitecture, build_rnnt_model, encoder_frames, labels_over_frames
from .tokenizer import BLANK_TOKEN, build_character_tokenizer, build_processor
from .trainer import TransducerTrainer

__all__ = [
    "BLANK_TOKEN",
    "BinarizationWarmupCallback",
    "DecodeTrainingSamplesCallback",
    "RNNTArchitecture",
    "Transcripts",
    "TransducerTrainer",
    "attach_aux_ctc_head",
    "aux_ctc_loss",
    "build_character_tokenizer",
    "build_processor",
    "build_rnnt_model",
    "detach_aux_ctc_head",
    "encoder_frames",
    "labels_over_frames",
    "lattice_kl_loss",
    "load_aux_ctc_head",
    "load_split",
    "normalised_texts",
    "prepare_split",
    "save_aux_ctc_head",
    "transcribe",
]
