"""Padding prepared speech examples into a batch for the Parakeet losses."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class SpeechCollator:
    """Pads prepared examples into a batch for ParakeetForRNNT, ParakeetForTDT or ParakeetForCTC.

    Returns ``input_features`` (batch, frames, features) padded with ``feature_padding_value`` (0: the extractor
    zeroes padding frames too, so a padded example equals the same audio extracted in a batch), a boolean
    ``attention_mask``, ``labels`` padded with ``label_pad_token_id`` and, when ``decoder_start_token_id`` is set,
    ``decoder_input_ids`` = that id followed by the labels (one longer than ``labels``), padded the same way.

    Use :meth:`for_model` for the right ids: the transducers count a label as real when it differs from the padding
    id, and which id that is differs by model (see there).
    """

    label_pad_token_id: int
    decoder_start_token_id: int | None = None
    feature_padding_value: float = 0.0
    pad_to_multiple_of: int | None = None

    @classmethod
    def for_model(cls, model_or_config: Any, **kwargs: Any) -> SpeechCollator:
        """The collator a Parakeet model's loss expects (transformers 5.24, ``modeling_parakeet.py``):

        * RNN-T: ``label_lengths = (labels != blank_token_id).sum(-1)``, so labels are padded with the blank id;
          the prediction network reads ``decoder_input_ids = [blank, *labels]``.
        * TDT: ``label_lengths = (labels != pad_token_id).sum(-1)``: padded with the pad id; decoder input as RNN-T.
        * CTC: the loss ignores ``pad_token_id`` (the CTC blank) and -100; padded with the pad id; no decoder.
        """
        config = getattr(model_or_config, "config", model_or_config)
        model_type = getattr(config, "model_type", None)
        if model_type == "parakeet_rnnt":
            ids = {"label_pad_token_id": config.blank_token_id, "decoder_start_token_id": config.blank_token_id}
        elif model_type == "parakeet_tdt":
            ids = {"label_pad_token_id": config.pad_token_id, "decoder_start_token_id": config.blank_token_id}
        elif model_type == "parakeet_ctc":
            ids = {"label_pad_token_id": config.pad_token_id}
        else:
            raise ValueError(f"no collation rule for model_type {model_type!r}")
        return cls(**ids, **kwargs)

    def _padded_length(self, length: int) -> int:
        multiple = self.pad_to_multiple_of or 1
        return math.ceil(length / multiple) * multiple

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        features = [torch.as_tensor(np.asarray(example["input_features"], dtype=np.float32))
                    for example in examples]
        labels = [torch.as_tensor(np.asarray(example["labels"], dtype=np.int64)) for example in examples]
        frames = self._padded_length(max(feature.shape[0] for feature in features))
        width = features[0].shape[1]
        batch_features = torch.full((len(examples), frames, width), self.feature_padding_value)
        attention_mask = torch.zeros((len(examples), frames), dtype=torch.bool)
        steps = max(label.numel() for label in labels)
        batch_labels = torch.full((len(examples), steps), self.label_pad_token_id, dtype=torch.long)
        for row, (feature, label) in enumerate(zip(features, labels, strict=True)):
            batch_features[row, : feature.shape[0]] = feature
            attention_mask[row, : feature.shape[0]] = True
            batch_labels[row, : label.numel()] = label
        batch = {"input_features": batch_features, "attention_mask": attention_mask, "labels": batch_labels}
        if self.decoder_start_token_id is not None:
            start = torch.full((len(examples), 1), self.decoder_start_token_id, dtype=torch.long)
            batch["decoder_input_ids"] = torch.cat([start, batch_labels], dim=1)
        return batch
