"""Plots a training run's learning curve, validation WER and CER against steps and wall-clock hours, from the log
that ``recipes/train_float.py`` prints (its ``step N, eval: WER ...`` lines).

    python scripts/plot_learning_curve.py runs/train-part1.log runs/train.log --out model_cards/float/learning_curve.png

Several logs are one run in order (a run resumed after an interruption). Hours are the wall-clock time the logs
cover, from each log's first line to its last, feature preparation and evaluations included, summed over the logs:
the time between two logs (a run stopped in one session and resumed in the next) is not training and does not
count. A log that crosses midnight is handled by adding a day whenever the clock goes backwards. Also writes the
points as JSON beside the PNG, for the README table.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from hf_binarize.atomic import write_atomically

# Log records start with the time; a progress bar may precede one on the same line.
_TIME = re.compile(r"(\d\d):(\d\d):(\d\d) [\w.]+: ")
_EVAL = re.compile(r"(\d\d):(\d\d):(\d\d) [\w.]+: step (\d+), (\w+): WER ([\d.]+)% .*CER ([\d.]+)% on (\d+) utterances")


def read_points(logs: list[Path]) -> list[dict]:
    points, before = [], 0
    for log in logs:
        start = previous = None
        offset = 0
        for line in log.read_text(encoding="utf-8", errors="replace").replace("\r", "\n").splitlines():
            clock = _TIME.search(line)
            if not clock:
                continue
            seconds = int(clock[1]) * 3600 + int(clock[2]) * 60 + int(clock[3]) + offset
            if previous is not None and seconds < previous:
                offset += 86400
                seconds += 86400
            previous = seconds
            start = seconds if start is None else start
            match = _EVAL.search(line)
            if match:
                points.append({"step": int(match[4]), "hours": round((before + seconds - start) / 3600, 3),
                               "wer": float(match[6]), "cer": float(match[7]), "utterances": int(match[8])})
        if start is not None:
            before += previous - start
    return points


def plot(points: list[dict], out: Path, title: str) -> None:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.4), dpi=90)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    steps = [point["step"] for point in points]
    axes.plot(steps, [point["wer"] for point in points], "o-", label="WER")
    axes.plot(steps, [point["cer"] for point in points], "s--", label="CER")
    axes.set_xlabel("optimizer steps (batch 16)")
    axes.set_ylabel("validation error rate, %")
    axes.set_ylim(0, 105)
    axes.grid(alpha=0.3)
    axes.legend()
    hours = axes.secondary_xaxis("top", functions=(
        lambda step: _interpolate(step, steps, [p["hours"] for p in points]),
        lambda hour: _interpolate(hour, [p["hours"] for p in points], steps)))
    hours.set_xlabel("wall-clock hours on 2 CPU cores")
    axes.set_title(title, fontsize=9, pad=30)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png")
    write_atomically(out, image.getvalue())


def _interpolate(values, xs, ys):
    import numpy as np

    return np.interp(values, xs, ys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", type=Path, help="training logs of one run, in order")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write (a .json of the points beside it)")
    parser.add_argument("--title", default="float ParakeetForRNNT, validation split (greedy)")
    args = parser.parse_args()
    points = read_points(args.logs)
    if len(points) < 2:
        parser.exit(1, f"found {len(points)} evaluation lines in {[str(log) for log in args.logs]}: need 2\n")
    plot(points, args.out, args.title)
    write_atomically(args.out.with_suffix(".json"), (json.dumps(points, indent=1) + "\n").encode())
    print(f"{args.out}: {len(points)} points, last step {points[-1]['step']}: WER {points[-1]['wer']}%")


if __name__ == "__main__":
    main()
