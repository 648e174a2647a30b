"""``hf-binarize sensitivity`` on a tiny RNN-T and a few WAV files, against an independent path: each group binarized
by transformers' loader (``from_pretrained`` with a config naming that group), scored by a loss loop written here
and sized by ``size_report``; the suggested overrides quantized, saved and read back from the safetensors header;
the suggestion's optimality checked by trying every combination; one-line errors for bad input."""

from __future__ import annotations

import itertools
import json
import shlex

import pytest
import torch
from test_cli import dataset, error_line, float_dir, packed_dir  # noqa: F401  (module-scoped fixtures)
from test_families import _float_folder
from transformers import AutoModelForRNNT, AutoProcessor

from hf_binarize import BinaryQuantizationConfig, size_report
from hf_binarize.commands.main import build_parser, main
from hf_binarize.data.collation import SpeechCollator
from hf_binarize.evaluation.report import prepare_examples
from hf_binarize.evaluation.transcription import transcribe

LIMIT = 2
COMMON = ["--split", "test", "--limit", str(LIMIT), "--threads", "1", "--batch-size", "2"]


def loaded(float_dir, config: BinaryQuantizationConfig | None = None):  # noqa: F811
    return AutoModelForRNNT.from_pretrained(float_dir, quantization_config=config).eval()


def ratio_of(float_dir, config: BinaryQuantizationConfig) -> float:  # noqa: F811
    return size_report(loaded(float_dir, config)).compression


@pytest.fixture(scope="module")
def ratios(float_dir):  # noqa: F811
    """Compression of every group binarized (the embedding, which cannot be, at int8), and of every group at int8."""
    return {"binary": ratio_of(float_dir, BinaryQuantizationConfig(module_overrides={"decoder.embedding": "int8"})),
            "int8": ratio_of(float_dir, BinaryQuantizationConfig(module_types=[], module_overrides={".*": "int8"}))}


@pytest.fixture(scope="module")
def analysis(float_dir, dataset, ratios, tmp_path_factory):  # noqa: F811
    """The command's JSON record, with a target between all-int8 and all-binary, so that the choice is mixed."""
    target = round((ratios["binary"] + ratios["int8"]) / 2, 2)
    record = tmp_path_factory.mktemp("sensitivity") / "table.json"
    assert main(["sensitivity", "--model", str(float_dir), "--dataset", str(dataset), *COMMON,
                 "--target-ratio", str(target), "--json", str(record)]) == 0
    return json.loads(record.read_text())


def by_hand(model, processor, examples) -> tuple[float, int]:
    """Mean over utterances of the model's loss on each alone, and greedy word errors."""
    collator = SpeechCollator.for_model(model)
    with torch.no_grad():
        losses = [float(model(**collator([examples[i]])).loss) for i in range(len(examples))]
    return sum(losses) / len(losses), transcribe(model, processor.tokenizer, examples, batch_size=2).wer.errors


def test_ranking_agrees_with_binarizing_each_group_by_hand(analysis, float_dir, dataset):  # noqa: F811
    processor = AutoProcessor.from_pretrained(float_dir)
    examples, _ = prepare_examples(processor, dataset, split="test", limit=LIMIT)
    base_loss, base_errors = by_hand(loaded(float_dir), processor, examples)
    assert analysis["baseline"]["loss"] == pytest.approx(base_loss, rel=1e-6)
    assert analysis["baseline"]["word_errors"] == base_errors and analysis["utterances"] == LIMIT
    float_bytes = {m.name: m.bytes for m in size_report(loaded(float_dir)).modules}

    rows = [row for row in analysis["results"] if row["method"] == "binary"]
    assert {row["group"] for row in rows} == {
        "encoder.subsampling", "encoder.layers.0.feed_forward1", "encoder.layers.0.self_attn",
        "encoder.layers.0.conv", "encoder.layers.0.feed_forward2", "encoder_projector", "decoder.lstm",
        "decoder.decoder_projector", "joint.head"}
    damage_per_byte = {}
    for row in rows:
        model = loaded(float_dir, BinaryQuantizationConfig(module_types=[], module_overrides={row["group"]: "binary"}))
        loss, errors = by_hand(model, processor, examples)
        stored = {m.name: m.bytes for m in size_report(model).modules if m.precision == "binary"}
        assert set(stored) == set(row["modules"])
        saved = sum(float_bytes[name] - stored[name] for name in stored)
        assert (row["loss"], row["word_errors"], row["bytes_saved"]) == (pytest.approx(loss, rel=1e-6), errors, saved)
        damage_per_byte[row["group"]] = (loss - base_loss) / saved
    assert [row["group"] for row in rows] == sorted(damage_per_byte, key=damage_per_byte.get)


