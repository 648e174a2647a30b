"""``ParakeetTrainer``: transformers' Trainer for ``ParakeetForRNNT``, ``ParakeetForTDT`` and ``ParakeetForCTC``
with an auxiliary CTC loss for the transducers, optional distillation from a teacher, length-grouped batches that
resume in order, and WER at every evaluation.

Loss per batch: ``model + ctc_weight * ctc + distill_weight * kl``. The model's loss is the one its own forward
computes from the labels: RNN-T (``mean_volume``: nats per label) and TDT (transformers' default ``mean``: nats per
label of each utterance, averaged), both this package's implementations (:mod:`hf_binarize.losses`, registered with
transformers where torchaudio is missing), or CTC (torch's, with the config's ``ctc_loss_reduction`` and
``ctc_zero_infinity``). ``ctc`` is the auxiliary CTC loss in nats per label, ``kl`` the KL to the teacher per
lattice node (:func:`hf_binarize.training.distillation.distillation_loss`). The parts are logged as
``rnnt_loss``, ``tdt_loss`` or ``ctc_loss`` (the model's), ``aux_ctc_loss`` and ``kl_loss``, averaged since the
previous log line (on the main process, over its own batches).

Checkpoints are the Trainer's: the model as a plain checkpoint of its class (latent float weights and
``quantization_config.mode="qat"`` during QAT), the processor, the auxiliary CTC head in its own file
(:mod:`hf_binarize.training.aux_ctc`), optimizer, scheduler, RNG states and trainer state. Batches come from
:class:`hf_binarize.data.sampling.LengthGroupedBatchSampler`, whose order is a function of the seed and the epoch
only: ``train(resume_from_checkpoint=...)`` skips the batches already seen and continues with the same ones an
uninterrupted run would have drawn.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import gather_object
from torch import nn
from torch.utils.data import DataLoader, Sampler
from transformers import Trainer
from transformers.trainer import TRAINING_ARGS_NAME

from ..atomic import files_into
from ..data.augment import SpecAugment
from ..data.collation import SpeechCollator
from ..data.sampling import LengthGroupedBatchSampler
from ..evaluation.families import family_of
from ..evaluation.transcription import Transcripts, transcribe
from ..losses import register as register_losses
from .aux_ctc import (
    HEAD_FILE,
    HEAD_NAME,
    attach_aux_ctc_head,
    aux_ctc_loss,
    load_aux_ctc_head,
    save_aux_ctc_head,
)
from .distillation import distillation_loss

logger = logging.getLogger(__name__)


# Examples a streamed training split is shuffled through: about 60 MB of features for 5 s utterances.
STREAM_SHUFFLE_BUFFER = 500


class _VariableBatches(Sampler[list[int]]):
    """A batch sampler that tells accelerate its batches vary in size (``batch_size = None``).

    Under DDP, accelerate's ``BatchSamplerShard`` deals whole batches to the processes in turn; told a fixed batch
    size, it would silently skip every batch smaller than that, which length grouping makes (one per pool).
    """

    batch_size = None

    def __init__(self, sampler: LengthGroupedBatchSampler) -> None:
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


class ParakeetTrainer(Trainer):
    """Trains a ``ParakeetForRNNT``, ``ParakeetForTDT`` or ``ParakeetForCTC`` (float, or QAT from
    :class:`hf_binarize.BinaryQuantizationConfig` with ``mode="qat"``) on ``datasets.Dataset`` splits prepared by
    :class:`hf_binarize.data.preparation.SpeechPreparer`.

    Args:
        model: the model. With ``ctc_weight > 0`` a transducer gets an ``aux_ctc_head`` (see
            :mod:`hf_binarize.training.aux_ctc`), unless it already has one.
        args: ``TrainingArguments``, left unchanged: the trainer uses a copy with ``remove_unused_columns`` off (the
            collator picks its columns; the transcripts are needed for WER), ``prediction_loss_only`` on (the
            lattice logits are too large to gather) and ``ddp_find_unused_parameters`` off (see
            :mod:`hf_binarize.training.aux_ctc`).
        processor: the ``ParakeetProcessor``, saved into every checkpoint; its tokenizer decodes hypotheses.
        ctc_weight: weight of the auxiliary CTC loss; 0 disables it; ``None``: 0.3 for a transducer, 0 for a CTC
            model, which cannot have one (``ValueError``).
        teacher: a float model of the same family and vocabulary, for ``distill_weight > 0``; kept in eval mode and
            out of the optimizer and the checkpoints.
        distill_weight: weight of the KL to the teacher (:func:`distillation_loss`); 0 disables it.
        distill_temperature: its temperature.
        spec_augment: masks applied to the features of training batches (never in evaluation), drawn from torch's
            global generator, which the Trainer seeds and restores on resume; ``None`` for none.
        kwargs: the remaining ``Trainer`` arguments (``train_dataset``, ``eval_dataset``, ``callbacks``...).
    """

    def __init__(self, model: nn.Module, args: Any, *, processor: Any, ctc_weight: float | None = None,
                 teacher: nn.Module | None = None, distill_weight: float = 0.0, distill_temperature: float = 1.0,
                 spec_augment: SpecAugment | None = None, **kwargs: Any) -> None:
        family = family_of(model.config)
        if family is None:
            raise ValueError(f"a {type(model).__name__} is not a Parakeet speech model the trainer knows")
        if ctc_weight is None:
            ctc_weight = 0.0 if family == "ctc" else 0.3
        if ctc_weight < 0 or distill_weight < 0:
            raise ValueError("ctc_weight and distill_weight must be non-negative")
        if distill_weight > 0 and teacher is None:
            raise ValueError("distill_weight > 0 needs a teacher model")
        if distill_weight > 0 and (family_of(teacher.config), teacher.config.vocab_size) != (
                family, model.config.vocab_size):
            raise ValueError(f"the teacher ({type(teacher).__name__}, vocabulary of {teacher.config.vocab_size}) "
                             f"must be of the student's family and vocabulary ({type(model).__name__}, "
                             f"{model.config.vocab_size})")
        # torchaudio, which transformers' RNN-T loss calls, is not installable beside every torch build.
        register_losses()
        if ctc_weight > 0:
            attach_aux_ctc_head(model)
        # A copy: the caller's arguments stay as they were. Every parameter gets a gradient, but the auxiliary head
        # is applied outside the forward DDP wraps, which the search for unused parameters would report as unused
        # (see aux_ctc).
        args = dataclasses.replace(args, remove_unused_columns=False, prediction_loss_only=True,
                                   ddp_find_unused_parameters=False)
        collation = SpeechCollator.for_model(model)
        kwargs.setdefault("data_collator", collation)
        super().__init__(model=model, args=args, processing_class=processor, **kwargs)
        self.family = family
        # What pads the labels the model's loss reads (its own rule, whatever collator the caller passed).
        self._label_pad_id = collation.label_pad_token_id
        # compute_loss returns a per-batch mean: the Trainer must divide it by the accumulation steps.
        self.loss_is_scaled_for_ga = False
        self.ctc_weight = ctc_weight
        self.distill_weight = distill_weight
        self.distill_temperature = distill_temperature
        self.spec_augment = spec_augment
        self.teacher = None
        if teacher is not None and distill_weight > 0:
            self.teacher = teacher.to(self.args.device).eval().requires_grad_(False)
        self.last_transcripts: Transcripts | None = None
        self._train_batches: _VariableBatches | None = None
        self._loss_parts: dict[str, list[torch.Tensor]] = defaultdict(list)

    def train(self, *args: Any, **kwargs: Any) -> Any:
        output = super().train(*args, **kwargs)
        self._average_buffers_across_processes()
        return output

    def _average_buffers_across_processes(self) -> None:
        """DDP copies rank 0's buffers at the start of each forward, so the last step leaves every rank with its
        own batch-norm statistics; averaging them makes every rank hold the same model (whichever one saves or
        evaluates) and the statistics of all the last batches."""
        if self.args.world_size <= 1:
            return
        for buffer in self.model.buffers():
            if buffer.is_floating_point():
                torch.distributed.all_reduce(buffer, op=torch.distributed.ReduceOp.SUM)
                buffer.div_(self.args.world_size)

    # ------------------------------------------------------------------------------------------------ loss

    def compute_loss(self, model: nn.Module, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> torch.Tensor | tuple[torch.Tensor, Any]:
        labels = inputs["labels"]
        features, attention_mask = inputs["input_features"], inputs["attention_mask"]
        if model.training and self.spec_augment is not None:
            # The teacher, if any, hears the same masked features: it is distilled from, not evaluated.
            features = self.spec_augment(features.clone(), attention_mask.sum(-1))
        # The transducers' prediction network reads the labels after a blank; a CTC model has none.
        decoder = {"decoder_input_ids": inputs["decoder_input_ids"]} if "decoder_input_ids" in inputs else {}
        # num_items_in_batch is not passed on: Parakeet's forward hands extra kwargs to its encoder layers.
        outputs = model(input_features=features, attention_mask=attention_mask, labels=labels, **decoder)
        loss = outputs.loss
        parts = {f"{self.family}_loss": loss.detach()}
        unwrapped = self.accelerator.unwrap_model(model)
        encoder_lengths = unwrapped._get_subsampling_output_length(attention_mask.sum(-1))
        label_lengths = (labels != self._label_pad_id).sum(-1)
        if self.ctc_weight > 0:
            ctc_logits = getattr(unwrapped, HEAD_NAME)(outputs.last_hidden_state)
            ctc = aux_ctc_loss(ctc_logits, encoder_lengths, labels, label_lengths, unwrapped.config.blank_token_id)
            loss = loss + self.ctc_weight * ctc
            parts["aux_ctc_loss"] = ctc.detach()
        if self.teacher is not None:
            with torch.no_grad():
                teacher_logits = self.teacher(input_features=features, attention_mask=attention_mask,
                                              **decoder).logits
            kl = distillation_loss(unwrapped.config, outputs.logits, teacher_logits, encoder_lengths, label_lengths,
                                   self.distill_temperature)
            loss = loss + self.distill_weight * kl
            parts["kl_loss"] = kl.detach()
        if model.training:
            for name, value in parts.items():
                self._loss_parts[name].append(value)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._loss_parts:
            logs.update({name: round(torch.stack(values).mean().item(), 4) for name, values in self._loss_parts.items()})
            self._loss_parts.clear()
        super().log(logs, start_time)

    # ------------------------------------------------------------------------------------------------ data

    def get_train_dataloader(self) -> DataLoader:
        """Length-grouped batches of ``per_device_train_batch_size`` utterances, shuffled by ``data_seed`` (or
        ``seed``) and the epoch only, so that a resumed run draws the batches an uninterrupted one would.

        A streamed split (``datasets.IterableDataset``, which has no lengths to group by) is shuffled through a
        buffer of :data:`STREAM_SHUFFLE_BUFFER` examples, reshuffled every epoch, and batched as it comes: more
        padding than grouped batches. A resumed run reads the stream again up to where it stopped (the Trainer's
        skipping of seen batches), which takes as long as reading them did."""
        import datasets

        dataset = self.train_dataset
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        if isinstance(dataset, datasets.IterableDataset):
            self.train_dataset = dataset.shuffle(seed=seed, buffer_size=STREAM_SHUFFLE_BUFFER)
            try:
                return super().get_train_dataloader()
            finally:
                self.train_dataset = dataset
        sampler = LengthGroupedBatchSampler(dataset["length"], batch_size=self.args.per_device_train_batch_size,
                                            seed=seed, drop_last=self.args.dataloader_drop_last)
        self._train_batches = _VariableBatches(sampler)
        loader = DataLoader(dataset, batch_sampler=self._train_batches, collate_fn=self.data_collator,
                            num_workers=self.args.dataloader_num_workers,
                            pin_memory=self.args.dataloader_pin_memory)
        return self.accelerator.prepare(loader)

    def _run_epoch(self, *args: Any, **kwargs: Any) -> None:
        # The Trainer forwards set_epoch to the batch sampler only through some of accelerate's wrappers (not a
        # resumed, skipping loader under DDP); setting it here, before the epoch's iterator exists, always works.
        if self._train_batches is not None:
            self._train_batches.set_epoch(kwargs["epoch"])
        return super()._run_epoch(*args, **kwargs)

    # ------------------------------------------------------------------------------------------ evaluation

    def evaluation_loop(self, dataloader: DataLoader, description: str, prediction_loss_only: bool | None = None,
                        ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval") -> Any:
        """The Trainer's loss evaluation, plus ``{prefix}_wer`` and ``{prefix}_cer`` of greedy decoding.

        Under DDP every process decodes its share of the utterances and the transcripts are gathered, so all
        processes report the same WER. The main process shows a progress bar of its share, as the Trainer shows
        its own (``args.disable_tqdm`` hides both).
        """
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys,
                                         metric_key_prefix)
        dataset = dataloader.dataset
        if self.args.world_size > 1:
            dataset = dataset.shard(num_shards=self.args.world_size, index=self.args.process_index, contiguous=True)
        local = transcribe(self.model, self.processing_class.tokenizer, dataset,
                           batch_size=self.args.per_device_eval_batch_size,
                           progress=self.is_world_process_zero() and not self.args.disable_tqdm,
                           desc=f"step {self.state.global_step}: decoding {metric_key_prefix}")
        if self.args.world_size > 1:
            pairs = gather_object(list(zip(local.references, local.hypotheses, strict=True)))
            local = Transcripts([reference for reference, _ in pairs], [hypothesis for _, hypothesis in pairs])
        self.last_transcripts = local
        output.metrics[f"{metric_key_prefix}_wer"] = round(local.wer.rate, 4)
        output.metrics[f"{metric_key_prefix}_cer"] = round(local.cer.rate, 4)
        if self.is_world_process_zero():
            logger.info("step %d, %s: %s\n%s", self.state.global_step, metric_key_prefix, local.summary(),
                        local.samples(3))
        return output

    # --------------------------------------------------------------------------------------------- saving

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Saves the model, processor and auxiliary CTC head into ``output_dir`` (default ``args.output_dir``) for
        ``from_pretrained``: as the Trainer does, without its ``training_args.bin``, a pickle that belongs in the
        checkpoints (which keep it) and not in a folder published to the Hub. The files are written beside
        ``output_dir`` and renamed into it, so that a reader never sees half a file. Call it on every process (under
        FSDP, gathering the weights is collective); only the main process writes."""
        if _internal_call or not self.args.should_save:
            super().save_model(output_dir, _internal_call)
            return
        target = Path(output_dir if output_dir is not None else self.args.output_dir)
        with files_into(target) as staging:
            super().save_model(str(staging))
            (staging / TRAINING_ARGS_NAME).unlink(missing_ok=True)
        # What the recipes wrote there before they stopped publishing the pickle.
        (target / TRAINING_ARGS_NAME).unlink(missing_ok=True)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        # The head's keys are in the model's _keys_to_ignore_on_save; a state_dict given by the caller (FSDP,
        # DeepSpeed) bypasses that, hence the filter.
        if state_dict is not None:
            state_dict = {key: value for key, value in state_dict.items() if not key.startswith(f"{HEAD_NAME}.")}
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            save_aux_ctc_head(self.model, output_dir if output_dir is not None else self.args.output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = self.model if model is None else self.accelerator.unwrap_model(model)
        if hasattr(target, HEAD_NAME) and not load_aux_ctc_head(target, resume_from_checkpoint):
            logger.warning("%s has no %s: the auxiliary CTC head restarts from its initialisation",
                           resume_from_checkpoint, HEAD_FILE)
