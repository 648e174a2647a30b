"""Loading local speech datasets in every layout, with undecoded audio (hf_binarize.data.loading)."""

from __future__ import annotations

import pytest
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
