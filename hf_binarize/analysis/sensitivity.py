"""Sensitivity analysis: what binarizing each group of modules alone does to a float model, and what it saves.

For every group (:mod:`hf_binarize.analysis.groups`), the group alone is converted in place, as
:func:`hf_binarize.quantize_model` converts it, without training, binarized (sign times per-channel scale, or the
scales the base config asks for) and, for comparison, at int8; the model's own loss (:mod:`hf_binarize.evaluation.loss`)
and greedy WER are measured on prepared examples, and the group's bytes as a packed checkpoint stores them
(:func:`hf_binarize.size_report`). Then the float modules are put back. Damage is the change of the loss (nats per
label), a finer measure than the WER of a few hundred utterances; the table ranks groups by damage per byte saved.

:func:`suggest` turns the measurements into ``BinaryQuantizationConfig`` arguments that reach a compression ratio
with the least damage, summing the groups' damages (:mod:`hf_binarize.analysis.allocation`); :func:`score_config`
measures the combination it chose.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn
from tqdm.auto import tqdm

from ..config import BinaryQuantizationConfig
from ..evaluation.loss import mean_loss
from ..evaluation.transcription import transcribe
from ..quantize import is_packed, kept_float, plan_model, replace_modules
from ..size import ModuleSize, SizeReport, size_report
from .allocation import Option, allocate
from .groups import module_groups

METHODS = ("binary", "int8")
"""What each group is measured at; ``nn.Embedding`` groups only at int8 (an embedding cannot be binarized)."""


@dataclass(frozen=True)
class Score:
    """The model's mean loss (nats per label) and greedy word errors on the examples."""

    loss: float
    word_errors: int
    words: int

    @property
    def wer(self) -> float:
        return self.word_errors / max(self.words, 1)


@dataclass(frozen=True)
class GroupResult:
    """One group at one method, everything else float: its modules, their bytes in float and as stored, and the
    score."""

    group: str
    method: str
    modules: tuple[str, ...]
    params: int
    float_bytes: int
    bytes: int
    score: Score

    @property
    def bytes_saved(self) -> int:
        return self.float_bytes - self.bytes


@dataclass
class SensitivityReport:
    """What :func:`analyse` measured. ``results`` are ranked by :meth:`damage_per_byte`, least first."""

    baseline: Score
    results: list[GroupResult]
    fp32_bytes: int
    other_bytes: int
    """Bytes of everything outside the groups (norms, biases, depthwise convolutions...) as a packed checkpoint
    stores them."""
    utterances: int
    base_config: dict[str, Any] = field(default_factory=dict)

    def damage(self, result: GroupResult) -> float:
        """The loss change, nats per label, of binarizing (or int8) ``result``'s group alone."""
        return result.score.loss - self.baseline.loss

    def damage_per_byte(self, result: GroupResult) -> float:
        return self.damage(result) / max(result.bytes_saved, 1)

    def options(self) -> dict[str, list[Option]]:
        """Each group's ways to be stored, cheapest first, float included (no damage)."""
        options: dict[str, list[Option]] = {}
        for result in self.results:
            found = options.setdefault(result.group, [Option("float", result.float_bytes, 0.0)])
            found.append(Option(result.method, result.bytes, self.damage(result)))
        return {group: sorted(found, key=lambda option: option.bytes) for group, found in options.items()}

    def best_ratio(self) -> float:
        """The highest compression vs fp32 any combination reaches: every group at its smallest."""
        smallest = sum(min(option.bytes for option in found) for found in self.options().values())
        return self.fp32_bytes / (self.other_bytes + smallest)

    def to_dict(self) -> dict[str, Any]:
        return {
            "utterances": self.utterances, "fp32_bytes": self.fp32_bytes, "other_bytes": self.other_bytes,
            "best_ratio": self.best_ratio(), "base_config": self.base_config,
            "baseline": {**asdict(self.baseline), "wer": self.baseline.wer},
            "results": [{"group": r.group, "method": r.method, "modules": list(r.modules), "params": r.params,
                         "float_bytes": r.float_bytes, "bytes": r.bytes, "bytes_saved": r.bytes_saved,
                         "loss": r.score.loss, "loss_change": self.damage(r), "wer": r.score.wer,
                         "wer_change": r.score.wer - self.baseline.wer, "word_errors": r.score.word_errors,
                         "loss_change_per_mb_saved": 1e6 * self.damage_per_byte(r)}
                        for r in self.results],
        }

    def __str__(self) -> str:
        width = max([len(r.group) for r in self.results] + [5])
        lines = [f"float model: loss {self.baseline.loss:.4f} nats/label, WER {100 * self.baseline.wer:.2f}% on "
                 f"{self.utterances:,} utterances; each group alone, without training, ranked by loss change per "
                 "MB saved",
                 f"{'rank':>4}  {'group':<{width}}  {'method':<6}{'params':>12}{'bytes saved':>13}{'loss':>9}"
                 f"{'change':>9}{'WER':>9}{'change':>9}{'per MB':>10}"]
        for rank, r in enumerate(self.results, 1):
            lines.append(f"{rank:>4}  {r.group:<{width}}  {r.method:<6}{r.params:>12,}{r.bytes_saved:>13,}"
                         f"{r.score.loss:>9.4f}{self.damage(r):>+9.4f}{100 * r.score.wer:>8.2f}%"
                         f"{100 * (r.score.wer - self.baseline.wer):>+9.2f}{1e6 * self.damage_per_byte(r):>+10.4f}")
        lines.append(f"best possible compression vs fp32: {self.best_ratio():.2f}x (every group at its smallest; "
                     f"{self.other_bytes:,} bytes outside the groups)")
        return "\n".join(lines)


