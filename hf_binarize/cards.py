"""Model cards, a size-vs-WER plot and a summary table from the JSON files of ``hf-binarize evaluate --json``.

One JSON file is one model (a *variant*: ``float``, ``binary-all``, ``hqq-1bit-g64``...) scored on one split. The
cards compare every variant with a float *baseline* on the same splits::

    results = load_results(["results/*.json"])
    write_cards(results, "model_cards", baseline="float")

writes ``model_cards/<variant>/README.md`` (a Hugging Face model card, with the plots beside it so that the folder
uploads as it is), ``model_cards/size_vs_wer_<split>.png`` and ``model_cards/README.md`` (the comparison of all
variants). Sizes are in MB of 10^6 bytes. Numbers are printed with enough digits that a nonzero difference never
shows as zero.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .atomic import write_atomically

__all__ = ["add_arguments", "load_results", "model_card", "pareto_front", "plot_size_vs_wer", "run",
           "summary_table", "write_cards"]

TAGS = ["hf-binarize", "binarization", "1-bit", "rnnt", "speech"]

# The schema of one evaluation JSON: every key is required, extra keys are allowed (newer writers may add some).
_SCHEMA: dict[str, Any] = {
    "variant": str, "model": str, "dataset": str, "split": str, "utterances": int,
    "wer": float, "cer": float, "word_errors": int, "words": int,
    "size": {"params": int, "weight_bytes": int, "folder_bytes": int, "bits_per_param": float,
             "compression_vs_fp32": float, "precision": {"binary": int, "int8": int, "float": int}},
    "speed": {"audio_seconds": float, "decode_seconds": float, "rtf": float, "threads": int},
    "command": str, "hf_binarize_version": str, "torch_version": str, "transformers_version": str,
}

# Variant and split names become file and folder names.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

_LIMITATIONS = (
    "The evaluation data is synthetic: English sentences (dictionary glosses and examples, fortunes, the Harvard "
    "lists) spoken by speech synthesisers (espeak-ng and flite voices) with simulated rooms, noise and channels. "
    "The absolute WER says nothing about accuracy on real speech; only the differences "
    "between variants scored on the same split mean something, and those may not transfer to real speech either. "
    "Speeds are real-time factors (decode seconds per second of audio) measured on the machine that ran the "
    "evaluation, with the thread count given beside them; they are not comparable across machines."
)


# --- loading ----------------------------------------------------------------------------------------------------


def load_results(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[dict]:
    """Read and validate evaluation JSON files, in the order given (glob patterns are expanded, sorted).

    Raises ``FileNotFoundError`` for a missing file or a pattern that matches nothing, and ``ValueError`` naming the
    file and the key for invalid JSON, a missing key or a value of the wrong type.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[str] = []
    for pattern in map(os.fspath, paths):
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise FileNotFoundError(f"no evaluation JSON matches {pattern!r}")
        elif not os.path.isfile(pattern):
            raise FileNotFoundError(f"evaluation JSON {pattern!r} does not exist")
        else:
            matches = [pattern]
        files += [m for m in matches if m not in files]
    if not files:
        raise ValueError("no evaluation JSON files given")
    results = []
    for file in files:
        try:
            with open(file, encoding="utf-8") as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{file}: not valid JSON ({e})") from e
        _validate(data, _SCHEMA, file, "")
        results.append(data)
    _index(results)
    return results


def _validate(value: Any, schema: Any, file: str, where: str) -> None:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{file}: {where or 'the file'} must be a JSON object, got {type(value).__name__}")
        for key, sub in schema.items():
            name = f"{where}.{key}" if where else key
            if key not in value:
                raise ValueError(f"{file}: missing key {name!r}")
            _validate(value[key], sub, file, name)
        return
    # bool is an int subclass in Python, and true/false in a number field is a writer bug, not a count.
    ok = (isinstance(value, str) if schema is str else
          isinstance(value, int) and not isinstance(value, bool) if schema is int else
          isinstance(value, (int, float)) and not isinstance(value, bool))
    if not ok:
        raise ValueError(f"{file}: {where!r} must be {'a string' if schema is str else 'a number'}, got {value!r}")
    if schema is not str and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{file}: {where!r} must be a finite number >= 0, got {value!r}")


