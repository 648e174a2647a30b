"""The main job on the bundled artifacts: binarize the bundled float RNN-T without training, then score it, the
float model and the bundled QAT-trained 1-bit model on the bundled test audio, and print the size/WER table.

    make demo                      # installs into .venv, then runs this
    python recipes/demo.py         # the same, in an environment that has hf-binarize

Bundled: ``model_cards/float`` (the float baseline trained on the multi-source, two-engine augmented corpus; its
card says how), ``model_cards/binary-int8`` (a 1-bit model made from it by 2,400 steps of quantization-aware
training, int8 joint head and embedding, 25.4x smaller weights; model_cards/README.md says how) and ``demo/audio`` (40
utterances of the current corpus' ``test`` split, sentences never used in training, and 40 of ``test_unseen``, whose
voices were not used either). The model cards report the models on the full splits.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from hf_binarize import cards
from hf_binarize.commands.main import main as cli_main
from hf_binarize.evaluation import evaluate_model

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("test", "test_unseen")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--float-model", type=Path, default=ROOT / "model_cards" / "float")
    parser.add_argument("--qat-model", type=Path, default=ROOT / "model_cards" / "binary-int8")
    parser.add_argument("--audio", type=Path, default=ROOT / "demo" / "audio")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--limit", type=int, help="score only the first N utterances of each split")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="hf-binarize-demo-") as scratch:
        untrained = Path(scratch) / "sign-no-training"
        print(f"== binarizing {args.float_model} without training into {untrained}")
        status = cli_main(["quantize", "--model", str(args.float_model), "--output-dir", str(untrained),
                           "--int8", "joint", "decoder.embedding"])
        if status:
            raise SystemExit(status)
        results = []
        for variant, model in (("float", args.float_model), ("binary-int8", args.qat_model),
                               ("sign-no-training", untrained)):
            for split in SPLITS:
                evaluation = evaluate_model(model, args.audio, split=split, threads=args.threads, variant=variant,
                                            limit=args.limit)
                print(evaluation)
                results.append(evaluation.to_dict())
    print(f"\n== {', '.join(SPLITS)} of {args.audio}: size, WER and decode speed ({args.threads} threads)\n")
    print(cards.summary_table(results, baseline="float"))


if __name__ == "__main__":
    main()
