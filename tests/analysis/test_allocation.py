"""allocate: the least total damage within a byte budget, checked against trying every combination."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hf_binarize.analysis import Option, allocate


def random_options(rng: np.random.Generator, groups: int) -> dict[str, list[Option]]:
    options = {}
    for g in range(groups):
        float_bytes = int(rng.integers(100, 2000))
        # Damages may be negative: binarizing a group of a barely trained model can lower its loss by chance.
        choices = [Option("float", float_bytes, 0.0),
                   Option("int8", float_bytes // 4 + 3, float(rng.normal(0.01, 0.02))),
                   Option("binary", float_bytes // 32 + 5, float(rng.normal(0.1, 0.1)))]
        if g == 0:
            choices.pop()  # an embedding: int8 or float only
        options[f"g{g}"] = choices
    return options


def brute_force(options: dict[str, list[Option]], budget: int) -> float | None:
    best = None
    for combination in itertools.product(*options.values()):
        if sum(o.bytes for o in combination) <= budget and any(o.method != "float" for o in combination):
            damage = sum(o.damage for o in combination)
            best = damage if best is None else min(best, damage)
    return best


@pytest.mark.parametrize("seed", range(8))
def test_least_damage_within_the_budget_as_brute_force_finds(seed):
    rng = np.random.default_rng(seed)
    options = random_options(rng, groups=7)
    cheapest = sum(min(o.bytes for o in found) for found in options.values())
    dearest = sum(max(o.bytes for o in found) for found in options.values())
    for budget in (cheapest, int(rng.integers(cheapest, dearest)), dearest, dearest * 2):
        chosen = allocate(options, budget)
        assert chosen is not None and list(chosen) == list(options)
        assert all(chosen[group] in options[group] for group in options)
        assert sum(o.bytes for o in chosen.values()) <= budget
        assert sum(o.damage for o in chosen.values()) == pytest.approx(brute_force(options, budget), abs=1e-12)


def test_a_budget_below_the_cheapest_combination_has_no_answer():
    options = random_options(np.random.default_rng(0), groups=3)
    cheapest = sum(min(o.bytes for o in found) for found in options.values())
    assert allocate(options, cheapest - 1) is None


def test_some_group_stays_quantized_even_when_float_everywhere_fits():
    # All float would fit and do no damage, but a model with nothing quantized is no packed checkpoint.
    options = {"a": [Option("float", 100, 0.0), Option("binary", 10, 0.5)],
               "b": [Option("float", 100, 0.0), Option("int8", 30, 0.2)]}
    assert allocate(options, 10_000) == {"a": Option("float", 100, 0.0), "b": Option("int8", 30, 0.2)}


def test_large_budgets_are_counted_in_coarser_units_without_exceeding_them():
    rng = np.random.default_rng(3)
    options = {group: [Option(o.method, o.bytes * 1000 + int(rng.integers(0, 999)), o.damage) for o in found]
               for group, found in random_options(rng, groups=7).items()}
    cheapest = sum(min(o.bytes for o in found) for found in options.values())
    dearest = sum(max(o.bytes for o in found) for found in options.values())
    budget = (cheapest + dearest) // 2
    chosen = allocate(options, budget)
    assert sum(o.bytes for o in chosen.values()) <= budget
    # Units of budget / 100,000 bytes lose at most one unit per group against the exact optimum.
    unit = budget / 100_000
    exact = brute_force(options, budget)
    assert sum(o.damage for o in chosen.values()) <= brute_force(options, int(budget - 7 * unit)) + 1e-12
    assert sum(o.damage for o in chosen.values()) >= exact - 1e-12