def _index(results: Sequence[dict], baseline: str | None = None) -> dict[str, dict[str, dict]]:
    """``{variant: {split: result}}`` in order of first appearance, the baseline first; checks that each
    (variant, split) appears once and that a variant is one model (the same size in all its results)."""
    table: dict[str, dict[str, dict]] = {}
    for r in results:
        splits = table.setdefault(r["variant"], {})
        if r["split"] in splits:
            raise ValueError(f"two results for variant {r['variant']!r} on split {r['split']!r} "
                             f"(models {splits[r['split']]['model']!r} and {r['model']!r}); keep one")
        first = next(iter(splits.values()), None)
        if first is not None and first["size"] != r["size"]:
            raise ValueError(f"variant {r['variant']!r} has different sizes in its results (models {first['model']!r} "
                             f"and {r['model']!r}); a variant must be one model")
        splits[r["split"]] = r
    if not table:
        raise ValueError("no evaluation results given")
    if baseline is not None:
        if baseline not in table:
            raise ValueError(f"baseline {baseline!r} is not among the variants: {', '.join(table)}")
        table = {baseline: table[baseline], **{v: s for v, s in table.items() if v != baseline}}
    return table


def _splits(results: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(r["split"] for r in results))


# --- numbers ------------------------------------------------------------------------------------------------------


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


def _mb(nbytes: float) -> float:
    return nbytes / 1e6


def _fmt(x: float, decimals: int, *, sign: bool = False, suffix: str = "") -> str:
    """``x`` with ``decimals`` decimals, or more when that would print a nonzero value as zero."""
    while x != 0 and round(abs(x), decimals) == 0 and decimals < 9:
        decimals += 1
    return f"{x:{'+' if sign and x != 0 else ''},.{decimals}f}{suffix}"


def _size_mb(nbytes: int) -> str:
    return _fmt(_mb(nbytes), 2 if nbytes >= 1e6 else 3)


def _relative(wer: float, base: float) -> float | None:
    """Relative WER change vs the baseline, ``(wer - base) / base``; ``None`` when the baseline made no error."""
    return None if base == 0 else (wer - base) / base


def _rtf(rows: Sequence[dict]) -> float:
    """Decode seconds per audio second over several splits (weighted by audio, not a mean of ratios)."""
    audio = sum(r["speed"]["audio_seconds"] for r in rows)
    return math.inf if audio == 0 else sum(r["speed"]["decode_seconds"] for r in rows) / audio


def _speedup(splits: dict[str, dict], base_splits: dict[str, dict]) -> float | None:
    """Baseline RTF / variant RTF on the splits both were timed on, so that the audio being compared is the same."""
    common = [s for s in splits if s in base_splits]
    if not common:
        return None
    mine, base = _rtf([splits[s] for s in common]), _rtf([base_splits[s] for s in common])
    return None if mine == 0 or math.isinf(mine) else base / mine


# --- summary table ------------------------------------------------------------------------------------------------


