"""A training run of the recipes: its ``TrainingArguments`` (from the options of
:func:`hf_binarize.commands.options.add_schedule_arguments`), where its checkpoints go, which one a resume continues
from, and its final metrics."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import torch
from transformers import Trainer, TrainingArguments

logger = logging.getLogger(__name__)

# What a resume reads from a checkpoint, as Trainer._save_checkpoint writes it (transformers 5): the model (one
# of these weight files), then optimizer, scheduler and RNG state, and trainer_state.json last. A checkpoint
# missing one of them, or whose trainer_state.json does not parse, was interrupted while being written.
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_TRAINING_STATE = ("optimizer.pt", "scheduler.pt")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_dir(args: argparse.Namespace) -> Path:
    return Path(args.checkpoint_dir or f"{Path(args.output_dir)}-checkpoints")


def _has_accelerator() -> bool:
    if hasattr(torch, "accelerator"):
        return torch.accelerator.is_available()
    return torch.cuda.is_available()


def training_arguments(args: argparse.Namespace, *, evaluate: bool) -> TrainingArguments:
    """``TrainingArguments`` from the options of :func:`hf_binarize.commands.options.add_schedule_arguments`."""
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
    """The checkpoint to resume from (``None`` for a fresh start): the newest complete one, skipping (and logging)
    any a kill interrupted while it was being written. Refuses to train over earlier checkpoints unless told to
    resume or overwrite, so that a forgotten ``--resume`` never silently restarts from step 0: ``ValueError`` naming
    the checkpoints and the option to pass."""
    folder = checkpoint_dir(args)
    if args.overwrite:
        if args.resume:
            raise ValueError("--resume and --overwrite contradict each other")
        # Only what the Trainer wrote: a mistyped --checkpoint-dir must not cost anything else. Every DDP process
        # runs this, before any process group exists: hence ignore_errors, and no check of what is left.
        for checkpoint in folder.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
        return None
    checkpoints = _checkpoints(folder)
    if not args.resume:
        if checkpoints:
            raise ValueError(f"{folder} already holds {checkpoints[0].name}: pass --resume to continue or --overwrite")
        return None
    skipped = []
    for checkpoint in checkpoints:
        problem = _incomplete(checkpoint)
        if problem is None:
            for name, why in skipped:
                logger.warning("--resume: skipping %s, %s (interrupted while being written)", name, why)
            logger.info("--resume: continuing from %s, the newest complete checkpoint in %s", checkpoint.name, folder)
            return str(checkpoint)
        skipped.append((checkpoint.name, problem))
    if not skipped:
        raise ValueError(f"--resume: no checkpoint-* folder in {folder}")
    reasons = "; ".join(f"{name}: {why}" for name, why in skipped)
    raise ValueError(f"--resume: no complete checkpoint in {folder} ({reasons}): pass --overwrite to start again")


def _checkpoints(folder: Path) -> list[Path]:
    """The ``checkpoint-STEP`` folders in ``folder``, newest (highest step) first."""
    if not folder.is_dir():
        return []
    found = [(int(match[1]), path) for path in folder.iterdir()
             if (match := _CHECKPOINT.match(path.name)) and path.is_dir()]
    return [path for _, path in sorted(found, reverse=True)]


def _incomplete(checkpoint: Path) -> str | None:
    """Why ``checkpoint`` cannot be resumed from (a file a resume needs is missing or cut short), or ``None``."""
    if not any((checkpoint / name).is_file() for name in _WEIGHTS):
        return "no model weights"
    for name in _TRAINING_STATE:
        if not (checkpoint / name).is_file():
            return f"no {name}"
    # rng_state.pth, or one rng_state_RANK.pth per process under DDP.
    if not any(checkpoint.glob("rng_state*.pth")):
        return "no rng_state.pth"
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
    except FileNotFoundError:
        return "no trainer_state.json"
    except (ValueError, KeyError, TypeError):
        return "trainer_state.json cut short"
    return None


def exit_process(status: int) -> NoReturn:
    """Ends a recipe's process with exit status ``status``. A DDP process ends at once, its output flushed, without
    the interpreter's teardown: freeing a gloo process group there can abort a process that has finished its work
    ("terminate called without an active exception", SIGABRT), and destroying the group earlier deadlocks the
    process when the DDP model releases it (the group's thread waits for the lock the releasing thread holds);
    torchrun fails the launch either way. The recipes write their files atomically and have closed them by then."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def final_metrics(trainer: Trainer) -> dict[str, float]:
    """The evaluation metrics of the last step: those the schedule just logged, else a new evaluation (call it on
    every process: under DDP evaluation is collective)."""
    step = trainer.state.global_step
    logged = [entry for entry in trainer.state.log_history if "eval_wer" in entry and entry.get("step") == step]
    return logged[-1] if logged else trainer.evaluate()


def describe_metrics(metrics: dict[str, float]) -> str:
    return (f"eval loss {metrics['eval_loss']:.3f}, WER {100 * metrics['eval_wer']:.2f}%, "
            f"CER {100 * metrics['eval_cer']:.2f}%")

