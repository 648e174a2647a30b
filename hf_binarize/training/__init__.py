"""Training transducers for binarization: a float ParakeetForRNNT from scratch, then quantization-aware training.

The recipes (``recipes/train_float.py``, ``recipes/qat.py``) are thin command lines over these pieces:

* :mod:`.tokenizer`: the character tokenizer and processor (and why characters);
* :mod:`.model`: a small ParakeetForRNNT with 4x subsampling, and the labels-versus-frames check;
* :mod:`.splits`: loading and preparing dataset splits;
* :mod:`.aux_ctc`: the auxiliary CTC head and loss that make the encoder align with the labels;
* :mod:`.distillation`: the lattice KL to a float teacher;
* :mod:`.trainer`: ``TransducerTrainer``, the Trainer combining the losses, with resumable data order and WER;
* :mod:`.evaluation`: greedy transcription and WER, the same during training and after;
* :mod:`.evaluate`: ``evaluate_model``, WER, size and speed of a checkpoint (``hf-binarize evaluate``);
* :mod:`.cli`: the command-line options, training arguments and resuming rules the recipes share;
* :mod:`.callbacks`: decoding training utterances during training, the binarization warm-up.

Needs the ``data`` extra (``datasets``, ``soundfile``, ``scipy``).
"""

from .aux_ctc import (
    attach_aux_ctc_head,
    aux_ctc_loss,
    detach_aux_ctc_head,
    load_aux_ctc_head,
    save_aux_ctc_head,
)
from .callbacks import BinarizationWarmupCallback, DecodeTrainingSamplesCallback
from .distillation import lattice_kl_loss
from .evaluation import Transcripts, transcribe
from .model import ModelSize, build_rnnt_model, encoder_frames, labels_over_frames
from .splits import load_split, normalised_texts, prepare_split
from .tokenizer import BLANK_TOKEN, build_character_tokenizer, build_processor
from .trainer import TransducerTrainer

__all__ = [
    "BLANK_TOKEN",
    "BinarizationWarmupCallback",
    "DecodeTrainingSamplesCallback",
    "ModelSize",
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