def summary_table(results: Sequence[dict], baseline: str = "float") -> str:
    """A Markdown table comparing every variant with ``baseline``: one row per variant (the baseline first).

    Columns: size on disk (MB), bits per parameter, compression vs fp32 (``size.compression_vs_fp32``), WER per
    split, relative WER change vs the baseline per split (``(wer - base) / base``), decode RTF over all the variant's
    splits and the speed-up vs the baseline's RTF on the splits both were timed on.
    """
    table = _index(results, baseline)
    splits = _splits(results)
    base = table[baseline]
    head = (["variant", "size (MB)", "bits/param", "vs fp32"] + [f"WER {s}" for s in splits]
            + [f"WER {s} vs {baseline}" for s in splits] + ["RTF", f"speed-up vs {baseline}"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, rows in table.items():
        size = next(iter(rows.values()))["size"]
        wers = [_fmt(100 * rows[s]["wer"], 2, suffix="%") if s in rows else "—" for s in splits]
        changes = [_relative_cell(rows, base, s, variant == baseline) for s in splits]
        speedup = _speedup(rows, base)
        cells = [f"`{variant}`", _size_mb(size["folder_bytes"]), _fmt(size["bits_per_param"], 2),
                 _fmt(size["compression_vs_fp32"], 1, suffix="x"), *wers, *changes,
                 _fmt(_rtf(list(rows.values())), 4), "n/a" if speedup is None else _fmt(speedup, 2, suffix="x")]
        lines.append("| " + " | ".join(cells) + " |")
    threads = {r["speed"]["threads"] for r in results}
    if len(threads) > 1:
        lines.append("")
        lines.append(f"Speeds were measured with different thread counts ({', '.join(map(str, sorted(threads)))}); "
                     "speed-ups between them are not like for like.")
    return "\n".join(lines)


def _relative_cell(rows: dict[str, dict], base: dict[str, dict], split: str, is_baseline: bool) -> str:
    if split not in rows:
        return "—"
    if is_baseline:
        return "baseline"
    if split not in base:
        return "n/a"
    change = _relative(rows[split]["wer"], base[split]["wer"])
    return "n/a" if change is None else _fmt(100 * change, 1, sign=True, suffix="%")


# --- plot ---------------------------------------------------------------------------------------------------------


def plot_size_vs_wer(results: Sequence[dict], baseline: str, split: str, path: str | os.PathLike) -> Path:
    """Write a PNG of WER (%) on ``split`` against size on disk (MB, log scale), one labelled point per variant,
    with the Pareto front (smaller and more accurate than every other variant) drawn as a step line."""
    path = Path(path)
    write_atomically(path, _plot_png(results, baseline, split))
    return path


def _plot_png(results: Sequence[dict], baseline: str, split: str) -> bytes:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter
    except ImportError as e:
        raise ImportError("plots need matplotlib: pip install 'hf-binarize[cards]'") from e
    table = _index(results, baseline)
    rows = [(variant, splits[split]) for variant, splits in table.items() if split in splits]
    if not rows:
        raise ValueError(f"no result on split {split!r}; splits: {', '.join(_splits(results))}")
    names = [v for v, _ in rows]
    empty = [v for v, r in rows if r["size"]["folder_bytes"] == 0]
    if empty:
        raise ValueError(f"size.folder_bytes is 0 for {', '.join(empty)}; a log-scale size axis needs sizes > 0")
    xs = [_mb(r["size"]["folder_bytes"]) for _, r in rows]
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


# --- model card ---------------------------------------------------------------------------------------------------


def model_card(results: Sequence[dict], variant: str, baseline: str = "float", *, repo_id: str | None = None,
               base_model: str | None = None, dataset_name: str | None = None,
               plot_file: str | Sequence[str] | None = None) -> ModelCard:
    """The Hugging Face model card of ``variant``: metadata with a ``model-index`` (WER and CER in %, one entry per
    split) and a body with its accuracy, size and speed against ``baseline``, the command behind every number, how
    to load it, the comparison of all variants and the limitations of the data.

    ``repo_id`` names the model in the card (and in the loading example); ``base_model`` (a Hub id) is recorded as
    the model this variant was quantized from (not on the baseline's own card); ``dataset_name`` replaces the
    dataset folder of the JSON files in the metadata; ``plot_file`` is the path, relative to the card, of one plot
    or several to embed.
    """
    table = _index(results, baseline)
    if variant not in table:
        raise ValueError(f"variant {variant!r} is not among the results: {', '.join(table)}")
    rows, base = table[variant], table[baseline]
    is_baseline = variant == baseline
    name = repo_id or variant
    size = next(iter(rows.values()))["size"]

    eval_results = []
    for split, r in rows.items():
        dataset = dataset_name or r["dataset"]
        for metric, value in (("wer", r["wer"]), ("cer", r["cer"])):
            # Rounded only to drop float noise (0.467 * 100 = 46.699999999999996), far below one error in a split.
            eval_results.append(EvalResult(
                task_type="automatic-speech-recognition", task_name="Automatic Speech Recognition",
                dataset_type=dataset, dataset_name=dataset, dataset_split=split,
                metric_type=metric, metric_name=f"{metric.upper()} (%)", metric_value=round(100 * value, 6)))
    extra = {}
    if base_model and not is_baseline:
        extra = {"base_model": base_model, "base_model_relation": "quantized"}
    data = ModelCardData(model_name=name, language="en", library_name="transformers", license="apache-2.0",
                         pipeline_tag="automatic-speech-recognition", tags=list(TAGS), eval_results=eval_results,
                         **extra)

    plots = [plot_file] if isinstance(plot_file, str) else list(plot_file or [])
    body = [f"# {name}", "", _what_it_is(variant, baseline, size, base_model), "",
            *_results_section(rows, base, baseline, is_baseline), "",
            *_size_section(size), "",
            *_speed_section(rows, base, baseline, is_baseline), "",
            *_commands_section(rows), "",
            *_usage_section(name, is_baseline), "",
            "## All variants", "",
            f"All variants on the same data; relative changes are `(WER - WER_{baseline}) / WER_{baseline}`, "
            "size is the saved folder on disk, RTF is decode seconds per second of audio.", "",
            summary_table(results, baseline), "",
            *[f"![Size vs WER]({p})" for p in plots], *([""] if plots else []),
            "## Limitations", "", _LIMITATIONS, ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))


def _what_it_is(variant: str, baseline: str, size: dict, base_model: str | None) -> str:
    params, precision = size["params"], size["precision"]
    # Formats the JSON has no key for (int4 of another library, say) would otherwise vanish from the breakdown.
    counts = [("1-bit", precision["binary"]), ("int8", precision["int8"]), ("float", precision["float"]),
              ("other formats", params - sum(precision.values()))]
    shares = ", ".join(f"{label} {_fmt(100 * n / params, 1)}%" for label, n in counts if n > 0) if params else ""
    kind = ("the float baseline the other `hf-binarize` variants are compared with" if variant == baseline else
            f"a binarized or otherwise quantized version of the `{baseline}` baseline"
            + (f" ([{base_model}](https://huggingface.co/{base_model}))" if base_model else ""))
    text = f"`{variant}`: a speech recognition transducer (RNN-T) for transformers, {kind}. "
    text += f"It has {params:,} parameters"
    text += f", stored as: {shares}." if shares else "."
    if precision["binary"]:
        text += (" Packed 1-bit weights store `alpha * sign(W)`: one bit per weight and a float scale per output "
                 "channel or group (hf-binarize, after Rybakov et al., *USM RNN-T model weights binarization*, "
                 "Interspeech 2024).")
    return text


def _results_section(rows: dict[str, dict], base: dict[str, dict], baseline: str, is_baseline: bool) -> list[str]:
    lines = ["## Results", "",
             "WER is word errors (substitutions, deletions and insertions) over reference words.", ""]
    head = ["split", "utterances", "WER", "word errors / words", "CER"]
    if not is_baseline:
        head += [f"WER of {baseline}", f"relative change vs {baseline}"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for split, r in rows.items():
        cells = [split, f"{r['utterances']:,}", _fmt(100 * r["wer"], 2, suffix="%"),
                 f"{r['word_errors']:,} / {r['words']:,}", _fmt(100 * r["cer"], 2, suffix="%")]
        if not is_baseline:
            if split in base:
                cells += [_fmt(100 * base[split]["wer"], 2, suffix="%"), _relative_cell(rows, base, split, False)]
            else:
                cells += [f"not evaluated on {split}", "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _size_section(size: dict) -> list[str]:
    return ["## Size", "",
            f"* On disk: {_size_mb(size['folder_bytes'])} MB ({size['folder_bytes']:,} bytes, the whole saved folder: "
            "weights, config, processor).",
            f"* Weights: {size['weight_bytes']:,} bytes for {size['params']:,} parameters, "
            f"{_fmt(size['bits_per_param'], 2)} bits per parameter (scales, offsets and float layers included).",
            f"* Compression vs fp32: {_fmt(size['compression_vs_fp32'], 1)}x smaller than the same weights in float32."]


def _speed_section(rows: dict[str, dict], base: dict[str, dict], baseline: str, is_baseline: bool) -> list[str]:
    lines = ["## Speed", "", "Real-time factor (RTF): decode seconds per second of audio; lower is faster.", ""]
    for split, r in rows.items():
        s = r["speed"]
        line = (f"* {split}: RTF {_fmt(s['rtf'], 4)} ({_fmt(s['decode_seconds'], 2)} s for "
                f"{_fmt(s['audio_seconds'], 1)} s of audio, {s['threads']} thread{'s' if s['threads'] != 1 else ''})")
        if not is_baseline and split in base:
            b = base[split]["speed"]
            ratio = "n/a" if s["rtf"] == 0 else _fmt(b["rtf"] / s["rtf"], 2, suffix="x")
            line += f"; {baseline}: RTF {_fmt(b['rtf'], 4)}, speed-up {ratio}"
            if b["threads"] != s["threads"]:
                line += f" (but {baseline} was timed with {b['threads']} threads)"
        lines.append(line)
    return lines


def _commands_section(rows: dict[str, dict]) -> list[str]:
    lines = ["## How these numbers were produced", ""]
    for split, r in rows.items():
        lines += [f"{split} (model folder `{r['model']}`, hf_binarize {r['hf_binarize_version']}, "
                  f"torch {r['torch_version']}, transformers {r['transformers_version']}):", "",
                  "```bash", r["command"], "```", ""]
    return lines[:-1]


def _usage_section(name: str, is_baseline: bool) -> list[str]:
    why = ("harmless for a float model, and needed by its binarized siblings" if is_baseline else
           "registers the packed format with transformers; without it loading fails with a size mismatch")
    return ["## How to use", "", "```python",
            f"import hf_binarize  # {why}",
            "from transformers import AutoModelForRNNT, AutoProcessor, pipeline", "",
            f'model = AutoModelForRNNT.from_pretrained("{name}")',
            f'processor = AutoProcessor.from_pretrained("{name}")',
            f'asr = pipeline("automatic-speech-recognition", model="{name}")',
            'print(asr("speech.wav")["text"])', "```"]


# --- writing ------------------------------------------------------------------------------------------------------


def write_cards(results: Sequence[dict], out_dir: str | os.PathLike, baseline: str = "float", *,
                repo_prefix: str | None = None, base_model: str | None = None,
                dataset_name: str | None = None, how_made: str | None = None,
                no_card: Sequence[str] = ()) -> list[Path]:
    """Write ``out_dir/<variant>/README.md`` for every variant (with the plots beside it),
    ``out_dir/size_vs_wer_<split>.png`` for every split and ``out_dir/README.md``; returns the paths written.

    With ``repo_prefix`` (``you/parakeet-rnnt``), variant ``binary-all`` is named ``you/parakeet-rnnt-binary-all``
    and, unless ``base_model`` is given, the baseline's repository is recorded as the base model of the others.
    ``how_made`` (Markdown: the training commands, say) becomes a "How these models were made" section of the
    summary and of every card. Variants in ``no_card`` (peers measured in memory, with no folder to publish) get
    their row in the summary but no card. Every file is written to a temporary file first and renamed, so a reader never sees
    half a file.
    """
    table = _index(results, baseline)
    made = [] if how_made is None else ["## How these models were made", "", how_made.strip(), ""]
    splits = _splits(results)
    for kind, name in [("variant", v) for v in table] + [("split", s) for s in splits]:
        if not _SAFE_NAME.fullmatch(name):
            raise ValueError(f"{kind} name {name!r} cannot be a file name; use letters, digits, '.', '_' and '-'")
    if repo_prefix is not None and repo_prefix.count("/") != 1:
        raise ValueError(f"--repo-prefix {repo_prefix!r} must be OWNER/NAME, e.g. you/parakeet-rnnt")
    out = Path(out_dir)
    written = []
    plots = {split: _plot_png(results, baseline, split) for split in splits}
    plot_names = {split: f"size_vs_wer_{split}.png" for split in splits}
    for split, png in plots.items():
        written.append(write_atomically(out / plot_names[split], png))

    def repo(variant: str) -> str | None:
        return None if repo_prefix is None else f"{repo_prefix}-{variant}"

    unknown = sorted(set(no_card) - set(table))
    if unknown:
        raise ValueError(f"--no-card names no variant of the results: {', '.join(unknown)}")
    for variant, rows in ((v, r) for v, r in table.items() if v not in no_card):
        card = model_card(results, variant, baseline, repo_id=repo(variant),
                          base_model=base_model or repo(baseline), dataset_name=dataset_name,
                          plot_file=[plot_names[s] for s in rows])
        for split in rows:
            written.append(write_atomically(out / variant / plot_names[split], plots[split]))
        text = "\n".join([str(card).rstrip(), "", *made])
        written.append(write_atomically(out / variant / "README.md", text.encode("utf-8")))

    summary = ["# hf-binarize variants: size vs WER", "",
               f"{len(table)} variants compared with `{baseline}` on {', '.join(splits)}. Relative WER changes are "
               f"`(WER - WER_{baseline}) / WER_{baseline}`; sizes are saved folders on disk in MB (10^6 bytes); RTF is "
               "decode seconds per second of audio. Each variant's card is in its folder.", "",
               summary_table(results, baseline), ""]
    summary += [f"![Size vs WER on {s}]({plot_names[s]})" for s in splits] + ["", *made, "## Commands", ""]
    for variant, rows in table.items():
        for split, r in rows.items():
            summary += [f"`{variant}` on {split}:", "", "```bash", r["command"], "```", ""]
    summary += ["## Limitations", "", _LIMITATIONS, ""]
    written.append(write_atomically(out / "README.md", "\n".join(summary).encode("utf-8")))
    return written


# --- command line -------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``card`` command's options to ``parser``; ``args.run(args)`` then runs it."""
    parser.add_argument("--results", nargs="+", required=True, metavar="JSON",
                        help="evaluation JSON files of `hf-binarize evaluate --json` (glob patterns allowed)")
    parser.add_argument("--out-dir", default="model_cards", help="where to write the cards (default %(default)s)")
    parser.add_argument("--baseline", default="float",
                        help="variant the others are compared with (default %(default)s)")
    parser.add_argument("--repo-prefix", help="OWNER/NAME: variant V is named OWNER/NAME-V in its card")
    parser.add_argument("--base-model", help="Hub id of the model the variants were quantized from "
                                             "(default: the baseline's repository when --repo-prefix is given)")
    parser.add_argument("--dataset-name", help="dataset name for the card metadata (default: the JSON's dataset)")
    parser.add_argument("--how-made", type=Path, metavar="MARKDOWN_FILE",
                        help="a Markdown file (the training commands, say) included in the summary and every card")
    parser.add_argument("--no-card", nargs="+", default=[], metavar="VARIANT",
                        help="variants listed in the summary without a card of their own (peers with no folder)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Load the results, write the cards and print every file written."""
    results = load_results(args.results)
    how_made = None if args.how_made is None else args.how_made.read_text(encoding="utf-8")
    for path in write_cards(results, args.out_dir, args.baseline, repo_prefix=args.repo_prefix,
                            base_model=args.base_model, dataset_name=args.dataset_name, how_made=how_made,
                            no_card=args.no_card):
        print(path)
