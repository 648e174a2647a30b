"""Quantization-aware training of a float Parakeet model (RNN-T, TDT or CTC) into a packed 1-bit checkpoint.

    python recipes/qat.py --model runs/float --data corpus --output-dir runs/qat
    python recipes/qat.py --model runs/float --data corpus --output-dir runs/qat --int8 joint decoder.embedding \\
        --learnable-scales --warmup-steps 200 --distill-weight 1.0
    python recipes/qat.py --model runs/float --data corpus --output-dir runs/qat --resume

The float checkpoint is loaded with BinaryQuantizationConfig(mode="qat"), as the class its config names
(ParakeetForRNNT, ParakeetForTDT or ParakeetForCTC): every Linear, 1x1 Conv1d and LSTM keeps latent float weights
that each forward binarizes (straight-through gradients). Training uses the model's own loss (RNN-T, TDT or CTC),
plus optionally, for a transducer, the auxiliary CTC loss of train_float.py (started from the float run's head when
it saved one), and the KL to the float model's output distributions (--distill-weight): the joint's on the
transducer lattice (tokens, and durations for TDT), the CTC head's on every encoder frame. --warmup-steps blends
float and binarized weights from 0 to fully binarized. Checkpoints hold the latent floats (quantization mode "qat") and resume
exactly; --resume takes the quantization settings from the checkpoint. The tokenizer (subwords or characters) and the
subsampling are the float model's; SpecAugment (--freq-masks, --time-masks) masks the training features. At the end the model is frozen and
OUTPUT_DIR holds the PACKED checkpoint and the processor; its size report and its WER (reloaded from disk, beside
the float model's on the same utterances) are printed.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from transformers import AutoConfig, AutoProcessor, set_seed

import hf_binarize
from hf_binarize import BinaryQuantizationConfig, freeze
from hf_binarize.commands.console import run_reporting_errors, setup_logging
from hf_binarize.commands.options import (
    add_binarization_arguments,
    add_data_arguments,
    add_schedule_arguments,
    binarization_config,
    spec_augment,
)
from hf_binarize.evaluation.families import auto_class
from hf_binarize.training import (
    BinarizationWarmupCallback,
    DecodeTrainingSamplesCallback,
    ParakeetTrainer,
    detach_aux_ctc_head,
    first_examples,
    load_aux_ctc_head,
    prepare_split,
    transcribe,
)
from hf_binarize.training.run import (
    describe_metrics,
    exit_process,
    final_metrics,
    resume_checkpoint,
    training_arguments,
)

logger = logging.getLogger("hf_binarize.recipes.qat")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="float ParakeetForRNNT, ParakeetForTDT or ParakeetForCTC folder (model and processor)")
    add_data_arguments(parser)
    add_schedule_arguments(parser, output_dir="runs/qat", max_steps=1000, lr=3e-4, lr_warmup_steps=50,
                           eval_steps=250, ctc_weight=0.0)
    quant = parser.add_argument_group("binarization", "ignored by --resume, which keeps the checkpoint's settings")
    quant.add_argument("--learnable-scales", action="store_true",
                       help="train the scales as parameters (start: mean |W|) instead of recomputing them")
    add_binarization_arguments(quant)
    schedule = parser.add_argument_group("quantization-aware training")
    schedule.add_argument("--warmup-steps", type=int, default=0,
                          help="ramp the float/binary mix from 0 to 1 over N steps (default 0: binary at once)")
    schedule.add_argument("--distill-weight", type=float, default=0.0,
                          help="weight of the KL to the float model's output distributions (default 0: off)")
    schedule.add_argument("--distill-temperature", type=float, default=2.0,
                          help="temperature of that KL (default %(default)s)")
    return parser.parse_args(argv)


def quantization_config(args: argparse.Namespace) -> BinaryQuantizationConfig:
    return binarization_config(args, mode="qat", learnable_scales=args.learnable_scales)


def main(argv: Sequence[str] | None = None) -> ParakeetTrainer:
    args = parse_args(argv)
    setup_logging()
    # Seeds the auxiliary CTC head when the float run left none; the Trainer seeds again before training.
    set_seed(args.seed)
    checkpoint = resume_checkpoint(args)
    columns = dict(text_column=args.text_column, audio_column=args.audio_column, name=args.dataset_config,
                   streaming=args.streaming)
    training_args = training_arguments(args, evaluate=bool(args.eval_split))

    processor = AutoProcessor.from_pretrained(args.model)
    family_class = auto_class(AutoConfig.from_pretrained(args.model))
    if checkpoint is None:
        model = family_class.from_pretrained(args.model, quantization_config=quantization_config(args))
        if args.ctc_weight > 0 and not load_aux_ctc_head(model, args.model):
            logger.warning("%s has no auxiliary CTC head: it starts from random weights", args.model)
    else:
        # A QAT checkpoint loads as QAT modules with its own quantization settings.
        model = family_class.from_pretrained(checkpoint)
    teacher = family_class.from_pretrained(args.model) if args.distill_weight > 0 else None

    # Under DDP the main process prepares the splits first; the others then read its datasets cache.
    with training_args.main_process_first(desc="preparing the splits"):
        train = prepare_split(args.data, args.train_split, processor, limit=args.train_limit,
                              max_unknown_share=args.max_unknown_words, **columns)
        evaluation = (prepare_split(args.data, args.eval_split, processor, limit=args.eval_limit, **columns)
                      if args.eval_split else None)

    callbacks = [BinarizationWarmupCallback(args.warmup_steps)]
    if args.sample_steps:
        samples = first_examples(train, args.num_samples)
        callbacks.append(DecodeTrainingSamplesCallback(processor.tokenizer, samples, args.sample_steps))
    trainer = ParakeetTrainer(model, training_args, processor=processor, ctc_weight=args.ctc_weight, teacher=teacher,
                              distill_weight=args.distill_weight, distill_temperature=args.distill_temperature,
                              spec_augment=spec_augment(args), train_dataset=train, eval_dataset=evaluation,
                              callbacks=callbacks)
    trainer.train(resume_from_checkpoint=checkpoint)
    metrics = final_metrics(trainer) if evaluation is not None else None

    detach_aux_ctc_head(model)
    freeze(model)
    trainer.save_model(args.output_dir)
    if not trainer.is_world_process_zero():
        return trainer
    print(hf_binarize.size_report(model, args.output_dir))
    if evaluation is not None:
        packed = family_class.from_pretrained(args.output_dir)
        floating = teacher or family_class.from_pretrained(args.model)
        print(f"QAT model at step {trainer.state.global_step}: {describe_metrics(metrics)}")
        for label, folder, scored in (("float ", args.model, floating), ("packed", args.output_dir, packed)):
            transcripts = transcribe(scored, processor.tokenizer, evaluation, args.batch_size, progress=True,
                                     desc=f"decoding with the {label.strip()} model")
            print(f"{label} {folder}: {transcripts.summary()}")
    return trainer


if __name__ == "__main__":
    exit_process(run_reporting_errors(Path(__file__).name, main))
