"""The evaluation command: greedy WER and CER of a ParakeetForRNNT checkpoint on a speech dataset split.

    python -m hf_binarize.training.evaluate --model runs/qat --data corpus --split test

Float, QAT and packed checkpoints alike (importing ``hf_binarize`` registers its quantizer with transformers, so a
packed checkpoint loads packed), scored by :func:`hf_binarize.training.evaluation.transcribe`, the code that scores
models during training. A module of its own, not imported by the package, so that ``python -m`` runs it once.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from transformers import AutoModelForRNNT, AutoProcessor

from .cli import setup_logging
from .evaluation import Transcripts, transcribe
from .splits import prepare_split


def main(argv: Sequence[str] | None = None) -> Transcripts:
    """The command line; ``argv`` defaults to ``sys.argv[1:]``."""
    parser = argparse.ArgumentParser(
        prog="python -m hf_binarize.training.evaluate",
        description="Greedy WER and CER of a ParakeetForRNNT checkpoint (float, QAT or packed) on a speech dataset.")
    parser.add_argument("--model", required=True, help="checkpoint folder with the model and its processor")
    parser.add_argument("--data", required=True, help="dataset: save_to_disk or audiofolder folder, parquet, Hub id")
    parser.add_argument("--split", default="test", help="split to score (default %(default)s)")
    parser.add_argument("--text-column", default="text", help="transcript column (default %(default)s)")
    parser.add_argument("--audio-column", default="audio", help="audio column (default %(default)s)")
    parser.add_argument("--limit", type=int, help="score only the first N utterances")
    parser.add_argument("--batch-size", type=int, default=16, help="utterances per generate call")
    parser.add_argument("--samples", type=int, default=3, help="reference/hypothesis pairs to print")
    parser.add_argument("--json", help="also write the metrics and every pair to this JSON file")
    args = parser.parse_args(argv)

    setup_logging()
    processor = AutoProcessor.from_pretrained(args.model)
    model = AutoModelForRNNT.from_pretrained(args.model)
    examples = prepare_split(args.data, args.split, processor, text_column=args.text_column,
                             audio_column=args.audio_column, limit=args.limit)
    result = transcribe(model, processor.tokenizer, examples, batch_size=args.batch_size)
    print(f"{args.model} on {args.data} [{args.split}]: {result.summary()}")
    if args.samples:
        print(result.samples(args.samples))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"wer": result.wer.rate, "cer": result.cer.rate, "references": result.references,
                       "hypotheses": result.hypotheses}, file, indent=1)
    return result


if __name__ == "__main__":
    main()
