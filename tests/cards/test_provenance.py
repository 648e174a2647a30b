"""Licence and language of the cards, carried from the base model's and the dataset's own cards, or given; the
synthetic-corpus paragraph only for that corpus (hf_binarize.cards.provenance, through write_cards)."""

from __future__ import annotations

import json

import pytest
from evaluation_records import sample_results
from huggingface_hub import ModelCard

from hf_binarize.cards import write_cards
from hf_binarize.commands.main import main
from hf_binarize.data.synthetic import SUMMARY_FILE


def on(results: list[dict], **fields) -> list[dict]:
    """The sample results with ``fields`` changed in every record."""
    return [{**r, **fields} for r in results]


def from_base(results: list[dict], folder) -> list[dict]:
    """The sample results with the baseline scored from ``folder``."""
    return [{**r, "model": str(folder)} if r["variant"] == "float" else r for r in results]


def model_folder(path, card: str | None = None, config: dict | None = None):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config or {"model_type": "parakeet_rnnt"}))
    if card is not None:
        (path / "README.md").write_text(f"---\n{card}\n---\n\n# The base model\n")
    return path


def metadata(out, variant="binary-all") -> dict:
    return ModelCard.load(out / variant / "README.md").data.to_dict()


def test_licence_and_language_come_from_the_base_model_card(tmp_path):
    base = model_folder(tmp_path / "base", "license: cc-by-4.0\nlanguage:\n- en\n- de")
    write_cards(from_base(sample_results(), base), tmp_path / "out")
    for variant in ("float", "binary-all"):
        data = metadata(tmp_path / "out", variant)
        assert data["license"] == "cc-by-4.0" and data["language"] == ["en", "de"]


def test_an_other_licence_keeps_its_name_and_link(tmp_path):
    base = model_folder(tmp_path / "base", "license: other\nlicense_name: nvidia-open-model-license\n"
                                           "license_link: https://example.org/licence")
    write_cards(from_base(sample_results(), base), tmp_path / "out")
    data = metadata(tmp_path / "out")
    assert (data["license"], data["license_name"], data["license_link"]) == (
        "other", "nvidia-open-model-license", "https://example.org/licence")


def test_the_licence_of_a_config_when_the_card_has_none(tmp_path):
    base = model_folder(tmp_path / "base", "library_name: transformers", {"model_type": "x", "license": "mit"})
    write_cards(from_base(sample_results(), base), tmp_path / "out")
    assert metadata(tmp_path / "out")["license"] == "mit"


def test_overrides_win(tmp_path):
    base = model_folder(tmp_path / "base", "license: cc-by-4.0\nlanguage: en")
    write_cards(from_base(sample_results(), base), tmp_path / "out", license="apache-2.0", language=["fr"])
    data = metadata(tmp_path / "out")
    assert data["license"] == "apache-2.0" and data["language"] == ["fr"]


def test_an_unknown_licence_is_refused_and_nothing_is_written(tmp_path):
    base = model_folder(tmp_path / "base", "language: en")
    with pytest.raises(ValueError, match=r"licence is unknown: .*base.*pass --license"):
        write_cards(from_base(sample_results(), base), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_language_of_the_dataset_card(tmp_path):
    base = model_folder(tmp_path / "base", "license: cc-by-4.0")
    data = tmp_path / "common_voice"
    data.mkdir()
    (data / "README.md").write_text("---\nlanguage:\n- en\n- fr\nconfigs:\n- config_name: en\n---\n")
    results = on(from_base(sample_results(), base), dataset=str(data), dataset_config="en", synthetic_corpus=False)
    write_cards(results, tmp_path / "out")
    assert metadata(tmp_path / "out")["language"] == ["en"]
    # Another config than a language the card lists says nothing.
    write_cards(on(results, dataset_config="other"), tmp_path / "out2")
    assert "language" not in metadata(tmp_path / "out2")


def test_the_synthetic_paragraph_only_for_the_synthetic_corpus(tmp_path):
    results = sample_results()  # recorded on the synthetic corpus
    write_cards(results, tmp_path / "synthetic", license="apache-2.0")
    text = (tmp_path / "synthetic" / "binary-all" / "README.md").read_text()
    assert "The evaluation data is synthetic" in text and "espeak-ng" in text
    assert metadata(tmp_path / "synthetic")["language"] == ["en"]

    librispeech = on(results, dataset="openslr/librispeech_asr", dataset_config="clean", synthetic_corpus=False)
    write_cards(librispeech, tmp_path / "real", license="cc-by-4.0")
    for card in (tmp_path / "real" / "binary-all" / "README.md", tmp_path / "real" / "README.md"):
        text = card.read_text()
        assert "synthetic" not in text and "espeak-ng" not in text
        assert "The WERs hold for the data described above" in text
    card = (tmp_path / "real" / "binary-all" / "README.md").read_text()
    assert ("* test: dataset `openslr/librispeech_asr` (config `clean`), split `test`: 200 utterances, 0.03 hours of "
            "audio; transcripts normalised with `basic` (lower case, punctuation dropped)") in card
    assert "language" not in metadata(tmp_path / "real")


def test_records_from_before_the_flag_look_at_the_dataset_folder(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    old = [{key: value for key, value in r.items() if key != "synthetic_corpus"} for r in sample_results()]
    write_cards(on(old, dataset=str(corpus)), tmp_path / "plain", license="apache-2.0")
    assert "synthetic" not in (tmp_path / "plain" / "README.md").read_text()
    (corpus / SUMMARY_FILE).write_text("{}")
    write_cards(on(old, dataset=str(corpus)), tmp_path / "made", license="apache-2.0")
    assert "The evaluation data is synthetic" in (tmp_path / "made" / "README.md").read_text()


def test_command_line_options_and_refusal(tmp_path, capsys):
    paths = []
    for r in sample_results():
        path = tmp_path / f"{r['variant']}-{r['split']}.json"
        path.write_text(json.dumps(r))
        paths.append(str(path))
    command = ["card", "--results", *paths, "--out-dir", str(tmp_path / "out")]
    assert main(command) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "licence is unknown" in err[0] and "--license" in err[0]
    assert main([*command, "--license", "mit", "--language", "en", "de"]) == 0
    data = metadata(tmp_path / "out")
    assert data["license"] == "mit" and data["language"] == ["en", "de"]
