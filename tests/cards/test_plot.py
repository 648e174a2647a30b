"""The Pareto front and the size-vs-WER plot (hf_binarize.cards.plot)."""

from __future__ import annotations

import pytest
from evaluation_records import PNG_SIGNATURE, sample_results
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_binarize.cards import pareto_front, plot_size_vs_wer


@pytest.fixture
def results() -> list[dict]:
    return sample_results()


def dominated(p: tuple[float, float], q: tuple[float, float]) -> bool:
    """``q`` dominates ``p``: no worse in both, better in one."""
    return q[0] <= p[0] and q[1] <= p[1] and (q[0] < p[0] or q[1] < p[1])


# Few distinct values, so that ties in size, in WER and in both are common.
coordinate = st.one_of(st.integers(0, 4).map(float), st.floats(0, 100, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(coordinate, coordinate), max_size=25))
def test_pareto_front_matches_brute_force(points):
    expected = {i for i, p in enumerate(points) if not any(dominated(p, q) for q in points)}
    front = pareto_front(points)
    assert sorted(front) == sorted(expected)
    assert [points[i] for i in front] == sorted(points[i] for i in front)


def test_pareto_front_example():
    #            0 front   1 dominated by 0   2 front   3 duplicate of 2   4 same size as 0, worse
    points = [(1.0, 60.0), (2.0, 61.0), (5.0, 50.0), (5.0, 50.0), (1.0, 70.0), (20.0, 46.7)]
    assert pareto_front(points) == [0, 2, 3, 5]


def test_plot_single_split(tmp_path, results):
    path = plot_size_vs_wer(results, "float", "test", tmp_path / "plot.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match="no result on split 'dev'"):
        plot_size_vs_wer(results, "float", "dev", tmp_path / "dev.png")
    assert not (tmp_path / "dev.png").exists()