def test_suggested_overrides_reach_the_ratio_on_disk(analysis, float_dir, ratios, tmp_path):  # noqa: F811
    suggestion = analysis["suggestion"]
    target = suggestion["target_ratio"]
    assert ratios["int8"] < target < ratios["binary"]
    assert analysis["best_ratio"] == pytest.approx(ratios["binary"], rel=1e-12)
    model = loaded(float_dir, BinaryQuantizationConfig(**suggestion["config"]))
    model.save_pretrained(tmp_path)
    report = size_report(model, tmp_path)
    assert report.compression >= target and report.total_bytes == suggestion["bytes"]
    assert suggestion["measured"]["bytes"] == report.total_bytes
    # What the weights take on disk: the safetensors file less its header.
    weights = tmp_path / "model.safetensors"
    with open(weights, "rb") as file:
        header_bytes = 8 + int.from_bytes(file.read(8), "little")
    assert report.fp32_bytes / (weights.stat().st_size - header_bytes) >= target
    methods = {m.precision for m in report.modules}
    assert {"binary", "int8"} <= methods or {"binary", "float"} <= methods  # a mixed choice

    # Among all combinations within the budget, none has a smaller sum of the groups' loss changes.
    options = {}
    for row in analysis["results"]:
        options.setdefault(row["group"], [("float", row["float_bytes"], 0.0)]).append(
            (row["method"], row["bytes"], row["loss_change"]))
    budget = int(analysis["fp32_bytes"] / target) - analysis["other_bytes"]
    best = min(sum(o[2] for o in combination) for combination in itertools.product(*options.values())
               if sum(o[1] for o in combination) <= budget)
    assert suggestion["estimated_damage"] == pytest.approx(best, abs=1e-12)
    assert suggestion["estimated_damage"] == pytest.approx(
        sum(o[2] for group, found in options.items() for o in found if o[0] == suggestion["choices"][group]))


def test_the_record_names_its_command(analysis, float_dir, dataset):  # noqa: F811
    argv = shlex.split(analysis["command"])
    args = build_parser().parse_args(argv[1:])
    assert (args.command, args.model, args.dataset, args.split, args.limit) == (
        "sensitivity", str(float_dir), str(dataset), "test", LIMIT)
    assert args.target_ratio == analysis["suggestion"]["target_ratio"]


@pytest.mark.parametrize("kind", ["tdt", "ctc"])
def test_every_family(kind, dataset, tmp_path, capsys):  # noqa: F811
    folder = _float_folder(kind, tmp_path / "float")
    record = tmp_path / "table.json"
    assert main(["sensitivity", "--model", str(folder), "--dataset", str(dataset), *COMMON, "--limit", "1",
                 "--json", str(record)]) == 0
    result = json.loads(record.read_text())
    groups = {row["group"] for row in result["results"]}
    assert {"encoder.subsampling", "encoder.layers.0.conv"} <= groups
    assert ("joint.head" in groups) == (kind == "tdt") and ("ctc_head" in groups) == (kind == "ctc")
    assert result["suggestion"] is None and "best possible compression" in capsys.readouterr().out


def test_an_unreachable_ratio_names_the_best_one(float_dir, dataset, ratios, capsys):  # noqa: F811
    assert main(["sensitivity", "--model", str(float_dir), "--dataset", str(dataset), *COMMON,
                 "--target-ratio", "1000"]) == 1
    line = error_line(capsys, "sensitivity")
    assert "1000x vs fp32 cannot be reached" in line and f"best possible is {ratios['binary']:.2f}x" in line


@pytest.mark.parametrize(("case", "expected"), [("packed model", "is quantized already"),
                                                ("empty split", "has no utterances"),
                                                ("stream without a limit", "--streaming needs --limit")])
def test_bad_input_is_one_line(case, expected, float_dir, packed_dir, dataset, capsys):  # noqa: F811
    model, split = (packed_dir, "test") if case == "packed model" else (float_dir, "test[:0]")
    extra = ["--streaming"] if case.startswith("stream") else []
    assert main(["sensitivity", "--model", str(model), "--dataset", str(dataset), "--split", split, *extra]) == 1
    assert expected in error_line(capsys, "sensitivity")


def test_a_ratio_of_one_or_less_is_a_usage_error(float_dir, dataset, capsys):  # noqa: F811
    with pytest.raises(SystemExit) as exit_:
        main(["sensitivity", "--model", str(float_dir), "--dataset", str(dataset), "--target-ratio", "1"])
    assert exit_.value.code == 2 and "above 1" in capsys.readouterr().err
