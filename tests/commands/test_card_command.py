"""``hf-binarize card``: cards from evaluation JSON files, and its one-line errors."""

from __future__ import annotations

import sys

import pytest
from evaluation_records import sample_results, write_json

from hf_binarize.commands.main import main


@pytest.fixture
def results() -> list[dict]:
    return sample_results()


def test_command_line(tmp_path, results, capsys):
    write_json(tmp_path, results)
    assert main(["card", "--results", str(tmp_path / "*.json"), "--out-dir", str(tmp_path / "out"),
                 "--repo-prefix", "you/parakeet", "--license", "apache-2.0"]) == 0
    printed = capsys.readouterr().out.split()
    assert str(tmp_path / "out" / "README.md") in printed
    assert (tmp_path / "out" / "binary-all" / "README.md").is_file()
    assert len(printed) == 1 + 2 + 4 * 3


def test_command_line_without_matplotlib_is_one_line(tmp_path, results, monkeypatch, capsys):
    # Importing matplotlib (or any of its modules, some perhaps imported already) fails, as where it is not installed.
    for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    write_json(tmp_path, results)
    assert main(["card", "--results", str(tmp_path / "*.json"), "--out-dir", str(tmp_path / "out"),
                 "--license", "apache-2.0"]) == 1
    err = capsys.readouterr().err
    assert err == "hf-binarize card: error: matplotlib is not installed: pip install 'hf-binarize[cards]'\n"


def test_variants_on_different_data_are_refused_in_one_line(tmp_path, results, capsys):
    results[0] = {**results[0], "dataset": "other-corpus", "utterances": 50, "words": 400}
    write_json(tmp_path, results)
    command = ["card", "--results", str(tmp_path / "*.json"), "--out-dir", str(tmp_path / "out"),
               "--license", "apache-2.0"]
    assert main(command) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("hf-binarize card: error: the variants were scored on different data")
    assert not (tmp_path / "out").exists()
    assert main([*command, "--allow-mixed-data"]) == 0
