"""Model cards and the files write_cards writes (hf_binarize.cards.card)."""

from __future__ import annotations

import pytest
from evaluation_records import PNG_SIGNATURE, result, sample_results
from huggingface_hub import ModelCard

from hf_binarize.cards import model_card, summary_table, write_cards


@pytest.fixture
def results() -> list[dict]:
    return sample_results()


def test_model_card_metadata_parses_back(results):
    card = model_card(results, "binary-int8-joint", "float", repo_id="you/parakeet-binary-int8-joint",
                      base_model="you/parakeet-float", dataset_name="synthetic-harvard", plot_file="plot.png",
                      license="apache-2.0", language=["en"])
    data = ModelCard(str(card)).data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["license"] == "apache-2.0" and data["language"] == ["en"]
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


def test_write_cards(tmp_path, results):
    out = tmp_path / "cards"
    written = write_cards(results, out, "float", repo_prefix="you/parakeet", how_made="python recipes/qat.py --x 1",
                          license="apache-2.0")
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
        write_cards(results, out, "float", repo_prefix="parakeet", license="apache-2.0")


def test_no_card_variants_get_a_row_but_no_card(tmp_path, results):
    out = tmp_path / "cards"
    write_cards(results, out, "float", no_card=["hqq-1bit-g64"], license="apache-2.0")
    assert not (out / "hqq-1bit-g64").exists() and (out / "binary-all" / "README.md").is_file()
    assert "`hqq-1bit-g64`" in (out / "README.md").read_text()
    with pytest.raises(ValueError, match="no variant"):
        write_cards(results, out, "float", no_card=["nope"], license="apache-2.0")


def test_unsafe_names_are_refused(tmp_path):
    results = [result("float", "test", 0.5, 2_000_000, 10.0), result("../x", "test", 0.6, 100_000, 5.0)]
    with pytest.raises(ValueError, match=r"variant name '\.\./x'"):
        write_cards(results, tmp_path, "float", license="apache-2.0")


def _on_other_data(results: list[dict]) -> list[dict]:
    """The sample results with one variant scored on another dataset (another count of utterances and words)."""
    changed = []
    for r in results:
        if r["variant"] == "binary-all" and r["split"] == "test":
            r = {**r, "dataset": "librispeech", "utterances": 2620, "words": 52576}
        changed.append(r)
    return changed


def test_cards_refuse_variants_scored_on_different_data(tmp_path, results):
    with pytest.raises(ValueError, match="different data") as error:
        write_cards(_on_other_data(results), tmp_path)
    message = str(error.value)
    assert "split 'test'" in message and "librispeech, 2620 utterances" in message and "--allow-mixed-data" in message
    assert not any(tmp_path.iterdir()), "nothing is written when refused"


def test_mixed_data_when_asked_is_stated_on_every_card(tmp_path, results):
    write_cards(_on_other_data(results), tmp_path, allow_mixed_data=True, license="apache-2.0")
    for card in tmp_path.glob("*/README.md"):
        text = card.read_text()
        assert "Not all variants were scored on the same data" in text and "All variants on the same data" not in text


def test_same_data_is_stated(tmp_path, results):
    write_cards(results, tmp_path, license="apache-2.0")
    assert "All variants on the same data" in (tmp_path / "float" / "README.md").read_text()


def test_cards_refuse_variants_scored_with_different_normalisers(tmp_path, results):
    # Same utterances and reference word counts, but another scoring normaliser: the WERs do not compare.
    whisper = [{**r, "normalizer": "whisper"} if r["variant"] == "binary-all" and r["split"] == "test" else r
               for r in results]
    with pytest.raises(ValueError, match="different data") as error:
        write_cards(whisper, tmp_path, license="apache-2.0")
    assert "binary-all: corpus, 200 utterances, 2000 words, whisper normaliser" in str(error.value)
    # Records from before the normaliser was recorded were scored with the basic one.
    old = [{key: value for key, value in r.items() if key != "normalizer"} for r in results]
    write_cards(old, tmp_path, license="apache-2.0")


FAMILY_WORDS = {"rnnt": ("transducer (RNN-T)", "AutoModelForRNNT"),
                "tdt": ("token-and-duration transducer (TDT)", "AutoModelForTDT"),
                "ctc": ("model with a CTC head", "AutoModelForCTC")}
# The seed paper's title, cited on every card with 1-bit weights whatever the model.
PAPER = "*USM RNN-T model weights binarization*"


