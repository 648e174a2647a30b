"""Train a small float Parakeet model (RNN-T, TDT or CTC: --family) from scratch on a local speech dataset.

    hf-binarize make-dataset --out corpus --hours 2                  # an espeak-ng corpus (needs espeak-ng)
    python recipes/train_float.py --data corpus --output-dir runs/float
    python recipes/train_float.py --data corpus --output-dir runs/float --resume     # after an interruption
    torchrun --nproc-per-node 2 recipes/train_float.py --data corpus                 # DDP (gloo on CPU)

Labels are characters (the default; they need --subsampling-factor 4 to stay below the encoder frames) or subwords
(--tokenizer subwords: a BPE vocabulary trained on the training transcripts, --vocab-size, which fits 8x); for a
transducer (--family rnnt, the default, or tdt) an auxiliary CTC loss on the encoder (--ctc-weight, default 0.3)
makes it learn to use its audio, and SpecAugment masks the training features (--freq-masks, --time-masks). Every
--eval-steps the validation loss and greedy WER are logged, every --sample-steps a few training utterances are
decoded (a model that ignores its audio shows there first). OUTPUT_DIR ends up holding a plain ParakeetForRNNT,
ParakeetForTDT or ParakeetForCTC checkpoint and its processor, for AutoModelForRNNT / AutoModelForTDT /
AutoModelForCTC and AutoProcessor.from_pretrained, and for recipes/qat.py.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from transformers import AutoConfig, AutoProcessor

from hf_binarize.commands.console import run_reporting_errors, setup_logging
from hf_binarize.commands.options import add_data_arguments, add_schedule_arguments, spec_augment
from hf_binarize.data.splits import UNKNOWN_CHECK_EXAMPLES
from hf_binarize.evaluation.families import FAMILIES, auto_class
from hf_binarize.training import (
    DecodeTrainingSamplesCallback,
    ParakeetArchitecture,
    ParakeetTrainer,
    build_character_tokenizer,
    build_parakeet_model,
    build_processor,
    first_examples,
    labels_over_frames,
    load_split,
    normalised_texts,
    prepare_split,
)
from hf_binarize.training.run import (
    describe_metrics,
    exit_process,
    final_metrics,
    resume_checkpoint,
    training_arguments,
)
from hf_binarize.training.subword_tokenizer import DEFAULT_VOCAB_SIZE, build_subword_tokenizer

logger = logging.getLogger("hf_binarize.recipes.train_float")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    add_schedule_arguments(parser, output_dir="runs/float", max_steps=2000, lr=1e-3, lr_warmup_steps=200,
                           eval_steps=250, ctc_weight=None)
    defaults = ParakeetArchitecture()
    model = parser.add_argument_group("model")
    model.add_argument("--family", choices=sorted(FAMILIES), default="rnnt",
                       help="ParakeetForRNNT (rnnt), ParakeetForTDT (tdt: token-and-duration transducer) or "
                            "ParakeetForCTC (ctc) (%(default)s)")
    model.add_argument("--hidden-size", type=int, default=defaults.hidden_size, help="encoder width (%(default)s)")
    model.add_argument("--layers", type=int, default=defaults.num_layers, help="Conformer blocks (%(default)s)")
    model.add_argument("--heads", type=int, default=defaults.num_heads, help="attention heads (%(default)s)")
    model.add_argument("--intermediate-size", type=int, help="feed-forward width (default 4 x --hidden-size)")
    model.add_argument("--conv-kernel", type=int, default=defaults.conv_kernel_size,
                       help="depthwise convolution kernel (%(default)s)")
    model.add_argument("--subsampling-factor", type=int, default=defaults.subsampling_factor,
                       help="time subsampling, a power of 2; 4 keeps characters below frames (%(default)s)")
    model.add_argument("--subsampling-channels", type=int, default=defaults.subsampling_channels,
                       help="channels of the subsampling convolutions (%(default)s)")
    model.add_argument("--decoder-size", type=int, default=defaults.decoder_hidden_size,
                       help="prediction and joint network width of a transducer (%(default)s)")
    model.add_argument("--decoder-layers", type=int, default=defaults.num_decoder_layers,
                       help="LSTM layers of a transducer's prediction network (%(default)s)")
    model.add_argument("--dropout", type=float, default=defaults.dropout, help="encoder dropout (%(default)s)")
    model.add_argument("--mel-bins", type=int, default=80, help="log-mel features per frame (%(default)s)")
    model.add_argument("--tokenizer", choices=["characters", "subwords"], default="characters",
                       help="labels: characters, or a BPE vocabulary trained on the training transcripts, laid out "
                            "like the Hub Parakeet tokenizers (%(default)s)")
    model.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE,
                       help="subword vocabulary size, <unk> and <blank> included (%(default)s)")
    model.description = "ignored by --resume, which continues the checkpoint's model"
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> ParakeetTrainer:
    args = parse_args(argv)
    setup_logging()
    checkpoint = resume_checkpoint(args)
    columns = dict(text_column=args.text_column, audio_column=args.audio_column)
    training_args = training_arguments(args, evaluate=bool(args.eval_split))

    # Under DDP the main process loads and prepares the splits first; the others then read its datasets cache.
    with training_args.main_process_first(desc="loading the training split"):
        raw_train = load_split(args.data, args.train_split, limit=args.train_limit, name=args.dataset_config,
                               streaming=args.streaming, **columns)
    if checkpoint is None:
        texts = normalised_texts(raw_train, args.text_column)
        tokenizer = (build_subword_tokenizer(texts, args.vocab_size) if args.tokenizer == "subwords"
                     else build_character_tokenizer(texts))
        processor = build_processor(tokenizer, num_mel_bins=args.mel_bins, decoder_type=args.family)
        size = ParakeetArchitecture(
            hidden_size=args.hidden_size, num_layers=args.layers, num_heads=args.heads,
            intermediate_size=args.intermediate_size or 4 * args.hidden_size, conv_kernel_size=args.conv_kernel,
            subsampling_factor=args.subsampling_factor, subsampling_channels=args.subsampling_channels,
            decoder_hidden_size=args.decoder_size, num_decoder_layers=args.decoder_layers, dropout=args.dropout)
        model = build_parakeet_model(processor, size, family=args.family, seed=args.seed)
    else:
        # The vocabulary and shape the checkpoint was trained with, whatever the data and the flags say now.
        processor = AutoProcessor.from_pretrained(checkpoint)
        model = auto_class(AutoConfig.from_pretrained(checkpoint)).from_pretrained(checkpoint)
    logger.info("%s with %.2f M parameters, vocabulary of %d", type(model).__name__, model.num_parameters() / 1e6,
                model.config.vocab_size)

    with training_args.main_process_first(desc="preparing the splits"):
        train = prepare_split(raw_train, args.train_split, processor, max_unknown_share=args.max_unknown_words,
                              **columns)
        evaluation = (prepare_split(args.data, args.eval_split, processor, limit=args.eval_limit,
                                    name=args.dataset_config, streaming=args.streaming, **columns)
                      if args.eval_split else None)
    # Of a stream, its first examples stand for the rest.
    checked = first_examples(train, UNKNOWN_CHECK_EXAMPLES) if args.streaming else train
    labels_over_frames(model, checked["length"], [len(labels) for labels in checked["labels"]])

    callbacks = []
    if args.sample_steps:
        samples = first_examples(train, args.num_samples)
        callbacks.append(DecodeTrainingSamplesCallback(processor.tokenizer, samples, args.sample_steps))
    trainer = ParakeetTrainer(model, training_args, processor=processor, ctc_weight=args.ctc_weight,
                              spec_augment=spec_augment(args), train_dataset=train, eval_dataset=evaluation, callbacks=callbacks)
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(args.output_dir)
    if evaluation is not None:
        metrics = final_metrics(trainer)
        if trainer.is_world_process_zero():
            print(f"final model in {args.output_dir} (step {trainer.state.global_step}): {describe_metrics(metrics)}")
    return trainer


if __name__ == "__main__":
    exit_process(run_reporting_errors(Path(__file__).name, main))
