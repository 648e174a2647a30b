"""The ``hf-binarize`` command line: quantize then evaluate end to end on a tiny model and a few WAV files, the JSON
record checked against independent computations, one-line errors for bad input, and the offline push."""

from __future__ import annotations

import csv
import errno
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
from conftest import build_model
from safetensors import SafetensorError
from transformers import AutoModelForRNNT, AutoProcessor, ProcessorMixin, modeling_utils

import hf_binarize
from hf_binarize import cards
from hf_binarize.commands.main import build_parser, main
from hf_binarize.data.splits import prepare_split
from hf_binarize.data.text import cer, wer
from hf_binarize.evaluation import report as evaluate_module
from hf_binarize.evaluation.transcription import transcribe
from hf_binarize.size import folder_size, size_report
from hf_binarize.training import (
    ParakeetArchitecture,
    build_character_tokenizer,
    build_parakeet_model,
    build_processor,
)

sf = pytest.importorskip("soundfile")

RATE = 16000
# Whole hops of the feature extractor (160 samples), so that the prepared audio lasts exactly as long as the files.
UTTERANCES = {"a.wav": (0.6, "the cat sat"), "b.wav": (0.8, "a dog ran home"), "c.wav": (1.0, "blue sky"),
              "d.wav": (0.5, "red fox")}
SCHEMA = {
    # dataset_config: None here, where the dataset has a single config and none is named.
    "variant": str, "model": str, "family": str, "dataset": str, "dataset_config": type(None), "split": str,
    "dataset_split": str, "utterances": int,
    "max_duration": float,
    "skipped": dict, "synthetic_corpus": bool, "normalizer": str,
    "unknown_labels": {"tokens": int, "words": int, "total_words": int, "examples": list}, "wer": float, "cer": float, "word_errors": int, "words": int,
    "size": {"params": int, "weight_bytes": int, "folder_bytes": int, "bits_per_param": float,
             "compression_vs_fp32": float, "precision": {"binary": int, "int8": int, "float": int}},
    "speed": {"audio_seconds": float, "decode_seconds": float, "rtf": float, "threads": int},
    "command": str, "hf_binarize_version": str, "torch_version": str, "transformers_version": str,
}


