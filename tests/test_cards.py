"""Model cards, summary table, Pareto front and plots from evaluation JSON files (hf_binarize.cards)."""

from __future__ import annotations

import argparse
import copy
import json

import pytest
from huggingface_hub import ModelCard
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_binarize.cards import (
    add_arguments,
    load_results,
    model_card,
    pareto_front,
    plot_size_vs_wer,
    summary_table,
    write_cards,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def result(variant: str, split: str, wer: float, folder_bytes: int, decode_seconds: float, *,
           audio_seconds: float = 100.0, threads: int = 2, words: int = 2000) -> dict:
    """One evaluation JSON as ``hf-binarize evaluate --json`` writes it."""
    params = 5_600_000
    binary = 0 if variant == "float" else params - 600_000
    int8 = 0 if variant == "float" else 500_000
    weight_bytes = folder_bytes - 20_000
    return {
        "variant": variant, "model": f"runs/{variant}", "dataset": "corpus", "split": split, "utterances": 200,
        "wer": wer, "cer": wer / 2.5, "word_errors": round(wer * words), "words": words,
        "size": {"params": params, "weight_bytes": weight_bytes, "folder_bytes": folder_bytes,
                 "bits_per_param": 8 * weight_bytes / params, "compression_vs_fp32": 4 * params / weight_bytes,
                 "precision": {"binary": binary, "int8": int8, "float": params - binary - int8}},
        "speed": {"audio_seconds": audio_seconds, "decode_seconds": decode_seconds,
                  "rtf": decode_seconds / audio_seconds, "threads": threads},
        "command": f"hf-binarize evaluate --model runs/{variant} --data corpus --split {split} --json "
                   f"results/{variant}-{split}.json",
        "hf_binarize_version": "0.1.0", "torch_version": "2.13.0", "transformers_version": "5.24.0",
    }


@pytest.fixture
def results() -> list[dict]:
    sizes = {"float": 22_450_000, "binary-int8-joint": 1_070_000, "binary-all": 760_000, "hqq-1bit-g64": 1_400_000}
    wers = {"float": (0.467, 0.560), "binary-int8-joint": (0.495, 0.582), "binary-all": (0.61, 0.70),
            "hqq-1bit-g64": (0.52, 0.58)}
    decode = {"float": (20.0, 22.0), "binary-int8-joint": (8.0, 9.5), "binary-all": (7.0, 8.0),
              "hqq-1bit-g64": (30.0, 31.0)}
    return [result(v, split, wers[v][i], sizes[v], decode[v][i], audio_seconds=(100.0, 120.0)[i])
            for v in sizes for i, split in enumerate(("test", "test_unseen"))]


def write_json(tmp_path, results: list[dict]) -> list[str]:
    paths = []
    for r in results:
        path = tmp_path / f"{r['variant']}-{r['split']}.json"
        path.write_text(json.dumps(r))
        paths.append(str(path))
    return paths


# --- Pareto front -------------------------------------------------------------------------------------------------


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


# --- summary table ------------------------------------------------------------------------------------------------


def parse_table(markdown: str) -> dict[str, dict[str, str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = dict(zip(head, (c.strip() for c in line.strip("|").split("|")), strict=True))
        rows[cells["variant"].strip("`")] = cells
    return rows


def number(cell: str) -> float:
    return float(cell.rstrip("%x").replace(",", ""))


def close(cell: str, expected: float) -> bool:
    """The cell shows ``expected`` rounded to the cell's own number of decimals."""
    text = cell.rstrip("%x")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return abs(number(cell) - expected) <= 0.5 * 10**-decimals + 1e-12


def test_summary_table_numbers(results):
    rows = parse_table(summary_table(results, "float"))
    assert list(rows) == ["float", "binary-int8-joint", "binary-all", "hqq-1bit-g64"]
    by = {(r["variant"], r["split"]): r for r in results}
    for variant, cells in rows.items():
        size = by[variant, "test"]["size"]
        assert close(cells["size (MB)"], size["folder_bytes"] / 1e6)
        assert close(cells["bits/param"], size["bits_per_param"])
        assert cells["vs fp32"].endswith("x") and close(cells["vs fp32"], size["compression_vs_fp32"])
        for split in ("test", "test_unseen"):
            wer, base = by[variant, split]["wer"], by["float", split]["wer"]
            assert close(cells[f"WER {split}"], 100 * wer)
            change = cells[f"WER {split} vs float"]
            if variant == "float":
                assert change == "baseline"
            else:
                assert change[0] == ("+" if wer > base else "-")
                assert close(change, 100 * (wer - base) / base)
        rtf = {v: sum(by[v, s]["speed"]["decode_seconds"] for s in ("test", "test_unseen"))
               / sum(by[v, s]["speed"]["audio_seconds"] for s in ("test", "test_unseen")) for v in ("float", variant)}
        assert close(cells["RTF"], rtf[variant])
        assert close(cells["speed-up vs float"], rtf["float"] / rtf[variant])
    assert number(rows["binary-all"]["speed-up vs float"]) > 1 > number(rows["hqq-1bit-g64"]["speed-up vs float"])


def test_summary_table_never_rounds_a_difference_away():
    results = [result("float", "test", 0.5, 2_000_000, 10.0),
               result("binary-all", "test", 0.5002, 100_000, 10.0)]
    cell = parse_table(summary_table(results, "float"))["binary-all"]["WER test vs float"]
    assert cell != "+0.0%" and cell.startswith("+")
    assert close(cell, 100 * 0.0002 / 0.5)
    # A speed comparison across thread counts is flagged, not silently mixed.
    results[1]["speed"]["threads"] = 8
    assert "different thread counts" in summary_table(results, "float")


def test_summary_table_missing_split_and_baseline(results):
    partial = [r for r in results if not (r["variant"] == "hqq-1bit-g64" and r["split"] == "test_unseen")]
    cells = parse_table(summary_table(partial, "float"))["hqq-1bit-g64"]
    assert cells["WER test_unseen"] == "—" and cells["WER test_unseen vs float"] == "—"
    # Its speed-up is taken on the split both were timed on, not on different audio.
    hqq, base = (next(r for r in results if r["variant"] == v and r["split"] == "test")
                 for v in ("hqq-1bit-g64", "float"))
    assert close(cells["speed-up vs float"], base["speed"]["rtf"] / hqq["speed"]["rtf"])
    with pytest.raises(ValueError, match="baseline 'fp16' is not among the variants"):
        summary_table(results, "fp16")


# --- model card ---------------------------------------------------------------------------------------------------


def test_model_card_metadata_parses_back(results):
    card = model_card(results, "binary-int8-joint", "float", repo_id="you/parakeet-binary-int8-joint",
                      base_model="you/parakeet-float", dataset_name="synthetic-harvard", plot_file="plot.png")
    data = ModelCard(str(card)).data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["license"] == "apache-2.0"
    assert {"hf-binarize", "binarization", "1-bit", "rnnt", "speech"} <= set(data["tags"])
    assert data["base_model"] == "you/parakeet-float"
    [index] = data["model-index"]
    assert index["name"] == "you/parakeet-binary-int8-joint"
    metrics = {}
    for entry in index["results"]:
        assert entry["task"]["type"] == "automatic-speech-recognition"
        assert entry["dataset"]["name"] == "synthetic-harvard"
        for metric in entry["metrics"]:
            metrics[entry["dataset"]["split"], metric["type"]] = metric["value"]
    mine = {r["split"]: r for r in results if r["variant"] == "binary-int8-joint"}
    assert set(metrics) == {(s, m) for s in mine for m in ("wer", "cer")}
    for split, r in mine.items():
        assert metrics[split, "wer"] == pytest.approx(100 * r["wer"], abs=1e-6)
        assert metrics[split, "cer"] == pytest.approx(100 * r["cer"], abs=1e-6)


def test_model_card_body(results):
    text = str(model_card(results, "binary-int8-joint", "float", plot_file=["a.png", "b.png"]))
    mine = [r for r in results if r["variant"] == "binary-int8-joint"]
    for r in mine:
        assert r["command"] in text
        assert f"{r['word_errors']:,} / {r['words']:,}" in text
    base = next(r for r in results if r["variant"] == "float" and r["split"] == "test")
    change = 100 * (mine[0]["wer"] - base["wer"]) / base["wer"]
    assert f"+{change:.1f}%" in text
    assert "1.07 MB" in text
    size = mine[0]["size"]
    assert f"1-bit {100 * size['precision']['binary'] / size['params']:.1f}%" in text
    assert "import hf_binarize" in text and "AutoModelForRNNT.from_pretrained(" in text
    assert 'pipeline("automatic-speech-recognition", model="binary-int8-joint")' in text
    assert "## Limitations" in text and "espeak-ng" in text and "synthetic" in text
    assert "![Size vs WER](a.png)" in text and "![Size vs WER](b.png)" in text
    assert summary_table(results, "float") in text
    # The baseline's own card does not claim to be quantized from itself.
    data = ModelCard(str(model_card(results, "float", "float", base_model="you/float"))).data.to_dict()
    assert "base_model" not in data
    with pytest.raises(ValueError, match="variant 'int4'"):
        model_card(results, "int4", "float")


# --- files --------------------------------------------------------------------------------------------------------


def test_write_cards(tmp_path, results):
    out = tmp_path / "cards"
    written = write_cards(results, out, "float", repo_prefix="you/parakeet", how_made="python recipes/qat.py --x 1")
    variants = ["float", "binary-int8-joint", "binary-all", "hqq-1bit-g64"]
    expected = {out / "README.md"} | {out / f"size_vs_wer_{s}.png" for s in ("test", "test_unseen")}
    expected |= {out / v / "README.md" for v in variants}
    expected |= {out / v / f"size_vs_wer_{s}.png" for v in variants for s in ("test", "test_unseen")}
    assert set(written) == expected
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(expected)  # no temporary files left
    for png in (p for p in expected if p.suffix == ".png"):
        data = png.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    summary = (out / "README.md").read_text()
    assert summary_table(results, "float") in summary
    assert all(r["command"] in summary for r in results)
    card = ModelCard.load(out / "binary-all" / "README.md")
    assert card.data.to_dict()["model-index"][0]["name"] == "you/parakeet-binary-all"
    assert card.data.to_dict()["base_model"] == "you/parakeet-float"
    assert "![Size vs WER](size_vs_wer_test.png)" in card.text
    for text in (summary, card.text):
        assert "## How these models were made\n\npython recipes/qat.py --x 1" in text
    with pytest.raises(ValueError, match="OWNER/NAME"):
        write_cards(results, out, "float", repo_prefix="parakeet")


def test_no_card_variants_get_a_row_but_no_card(tmp_path, results):
    out = tmp_path / "cards"
    write_cards(results, out, "float", no_card=["hqq-1bit-g64"])
    assert not (out / "hqq-1bit-g64").exists() and (out / "binary-all" / "README.md").is_file()
    assert "`hqq-1bit-g64`" in (out / "README.md").read_text()
    with pytest.raises(ValueError, match="no variant"):
        write_cards(results, out, "float", no_card=["nope"])


def test_plot_single_split(tmp_path, results):
    path = plot_size_vs_wer(results, "float", "test", tmp_path / "plot.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match="no result on split 'dev'"):
        plot_size_vs_wer(results, "float", "dev", tmp_path / "dev.png")
    assert not (tmp_path / "dev.png").exists()


def test_unsafe_names_are_refused(tmp_path):
    results = [result("float", "test", 0.5, 2_000_000, 10.0), result("../x", "test", 0.6, 100_000, 5.0)]
    with pytest.raises(ValueError, match=r"variant name '\.\./x'"):
        write_cards(results, tmp_path, "float")


# --- loading and errors -------------------------------------------------------------------------------------------


def test_load_results_files_and_globs(tmp_path, results):
    paths = write_json(tmp_path, results)
    assert load_results(paths) == results
    assert sorted(map(json.dumps, load_results([str(tmp_path / "*.json")]))) == sorted(map(json.dumps, results))
    assert len(load_results([str(tmp_path / "float-*.json"), paths[0]])) == 2  # a file named twice counts once


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r.pop("wer"), "missing key 'wer'"),
    (lambda r: r["speed"].pop("rtf"), "missing key 'speed.rtf'"),
    (lambda r: r["size"]["precision"].pop("int8"), "missing key 'size.precision.int8'"),
    (lambda r: r.update(words="2000"), "'words' must be a number"),
    (lambda r: r.update(utterances=True), "'utterances' must be a number"),
    (lambda r: r["size"].update(folder_bytes=-1), "'size.folder_bytes' must be a finite number >= 0"),
    (lambda r: r.update(speed=[]), "speed must be a JSON object"),
])
def test_load_results_names_file_and_key(tmp_path, results, edit, message):
    bad = copy.deepcopy(results[0])
    edit(bad)
    path = write_json(tmp_path, [bad])[0]
    with pytest.raises(ValueError, match=message) as error:
        load_results([path])
    assert path in str(error.value)


def test_load_results_bad_input(tmp_path, results):
    broken = tmp_path / "broken.json"
    broken.write_text('{"variant": "float",')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        load_results([str(broken)])
    with pytest.raises(FileNotFoundError, match=r"nothing\.json"):
        load_results([str(tmp_path / "nothing.json")])
    with pytest.raises(FileNotFoundError, match="no evaluation JSON matches"):
        load_results([str(tmp_path / "none-*.json")])
    paths = write_json(tmp_path, results[:1])
    twin = tmp_path / "twin.json"
    twin.write_text(json.dumps(results[0]))
    with pytest.raises(ValueError, match="two results for variant 'float' on split 'test'"):
        load_results([paths[0], str(twin)])
    other = copy.deepcopy(results[1])
    other["size"]["folder_bytes"] += 1
    with pytest.raises(ValueError, match="variant 'float' has different sizes"):
        load_results([paths[0], write_json(tmp_path, [other])[0]])


def test_command_line(tmp_path, results, capsys):
    write_json(tmp_path, results)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--results", str(tmp_path / "*.json"), "--out-dir", str(tmp_path / "out"),
                              "--repo-prefix", "you/parakeet"])
    assert args.baseline == "float"
    args.run(args)
    printed = capsys.readouterr().out.split()
    assert str(tmp_path / "out" / "README.md") in printed
    assert (tmp_path / "out" / "binary-all" / "README.md").is_file()
    assert len(printed) == 1 + 2 + 4 * 3
