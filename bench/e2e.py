"""End to end at the 0.6B shape: greedy RNN-T decoding with the packed model against every dense dtype.

    PYTHONPATH=. python bench/e2e.py --threads 2 --json bench/results/e2e.json

Models (each in a process of its own, so that its peak memory is its own): ``float32``; ``bfloat16`` (the float
model cast); ``int8-dynamic`` (``torch.ao.quantization.quantize_dynamic`` on every ``nn.Linear``: int8 weights,
activations quantized per call); ``packed`` (binarized on load, default config: float32 compute) and
``packed-bf16`` (the same with ``compute_dtype="bfloat16"``) and ``packed-int8`` (the same with
``activations="int8"``: per-row dynamic int8 activations times the +-1 weights, integer dot products), and
``packed-int8-bf16``, that folder loaded with ``dtype=torch.bfloat16``: the layers left dense (attention scores,
depthwise convolutions, norms) then run in bfloat16 as the dense bfloat16 model's do. The 0.6B shape is transformers' default
``ParakeetEncoderConfig`` (hidden 1024, 24 layers) with a 1,025-token vocabulary and random weights; the folders are
built under ``--root`` if missing.

Random weights emit arbitrary token counts, and a transducer's decoder work grows with them, so the greedy loop
caps them at a realistic rate: ``--tokens-per-second`` (default 4, about the subword rate of read English speech
with a 1k vocabulary) tokens are emitted, at evenly spaced encoder frames, each the best non-blank token there;
every other frame emits blank. Per frame the loop runs the joint once, per token the prediction network (embedding,
LSTM, projection) and the joint once more: the work of a greedy decoder emitting that many tokens.

Reported per model and input length: weight MB (stored tensors), RSS after loading and peak RSS while serving (VmHWM,
reset after loading), both above the RSS after imports,
encoder seconds, decoder seconds (the greedy loop), real-time factor (encoder + decoder over audio seconds), each
the median of ``--repeats`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.memory import status_mb

FRAMES_PER_SECOND = 100  # 10 ms feature hop
VARIANTS = ("float32", "bfloat16", "int8-dynamic", "packed", "packed-bf16", "packed-int8", "packed-int8-bf16")
# The packed variants: their folder and the BinaryQuantizationConfig options they are binarized with.
PACKED = {"packed": {}, "packed-bf16": {"compute_dtype": "bfloat16"}, "packed-int8": {"activations": "int8"}}


def load(variant: str, root: Path):
    import torch
    from transformers import AutoModelForRNNT

    import hf_binarize

    if variant in PACKED:
        return AutoModelForRNNT.from_pretrained(root / variant)
    if variant == "packed-int8-bf16":
        return AutoModelForRNNT.from_pretrained(root / "packed-int8", dtype=torch.bfloat16)
    model = AutoModelForRNNT.from_pretrained(root / "float")
    if variant == "bfloat16":
        model = model.to(torch.bfloat16)
    elif variant == "int8-dynamic":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    hf_binarize.integrations.transformers.release_freed_memory()  # the float copies the cast or quantization left
    return model


def weight_bytes(model) -> int:
    import torch

    def size(value) -> int:
        if isinstance(value, torch.Tensor):
            return value.numel() * value.element_size()
        # quantize_dynamic's modules hold their int8 weight and bias as a tuple in the state dict.
        return sum(size(v) for v in value) if isinstance(value, (tuple, list)) else 0

    return sum(size(value) for value in model.state_dict().values())


def greedy(model, encoded, emit_frames: set[int], blank: int) -> int:
    """Greedy transducer decoding over ``encoded`` ([1, T, H]) that emits the best non-blank token at the frames in
    ``emit_frames`` and blank elsewhere; returns the number of tokens emitted."""
    import torch

    decoder = model.decoder
    dtype = encoded.dtype

    def step(token: int, state):
        embedded = decoder.embedding(torch.tensor([[token]]))
        output, state = decoder.lstm(embedded.to(dtype), state)
        return decoder.decoder_projector(output), state

    prediction, state = step(blank, None)
    emitted = 0
    for t in range(encoded.shape[1]):
        frame = encoded[:, t : t + 1]
        logits = model.joint(prediction, frame)
        if t in emit_frames:
            logits[..., blank] = -float("inf")
            prediction, state = step(int(logits.argmax()), state)
            emitted += 1
            model.joint(prediction, frame)  # where a greedy decoder looks again before it moves on
    return emitted


def worker(variant: str, root: str, seconds_list: list[float], threads: int, repeats: int, tokens_per_second: float) -> list:
    import torch

    torch.set_num_threads(threads)
    base_rss = status_mb("VmRSS")
    model = load(variant, Path(root)).eval()
    loaded_rss = status_mb("VmRSS")
    # Peak memory of serving, not of loading (a float model's load briefly holds a second copy): "5" resets VmHWM.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    results = []
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for seconds in seconds_list:
            features = torch.randn(1, int(seconds * FRAMES_PER_SECOND), model.config.encoder_config.num_mel_bins,
                                   generator=generator).to(dtype)
            encoder_times, decoder_times = [], []
            for run in range(repeats + 1):
                start = time.perf_counter()
                encoded = model.get_audio_features(input_features=features).pooler_output
                middle = time.perf_counter()
                frames = encoded.shape[1]
                tokens = min(frames, round(tokens_per_second * seconds))
                emit = {int(i * frames / tokens) for i in range(tokens)}
                emitted = greedy(model, encoded, emit, model.config.blank_token_id)
                end = time.perf_counter()
                if run:  # the first run warms up
                    encoder_times.append(middle - start)
                    decoder_times.append(end - middle)
            encoder, decoder = statistics.median(encoder_times), statistics.median(decoder_times)
            results.append({"variant": variant, "seconds": seconds, "frames": frames, "tokens": emitted,
                            "encoder_s": round(encoder, 3), "decoder_s": round(decoder, 3),
                            "rtf": round((encoder + decoder) / seconds, 4)})
    peak = status_mb("VmHWM") - base_rss
    for r in results:
        r.update(weight_mb=round(weight_bytes(model) / 2**20, 1), loaded_rss_mb=round(loaded_rss - base_rss),
                 peak_rss_mb=round(peak))
    return results


def build(root: Path) -> None:
    import torch
    from transformers import AutoModelForRNNT, ParakeetForRNNT, ParakeetRNNTConfig

    import hf_binarize

    if not (root / "float" / "config.json").exists():
        torch.manual_seed(0)
        config = ParakeetRNNTConfig(vocab_size=1025, blank_token_id=1024, pad_token_id=1024)
        ParakeetForRNNT(config).save_pretrained(root / "float")
    for name, options in PACKED.items():
        if not (root / name / "config.json").exists():
            config = hf_binarize.BinaryQuantizationConfig(**options)
            AutoModelForRNNT.from_pretrained(root / "float", quantization_config=config).save_pretrained(root / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("/work/runs/serve/e2e"), help="model folders (built if missing)")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0], help="audio lengths")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens-per-second", type=float, default=4.0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", metavar="VARIANT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, str(args.root), args.seconds, args.threads, args.repeats,
                                args.tokens_per_second)))
        return
    build(args.root)
    results = []
    for variant in args.variants:
        command = [sys.executable, __file__, "--worker", variant, "--root", str(args.root), "--threads",
                   str(args.threads), "--repeats", str(args.repeats), "--tokens-per-second",
                   str(args.tokens_per_second), "--seconds", *map(str, args.seconds)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(f"{variant} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            continue
        results.extend(json.loads(done.stdout.strip().splitlines()[-1]))
    from hf_binarize.benchmarks.machine import describe_cpu

    print(f"ParakeetForRNNT 0.6B shape, random weights, {args.threads} thread(s), {args.tokens_per_second:g} tokens/s "
          f"cap; cpu={describe_cpu()}")
    print(f"{'audio s':>7} {'model':<13}{'weights MB':>11}{'loaded MB':>10}{'peak MB':>9}{'encoder s':>10}{'decoder s':>10}{'RTF':>8}"
          f"{'tokens':>7}{'vs best dense':>14}")
    for seconds in args.seconds:
        rows = [r for r in results if r["seconds"] == seconds]
        # How many times faster than the fastest model that is not packed (real-time factors, larger is better).
        dense = [r["rtf"] for r in rows if not r["variant"].startswith("packed")]
        for r in rows:
            r["speedup_vs_best_dense"] = round(min(dense) / r["rtf"], 3) if dense else None
            print(f"{seconds:>7g} {r['variant']:<13}{r['weight_mb']:>11.1f}{r['loaded_rss_mb']:>10}{r['peak_rss_mb']:>9}{r['encoder_s']:>10.3f}"
                  f"{r['decoder_s']:>10.3f}{r['rtf']:>8.4f}{r['tokens']:>7}"
                  f"{'' if r['speedup_vs_best_dense'] is None else format(r['speedup_vs_best_dense'], '.2f') + 'x':>14}")
    if args.json:
        from hf_binarize.atomic import write_atomically

        record = {"args": {k: str(v) for k, v in vars(args).items() if k not in ("json", "worker")},
                  "cpu": describe_cpu(), "results": results}
        write_atomically(args.json, (json.dumps(record, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
