"""Binarize a Parakeet RNN-T checkpoint, save it packed, load it back and print what it costs.

    python recipes/quickstart.py                       # builds a small random float model first
    python recipes/quickstart.py --model path/to/float-parakeet-rnnt --out parakeet-rnnt-binary

Without --model the float model is random (untrained): the demo shows sizes, the packed round trip and decoding
speed, not accuracy. Trained models and their WER come from the training recipes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForRNNT, ParakeetForRNNT, ParakeetRNNTConfig

import hf_binarize
from hf_binarize import BinaryQuantizationConfig, size_report


def build_random_float_model(folder: Path) -> None:
    torch.manual_seed(0)
    encoder = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                   subsampling_conv_channels=64, num_mel_bins=80, subsampling_factor=4)
    config = ParakeetRNNTConfig(encoder_config=encoder, vocab_size=129, blank_token_id=128, pad_token_id=128,
                                decoder_hidden_size=256, num_decoder_layers=1)
    model = ParakeetForRNNT(config)
    model.generation_config.decoder_start_token_id = config.blank_token_id
    model.save_pretrained(folder)


def decode_seconds(model, features: torch.Tensor) -> float:
    with torch.no_grad():
        model.generate(input_features=features, max_new_tokens=20)
        start = time.perf_counter()
        model.generate(input_features=features, max_new_tokens=20)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="float ParakeetForRNNT folder (default: build a random one)")
    parser.add_argument("--out", type=Path, help="where to save the packed model (default: a temporary folder)")
    parser.add_argument("--int8", nargs="*", default=[], metavar="PATTERN",
                        help="modules to keep at int8 instead of 1 bit, e.g. joint decoder.embedding")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        float_folder = args.model or Path(scratch) / "float"
        if args.model is None:
            build_random_float_model(float_folder)
        packed_folder = args.out or Path(scratch) / "packed"

        config = BinaryQuantizationConfig(module_overrides={p: "int8" for p in args.int8})
        model = AutoModelForRNNT.from_pretrained(float_folder, quantization_config=config)
        model.save_pretrained(packed_folder)
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


if __name__ == "__main__":
    main()
