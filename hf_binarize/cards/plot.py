"""The size-vs-WER plot of the variants on one split, with their Pareto front."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

from ..atomic import write_atomically
from .results import index_results, mb, split_names


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the ``(size, wer)`` points that no other point dominates, minimising both, sorted by size then WER.

    A point dominates another when it is no worse in both and better in one; equal points do not dominate each
    other, so duplicates on the front are all kept.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front: list[int] = []
    best = math.inf  # lowest WER among strictly smaller sizes
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and points[order[end]][0] == points[order[start]][0]:
            end += 1
        # Sorted by WER within one size, the group's lowest WER comes first; larger WERs at the same size are
        # dominated by it, and it is itself dominated unless it beats every smaller model.
        low = points[order[start]][1]
        if low < best:
            front += [i for i in order[start:end] if points[i][1] == low]
            best = low
        start = end
    return front


def plot_size_vs_wer(results: Sequence[dict], baseline: str, split: str, path: str | os.PathLike) -> Path:
    """Write a PNG of WER (%) on ``split`` against size on disk (MB, log scale), one labelled point per variant,
    with the Pareto front (smaller and more accurate than every other variant) drawn as a step line."""
    path = Path(path)
    write_atomically(path, plot_png(results, baseline, split))
    return path


def plot_png(results: Sequence[dict], baseline: str, split: str) -> bytes:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter
    except ImportError as e:
        raise ImportError("plots need matplotlib: pip install 'hf-binarize[cards]'") from e
    table = index_results(results, baseline)
    rows = [(variant, splits[split]) for variant, splits in table.items() if split in splits]
    if not rows:
        raise ValueError(f"no result on split {split!r}; splits: {', '.join(split_names(results))}")
    names = [v for v, _ in rows]
    empty = [v for v, r in rows if r["size"]["folder_bytes"] == 0]
    if empty:
        raise ValueError(f"size.folder_bytes is 0 for {', '.join(empty)}; a log-scale size axis needs sizes > 0")
    xs = [mb(r["size"]["folder_bytes"]) for _, r in rows]
    ys = [100 * r["wer"] for _, r in rows]
    front = pareto_front(list(zip(xs, ys, strict=True)))

    # A Figure with its own Agg canvas, not pyplot: no global state, no display needed, safe in threads.
    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if split in table[baseline]:
        ax.axhline(100 * table[baseline][split]["wer"], color="grey", linestyle=":", linewidth=1,
                   label=f"{baseline} WER")
    ax.step([xs[i] for i in front], [ys[i] for i in front], where="post", color="C3", linewidth=1.5,
            label="Pareto front", zorder=1)
    ax.scatter(xs, ys, color="C0", zorder=2)
    ax.scatter([xs[i] for i in front], [ys[i] for i in front], s=110, facecolors="none", edgecolors="C3",
               linewidths=1.5, zorder=3, label="on the front")
    # Among points close in size and WER, the highest gets its label above and the lowest below, so that the
    # names of variants of similar size and accuracy print neither over each other nor between two points.
    y_span = max(max(ys) - min(ys), 1e-9)
    for i in range(len(xs)):
        near = [ys[j] for j in range(len(xs)) if j != i and abs(math.log10(xs[i] / xs[j])) < 0.3
                and abs(ys[i] - ys[j]) < 0.06 * y_span]
        dy = 4 if not near or ys[i] >= max(near) else -12 if ys[i] <= min(near) else -4
        ax.annotate(names[i], (xs[i], ys[i]), textcoords="offset points", xytext=(6, dy), fontsize=8)
    ax.set_xscale("log")
    # Plain numbers (0.5, 2, 10) instead of powers of ten, and minor ticks labelled at 2, 3 and 5: the variants
    # usually span one or two decades, where labels at powers of ten only leave most points without a readable size.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(_minor_tick_label))
    ax.margins(x=0.12)  # room for the label of the largest model
    ax.set_xlabel("size on disk (MB, log scale)")
    ax.set_ylabel(f"WER on {split} (%)")
    ax.set_title(f"Size vs WER ({split})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _minor_tick_label(value: float, _position: int) -> str:
    if value <= 0:
        return ""
    leading = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if leading in (2, 3, 5) else ""
