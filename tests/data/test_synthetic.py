"""The synthetic corpus: determinism, split disjointness, held-out voices, every source and engine used, one-line
errors that leave nothing half-written, the command line."""

from __future__ import annotations

import dataclasses
import filecmp
import itertools
import math

import numpy as np
import pytest
from speech_helpers import build_feature_extractor, build_tokenizer, needs_espeak

from hf_binarize.commands.main import main
from hf_binarize.data import synthetic
from hf_binarize.data.synthetic import (
    SPLITS,
    CorpusConfig,
    build_corpus,
    colored_noise,
    load_harvard_sentences,
    plan_corpus,
    speaker_pools,
)
from hf_binarize.data.text_sources import SOURCES, load_sentences
from hf_binarize.data.voices import FLITE_SPEAKERS, FLITE_VOICES, UnknownVoiceError, Voice, check_voices

# The two small text sources keep these builds fast; test_every_source_and_engine_is_used reads all of them.
TINY = dict(seed=7, split_fractions=(0.4, 0.2, 0.2, 0.2), text_sources=("harvard", "fortunes"))
HAS_FLITE = __import__("shutil").which("flite") is not None


def test_the_text_source_is_the_720_harvard_sentences():
    sentences = load_harvard_sentences()
    assert len(sentences) == 720 == len(set(sentences))
    assert sentences[0] == "The birch canoe slid on the smooth planks."
    assert all(sentence[0].isupper() and sentence[-1] in ".?!" for sentence in sentences)


def test_noise_has_unit_power_and_the_right_spectrum():
    generator = np.random.default_rng(0)
    for kind in ("white", "pink"):
        noise = colored_noise(2**16, kind, generator)
        assert np.mean(noise**2) == pytest.approx(1.0)
    power = np.abs(np.fft.rfft(colored_noise(2**16, "pink", generator))) ** 2
    # Mean power per octave band [2^k, 2^(k+1)) bins: a 1/f spectrum halves it (-3 dB) every octave.
    octaves = [power[2**k : 2 ** (k + 1)].mean() for k in range(4, 14)]
    slope = np.polyfit(np.arange(len(octaves)), 10 * np.log10(octaves), 1)[0]
    assert slope == pytest.approx(-10 * math.log10(2), abs=0.3)
    white = np.abs(np.fft.rfft(colored_noise(2**16, "white", generator))) ** 2
    white_octaves = [white[2**k : 2 ** (k + 1)].mean() for k in range(4, 14)]
    assert abs(np.polyfit(np.arange(10), 10 * np.log10(white_octaves), 1)[0]) < 0.3


def test_the_plan_is_seeded_and_keeps_texts_and_voices_apart():
    config = CorpusConfig(utterances=1, **TINY)
    sentences = load_sentences(config.text_sources)
    plan = list(itertools.islice(plan_corpus(config, sentences), 400))
    assert plan == list(itertools.islice(plan_corpus(config, sentences), 400))
    assert plan != list(itertools.islice(plan_corpus(dataclasses.replace(config, seed=8), sentences), 400))
    texts = {split: {u.text for u in plan if u.split == split} for split in SPLITS}
    voices = {split: {u.voice for u in plan if u.split == split} for split in SPLITS}
    for first, second in itertools.combinations(SPLITS, 2):
        assert not texts[first] & texts[second]
    assert not voices["test_unseen"] & set().union(voices["train"], voices["validation"], voices["test"])
    # Proportions hold in every prefix, to within one utterance per split.
    counts = [sum(u.split == split for u in plan[:50]) for split in SPLITS]
    assert counts == [20, 10, 10, 10]
    pools = speaker_pools(config)
    assert len(pools["train"]) + len(pools["test_unseen"]) == \
        len(synthetic.ACCENTS) * len(synthetic.VARIANTS) + len(FLITE_VOICES)
    # The held-out flite speaker takes all its voices along (kal16 and kal are one speaker).
    held_flite = {voice.name for voice in pools["test_unseen"] if voice.engine == "flite"}
    assert held_flite in [set(names) for names in FLITE_SPEAKERS.values()]
    assert {u.voice.engine for u in plan if u.split == "train"} == {"espeak-ng", "flite"}


