"""A small Parakeet model (RNN-T, TDT or CTC) to train from scratch, and the check that its labels fit its encoder
frames."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import (
    ParakeetCTCConfig,
    ParakeetForCTC,
    ParakeetForRNNT,
    ParakeetForTDT,
    ParakeetProcessor,
    ParakeetRNNTConfig,
    ParakeetTDTConfig,
    PreTrainedModel,
)

from ..evaluation.families import FAMILIES
from ..integrations.tdt_generation import suppress_durations

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParakeetArchitecture:
    """The architecture hyperparameters of a small FastConformer Parakeet model (its size in bytes is
    :func:`hf_binarize.size_report`'s). The defaults (an RNN-T of 5.6 M parameters with 80 mel bins and a
    30-character vocabulary) follow a model this project measured on a 2-core CPU (hidden 176, 6 layers, decoder
    256), with 4x instead of Parakeet's 8x subsampling. The decoder sizes are those of the transducers' prediction
    and joint networks; a CTC model has neither."""

    hidden_size: int = 176
    num_layers: int = 6
    num_heads: int = 4
    intermediate_size: int = 704
    conv_kernel_size: int = 9
    subsampling_factor: int = 4
    subsampling_channels: int = 128
    decoder_hidden_size: int = 256
    num_decoder_layers: int = 1
    dropout: float = 0.1


def build_parakeet_model(processor: ParakeetProcessor, architecture: ParakeetArchitecture = ParakeetArchitecture(),
                         family: str = "rnnt", seed: int = 0) -> PreTrainedModel:
    """A randomly initialised ``ParakeetForRNNT``, ``ParakeetForTDT`` (``family="tdt"``, transformers' default
    durations 0-4) or ``ParakeetForCTC`` (``family="ctc"``) whose vocabulary, blank and mel bins match
    ``processor``.

    The blank is the last id and also the padding id (a CTC model's blank is its ``pad_token_id``). Layer drop is
    off: with a handful of layers, dropping one removes a large share of the encoder. A transducer's generation
    config gets the blank as ``decoder_start_token_id``, which ``generate`` needs and Parakeet's config lacks; a
    TDT's also suppresses its duration ids (:mod:`hf_binarize.integrations.tdt_generation`).
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(sorted(FAMILIES))}, got {family!r}")
    if architecture.subsampling_factor & (architecture.subsampling_factor - 1) or architecture.subsampling_factor < 2:
        raise ValueError(f"subsampling_factor must be a power of 2 (>= 2), got {architecture.subsampling_factor}")
    tokenizer = processor.tokenizer
    blank = processor.blank_token_id
    if blank != len(tokenizer) - 1:
        raise ValueError(f"the blank token must be the last id ({len(tokenizer) - 1}), got {blank}")
    encoder = dict(
        hidden_size=architecture.hidden_size, num_hidden_layers=architecture.num_layers, num_attention_heads=architecture.num_heads,
        intermediate_size=architecture.intermediate_size, conv_kernel_size=architecture.conv_kernel_size,
        subsampling_factor=architecture.subsampling_factor, subsampling_conv_channels=architecture.subsampling_channels,
        num_mel_bins=processor.feature_extractor.feature_size, dropout=architecture.dropout,
        activation_dropout=architecture.dropout, attention_dropout=architecture.dropout, layerdrop=0.0,
    )
    torch.manual_seed(seed)
    if family == "ctc":
        return ParakeetForCTC(ParakeetCTCConfig(encoder_config=encoder, vocab_size=len(tokenizer), pad_token_id=blank))
    config_class, model_class = ((ParakeetTDTConfig, ParakeetForTDT) if family == "tdt" else
                                 (ParakeetRNNTConfig, ParakeetForRNNT))
    config = config_class(
        encoder_config=encoder, vocab_size=len(tokenizer), blank_token_id=blank, pad_token_id=blank,
        decoder_hidden_size=architecture.decoder_hidden_size, num_decoder_layers=architecture.num_decoder_layers,
    )
    model = model_class(config)
    model.generation_config.decoder_start_token_id = blank
    model.generation_config.pad_token_id = blank
    suppress_durations(model.generation_config, config)
    return model


def encoder_frames(model: PreTrainedModel, feature_frames: Sequence[int]) -> list[int]:
    """Encoder output frames for inputs of ``feature_frames`` feature frames."""
    lengths = torch.as_tensor(list(feature_frames), dtype=torch.long)
    return model._get_subsampling_output_length(lengths).tolist()


def labels_over_frames(model: PreTrainedModel, feature_frames: Sequence[int],
                       label_counts: Sequence[int]) -> float:
    """The fraction of utterances with more labels than encoder frames, logged with a warning when non-zero.

    Such an utterance has no CTC alignment at all, and a transducer can then fit it from the prediction network
    alone (and a CTC model cannot learn it at all): this project measured a healthy-looking loss and 98% WER for a model that learnt only a language model
    this way. Lower the subsampling factor or use a coarser vocabulary when the fraction is large.
    """
    if not len(label_counts):
        return 0.0
    frames = encoder_frames(model, feature_frames)
    over = sum(labels > frame for labels, frame in zip(label_counts, frames, strict=True))
    fraction = over / len(frames)
    ratio = sum(label_counts) / max(1, sum(frames))
    message = "%.1f%% of utterances have more labels than encoder frames (%.2f labels per frame overall)"
    (logger.warning if over else logger.info)(message, 100 * fraction, ratio)
    return fraction
