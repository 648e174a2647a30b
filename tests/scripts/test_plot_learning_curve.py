"""scripts/plot_learning_curve.py: the points it reads from training logs, hours counted by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "plot_learning_curve.py"


def _eval(clock: str, step: int, wer: float, cer: float) -> str:
    return (f"{clock} hf_binarize.training.trainer: step {step}, eval: WER {wer}% (9/10 words), CER {cer}% on 100 "
            "utterances")


def _run(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, arguments)], capture_output=True, text=True,
                          timeout=300)


def test_points_count_each_logs_own_time_across_midnight_and_not_the_gap_between_logs(tmp_path):
    first = tmp_path / "part1.log"
    # Progress bars share lines with log records (carriage returns), as in a real log.
    first.write_text("\n".join([
        "23:50:00 hf_binarize.recipes.train_float: ParakeetForRNNT with 5.63 M parameters",
        " 10%|#   | 30/600 [00:10<01:00]\r" + _eval("23:59:00", 300, 90.5, 50.25),
        _eval("00:10:00", 600, 80.0, 40.0),
    ]) + "\n")
    second = tmp_path / "part2.log"
    second.write_text("\n".join([
        "08:00:00 hf_binarize.training.run: --resume: continuing from checkpoint-600",
        _eval("08:30:00", 900, 70.0, 30.0),
        "08:36:00 hf_binarize.recipes.train_float: final model in runs/float",
    ]) + "\n")
    out = tmp_path / "plots" / "curve.png"

    result = _run(first, second, "--out", out)

    assert result.returncode == 0, result.stderr
    points = json.loads(out.with_suffix(".json").read_text())
    # part1 runs 23:50 -> 00:10 (20 min); the 8 hours before part2 are not training; part2 adds 30 min to its eval.
    assert points == [
        {"step": 300, "hours": round(9 / 60, 3), "wer": 90.5, "cer": 50.25, "utterances": 100},
        {"step": 600, "hours": round(20 / 60, 3), "wer": 80.0, "cer": 40.0, "utterances": 100},
        {"step": 900, "hours": round(50 / 60, 3), "wer": 70.0, "cer": 30.0, "utterances": 100},
    ]
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert not [path for path in out.parent.iterdir() if path.name not in ("curve.png", "curve.json")]


@pytest.mark.parametrize("lines", [[], [_eval("10:00:00", 300, 90.0, 50.0)]])
def test_fewer_than_two_evaluations_is_a_one_line_error(tmp_path, lines):
    log = tmp_path / "train.log"
    log.write_text("\n".join(["10:00:00 hf_binarize.recipes.train_float: starting", *lines]) + "\n")
    out = tmp_path / "curve.png"

    result = _run(log, "--out", out)

    assert result.returncode == 1
    assert result.stderr.strip() == f"found {len(lines)} evaluation lines in ['{log}']: need 2"
    assert not out.exists()