def write_audiofolder(root: Path, audio: dict[str, bytes | np.ndarray], texts: dict[str, str],
                      split: str = "test") -> Path:
    """An audiofolder with one split: WAV files (or raw bytes) and a metadata.csv."""
    split = root / split
    split.mkdir(parents=True)
    for name, content in audio.items():
        if isinstance(content, bytes):
            (split / name).write_bytes(content)
        else:
            sf.write(split / name, content, RATE, subtype="PCM_16")
    with open(split / "metadata.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["file_name", "text"])
        writer.writerows(texts.items())
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    generator = np.random.default_rng(0)
    audio = {}
    for name, (seconds, _) in UTTERANCES.items():
        samples = round(seconds * RATE)
        tone = 0.3 * np.sin(2 * np.pi * generator.uniform(150, 400) * np.arange(samples) / RATE)
        audio[name] = (tone + 0.05 * generator.standard_normal(samples)).astype(np.float32)
    return write_audiofolder(tmp_path_factory.mktemp("speech"), audio,
                             {name: text for name, (_, text) in UTTERANCES.items()})


@pytest.fixture(scope="module")
def float_dir(tmp_path_factory) -> Path:
    """A tiny float ParakeetForRNNT with its processor."""
    processor = build_processor(build_character_tokenizer(), num_mel_bins=32)
    model = build_parakeet_model(processor, ParakeetArchitecture(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                                                  subsampling_channels=8, decoder_hidden_size=32))
    folder = tmp_path_factory.mktemp("float")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def packed_dir(float_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "binary"
    assert main(["quantize", "--model", str(float_dir), "--output-dir", str(out), "--int8", "joint"]) == 0
    return out


def check_schema(value, schema, where="") -> None:
    if isinstance(schema, dict):
        assert isinstance(value, dict) and set(value) == set(schema), where
        for key, sub in schema.items():
            check_schema(value[key], sub, f"{where}.{key}")
    else:
        assert type(value) is schema, f"{where}: {type(value).__name__}, not {schema.__name__}"


def error_line(capsys, command: str) -> str:
    """The one error line a failed command printed (a log line or progress bar may precede it), checked to be the
    only one and not part of a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith(f"hf-binarize {command}: error: "), err
    return lines[0]


def test_help_of_the_installed_command():
    script = Path(sys.executable).with_name("hf-binarize")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("quantize", "evaluate", "card", "push", "bench", "make-dataset"):
        assert command in result.stdout


@pytest.mark.parametrize(("argv", "option"), [(["quantize"], "WITHOUT TRAINING"), (["bench", "kernels"], "--quick"),
                                              (["sensitivity"], "--target-ratio"),
                                              (["make-dataset"], "--hours"), (["card"], "--results"),
                                              (["push"], "--create-pr")])
def test_every_command_has_help(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0 and option in capsys.readouterr().out


def test_quantize_writes_a_packed_model_and_its_processor(float_dir, packed_dir):
    config = json.loads((packed_dir / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "hf_binarize"
    assert config["quantization_config"]["module_overrides"] == {"joint": {"method": "int8"}}
    assert sorted(p.name for p in packed_dir.iterdir()) == sorted(p.name for p in float_dir.iterdir())
    assert AutoProcessor.from_pretrained(packed_dir).tokenizer.get_vocab() == (
        AutoProcessor.from_pretrained(float_dir).tokenizer.get_vocab())
    assert not [p for p in packed_dir.parent.iterdir() if p.name.startswith(".")]  # no staging folder left
    model = AutoModelForRNNT.from_pretrained(packed_dir)
    assert isinstance(model.joint.head, hf_binarize.PackedLinear) and model.joint.head.fmt.method == "int8"


def test_quantize_refuses_a_non_empty_output_unless_overwrite(float_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["quantize", "--model", str(float_dir), "--output-dir", str(out)]) == 1
    assert "not empty" in error_line(capsys, "quantize") and (out / "keep.txt").read_text() == "mine"
    assert main(["quantize", "--model", str(float_dir), "--output-dir", str(out), "--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "config.json").is_file()
    assert "compression vs fp32" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def model_copy(float_dir: Path, folder: Path) -> Path:
    """A copy of the float model at ``folder`` with a neighbour, so that a test can see both survive."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(float_dir, folder)
    (folder.parent / "neighbour.txt").write_text("mine")
    return folder


@pytest.mark.parametrize("where", ["parent", "grandparent", "current folder", "inside the model"])
def test_quantize_refuses_an_output_that_contains_or_is_inside_the_model(where, float_dir, tmp_path, monkeypatch,
                                                                        capsys):
    model = model_copy(float_dir, tmp_path / "runs" / "models" / "float")
    before = snapshot(tmp_path / "runs")
    output = {"parent": model.parent, "grandparent": model.parent.parent, "current folder": Path("."),
              "inside the model": model / "binary"}[where]
    monkeypatch.chdir(model.parent)
    assert main(["quantize", "--model", str(model), "--output-dir", str(output), "--overwrite"]) == 1
    assert "--model folder" in error_line(capsys, "quantize")
    assert snapshot(tmp_path / "runs") == before


def test_quantize_refuses_to_replace_the_current_folder(float_dir, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    assert main(["quantize", "--model", str(float_dir), "--output-dir", ".", "--overwrite"]) == 1
    assert "current folder" in error_line(capsys, "quantize") and (work / "notes.txt").read_text() == "mine"


def test_quantize_through_a_symlinked_output_replaces_the_linked_folder(float_dir, tmp_path, capsys):
    real = tmp_path / "store" / "binary"
    real.mkdir(parents=True)
    (real / "stale.txt").write_text("old run")
    link = tmp_path / "out"
    link.symlink_to(real, target_is_directory=True)
    assert main(["quantize", "--model", str(float_dir), "--output-dir", str(link), "--overwrite"]) == 0
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert (real / "config.json").is_file() and not (real / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "store"]
    assert sorted(p.name for p in real.parent.iterdir()) == ["binary"]


def test_quantize_puts_back_the_output_a_killed_run_had_renamed_aside(float_dir, tmp_path, capsys):
    """A run killed between its two renames leaves only the hidden old folder; the next run without --overwrite
    must find it back in place and refuse to replace it, as if the killed run had never started."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    aside = tmp_path / f".out.{socket.gethostname()}.{dead_pid()}.0123abcd.old"
    out.rename(aside)
    assert main(["quantize", "--model", str(float_dir), "--output-dir", str(out)]) == 1
    assert "not empty" in error_line(capsys, "quantize") and (out / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("failing", ["model", "processor"])
def test_quantize_on_a_full_disk_is_one_line_and_keeps_the_old_output(failing, float_dir, tmp_path, monkeypatch,
                                                                      capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    if failing == "model":
        # What safetensors raised when its file filled a 64 KiB tmpfs.
        def full(*args, **kwargs):
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

        monkeypatch.setattr(modeling_utils, "safe_save_file", full)
    else:
        def full(self, folder, *args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(Path(folder) / "processor_config.json"))

        monkeypatch.setattr(ProcessorMixin, "save_pretrained", full)
    assert main(["quantize", "--model", str(float_dir), "--output-dir", str(out), "--overwrite"]) == 1
    line = error_line(capsys, "quantize")
    assert os.strerror(errno.ENOSPC) in line and "free some space" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (out / "keep.txt").read_text() == "mine"


def evaluate_without(missing: str, float_dir: Path, dataset: Path) -> subprocess.CompletedProcess:
    """``hf-binarize evaluate`` in a new process in which importing ``missing`` fails, as it does where it is not
    installed."""
    script = (f"import sys; sys.modules[{missing!r}] = None\n"
              "from hf_binarize.commands.main import main\n"
              f"sys.exit(main(['evaluate', '--model', {str(float_dir)!r}, '--dataset', {str(dataset)!r}]))")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parents[2])


@pytest.mark.parametrize(("missing", "install"), [("datasets", "hf-binarize[data]"),
                                                   ("soundfile", "hf-binarize[data]")])
def test_evaluate_without_an_optional_dependency_is_one_line(missing, install, float_dir, dataset):
    result = evaluate_without(missing, float_dir, dataset)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert lines == [f"hf-binarize evaluate: error: {missing} is not installed: pip install '{install}'"]


def test_evaluate_needs_no_accelerate(float_dir, dataset):
    """Scoring imports no training code, hence not the Trainer, which needs accelerate."""
    result = evaluate_without("accelerate", float_dir, dataset)
    assert result.returncode == 0, result.stderr


def dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_evaluate_writes_the_json_record(packed_dir, dataset, tmp_path, capsys):
    record = tmp_path / "results" / "binary.json"
    assert main(["evaluate", "--model", str(packed_dir), "--dataset", str(dataset), "--threads", "1",
                 "--batch-size", "2", "--json", str(record)]) == 0
    result = json.loads(record.read_text())
    check_schema(result, SCHEMA)
    assert result["family"] == "rnnt"
    assert "RTF" in capsys.readouterr().out

    # Independently: the packed folder reloaded and decoded directly, scored by the WER functions.
    processor = AutoProcessor.from_pretrained(packed_dir)
    model = AutoModelForRNNT.from_pretrained(packed_dir)
    examples = prepare_split(str(dataset), "test", processor)
    transcripts = transcribe(model, processor.tokenizer, examples, batch_size=2)
    words = wer(transcripts.references, transcripts.hypotheses)
    assert result["wer"] == words.rate and result["word_errors"] == words.errors
    assert result["words"] == sum(len(text.split()) for _, text in UTTERANCES.values())
    assert result["cer"] == cer(transcripts.references, transcripts.hypotheses).rate
    assert result["utterances"] == len(UTTERANCES) and result["split"] == result["dataset_split"] == "test"
    assert result["variant"] == "binary" and result["model"] == str(packed_dir)

    report = size_report(model)
    size = result["size"]
    assert size["folder_bytes"] == folder_size(packed_dir)
    assert size["weight_bytes"] == report.total_bytes and size["params"] == report.total_params
    assert size["compression_vs_fp32"] == report.compression and size["bits_per_param"] == report.bits_per_param
    precision = size["precision"]
    assert precision["binary"] > 0 and precision["int8"] > 0 and precision["float"] > 0
    assert sum(precision.values()) == size["params"]

    speed = result["speed"]
    assert speed["audio_seconds"] == pytest.approx(sum(seconds for seconds, _ in UTTERANCES.values()))
    assert speed["rtf"] == pytest.approx(speed["decode_seconds"] / speed["audio_seconds"])
    assert speed["threads"] == 1 and speed["decode_seconds"] > 0
    assert result["hf_binarize_version"] == hf_binarize.__version__ and result["torch_version"] == torch.__version__

    # The command reproduces the run: it parses to the same options.
    argv = shlex.split(result["command"])
    assert argv[:2] == ["hf-binarize", "evaluate"]
    args = build_parser().parse_args(argv[1:])
    assert (args.model, args.dataset, args.split, args.threads, args.batch_size) == (
        str(packed_dir), str(dataset), "test", 1, 2)


def test_evaluate_split_name_files_the_split_under_another_name(packed_dir, dataset, tmp_path):
    # An independent set's only split is "test", like the corpus': filed as "independent" so the cards keep them
    # apart, the record and its card still say which split was read.
    records = {name: tmp_path / f"{name}.json" for name in ("test", "independent")}
    for name, record in records.items():
        assert main(["evaluate", "--model", str(packed_dir), "--dataset", str(dataset), "--threads", "1",
                     "--samples", "0", "--json", str(record), *(["--split-name", name] if name != "test" else [])]) == 0
    plain, named = (json.loads(records[name].read_text()) for name in ("test", "independent"))
    assert (named["split"], named["dataset_split"]) == ("independent", "test")
    assert named["wer"] == plain["wer"] and named["utterances"] == plain["utterances"] == len(UTTERANCES)
    args = build_parser().parse_args(shlex.split(named["command"])[1:])
    assert (args.split, args.split_name) == ("test", "independent")
    text = str(cards.model_card([named], "binary", "binary"))
    assert f"split `test` (named `independent` here): {len(UTTERANCES)} utterances" in text


def test_evaluate_streaming_scores_what_the_whole_split_scores(packed_dir, dataset, tmp_path):
    records = {}
    for mode in ("whole", "streaming"):
        records[mode] = tmp_path / f"{mode}.json"
        assert main(["evaluate", "--model", str(packed_dir), "--dataset", str(dataset), "--threads", "1",
                     "--batch-size", "2", "--samples", "0", "--json", str(records[mode]),
                     *(["--streaming"] if mode == "streaming" else [])]) == 0
    whole, streamed = (json.loads(records[mode].read_text()) for mode in ("whole", "streaming"))
    for key in ("utterances", "words", "word_errors", "wer", "cer"):
        assert streamed[key] == whole[key], key
    assert streamed["speed"]["audio_seconds"] == whole["speed"]["audio_seconds"]
    assert build_parser().parse_args(shlex.split(streamed["command"])[1:]).streaming


def test_evaluate_leaves_out_utterances_over_30_s_and_says_so(float_dir, tmp_path, capsys):
    generator = np.random.default_rng(1)
    audio = {name: (0.3 * generator.standard_normal(round(seconds * RATE))).astype(np.float32)
             for name, seconds in (("short.wav", 0.5), ("long.wav", 30.5))}
    data = write_audiofolder(tmp_path / "speech", audio, {"short.wav": "a cat", "long.wav": "a very long talk"})
    record = tmp_path / "result.json"
    assert main(["evaluate", "--model", str(float_dir), "--dataset", str(data), "--samples", "0",
                 "--json", str(record)]) == 0
    result = json.loads(record.read_text())
    assert (result["utterances"], result["skipped"], result["max_duration"]) == (1, {"too_long": 1}, 30.0)
    assert result["words"] == 2
    assert "skipped 1 utterance (too_long=1: longer than 30.0 s)" in capsys.readouterr().out
    card = str(cards.model_card(cards.load_results([str(record)]), result["variant"], baseline=result["variant"]))
    assert "1 utterance: 1 longer than 30.0 s (the evaluation's --max-duration)" in card


def test_evaluate_max_duration_option(float_dir, dataset, tmp_path, capsys):
    record = tmp_path / "result.json"
    common = ["evaluate", "--model", str(float_dir), "--dataset", str(dataset), "--samples", "0", "--variant", "float",
              "--json", str(record)]
    # UTTERANCES last 0.6, 0.8, 1.0 and 0.5 s.
    assert main([*common, "--max-duration", "0.7"]) == 0
    result = json.loads(record.read_text())
    assert (result["utterances"], result["skipped"], result["max_duration"]) == (2, {"too_long": 2}, 0.7)
    assert result["words"] == 5  # "the cat sat", "red fox"
    assert "skipped 2 utterances (too_long=2: longer than 0.7 s)" in capsys.readouterr().out
    assert build_parser().parse_args(shlex.split(result["command"])[1:]).max_duration == 0.7
    card = str(cards.model_card(cards.load_results([str(record)]), "float"))
    assert "* test: 2 utterances: 2 longer than 0.7 s" in card

    assert main([*common, "--max-duration", "none"]) == 0
    result = json.loads(record.read_text())
    assert (result["utterances"], result["skipped"], result["max_duration"]) == (4, {}, None)
    assert "skipped" not in capsys.readouterr().out
    assert "left out" not in str(cards.model_card(cards.load_results([str(record)]), "float"))


def test_evaluate_with_the_data_alias_scores_a_float_model_as_transcribe_does(float_dir, dataset, tmp_path):
    record = tmp_path / "float.json"
    assert main(["evaluate", "--model", str(float_dir), "--data", str(dataset), "--batch-size", "3",
                 "--limit", "3", "--samples", "0", "--json", str(record)]) == 0
    result = json.loads(record.read_text())
    processor = AutoProcessor.from_pretrained(float_dir)
    model = AutoModelForRNNT.from_pretrained(float_dir)
    examples = prepare_split(str(dataset), "test", processor, limit=3)
    transcripts = transcribe(model, processor.tokenizer, examples, batch_size=3)
    assert result["wer"] == transcripts.wer.rate and result["utterances"] == 3
    assert result["size"]["precision"] == {"binary": 0, "int8": 0, "float": size_report(model).total_params}
    assert result["variant"] == float_dir.name and "--limit 3" in result["command"]


def test_evaluate_model_returns_the_transcripts_and_restores_the_thread_count(float_dir, dataset):
    threads = torch.get_num_threads()
    result = evaluate_module.evaluate_model(float_dir, dataset, batch_size=4, threads=threads + 1, variant="float")
    assert torch.get_num_threads() == threads and result.threads == threads + 1
    processor = AutoProcessor.from_pretrained(float_dir)
    examples = prepare_split(str(dataset), "test", processor)
    direct = transcribe(AutoModelForRNNT.from_pretrained(float_dir), processor.tokenizer, examples, batch_size=4)
    assert result.transcripts == direct and result.to_dict()["variant"] == "float"


def model_only(kind: str, folder: Path) -> Path:
    """A saved random model of ``kind`` without a processor."""
    build_model(kind).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(("case", "expected"), [
    ("missing dataset", "no such file"),
    ("missing column", "columns are"),
    ("missing split", "no split 'test'"),
    ("unreadable audio", "unreadable_audio"),
    ("model without config", "has no config.json"),
    ("model without processor", "has no processor"),
    ("missing model", "no such folder"),
    ("not a speech model", "not a speech model"),
])
def test_evaluate_bad_input_is_one_line(case, expected, float_dir, dataset, tmp_path, capsys):
    model, data, extra = str(float_dir), str(dataset), []
    if case == "missing dataset":
        data = str(tmp_path / "nowhere")
    elif case == "missing column":
        extra = ["--text-column", "sentence"]
    elif case == "missing split":
        data = str(write_audiofolder(tmp_path / "other", {"x.wav": np.ones(1600, np.float32) / 2}, {"x.wav": "x"},
                                     split="train"))
    elif case == "unreadable audio":
        data = str(write_audiofolder(tmp_path / "bad", {"x.wav": b"not a wav file", "y.wav": b"RIFF"},
                                     {"x.wav": "hello", "y.wav": "world"}))
    elif case == "model without config":
        model = str(tmp_path)
    elif case == "missing model":
        model = str(tmp_path / "nowhere")
    elif case == "model without processor":
        model = str(model_only("rnnt", tmp_path / "rnnt"))
    elif case == "not a speech model":
        model = str(model_only("llama", tmp_path / "llama"))
    assert main(["evaluate", "--model", model, "--dataset", data, *extra]) == 1
    line = error_line(capsys, "evaluate")
    assert expected in line
    if case == "missing column":
        assert "'audio'" in line and "'text'" in line


def test_quantize_refuses_a_quantized_model(packed_dir, tmp_path, capsys):
    assert main(["quantize", "--model", str(packed_dir), "--output-dir", str(tmp_path / "again")]) == 1
    assert "has a quantization config already" in error_line(capsys, "quantize")
    assert not (tmp_path / "again").exists()


def test_quantize_rejects_a_bad_group_size(float_dir, tmp_path, capsys):
    assert main(["quantize", "--model", str(float_dir), "--output-dir", str(tmp_path / "out"),
                 "--group-size", "12"]) == 1
    assert "group_size" in error_line(capsys, "quantize") and not list(tmp_path.iterdir())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_push_without_the_hub_leaves_the_folder_unchanged(packed_dir, monkeypatch, capsys):
    # huggingface_hub read HF_ENDPOINT when it was imported: the in-process run needs its constant set too.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    before = snapshot(packed_dir)
    assert main(["push", "--folder", str(packed_dir), "--repo-id", "someone/tiny-binary"]) == 1
    line = error_line(capsys, "push")
    assert "cannot reach the Hugging Face Hub" in line and line.endswith(f"the folder {packed_dir} is unchanged")
    assert snapshot(packed_dir) == before


def test_push_without_a_token(packed_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    assert main(["push", "--folder", str(packed_dir), "--repo-id", "someone/tiny-binary"]) == 1
    assert "HF_TOKEN" in error_line(capsys, "push")
