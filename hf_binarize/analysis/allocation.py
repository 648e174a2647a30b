"""Choosing a precision per module group: the least total damage within a byte budget (a multiple-choice knapsack,
solved exactly by dynamic programming over the budget).

Damage is assumed additive over groups: what binarizing two groups costs is estimated as the sum of what each
costs alone. That is the estimate a sensitivity analysis can make without measuring every combination; the chosen
combination is measured afterwards (:func:`hf_binarize.analysis.sensitivity.score_config`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Budget steps of the dynamic programme: bytes are counted in units of budget / _STEPS, each option's bytes rounded
# up, so that a chosen combination never exceeds the budget (it may miss one that fits by less than a unit per
# group: 0.1% of the budget for 100 groups).
_STEPS = 100_000


@dataclass(frozen=True)
class Option:
    """One way to store a group: ``method`` (``"binary"``, ``"int8"`` or ``"float"``), the bytes it takes and the
    damage it does."""

    method: str
    bytes: int
    damage: float


def allocate(options: Mapping[str, Sequence[Option]], budget: int) -> dict[str, Option] | None:
    """The option per group with the least total damage whose bytes add up to at most ``budget``, with at least
    one group not ``"float"`` (the bytes of everything else are counted as a packed checkpoint stores them, and a
    model with no quantized group is no packed checkpoint); ``None`` when no combination fits."""
    groups = list(options)
    cheapest = {group: min(options[group], key=lambda option: (option.bytes, option.damage)) for group in groups}
    if sum(option.bytes for option in cheapest.values()) > budget:
        return None
    unit = max(1, math.ceil(budget / _STEPS))
    size = budget // unit + 1
    # best[f, b]: least damage of the groups so far within b units; f = 1 once some group is quantized.
    best = np.full((2, size), np.inf)
    best[0] = 0.0
    choice = np.zeros((len(groups), 2, size), dtype=np.int8)
    from_float = np.zeros((len(groups), size), dtype=bool)
    for g, group in enumerate(groups):
        new = np.full((2, size), np.inf)
        for i, option in enumerate(options[group]):
            cost = math.ceil(option.bytes / unit)
            if cost >= size:
                continue
            for before in (0, 1):
                after = 1 if option.method != "float" else before
                candidate = np.full(size, np.inf)
                candidate[cost:] = best[before, : size - cost] + option.damage
                better = candidate < new[after]
                new[after, better] = candidate[better]
                choice[g, after, better] = i
                if after == 1:
                    from_float[g, better] = before == 0
        best = new
    if not np.isfinite(best[1, -1]):
        # Rounding each option up to whole units lost a combination that fits by a few bytes: the cheapest one.
        return cheapest
    chosen: dict[str, Option] = {}
    b, state = size - 1, 1
    for g in reversed(range(len(groups))):
        option = options[groups[g]][choice[g, state, b]]
        chosen[groups[g]] = option
        state = 0 if state == 1 and from_float[g, b] else state
        b -= math.ceil(option.bytes / unit)
    return {group: chosen[group] for group in groups}