def test_config_is_validated():
    with pytest.raises(ValueError):
        CorpusConfig()
    with pytest.raises(ValueError):
        CorpusConfig(hours=1.0, utterances=3)
    with pytest.raises(ValueError):
        CorpusConfig(utterances=3, split_fractions=(0.5, 0.5, 0.5, 0.0))
    with pytest.raises(ValueError):
        CorpusConfig(utterances=3, unseen_accents=0, unseen_variants=0, unseen_flite=0)
    with pytest.raises(ValueError, match="engines"):
        CorpusConfig(utterances=3, engines=("festival",))
    with pytest.raises(ValueError, match="text_sources"):
        CorpusConfig(utterances=3, text_sources=("python-docstrings",))


@needs_espeak
def test_same_seed_gives_identical_corpora_whatever_the_worker_count(tmp_path, capsys):
    import datasets

    assert main(["make-dataset", "--out", str(tmp_path / "a"), "--seed", "7", "--utterances", "10", "--workers", "2",
                 "--split-fractions", "0.4,0.2,0.2,0.2", "--text-sources", "harvard,fortunes", "--no-progress"]) == 0
    assert "wrote 10 utterances" in capsys.readouterr().out
    second = build_corpus(tmp_path / "b", CorpusConfig(utterances=10, **TINY), workers=1)
    assert second.utterances == {"train": 4, "validation": 2, "test": 2, "test_unseen": 2}
    comparison = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    assert not comparison.left_only and not comparison.right_only and not comparison.diff_files
    for split in SPLITS:
        files = filecmp.cmpfiles(tmp_path / "a" / split, tmp_path / "b" / split,
                                 [p.name for p in (tmp_path / "a" / split).iterdir()], shallow=False)
        assert not files[1] and not files[2]

    corpus = datasets.load_from_disk(str(tmp_path / "a"))
    texts = {split: set(corpus[split]["text"]) for split in SPLITS}
    for one, other in itertools.combinations(SPLITS, 2):
        assert not texts[one] & texts[other]
    assert not set(corpus["test_unseen"]["voice"]) & set(corpus["train"]["voice"])
    row = corpus["train"][0]
    assert row["audio"]["path"] == f"{row['id']}.wav" and row["audio"]["bytes"][:4] == b"RIFF"
    assert row["gender"] in ("female", "male")
    for row in corpus["train"]:
        expected = f"{row['accent']}+{row['variant']}" if row["engine"] == "espeak-ng" else f"flite:{row['variant']}"
        assert row["voice"] == expected


@needs_espeak
def test_hours_budget_stops_at_the_first_utterance_past_it(tmp_path):
    report = build_corpus(tmp_path / "c", CorpusConfig(hours=10 / 3600, **TINY), workers=2, block_size=4)
    import datasets

    durations = [d for split in datasets.load_from_disk(str(tmp_path / "c")).values() for d in split["duration"]]
    total = sum(report.audio_seconds.values())
    assert total >= 10 > total - max(durations)
    assert sum(durations) == pytest.approx(total, abs=1e-3)
    with pytest.raises(FileExistsError):
        build_corpus(tmp_path / "c", CorpusConfig(utterances=1, **TINY))


@needs_espeak
def test_corpus_feeds_the_preparation_pipeline(tmp_path):
    from hf_binarize.data import SpeechPreparer, load_speech_dataset

    build_corpus(tmp_path / "d", CorpusConfig(utterances=5, **TINY), workers=1)
    raw = load_speech_dataset(tmp_path / "d", "train")
    preparer = SpeechPreparer(build_feature_extractor(), build_tokenizer(), keep_columns=("voice",))
    prepared = preparer.prepare(raw, keep_in_memory=True)
    assert not preparer.skipped and prepared.num_rows == raw.num_rows == 2
    assert prepared["voice"] == raw["voice"]


