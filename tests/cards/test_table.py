"""The summary table (hf_binarize.cards.table)."""

from __future__ import annotations

import pytest
from evaluation_records import result, sample_results

from hf_binarize.cards import summary_table


@pytest.fixture
def results() -> list[dict]:
    return sample_results()


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
