"""Long-form transcription: does a one-hour file need more memory than a one-minute one?

    PYTHONPATH=. python bench/long_audio.py --model model_cards/binary-int8 --model model_cards/float \
        --json bench/results/long-audio.json

For each ``--minutes`` (default 1 and 60) a 16 kHz WAV file is built under ``--root`` (once) from the bundled demo
utterances (``demo/audio/test``) read one after another with 0.3 s of silence between them, repeated until the length
is reached. Each (model, file) pair is transcribed in a process of its own by :class:`LongFormTranscriber` (the path
``hf-binarize transcribe`` takes), while a thread samples ``RssAnon`` every 5 ms. Reported: anonymous memory after
loading the model (above the level after imports), its peak while transcribing (above the level after loading),
wall seconds, real-time factor (wall over audio seconds) and the words in the transcript. Linux only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.memory import AnonPeak, status_mb

RATE = 16_000
DEMO_AUDIO = Path(__file__).resolve().parent.parent / "demo" / "audio" / "test"


def build(path: Path, minutes: float) -> None:
    """Writes ``minutes`` of demo speech to ``path`` block by block (never the whole file in memory)."""
    import soundfile as sf

    utterances = sorted(DEMO_AUDIO.glob("*.flac"))
    if not utterances:
        raise SystemExit(f"no FLAC files in {DEMO_AUDIO}")
    silence = np.zeros(int(0.3 * RATE), dtype=np.int16)
    remaining = int(minutes * 60 * RATE)
    staging = path.with_name(path.name + ".partial")  # renamed when complete: a killed run leaves no short file
    with sf.SoundFile(staging, "w", RATE, 1, "PCM_16", format="WAV") as out:
        while remaining > 0:
            for utterance in utterances:
                samples, rate = sf.read(utterance, dtype="int16")
                if rate != RATE:
                    raise SystemExit(f"{utterance} is {rate} Hz, not {RATE}")
                block = np.concatenate([samples, silence])[:remaining]
                out.write(block)
                remaining -= len(block)
                if remaining <= 0:
                    break
    staging.replace(path)


def worker(model_path: str, audio: str, threads: int) -> dict:
    import torch
    from transformers import AutoConfig, AutoProcessor

    import hf_binarize  # noqa: F401  (registers the packed layers for a packed checkpoint)
    from hf_binarize.evaluation.families import auto_class
    from hf_binarize.evaluation.long_form import LongFormTranscriber

    torch.set_num_threads(threads)
    base = status_mb("RssAnon")
    model = auto_class(AutoConfig.from_pretrained(model_path)).from_pretrained(model_path)
    transcriber = LongFormTranscriber(model, AutoProcessor.from_pretrained(model_path))
    loaded = status_mb("RssAnon")
    with AnonPeak() as peak:
        start = time.perf_counter()
        transcript = transcriber.transcribe_file(audio)
        seconds = time.perf_counter() - start
    return {
        "loaded_anon_mb": round(loaded - base, 1),
        "peak_anon_mb": round(peak.peak_mb - loaded, 1),
        "wall_s": round(seconds, 2),
        "rtf": round(seconds / transcript.duration, 4),
        "audio_s": transcript.duration,
        "words": len(transcript.text.split()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="checkpoint folder (repeatable)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 60], help="file lengths (default 1 60)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--root", type=Path, default=Path("/tmp/hfb-long-audio"), help="where the WAV files go")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "AUDIO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.threads)))
        return
    args.root.mkdir(parents=True, exist_ok=True)
    files = {}
    for minutes in args.minutes:
        files[minutes] = args.root / f"demo-{minutes:g}min.wav"
        if not files[minutes].exists():
            build(files[minutes], minutes)
    from hf_binarize.benchmarks.machine import describe_cpu

    cpu = describe_cpu()
    print(f"CPU: {cpu}, {args.threads} thread(s)")
    print(f"{'model':<32}{'audio':>8}{'loaded MB':>11}{'peak MB':>9}{'wall s':>9}{'RTF':>8}{'words':>8}")
    results = []
    for model in args.model:
        for minutes, audio in files.items():
            command = [sys.executable, __file__, "--worker", model, str(audio), "--threads", str(args.threads),
                       "--model", model]
            r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            results.append({"model": model, "minutes": minutes, **r})
            print(f"{model:<32}{minutes:>7g}m{r['loaded_anon_mb']:>11.0f}{r['peak_anon_mb']:>9.0f}"
                  f"{r['wall_s']:>9.1f}{r['rtf']:>8.3f}{r['words']:>8}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "threads": args.threads, "results": results}, indent=2))


if __name__ == "__main__":
    main()
