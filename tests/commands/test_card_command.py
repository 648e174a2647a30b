"""``hf-binarize card``: cards from evaluation JSON files, and its one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

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


def _recording_hub(uploaded: list[str]) -> type:
    """A stand-in for huggingface_hub.HfApi that puts the files of the folder it is asked to upload in ``uploaded``."""

    class RecordingHub:
        endpoint = "https://huggingface.co"

        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            return repo_id

        def upload_folder(self, *, repo_id, folder_path, **kwargs):
            uploaded.extend(sorted(path.name for path in Path(folder_path).iterdir()))
            return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/0")

    return RecordingHub


def test_card_into_the_model_folder_is_pushed_with_the_model(tmp_path, results, monkeypatch, capsys):
    import huggingface_hub

    write_json(tmp_path, results)
    model = tmp_path / "runs" / "qat"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights")
    command = ["card", "--results", str(tmp_path / "*.json"), "--out-dir", str(tmp_path / "out"),
               "--license", "apache-2.0", "--model-folder", f"binary-all={model}"]
    assert main(command) == 0
    assert str(model / "README.md") in capsys.readouterr().out.split()

    uploaded = []
    monkeypatch.setattr(huggingface_hub, "HfApi", _recording_hub(uploaded))
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    assert main(["push", "--folder", str(model), "--repo-id", "someone/qat"]) == 0
    captured = capsys.readouterr()
    assert "no README.md" not in captured.err
    assert uploaded == ["README.md", "config.json", "model.safetensors", "size_vs_wer_test.png",
                                      "size_vs_wer_test_unseen.png"]


def test_card_keeps_a_readme_it_did_not_write_in_one_line(tmp_path, results, capsys):
    write_json(tmp_path, results)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "README.md").write_text("mine")
    command = ["card", "--results", str(tmp_path / "*.json"), "--out-dir", str(tmp_path / "out"),
               "--license", "apache-2.0", "--model-folder", f"binary-all={model}"]
    assert main(command) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line == (f"hf-binarize card: error: {model / 'README.md'} exists and was not written by hf-binarize card: "
                    "pass --overwrite-readme to replace it")
    assert (model / "README.md").read_text() == "mine"
    assert main([*command, "binary-all=elsewhere"]) == 1
    assert "names binary-all more than once" in capsys.readouterr().err
    assert main([*command, "--overwrite-readme"]) == 0
    assert (model / "README.md").read_text().startswith("---")
    with pytest.raises(SystemExit):
        main([*command[:-1], "binary-all"])
    assert "must be VARIANT=FOLDER" in capsys.readouterr().err
