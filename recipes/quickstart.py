"""Binarize a Parakeet RNN-T checkpoint, save it packed with its processor, load it back, print what it costs and
transcribe with transformers' ASR pipeline from the packed folder.

    python recipes/quickstart.py                       # builds a small random float model first
    python recipes/quickstart.py --model path/to/float-parakeet-rnnt --out parakeet-rnnt-binary

The float folder needs its processor (feature extractor and tokenizer), which is saved beside the packed model:
the pipeline, and anyone loading the folder from the Hub, read it from there. Without --model the float model is
random (untrained, with a character vocabulary; building it needs accelerate): the demo shows sizes, the packed
round trip and decoding speed, not accuracy. Trained models and their WER come from the training recipes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForRNNT, AutoProcessor, ParakeetForRNNT, ParakeetRNNTConfig, pipeline

import hf_binarize
from hf_binarize import BinaryQuantizationConfig, size_report
from hf_binarize.commands.console import run_reporting_errors


def build_random_float_model(folder: Path) -> None:
    """A random float model and its processor (80 log-mel bins, characters with the blank last), saved in ``folder``."""
    from hf_binarize.training.tokenizer import build_character_tokenizer, build_processor

    processor = build_processor(build_character_tokenizer(), num_mel_bins=80)
    blank = processor.blank_token_id
    torch.manual_seed(0)
    encoder = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                   subsampling_conv_channels=64, num_mel_bins=80, subsampling_factor=4)
    config = ParakeetRNNTConfig(encoder_config=encoder, vocab_size=len(processor.tokenizer), blank_token_id=blank,
                                pad_token_id=blank, decoder_hidden_size=256, num_decoder_layers=1)
    model = ParakeetForRNNT(config)
    model.generation_config.decoder_start_token_id = config.blank_token_id
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def decode_seconds(model, features: torch.Tensor) -> float:
    with torch.no_grad():
        model.generate(input_features=features, max_new_tokens=20)
        start = time.perf_counter()
        model.generate(input_features=features, max_new_tokens=20)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path,
                        help="float ParakeetForRNNT folder with its processor (default: build a random one)")
    parser.add_argument("--out", type=Path, help="where to save the packed model (default: a temporary folder)")
    parser.add_argument("--int8", nargs="*", default=[], metavar="PATTERN",
                        help="modules to keep at int8 instead of 1 bit, e.g. joint decoder.embedding")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        float_folder = args.model or Path(scratch) / "float"
        if args.model is None:
            build_random_float_model(float_folder)
        packed_folder = args.out or Path(scratch) / "packed"

        processor = AutoProcessor.from_pretrained(float_folder)
        config = BinaryQuantizationConfig(module_overrides={p: "int8" for p in args.int8})
        model = AutoModelForRNNT.from_pretrained(float_folder, quantization_config=config)
        model.save_pretrained(packed_folder)
        processor.save_pretrained(packed_folder)
        packed = AutoModelForRNNT.from_pretrained(packed_folder)
        floating = AutoModelForRNNT.from_pretrained(float_folder)

        print(f"hf_binarize {hf_binarize.__version__}: {float_folder} -> {packed_folder}\n")
        packed_report, float_report = size_report(packed, packed_folder), size_report(floating, float_folder)
        print(packed_report)
        print(f"\nfloat folder: {float_report.folder_bytes:,} bytes; packed folder: {packed_report.folder_bytes:,} bytes "
              f"({float_report.folder_bytes / packed_report.folder_bytes:.1f}x smaller)")

        features = torch.randn(1, 400, floating.config.encoder_config.num_mel_bins)
        for name, m in (("float", floating), ("packed", packed)):
            m.generation_config.decoder_start_token_id = m.config.blank_token_id
            print(f"greedy decode of 4 s of features, {name}: {decode_seconds(m, features):.3f} s")

        asr = pipeline("automatic-speech-recognition", model=str(packed_folder))
        tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
        # A tone is not speech: the point is that the folder works in the pipeline, not the text.
        print(f"pipeline on the packed folder, 1 s of a 440 Hz tone: {asr(tone)['text']!r:.60}")


if __name__ == "__main__":
    sys.exit(run_reporting_errors(Path(__file__).name, main))
