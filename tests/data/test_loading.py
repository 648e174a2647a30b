"""Loading local speech datasets in every layout, with undecoded audio (hf_binarize.data.loading)."""

from __future__ import annotations

import pytest
from hub_datasets import LIBRISPEECH_SPLITS, librispeech_like, transcript
from speech_helpers import BAD, GOOD, make_audiofolder

from hf_binarize.data.audio import load_audio
from hf_binarize.data.loading import detect_source, load_speech_dataset


@pytest.fixture
def folder(tmp_path):
    """An audiofolder: train = the good clips then one per problem; test = two good clips."""
    make_audiofolder(tmp_path / "corpus" / "train", [*GOOD, *BAD.values()])
    make_audiofolder(tmp_path / "corpus" / "test", GOOD[:2])
    return tmp_path / "corpus"


def test_each_local_layout_loads_with_undecoded_audio(folder, tmp_path):
    import datasets

    cache = str(tmp_path / "cache")
    assert detect_source(folder) == "audiofolder"
    train = load_speech_dataset(folder, "train", cache_dir=cache)
    test = load_speech_dataset(folder, "test", cache_dir=cache)
    assert train.num_rows == len(GOOD) + len(BAD) and test.num_rows == 2
    assert isinstance(train.features["audio"], datasets.Audio) and not train.features["audio"].decode
    assert train[0]["text"] == "Hello, world!" and train[0]["audio"]["path"].endswith("tone-16k.wav")

    test.save_to_disk(str(tmp_path / "single"))
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "dict"))
    (tmp_path / "pq").mkdir()
    test.to_parquet(str(tmp_path / "pq" / "test-00000-of-00001.parquet"))
    train.to_parquet(str(tmp_path / "pq" / "train-00000-of-00001.parquet"))
    sources = {"disk": [tmp_path / "single", tmp_path / "dict"],
               "parquet": [tmp_path / "pq", tmp_path / "pq" / "test-00000-of-00001.parquet"]}
    for kind, paths in sources.items():
        for path in paths:
            assert detect_source(path) == kind
            loaded = load_speech_dataset(path, "test", cache_dir=cache)
            assert loaded.num_rows == 2 and loaded["text"] == test["text"]
            assert not loaded.features["audio"].decode
            # save_to_disk embeds the bytes, to_parquet keeps the paths: soundfile reads both.
            assert load_audio(loaded[1]["audio"])[0].shape == (int(0.6 * 8000),)


def test_source_detection_and_errors(folder, tmp_path):
    assert detect_source("openslr/librispeech_asr") == "hub"
    with pytest.raises(FileNotFoundError):
        detect_source(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        detect_source("./data/set")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError):
        detect_source(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="missing column"):
        load_speech_dataset(folder, "train", text_column="sentence", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="no split 'dev'"):
        load_speech_dataset(folder, "dev", cache_dir=str(tmp_path / "cache"))


# --------------------------------------------------------------------------------------------------------------------
# A local copy of a Hub repository with configs, shaped like LibriSpeech (configs clean/other, dotted split names),
# read as load_dataset reads the Hub repository: each config apart, any split name, slices.
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "split"), [(c, s) for c, splits in LIBRISPEECH_SPLITS.items() for s in splits])
def test_local_hub_repository_keeps_configs_and_splits_apart(tmp_path, config, split):
    repo = librispeech_like(tmp_path / "librispeech")
    assert detect_source(repo) == "repo"
    dataset = load_speech_dataset(repo, split, name=config)
    assert len(dataset) == LIBRISPEECH_SPLITS[config][split]
    assert set(dataset["text"]) == {transcript(config, split, i) for i in range(len(dataset))}


def test_local_hub_repository_slices_and_errors(tmp_path):
    repo = librispeech_like(tmp_path / "librispeech")
    assert load_speech_dataset(repo, "train.100[:50%]", name="clean")["text"] == [transcript("clean", "train.100", i) for i in range(3)]
    assert load_speech_dataset(repo, "test[1:3]", name="other")["text"] == [transcript("other", "test", i) for i in (1, 2)]
    with pytest.raises(ValueError, match=r"[Cc]onfig"):
        load_speech_dataset(repo, "test")
    with pytest.raises(ValueError):
        load_speech_dataset(repo, "train.360", name="clean")


def test_slices_of_local_folders_follow_datasets_rules(tmp_path):
    import datasets

    folder = tmp_path / "disk"
    rows = {"audio": [{"bytes": b"", "path": f"{i}.wav"} for i in range(10)], "text": [str(i) for i in range(10)]}
    datasets.DatasetDict({"test.clean": datasets.Dataset.from_dict(rows)}).save_to_disk(folder)
    assert load_speech_dataset(folder, "test.clean[:30%]")["text"] == ["0", "1", "2"]
    assert load_speech_dataset(folder, "test.clean[-2:]")["text"] == ["8", "9"]
    with pytest.raises(ValueError, match="write slices as datasets does"):
        load_speech_dataset(folder, "test.clean[:abc]")


def test_two_local_repository_copies_of_the_same_layout_are_not_served_each_others_data(tmp_path):
    # datasets keys a local repository's cache by its configs' file patterns: the second copy was read from the
    # first one's cache before each copy got a cache of its own.
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = librispeech_like(tmp_path / "a" / "librispeech")
    second = librispeech_like(tmp_path / "b" / "librispeech")
    table = pq.read_table(second / "other" / "test-00000-of-00001.parquet").to_pylist()
    for row in table:
        row["text"] = row["text"].upper()
    pq.write_table(pa.Table.from_pylist(table), second / "other" / "test-00000-of-00001.parquet")
    expected = [transcript("other", "test", i) for i in range(LIBRISPEECH_SPLITS["other"]["test"])]
    assert load_speech_dataset(first, "test", name="other")["text"] == expected
    assert load_speech_dataset(second, "test", name="other")["text"] == [text.upper() for text in expected]