@dataclass(frozen=True)
class Suggestion:
    """``BinaryQuantizationConfig`` arguments reaching ``target_ratio`` with the least estimated damage."""

    target_ratio: float
    choices: dict[str, str]
    config: dict[str, Any]
    bytes: int
    ratio: float
    estimated_damage: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        kept = {method: sum(choice == method for choice in self.choices.values()) for method in ("int8", "float")}
        return (f"suggested for {self.target_ratio:g}x: {self.ratio:.2f}x ({self.bytes:,} bytes), "
                f"{len(self.choices) - kept['int8'] - kept['float']} groups binary, {kept['int8']} int8, "
                f"{kept['float']} float; estimated loss change {self.estimated_damage:+.4f} (sum of the groups')\n"
                f"{json.dumps(self.config)}")


def analyse(model: nn.Module, tokenizer: Any, examples: Any, *, base: BinaryQuantizationConfig | None = None,
            batch_size: int = 16, target_ratio: float | None = None, progress: bool = False) -> SensitivityReport:
    """Measures every group of the float ``model`` alone at each of :data:`METHODS` on prepared ``examples``
    (rows of :class:`hf_binarize.data.preparation.SpeechPreparer`). ``base`` gives the binary scales (group size,
    centring, scale dtype); its module choices are ignored, since every group is tried. ``model`` is left as it
    was.

    Sizes are measured first: a ``target_ratio`` no combination reaches raises ``ValueError`` (naming the best
    reachable ratio) before any scoring. Also raises ``ValueError`` for a model that is quantized already or has
    nothing to quantize."""
    base = base or BinaryQuantizationConfig()
    if is_packed(model) or getattr(getattr(model, "config", None), "quantization_config", None) is not None:
        raise ValueError("the model is quantized already: a sensitivity analysis binarizes a float model")
    keep = kept_float(model)
    groups = module_groups(model, keep)
    if not groups:
        raise ValueError(f"{type(model).__name__} has no module hf_binarize can quantize")
    runs = [(group, method) for group, members in groups.items() for method in METHODS
            if method != "binary" or "embedding" not in members.values()]
    float_sizes = {m.name: m for m in size_report(model).modules}
    stored: dict[tuple[str, str], dict[str, ModuleSize]] = {}
    for group, method in runs:
        with quantized(model, _only(group, method, base), keep):
            sizes = size_report(model)
        stored[group, method] = {m.name: m for m in sizes.modules if m.name in groups[group]}
    members = {name for group in groups.values() for name in group}
    other = sum(m.bytes for m in sizes.modules if m.name not in members)
    smallest = sum(min(sum(m.bytes for m in stored[group, method].values()) for method in METHODS
                       if (group, method) in stored) for group in groups)
    best = sizes.fp32_bytes / (other + smallest)
    if target_ratio is not None and best < target_ratio:
        raise ValueError(_unreachable(target_ratio, best))

    bar = tqdm(total=len(runs) + 1, desc="sensitivity", unit="run", disable=not progress)
    baseline = score(model, tokenizer, examples, batch_size)
    bar.update()
    results = []
    for group, method in runs:
        with quantized(model, _only(group, method, base), keep):
            result_score = score(model, tokenizer, examples, batch_size)
        modules = stored[group, method]
        results.append(GroupResult(group, method, tuple(groups[group]), sum(m.params for m in modules.values()),
                                   sum(float_sizes[name].bytes for name in modules),
                                   sum(m.bytes for m in modules.values()), result_score))
        bar.update()
    bar.close()
    report = SensitivityReport(baseline, results, sizes.fp32_bytes, other, len(examples), _scale_options(base))
    report.results.sort(key=lambda r: (report.damage_per_byte(r), r.group, r.method))
    return report


