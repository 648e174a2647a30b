"""Command-line pieces the training recipes share: data and schedule options, ``TrainingArguments``, resuming."""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from ..data.augment import SpecAugment


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", default="corpus",
                       help="speech dataset: a save_to_disk folder such as the synthetic corpus "
                            "(python -m hf_binarize.data.synthetic), an audiofolder, parquet, or a Hub id "
                            "(default %(default)s)")
    group.add_argument("--train-split", default="train", help="training split (default %(default)s)")
    group.add_argument("--eval-split", default="validation",
                       help="split for evaluation loss and WER; '' for none (default %(default)s)")
    group.add_argument("--text-column", default="text", help="transcript column (default %(default)s)")
    group.add_argument("--audio-column", default="audio", help="audio column (default %(default)s)")
    group.add_argument("--train-limit", type=int, help="use only the first N training utterances")
    group.add_argument("--eval-limit", type=int, default=200,
                       help="evaluate on the first N utterances of the eval split (default %(default)s)")


def add_schedule_arguments(parser: argparse.ArgumentParser, *, output_dir: str, max_steps: int, lr: float,
                           lr_warmup_steps: int, eval_steps: int) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--output-dir", default=output_dir,
                       help="where the final model and its processor go, nothing else (default %(default)s)")
    group.add_argument("--checkpoint-dir",
                       help="where the Trainer checkpoints go, as checkpoint-STEP folders (default: OUTPUT_DIR "
                            "followed by -checkpoints, a sibling, so that OUTPUT_DIR holds only what ships)")
    group.add_argument("--resume", action="store_true",
                       help="continue from the last checkpoint, at its step and in its data order")
    group.add_argument("--overwrite", action="store_true", help="delete earlier checkpoints first")
    group.add_argument("--max-steps", type=int, default=max_steps, help="optimizer steps (default %(default)s)")
    group.add_argument("--batch-size", type=int, default=16, help="utterances per batch and device (default 16)")
    group.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step (default 1)")
    group.add_argument("--lr", type=float, default=lr, help="peak learning rate, AdamW (default %(default)s)")
    group.add_argument("--lr-warmup-steps", type=int, default=lr_warmup_steps,
                       help="linear learning-rate warm-up (default %(default)s)")
    group.add_argument("--lr-scheduler", default="cosine",
                       help="transformers scheduler type after the warm-up (default %(default)s)")
    group.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    group.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (default 1.0)")
    group.add_argument("--seed", type=int, default=0, help="seed of initialisation, dropout and data order")
    group.add_argument("--eval-steps", type=int, default=eval_steps,
                       help="evaluate (loss, WER) every N steps (default %(default)s)")
    group.add_argument("--save-steps", type=int, help="checkpoint every N steps (default: --eval-steps)")
    group.add_argument("--save-total-limit", type=int, default=2, help="checkpoints kept (default 2)")
    group.add_argument("--logging-steps", type=int, default=25, help="log losses every N steps (default 25)")
    group.add_argument("--sample-steps", type=int, default=100,
                       help="decode training utterances every N steps; 0 never (default 100)")
    group.add_argument("--num-samples", type=int, default=4,
                       help="training utterances decoded each time (default 4)")
    group.add_argument("--workers", type=int, default=0, help="data loader worker processes (default 0)")
    group.add_argument("--ctc-weight", type=float,
                       help="weight of the auxiliary CTC loss on the encoder; 0 off (default %(default)s)")
    spec = parser.add_argument_group("SpecAugment", "masks on the features of training batches only (see "
                                     "hf_binarize.data.augment); --freq-masks 0 --time-masks 0 turns it off")
    defaults = SpecAugment()
    spec.add_argument("--freq-masks", type=int, default=defaults.freq_masks,
                      help="frequency masks per utterance (default %(default)s)")
    spec.add_argument("--freq-width", type=int, default=defaults.freq_width,
                      help="widest frequency mask, mel bins (default %(default)s)")
    spec.add_argument("--time-masks", type=int, default=defaults.time_masks,
                      help="time masks per utterance (default %(default)s)")
    spec.add_argument("--time-width", type=float, default=defaults.time_width,
                      help="widest time mask, fraction of the utterance (default %(default)s)")


def spec_augment(args: argparse.Namespace) -> SpecAugment | None:
    """The SpecAugment the options of :func:`add_schedule_arguments` ask for; ``None`` when off."""
    masks = SpecAugment(args.freq_masks, args.freq_width, args.time_masks, args.time_width)
    return masks if masks.enabled else None


def checkpoint_dir(args: argparse.Namespace) -> Path:
    return Path(args.checkpoint_dir or f"{Path(args.output_dir)}-checkpoints")


def _has_accelerator() -> bool:
    if hasattr(torch, "accelerator"):
        return torch.accelerator.is_available()
    return torch.cuda.is_available()


def training_arguments(args: argparse.Namespace, *, evaluate: bool) -> TrainingArguments:
    """``TrainingArguments`` from the options of :func:`add_schedule_arguments`."""
    accelerator = _has_accelerator()
    return TrainingArguments(
        output_dir=str(checkpoint_dir(args)),
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.lr,
        warmup_steps=args.lr_warmup_steps,
        lr_scheduler_type=args.lr_scheduler,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=args.eval_steps,
        save_strategy="steps",
        save_steps=args.save_steps or args.eval_steps,
        save_total_limit=args.save_total_limit,
        logging_steps=args.logging_steps,
        logging_first_step=True,
        dataloader_num_workers=args.workers,
        dataloader_pin_memory=accelerator,
        # Without use_cpu, accelerate treats torchrun processes on a machine without accelerator as unrelated
        # single processes instead of forming a gloo process group.
        use_cpu=not accelerator,
        report_to="none",
    )


def resume_checkpoint(args: argparse.Namespace) -> str | None:
    """The checkpoint to resume from (``None`` for a fresh start). Refuses to train over earlier checkpoints unless
    told to resume or overwrite, so that a forgotten ``--resume`` never silently restarts from step 0."""
    folder = checkpoint_dir(args)
    if args.overwrite:
        if args.resume:
            raise SystemExit("--resume and --overwrite contradict each other")
        # Only what the Trainer wrote: a mistyped --checkpoint-dir must not cost anything else. Every DDP process
        # runs this, before any process group exists: hence ignore_errors, and no check of what is left.
        for checkpoint in folder.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
        return None
    last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    if args.resume:
        if last is None:
            raise SystemExit(f"--resume: no checkpoint-* folder in {folder}")
        return last
    if last is not None:
        raise SystemExit(f"{folder} already holds {Path(last).name}: pass --resume to continue or --overwrite")
    return None


def final_metrics(trainer: Trainer) -> dict[str, float]:
    """The evaluation metrics of the last step: those the schedule just logged, else a new evaluation (call it on
    every process: under DDP evaluation is collective)."""
    step = trainer.state.global_step
    logged = [entry for entry in trainer.state.log_history if "eval_wer" in entry and entry.get("step") == step]
    return logged[-1] if logged else trainer.evaluate()


def describe_metrics(metrics: dict[str, float]) -> str:
    return (f"eval loss {metrics['eval_loss']:.3f}, WER {100 * metrics['eval_wer']:.2f}%, "
            f"CER {100 * metrics['eval_cer']:.2f}%")


def setup_logging() -> None:
    """INFO for this package (WER lines, decoded samples), WARNING for the libraries."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("hf_binarize").setLevel(logging.INFO)
