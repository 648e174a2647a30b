"""Evaluation records (the JSON files of ``hf-binarize evaluate --json``) read, checked and indexed by variant and
split, and the numbers the cards derive from them: relative WER, real-time factor, speed-up, megabytes, and how
they print."""

from __future__ import annotations

import glob
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..evaluation.report import RECORD_SCHEMA

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
        _validate(data, RECORD_SCHEMA, file, "")
        results.append(data)
    index_results(results)
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


def index_results(results: Sequence[dict], baseline: str | None = None) -> dict[str, dict[str, dict]]:
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


def data_differences(results: Sequence[dict]) -> list[str]:
    """One line per split whose variants were not scored on the same data: another dataset, another count of
    utterances or reference words (what a different config, slice or duration limit changes), or another scoring
    normaliser (records from before it was recorded were all scored with ``basic``)."""
    lines = []
    for split in split_names(results):
        scored = {r["variant"]: (Path(str(r["dataset"])).name + (f" ({r['dataset_config']})"
                                                                  if r.get("dataset_config") else ""),
                                 r["utterances"], r["words"], r.get("normalizer", "basic"))
                  for r in results if r["split"] == split}
        if len(set(scored.values())) > 1:
            described = "; ".join(f"{variant}: {name}, {utterances} utterances, {words} words, {normalizer} "
                                  "normaliser" for variant, (name, utterances, words, normalizer) in scored.items())
            lines.append(f"split {split!r}: {described}")
    return lines


def split_names(results: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(r["split"] for r in results))


# --- numbers ------------------------------------------------------------------------------------------------------


def mb(nbytes: float) -> float:
    return nbytes / 1e6


def fmt(x: float, decimals: int, *, sign: bool = False, suffix: str = "") -> str:
    """``x`` with ``decimals`` decimals, or more when that would print a nonzero value as zero."""
    while x != 0 and round(abs(x), decimals) == 0 and decimals < 9:
        decimals += 1
    return f"{x:{'+' if sign and x != 0 else ''},.{decimals}f}{suffix}"


def size_mb(nbytes: int) -> str:
    return fmt(mb(nbytes), 2 if nbytes >= 1e6 else 3)


def relative_change(wer: float, base: float) -> float | None:
    """Relative WER change vs the baseline, ``(wer - base) / base``; ``None`` when the baseline made no error."""
    return None if base == 0 else (wer - base) / base


def pooled_rtf(rows: Sequence[dict]) -> float:
    """Decode seconds per audio second over several splits (weighted by audio, not a mean of ratios)."""
    audio = sum(r["speed"]["audio_seconds"] for r in rows)
    return math.inf if audio == 0 else sum(r["speed"]["decode_seconds"] for r in rows) / audio


def speedup_vs_baseline(splits: dict[str, dict], base_splits: dict[str, dict]) -> float | None:
    """Baseline RTF / variant RTF on the splits both were timed on, so that the audio being compared is the same."""
    common = [s for s in splits if s in base_splits]
    if not common:
        return None
    mine, base = pooled_rtf([splits[s] for s in common]), pooled_rtf([base_splits[s] for s in common])
    return None if mine == 0 or math.isinf(mine) else base / mine
