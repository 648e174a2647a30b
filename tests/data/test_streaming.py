"""Streamed splits (``streaming=True``, datasets' IterableDataset) read and prepare the same examples as the splits
loaded whole, for every local layout, and refuse what a stream cannot do with one line."""

from __future__ import annotations

import pytest

pytest.importorskip("datasets", reason="the data extra is not installed (pip install -e '.[data]')")
from hub_datasets import LIBRISPEECH_SPLITS, librispeech_like
from speech_helpers import BAD, GOOD, build_feature_extractor, build_tokenizer, make_audiofolder

from hf_binarize.data.loading import load_speech_dataset
from hf_binarize.data.preparation import SpeechPreparer
from hf_binarize.data.splits import first_examples, load_split, normalised_texts, prepare_split


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return librispeech_like(tmp_path_factory.mktemp("hub") / "librispeech")


def _texts(rows) -> list[str]:
    return [row["text"] for row in rows]


@pytest.mark.parametrize(("config", "split"), [(c, s) for c, splits in LIBRISPEECH_SPLITS.items() for s in splits])
def test_a_streamed_repository_split_holds_the_examples_of_the_whole_one(repo, config, split):
    import datasets

    stream = load_speech_dataset(repo, split, name=config, streaming=True)
    assert isinstance(stream, datasets.IterableDataset)
    whole = load_speech_dataset(repo, split, name=config)
    rows = list(stream)
    assert _texts(rows) == whole["text"] and len(rows) == LIBRISPEECH_SPLITS[config][split]
    assert [row["audio"]["bytes"] for row in rows] == [row["audio"]["bytes"] for row in whole]


def test_counted_slices_are_streamed_and_percentages_refused(repo):
    assert _texts(load_speech_dataset(repo, "test[1:3]", name="other", streaming=True)) == \
        load_speech_dataset(repo, "test[1:3]", name="other")["text"]
    assert _texts(load_speech_dataset(repo, "train.100[:2]", name="clean", streaming=True)) == \
        load_speech_dataset(repo, "train.100[:2]", name="clean")["text"]
    for split in ("test[:50%]", "test[-2:]"):
        with pytest.raises(ValueError, match="only slices of counted examples"):
            load_speech_dataset(repo, split, name="other", streaming=True)


def test_local_folders_and_parquet_stream_in_place(tmp_path):
    make_audiofolder(tmp_path / "folder" / "test", GOOD)
    whole = load_speech_dataset(tmp_path / "folder", "test", cache_dir=str(tmp_path / "cache"))
    whole.save_to_disk(str(tmp_path / "disk"))
    (tmp_path / "pq").mkdir()
    whole.to_parquet(str(tmp_path / "pq" / "test-00000-of-00001.parquet"))
    for source in (tmp_path / "folder", tmp_path / "disk", tmp_path / "pq"):
        stream = load_speech_dataset(source, "test[1:3]", streaming=True, cache_dir=str(tmp_path / "cache"))
        assert _texts(stream) == whole["text"][1:3]
        assert not stream.features["audio"].decode


def test_a_limit_reads_the_first_examples_into_memory(repo):
    import datasets

    raw = load_split(repo, "test", name="other", limit=3, streaming=True)
    assert isinstance(raw, datasets.Dataset) and raw["text"] == load_split(repo, "test", name="other", limit=3)["text"]
    assert first_examples(load_split(repo, "test", name="other", streaming=True), 2)["text"] == raw["text"][:2]
    assert normalised_texts(load_split(repo, "test", name="other", streaming=True)) == \
        normalised_texts(load_split(repo, "test", name="other"))


def test_a_stream_is_prepared_as_the_whole_split_and_its_skips_counted_as_read(tmp_path):
    """The audiofolder's train split holds good clips and one clip per problem: the stream yields the rows the whole
    split's preparation keeps, with the same features and labels, and counts the same skips once read."""
    import numpy as np

    make_audiofolder(tmp_path / "folder" / "train", [*GOOD, *BAD.values()])
    tokenizer, extractor = build_tokenizer(), build_feature_extractor()
    whole_preparer = SpeechPreparer(extractor, tokenizer)
    whole = whole_preparer.prepare(load_speech_dataset(tmp_path / "folder", "train",
                                                       cache_dir=str(tmp_path / "cache")))
    preparer = SpeechPreparer(extractor, tokenizer)
    stream = preparer.prepare(load_speech_dataset(tmp_path / "folder", "train", streaming=True,
                                                  cache_dir=str(tmp_path / "cache")))
    assert not preparer.skipped  # nothing read yet
    rows = list(stream)
    assert len(rows) == len(whole) >= len(GOOD)
    for row, expected in zip(rows, whole, strict=True):
        assert row["labels"] == expected["labels"] and row["text"] == expected["text"]
        np.testing.assert_array_equal(np.asarray(row["input_features"]), np.asarray(expected["input_features"]))
    assert preparer.skipped == whole_preparer.skipped
    assert sum(preparer.skipped.values()) == len(GOOD) + len(BAD) - len(whole) > 0


def test_a_streamed_training_split_is_checked_for_unknown_labels_before_training(tmp_path):
    from common_voice import make_common_voice_like

    from hf_binarize.training import build_character_tokenizer, build_processor

    repo = make_common_voice_like(tmp_path / "cv", {"fr": {"train": ["Un café, s'il vous plaît.", "Où est la gare?"]}})
    processor = build_processor(build_character_tokenizer(), num_mel_bins=32)
    with pytest.raises(ValueError, match=r"train \(its first 2 examples\): .*more than the 1% allowed"):
        prepare_split(repo, "train", processor, name="fr", text_column="sentence", max_unknown_share=0.01,
                      streaming=True)
