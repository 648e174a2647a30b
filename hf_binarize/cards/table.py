"""The Markdown table comparing every variant with the baseline: size, WER per split and its change, speed."""

from __future__ import annotations

from collections.abc import Sequence

from .results import (
    fmt,
    index_results,
    pooled_rtf,
    relative_change,
    size_mb,
    speedup_vs_baseline,
    split_names,
)


def summary_table(results: Sequence[dict], baseline: str = "float") -> str:
    """A Markdown table comparing every variant with ``baseline``: one row per variant (the baseline first).

    Columns: size on disk (MB), bits per parameter, compression vs fp32 (``size.compression_vs_fp32``), WER per
    split, relative WER change vs the baseline per split (``(wer - base) / base``), decode RTF over all the variant's
    splits and the speed-up vs the baseline's RTF on the splits both were timed on.
    """
    table = index_results(results, baseline)
    splits = split_names(results)
    base = table[baseline]
    head = (["variant", "size (MB)", "bits/param", "vs fp32"] + [f"WER {s}" for s in splits]
            + [f"WER {s} vs {baseline}" for s in splits] + ["RTF", f"speed-up vs {baseline}"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, rows in table.items():
        size = next(iter(rows.values()))["size"]
        wers = [fmt(100 * rows[s]["wer"], 2, suffix="%") if s in rows else "—" for s in splits]
        changes = [relative_cell(rows, base, s, variant == baseline) for s in splits]
        speedup = speedup_vs_baseline(rows, base)
        cells = [f"`{variant}`", size_mb(size["folder_bytes"]), fmt(size["bits_per_param"], 2),
                 fmt(size["compression_vs_fp32"], 1, suffix="x"), *wers, *changes,
                 fmt(pooled_rtf(list(rows.values())), 4), "n/a" if speedup is None else fmt(speedup, 2, suffix="x")]
        lines.append("| " + " | ".join(cells) + " |")
    threads = {r["speed"]["threads"] for r in results}
    if len(threads) > 1:
        lines.append("")
        lines.append(f"Speeds were measured with different thread counts ({', '.join(map(str, sorted(threads)))}); "
                     "speed-ups between them are not like for like.")
    return "\n".join(lines)


def relative_cell(rows: dict[str, dict], base: dict[str, dict], split: str, is_baseline: bool) -> str:
    if split not in rows:
        return "—"
    if is_baseline:
        return "baseline"
    if split not in base:
        return "n/a"
    change = relative_change(rows[split]["wer"], base[split]["wer"])
    return "n/a" if change is None else fmt(100 * change, 1, sign=True, suffix="%")
