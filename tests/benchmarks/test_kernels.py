"""``hf-binarize bench kernels`` (hf_binarize.benchmarks.kernels) on a tiny shape: every path timed, the ratios
its columns say, the thread-scaling table, the JSON record and the clock choice."""

from __future__ import annotations

import json

import pytest

from hf_binarize.benchmarks import kernels
from hf_binarize.commands.main import main

TIMES = ("dense_f32_ms", "dense_bf16_ms", "dynamic_int8_ms", "op_f32_ms", "op_bf16_ms", "op_int8_act_ms")


def test_rows_ratios_scaling_and_json(tmp_path, capsys):
    path = tmp_path / "kernels.json"
    rows = kernels.run(quick=True, threads=[1, 2], rows=[1, 3], shapes=[(40, 24)], warm=True, json_path=str(path))
    assert [(r["threads"], r["N"], r["K"], r["M"]) for r in rows] == [(1, 40, 24, 1), (1, 40, 24, 3), (2, 40, 24, 1),
                                                                       (2, 40, 24, 3)]
    for row in rows:
        assert all(row[key] > 0 for key in TIMES)
        assert row["speedup_f32"] == pytest.approx(row["dense_f32_ms"] / row["op_f32_ms"])
        assert row["int8_act_vs_bf16"] == pytest.approx(row["dense_bf16_ms"] / row["op_int8_act_ms"])
        assert row["int8_act_vs_dynamic_int8"] == pytest.approx(row["dynamic_int8_ms"] / row["op_int8_act_ms"])
    record = json.loads(path.read_text())
    assert record["rows"] == rows and record["machine"]["clock"] == "wall"
    out = capsys.readouterr().out
    assert "thread scaling: time on 1 thread(s) / time on 2" in out
    assert "op i8a" in out and "i8a/dyn" in out


def test_cpu_clock_times_one_thread_only(capsys):
    rows = kernels.run(quick=True, threads=[1], rows=[2], shapes=[(16, 8)], warm=True, clock="cpu")
    assert len(rows) == 1 and all(rows[0][key] > 0 for key in TIMES)
    assert "clock: CPU time of the calling thread" in capsys.readouterr().out
    with pytest.raises(ValueError, match="pass --threads 1"):
        kernels.run(quick=True, threads=[1, 2], clock="cpu")


@pytest.mark.parametrize("shape", ["4096", "0x8", "axb"])
def test_a_bad_shape_is_a_usage_error(shape, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "kernels", "--shapes", shape])
    assert exit_info.value.code == 2
    assert "is not a weight shape: write it as NxK" in capsys.readouterr().err


def test_the_cpu_clock_with_two_threads_ends_in_one_line(capsys):
    assert main(["bench", "kernels", "--threads", "1", "2", "--clock", "cpu"]) == 1
    assert "pass --threads 1" in capsys.readouterr().err
