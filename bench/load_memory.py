"""Anonymous memory of binarize-on-load: a float checkpoint loaded with ``quantization_config`` in a fresh process.

    python bench/load_memory.py                           # builds the 0.6B shape under /work/runs/serve if missing
    python bench/load_memory.py --folder PATH --json out.json

The 0.6B shape is transformers' default ``ParakeetEncoderConfig`` (hidden 1024, 24 layers) with a 1,025-token
vocabulary and random weights. A thread samples ``RssAnon`` (/proc/self/status) every 5 ms while
``AutoModelForRNNT.from_pretrained(folder, quantization_config=BinaryQuantizationConfig())`` runs, in a process of
its own so that no earlier allocation is counted. ``RssAnon`` and not ``VmRSS``: the checkpoint is memory-mapped, and
its file pages are page cache the kernel reclaims, while anonymous memory (heap, tensors) is what the process holds.
Reported: the float checkpoint's size, anonymous memory after imports, its peak during the load and its level
after, both above the post-import baseline, and the load time. Linux only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.memory import AnonPeak, status_mb

DEFAULT_FOLDER = Path("/work/runs/serve/float06")


def worker(folder: str) -> dict:
    import torch
    from transformers import AutoModelForRNNT

    import hf_binarize

    torch.set_num_threads(1)
    base = status_mb("RssAnon")
    with AnonPeak() as peak:
        start = time.perf_counter()
        model = AutoModelForRNNT.from_pretrained(folder, quantization_config=hf_binarize.BinaryQuantizationConfig())
        seconds = time.perf_counter() - start
    after = status_mb("RssAnon")
    result = {
        "base_anon_mb": base,
        "peak_anon_mb": peak.peak_mb - base,
        "after_anon_mb": after - base,
        "load_s": seconds,
        "weight_mb": hf_binarize.size_report(model).total_bytes / 2**20,
    }
    return {key: round(value, 1) for key, value in result.items()}


def build(folder: Path) -> None:
    import torch
    from transformers import ParakeetForRNNT, ParakeetRNNTConfig

    torch.manual_seed(0)
    config = ParakeetRNNTConfig(vocab_size=1025, blank_token_id=1024, pad_token_id=1024)
    ParakeetForRNNT(config).save_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="float checkpoint (built if missing)")
    parser.add_argument("--repeats", type=int, default=1, help="fresh processes, one load each")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    if not (args.folder / "config.json").exists():
        build(args.folder)
    float_mb = sum(f.stat().st_size for f in args.folder.glob("*.safetensors")) / 2**20
    print(f"float checkpoint {args.folder}: {float_mb:.0f} MB")
    print(f"{'run':>3}{'load s':>8}{'peak anon MB':>14}{'after MB':>10}{'peak / float':>14}{'packed MB':>11}")
    results = []
    for run in range(args.repeats):
        output = subprocess.run([sys.executable, __file__, "--worker", str(args.folder)], check=True,
                                capture_output=True, text=True).stdout
        r = json.loads(output.strip().splitlines()[-1])
        results.append(r)
        print(f"{run:>3}{r['load_s']:>8.1f}{r['peak_anon_mb']:>14.0f}{r['after_anon_mb']:>10.0f}"
              f"{r['peak_anon_mb'] / float_mb:>14.1%}{r['weight_mb']:>11.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"float_mb": float_mb, "results": results}, indent=2))


if __name__ == "__main__":
    main()