def test_a_split_without_utterances_is_left_out(tmp_path):
    import datasets

    config = CorpusConfig(seed=7, utterances=4, split_fractions=(0.75, 0.25, 0.0, 0.0), unseen_accents=0,
                          unseen_variants=0, unseen_flite=0, text_sources=("harvard",))
    report = build_corpus(tmp_path / "e", config, workers=1)
    assert report.utterances["test"] == report.utterances["test_unseen"] == 0
    loaded = datasets.load_from_disk(str(tmp_path / "e"))
    assert sorted(loaded) == ["train", "validation"]
    assert sum(loaded[split].num_rows for split in loaded) == 4


@needs_espeak
@pytest.mark.skipif(not HAS_FLITE or not all(source.path is None or source.path.exists()
                                             for source in SOURCES.values()),
                    reason="flite or a text package is missing (scripts/install_system_deps.sh)")
def test_every_source_and_engine_is_used_and_held_out_voices_stay_out_of_train(tmp_path):
    import json

    import datasets

    build_corpus(tmp_path / "all", CorpusConfig(seed=3, utterances=40), workers=2)
    summary = json.loads((tmp_path / "all" / "corpus.json").read_text())
    for split in SPLITS:
        assert set(summary["splits"][split]["sentences_by_source"]) == set(SOURCES)
    corpus = datasets.load_from_disk(str(tmp_path / "all"))
    assert {engine for split in corpus.values() for engine in split["engine"]} == {"espeak-ng", "flite"}
    train_voices = set(summary["splits"]["train"]["speakers"])
    unseen = set(summary["splits"]["test_unseen"]["speakers"])
    assert any(voice.startswith("flite:") for voice in unseen) and sum("+" in voice for voice in unseen) >= 10
    assert not unseen & train_voices
    assert not set(corpus["test_unseen"]["voice"]) & set(corpus["train"]["voice"])
    texts = {split: {normalize(text) for text in corpus[split]["text"]} for split in corpus}
    for one, other in itertools.combinations(corpus, 2):
        assert not texts[one] & texts[other]


def normalize(text):
    from hf_binarize.data.text import normalize_transcript

    return normalize_transcript(text)


@needs_espeak
def test_an_unknown_voice_is_refused_in_one_line():
    with pytest.raises(UnknownVoiceError) as error:
        check_voices([Voice("espeak-ng", "en-us+f3"), Voice("espeak-ng", "en-us+nobody")])
    assert str(error.value) == "espeak-ng has no voice 'en-us+nobody'"
    if HAS_FLITE:
        # flite itself would silently speak with its default voice.
        with pytest.raises(UnknownVoiceError, match="flite has no voice 'nobody'"):
            check_voices([Voice("flite", "nobody")])


def test_a_missing_text_package_fails_in_one_line_and_writes_nothing(monkeypatch, tmp_path, capsys):
    from hf_binarize.data import text_sources

    missing = dataclasses.replace(SOURCES["fortunes"], path=tmp_path / "no-fortunes" / "fortunes")
    monkeypatch.setitem(text_sources.SOURCES, "fortunes", missing)
    assert main(["make-dataset", "--out", str(tmp_path / "out"), "--utterances", "2", "--text-sources",
                 "harvard,fortunes", "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.strip().endswith("apt-get install fortunes-min")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging copy


def test_a_read_only_output_fails_in_one_line(capsys):
    # /proc refuses new folders even to root, for whom permission bits do not count.
    assert main(["make-dataset", "--out", "/proc/hf-binarize-corpus/out", "--utterances", "2", "--text-sources",
                 "harvard", "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "/proc/hf-binarize-corpus" in error
