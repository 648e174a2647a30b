"""End-to-end CPU benchmark: greedy RNN-T decoding of a packed vs a float ParakeetForRNNT of the same shape.

    python bench/decode.py                      # default shape, 10 s of audio features, 1 thread
    python bench/decode.py --threads 2 --json bench/decode.json

Each model runs in its own process so that peak memory (max RSS) is its own. Reported per model: weight bytes
(every stored tensor), process RSS after loading and at peak, encoder time, full greedy decode time and its
real-time factor (decode seconds / audio seconds), and the number of tokens emitted. The models are random (the
point is speed and memory, not accuracy); both decode the same features, and the emitted-token counts are printed
because the decoder's work grows with them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRAMES_PER_SECOND = 100  # 10 ms feature hop at 16 kHz


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_rss_mb() -> float:
    # Not getrusage's ru_maxrss: Linux carries it over exec, so a worker would report the parent's peak.
    return _status_mb("VmHWM")


def worker(variant: str, folder: str, seconds: float, threads: int, repeats: int) -> dict:
    import torch
    from transformers import AutoModelForRNNT

    import hf_binarize

    torch.set_num_threads(threads)
    base_rss = _rss_mb()
    kwargs = {"quantization_config": hf_binarize.BinaryQuantizationConfig()} if variant == "binarized-on-load" else {}
    model = AutoModelForRNNT.from_pretrained(folder, **kwargs).eval()
    model.generation_config.decoder_start_token_id = model.config.blank_token_id
    loaded_rss = _rss_mb()
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(1, int(seconds * FRAMES_PER_SECOND), model.config.encoder_config.num_mel_bins,
                           generator=generator)
    encoder_times, decode_times = [], []
    with torch.inference_mode():
        model.generate(input_features=features[:, :200])
        for _ in range(repeats):
            start = time.perf_counter()
            model.get_audio_features(input_features=features)
            encoder_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            out = model.generate(input_features=features)
            decode_times.append(time.perf_counter() - start)
    tokens = int((out.sequences != model.config.blank_token_id).sum())
    decode = sorted(decode_times)[len(decode_times) // 2]
    return {
        "variant": variant,
        "weight_bytes": hf_binarize.size_report(model).total_bytes,
        "rss_load_mb": loaded_rss - base_rss,
        "peak_rss_mb": _peak_rss_mb() - base_rss,
        "encoder_s": sorted(encoder_times)[len(encoder_times) // 2],
        "decode_s": decode,
        "rtf": decode / seconds,
        "tokens": tokens,
    }


def build(folder: Path, hidden: int, layers: int, vocab: int) -> None:
    import torch
    from transformers import AutoModelForRNNT, ParakeetForRNNT, ParakeetRNNTConfig

    import hf_binarize

    torch.manual_seed(0)
    encoder = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=8, intermediate_size=4 * hidden,
                   subsampling_conv_channels=256, num_mel_bins=80, subsampling_factor=8)
    config = ParakeetRNNTConfig(encoder_config=encoder, vocab_size=vocab, blank_token_id=vocab - 1,
                                pad_token_id=vocab - 1, decoder_hidden_size=640, num_decoder_layers=1)
    ParakeetForRNNT(config).save_pretrained(folder / "float")
    packed = AutoModelForRNNT.from_pretrained(folder / "float", quantization_config=hf_binarize.BinaryQuantizationConfig())
    packed.save_pretrained(folder / "packed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=1025)
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length decoded")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.seconds, args.threads, args.repeats)))
        return

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        build(folder, args.hidden, args.layers, args.vocab)
        results = []
        for variant, sub in (("float", "float"), ("packed", "packed")):
            command = [sys.executable, __file__, "--worker", variant, str(folder / sub), "--seconds", str(args.seconds),
                       "--threads", str(args.threads), "--repeats", str(args.repeats)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
    float_result = results[0]
    print(f"ParakeetForRNNT hidden={args.hidden} layers={args.layers} vocab={args.vocab}, {args.seconds:g} s of "
          f"features, {args.threads} thread(s)")
    header = f"{'model':<8}{'weights MB':>11}{'RSS load MB':>12}{'peak MB':>9}{'encoder s':>10}{'decode s':>9}" \
             f"{'RTF':>7}{'tokens':>7}{'speedup':>8}{'weights x':>10}"
    print(header)
    for r in results:
        print(f"{r['variant']:<8}{r['weight_bytes'] / 2**20:>11.1f}{r['rss_load_mb']:>12.1f}{r['peak_rss_mb']:>9.1f}"
              f"{r['encoder_s']:>10.3f}{r['decode_s']:>9.3f}{r['rtf']:>7.3f}{r['tokens']:>7}"
              f"{float_result['decode_s'] / r['decode_s']:>8.2f}{float_result['weight_bytes'] / r['weight_bytes']:>10.1f}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k not in ("json", "worker")},
                                         "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