@pytest.mark.parametrize("family", list(FAMILY_WORDS))
def test_the_card_names_the_models_family(family):
    results = [result(variant, "test", wer, size, 5.0, family=family)
               for variant, wer, size in (("float", 0.4, 2_000_000), ("binary", 0.5, 100_000))]
    card = model_card(results, "binary", "float", license="apache-2.0")
    words, auto = FAMILY_WORDS[family]
    assert f"`binary`: a speech recognition {words} for transformers" in card.text
    assert f"from transformers import {auto}, AutoProcessor, pipeline" in card.text
    assert f'model = {auto}.from_pretrained("binary")' in card.text
    assert family in card.data.to_dict()["tags"]
    for other in set(FAMILY_WORDS) - {family}:
        assert other not in card.data.to_dict()["tags"] and FAMILY_WORDS[other][1] not in card.text
    if family != "rnnt":
        assert "RNN-T" not in card.text.replace(PAPER, "") and "RNNT" not in card.text


def test_a_record_without_a_family_gets_generic_words():
    # Records written before they named the family.
    results = [{key: value for key, value in r.items() if key != "family"} for r in sample_results()]
    card = model_card(results, "binary-all", "float", license="apache-2.0")
    assert "`binary-all`: a speech recognition model for transformers" in card.text
    assert "from transformers import AutoProcessor, pipeline" in card.text and ".from_pretrained(" in card.text
    assert "AutoModelFor" not in card.text and "RNN-T" not in card.text.replace(PAPER, "")
    assert not {"rnnt", "tdt", "ctc"} & set(card.data.to_dict()["tags"])


def _model_folder(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"weights")
    return path


def test_cards_go_into_model_folders_too(tmp_path, results):
    folder = _model_folder(tmp_path / "runs" / "binary-all")
    out = tmp_path / "cards"
    written = write_cards(results, out, "float", model_folders={"binary-all": folder}, license="apache-2.0")
    expected = {folder / "README.md", folder / "size_vs_wer_test.png", folder / "size_vs_wer_test_unseen.png"}
    assert expected <= set(written)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["config.json", "model.safetensors", *(p.name for p in expected)])
    for name in ("README.md", "size_vs_wer_test.png"):
        assert (folder / name).read_bytes() == (out / "binary-all" / name).read_bytes()
    assert ModelCard.load(folder / "README.md").data.to_dict()["model-index"][0]["name"] == "binary-all"
    # A card written here before is replaced without asking: it is ours.
    write_cards(results, out, "float", model_folders={"binary-all": folder}, how_made="again", license="apache-2.0")
    assert "again" in (folder / "README.md").read_text()


def test_a_readme_card_did_not_write_is_kept_unless_asked(tmp_path, results):
    folder = _model_folder(tmp_path / "model")
    (folder / "README.md").write_text("# My own card\n")
    out = tmp_path / "cards"
    with pytest.raises(ValueError, match=r"README.md exists and was not written by hf-binarize card.*--overwrite-readme"):
        write_cards(results, out, "float", model_folders={"binary-all": folder}, license="apache-2.0")
    assert (folder / "README.md").read_text() == "# My own card\n" and not out.exists()
    write_cards(results, out, "float", model_folders={"binary-all": folder}, overwrite_readme=True,
                license="apache-2.0")
    assert (folder / "README.md").read_text() == (out / "binary-all" / "README.md").read_text()


def test_model_folders_are_checked(tmp_path, results):
    folder = _model_folder(tmp_path / "model")
    with pytest.raises(ValueError, match="not a model folder"):
        write_cards(results, tmp_path / "cards", "float", model_folders={"binary-all": tmp_path},
                    license="apache-2.0")
    with pytest.raises(ValueError, match="'int4' is not a variant with a card"):
        write_cards(results, tmp_path / "cards", "float", model_folders={"int4": folder}, license="apache-2.0")
    with pytest.raises(ValueError, match="'hqq-1bit-g64' is not a variant with a card"):
        write_cards(results, tmp_path / "cards", "float", no_card=["hqq-1bit-g64"],
                    model_folders={"hqq-1bit-g64": folder}, license="apache-2.0")
    with pytest.raises(ValueError, match="the same folder"):
        write_cards(results, tmp_path / "cards", "float", model_folders={"binary-all": folder, "float": folder},
                    license="apache-2.0")
    assert not (tmp_path / "cards").exists() and sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