def suggest(report: SensitivityReport, target_ratio: float) -> Suggestion:
    """The per-group methods that reach ``target_ratio`` (compression of the weights vs fp32) with the least
    damage, summed over groups, as ``BinaryQuantizationConfig`` arguments. Raises ``ValueError`` naming the best
    reachable ratio when the target is out of reach."""
    if not target_ratio > 1:
        raise ValueError(f"target ratio must be above 1 (the float model's), got {target_ratio:g}")
    budget = math.floor(report.fp32_bytes / target_ratio) - report.other_bytes
    chosen = allocate(report.options(), budget) if budget >= 0 else None
    if chosen is None:
        raise ValueError(_unreachable(target_ratio, report.best_ratio()))
    overrides = {group: option.method for group, option in chosen.items() if option.method != "binary"}
    total = report.other_bytes + sum(option.bytes for option in chosen.values())
    return Suggestion(target_ratio, {group: option.method for group, option in chosen.items()},
                      {"module_overrides": overrides, **report.base_config}, total, report.fp32_bytes / total,
                      sum(option.damage for option in chosen.values()))


def score(model: nn.Module, tokenizer: Any, examples: Any, batch_size: int = 16) -> Score:
    """The model's mean loss and greedy word errors on prepared ``examples``."""
    word = transcribe(model, tokenizer, examples, batch_size=batch_size).wer
    return Score(mean_loss(model, examples), word.errors, word.reference_length)


def score_config(model: nn.Module, tokenizer: Any, examples: Any, config: BinaryQuantizationConfig,
                 batch_size: int = 16) -> tuple[Score, SizeReport]:
    """Score and size report of the float ``model`` converted with ``config`` (in place, then put back)."""
    with quantized(model, config, kept_float(model)):
        return score(model, tokenizer, examples, batch_size), size_report(model)


@contextmanager
def quantized(model: nn.Module, config: BinaryQuantizationConfig, keep_float: set[str]) -> Iterator[nn.Module]:
    """The float ``model`` with the modules ``config`` converts swapped for their packed forms, as
    :func:`hf_binarize.quantize_model` swaps them; the float modules are put back on exit."""
    plans = plan_model(model, config, keep_float)
    originals = {name: model.get_submodule(name) for name, plan in plans.items() if plan.method != "float"}
    try:
        yield replace_modules(model, plans, config, fill=True)
    finally:
        for name, module in originals.items():
            model.set_submodule(name, module)


def _unreachable(target_ratio: float, best: float) -> str:
    return (f"a compression of {target_ratio:g}x vs fp32 cannot be reached: the best possible is {best:.2f}x, with "
            "every group binarized (int8 where it cannot be)")


def _only(group: str, method: str, base: BinaryQuantizationConfig) -> BinaryQuantizationConfig:
    """A config that converts ``group`` alone, at ``method``, with the base config's scale options."""
    return BinaryQuantizationConfig(module_types=[], module_overrides={group: method}, **_scale_options(base))


def _scale_options(config: BinaryQuantizationConfig) -> dict[str, Any]:
    return {"group_size": config.group_size, "centred": config.centred, "scale_dtype": config.scale_dtype}
