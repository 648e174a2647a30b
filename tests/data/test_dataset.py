"""Loading local speech datasets, preparing them (bad examples skipped and counted), collating for the Parakeet
losses, and length-grouped batching."""

from __future__ import annotations

import functools
import logging
import pickle

import numpy as np
import pytest
import torch
from speech_helpers import (
    MEL_BINS,
    build_feature_extractor,
    build_tokenizer,
    needs_espeak,
    sine,
    speak,
    write_wav,
)

from hf_binarize.data.audio import load_audio
from hf_binarize.data.dataset import (
    BadExampleError,
    LengthGroupedBatchSampler,
    PreparedStream,
    SpeechCollator,
    SpeechPreparer,
    detect_source,
    load_speech_dataset,
)

# (file name, transcript, how to make the audio); the last seven are each unfit for one reason.
GOOD = [
    ("tone-16k.wav", "Hello, world!", lambda p: write_wav(p, sine(300, 1.0, 16000), 16000)),
    ("tone-8k.wav", "A quiet   tone.", lambda p: write_wav(p, sine(500, 0.6, 8000), 8000)),
    ("tone-44k-stereo.flac", "It's stereo", lambda p: write_wav(p, np.stack([sine(700, 0.8, 44100)] * 2, 1), 44100)),
]
BAD = {
    "unreadable_audio": ("broken.wav", "broken file", lambda p: p.write_bytes(b"RIFF not really a wav file")),
    "empty_audio": ("empty.wav", "nothing here", lambda p: write_wav(p, np.zeros(0, np.float32), 16000)),
    "silent_audio": ("silent.wav", "silence", lambda p: write_wav(p, np.zeros(16000, np.float32), 16000)),
    "non_finite_audio": ("nan.wav", "not a number",
                         lambda p: write_wav(p, np.where(np.arange(16000) == 5, np.nan, sine(300, 1.0, 16000)),
                                             16000, subtype="FLOAT")),
    "too_long": ("long.wav", "far too long", lambda p: write_wav(p, sine(300, 3.0, 16000), 16000)),
    "too_short": ("short.wav", "too short", lambda p: write_wav(p, sine(300, 0.05, 16000), 16000)),
    "no_tokens": ("no-text.wav", " ?! ", lambda p: write_wav(p, sine(300, 1.0, 16000), 16000)),
}


def make_audiofolder(root, rows):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "metadata.csv", "w") as metadata:
        metadata.write("file_name,text\n")
        for name, text, make in rows:
            make(root / name)
            metadata.write(f'{name},"{text}"\n')
    return root


@pytest.fixture
def folder(tmp_path):
    """An audiofolder: train = the good clips then one per problem; test = two good clips."""
    make_audiofolder(tmp_path / "corpus" / "train", [*GOOD, *BAD.values()])
    make_audiofolder(tmp_path / "corpus" / "test", GOOD[:2])
    return tmp_path / "corpus"


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def feature_extractor():
    return build_feature_extractor()


def preparer_for(feature_extractor, tokenizer, **kwargs):
    return SpeechPreparer(feature_extractor, tokenizer, max_seconds=2.0, **kwargs)


# ---------------------------------------------------------------------------------------------------- loading


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
            streamed = load_speech_dataset(path, "test", streaming=True, cache_dir=cache)
            assert isinstance(streamed, datasets.IterableDataset)
            assert [row["text"] for row in streamed] == test["text"]


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


# ------------------------------------------------------------------------------------------------ preparation


def test_preparation_skips_and_counts_each_bad_example(folder, tmp_path, feature_extractor, tokenizer, caplog):
    raw = load_speech_dataset(folder, "train", cache_dir=str(tmp_path / "cache"))
    preparer = preparer_for(feature_extractor, tokenizer)
    with caplog.at_level(logging.INFO, logger="hf_binarize.data.dataset"):
        prepared = preparer.prepare(raw, keep_in_memory=True)
    assert preparer.skipped == dict.fromkeys(BAD, 1)
    assert prepared.num_rows == len(GOOD)
    summary = [record.getMessage() for record in caplog.records if "prepared" in record.getMessage()]
    assert summary == [f"prepared 3 of 10 examples; skipped 7 ({', '.join(f'{r}=1' for r in sorted(BAD))})"]

    assert prepared["text"] == ["hello world", "a quiet tone", "it's stereo"]
    assert prepared[0]["labels"] == tokenizer("hello world", add_special_tokens=False)["input_ids"]
    for row, seconds in zip(prepared, (1.0, 0.6, 0.8), strict=True):
        features = np.asarray(row["input_features"])
        # Resampled to 16 kHz: one frame per 160 samples.
        assert features.shape == (row["length"], MEL_BINS) and row["length"] == int(seconds * 16000) // 160
        assert np.isfinite(features).all()


def test_strict_mode_raises_naming_the_example_and_the_problem(folder, tmp_path, feature_extractor, tokenizer):
    raw = load_speech_dataset(folder, "train", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(BadExampleError, match=r"example 3: unreadable_audio \(unreadable audio") as caught:
        preparer_for(feature_extractor, tokenizer, strict=True).prepare(raw, keep_in_memory=True)
    assert caught.value.index == 3 and caught.value.reason == "unreadable_audio"
    assert pickle.loads(pickle.dumps(caught.value)).args == caught.value.args  # survives map(num_proc=...)
    only_silent = raw.select([5])
    with pytest.raises(BadExampleError, match=r"example 0: silent_audio \(peak -inf dBFS"):
        preparer_for(feature_extractor, tokenizer, strict=True).prepare(only_silent, keep_in_memory=True)


def test_streams_are_prepared_on_the_fly(folder, tmp_path, feature_extractor, tokenizer, caplog):
    raw = load_speech_dataset(folder, "train", streaming=True, cache_dir=str(tmp_path / "cache"))
    preparer = preparer_for(feature_extractor, tokenizer, keep_columns=("audio",))
    stream = preparer.prepare(raw)
    assert isinstance(stream, PreparedStream)
    with caplog.at_level(logging.INFO, logger="hf_binarize.data.dataset"):
        rows = list(stream)
    assert [row["text"] for row in rows] == ["hello world", "a quiet tone", "it's stereo"]
    assert rows[0]["audio"]["path"].endswith("tone-16k.wav")
    assert preparer.skipped == dict.fromkeys(BAD, 1)
    assert any("skipped 7" in record.getMessage() for record in caplog.records)
    list(stream)  # a second epoch counts again
    assert preparer.skipped == dict.fromkeys(BAD, 2)
    strict = preparer_for(feature_extractor, tokenizer, strict=True).prepare(raw)
    with pytest.raises(BadExampleError, match="example 3: unreadable_audio"):
        list(strict)


@needs_espeak
def test_espeak_speech_is_prepared(tmp_path, feature_extractor, tokenizer):
    import datasets

    texts = ["The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background."]
    raw = datasets.Dataset.from_dict({"audio": [{"bytes": speak(text, voice), "path": None}
                                                for text, voice in zip(texts, ("en-us", "en-gb+f3"), strict=True)],
                                      "text": texts})
    preparer = SpeechPreparer(feature_extractor, tokenizer)
    prepared = preparer.prepare(raw, keep_in_memory=True)
    assert not preparer.skipped and prepared.num_rows == 2
    assert prepared["text"][0] == "the birch canoe slid on the smooth planks"
    assert all(1.0 < length / 100 < 6.0 for length in prepared["length"])  # seconds of speech


# -------------------------------------------------------------------------------------------------- collation


@functools.cache
def tiny_model(kind: str, tokenizer):
    from transformers import (
        ParakeetCTCConfig,
        ParakeetForCTC,
        ParakeetForRNNT,
        ParakeetForTDT,
        ParakeetRNNTConfig,
        ParakeetTDTConfig,
    )

    torch.manual_seed(0)
    encoder = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                   subsampling_conv_channels=8, num_mel_bins=MEL_BINS, subsampling_factor=4)
    vocab, blank, pad = len(tokenizer), tokenizer.convert_tokens_to_ids("<blank>"), tokenizer.pad_token_id
    if kind == "rnnt":
        return ParakeetForRNNT(ParakeetRNNTConfig(encoder_config=encoder, vocab_size=vocab, blank_token_id=blank,
                                                  pad_token_id=pad, decoder_hidden_size=24)).eval()
    if kind == "tdt":
        return ParakeetForTDT(ParakeetTDTConfig(encoder_config=encoder, vocab_size=vocab, blank_token_id=blank,
                                                pad_token_id=pad, decoder_hidden_size=24)).eval()
    return ParakeetForCTC(ParakeetCTCConfig(encoder_config=encoder, vocab_size=vocab, pad_token_id=blank)).eval()


def prepared_examples(feature_extractor, tokenizer):
    clips = [("hello there", sine(300, 0.6, 16000)), ("hi", sine(600, 0.3, 22050) * 0.3),
             ("a longer sentence", sine(200, 0.45, 16000))]
    preparer = SpeechPreparer(feature_extractor, tokenizer)
    return [preparer.prepare_example({"audio": {"array": audio, "sampling_rate": 22050 if i == 1 else 16000},
                                      "text": text}, i) for i, (text, audio) in enumerate(clips)]


def test_padded_batch_equals_the_processors_batch_extraction(feature_extractor, tokenizer):
    from hf_binarize.data.audio import resample

    examples = prepared_examples(feature_extractor, tokenizer)
    batch = SpeechCollator(label_pad_token_id=tokenizer.pad_token_id)(examples)
    audio = [sine(300, 0.6, 16000), resample(sine(600, 0.3, 22050) * 0.3, 22050, 16000), sine(200, 0.45, 16000)]
    reference = feature_extractor(audio, sampling_rate=16000, return_attention_mask=True, return_tensors="pt")
    frames = batch["input_features"].shape[1]
    assert torch.equal(batch["attention_mask"], reference["attention_mask"][:, :frames])
    assert not reference["attention_mask"][:, frames:].any()
    torch.testing.assert_close(batch["input_features"], reference["input_features"][:, :frames], atol=1e-4, rtol=0)


def test_collator_ids_follow_each_models_loss(feature_extractor, tokenizer):
    examples = prepared_examples(feature_extractor, tokenizer)
    blank, pad = tokenizer.convert_tokens_to_ids("<blank>"), tokenizer.pad_token_id
    lengths = torch.tensor([len(example["labels"]) for example in examples])
    for kind, padding in (("rnnt", blank), ("tdt", pad), ("ctc", blank)):
        model = tiny_model(kind, tokenizer)
        batch = SpeechCollator.for_model(model)(examples)
        labels = batch["labels"]
        assert labels.shape == (3, int(lengths.max()))
        assert torch.equal((labels != padding).sum(-1), lengths)  # what the losses count as real labels
        assert torch.equal(labels[1, : lengths[1]], torch.tensor(examples[1]["labels"]))
        if kind == "ctc":
            assert "decoder_input_ids" not in batch
        else:
            assert torch.equal(batch["decoder_input_ids"][:, 0], torch.full((3,), blank))
            assert torch.equal(batch["decoder_input_ids"][:, 1:], labels)
    with pytest.raises(ValueError, match="no collation rule"):
        SpeechCollator.for_model(type("Config", (), {"model_type": "whisper"})())


@pytest.mark.parametrize("kind", ["tdt", "ctc"])
def test_batched_loss_equals_the_mean_of_single_example_losses(kind, feature_extractor, tokenizer):
    """Both losses default to a per-example mean, so correct padding leaves each example's loss unchanged."""
    examples = prepared_examples(feature_extractor, tokenizer)
    model = tiny_model(kind, tokenizer)
    collator = SpeechCollator.for_model(model)
    with torch.no_grad():
        batched = model(**collator(examples)).loss
        singles = torch.stack([model(**collator([example])).loss for example in examples])
    torch.testing.assert_close(batched, singles.mean(), atol=1e-4, rtol=1e-4)
    if kind == "tdt":  # padded with the blank id instead, the TDT loss reads padding as labels
        wrong = SpeechCollator(label_pad_token_id=tokenizer.convert_tokens_to_ids("<blank>"),
                               decoder_start_token_id=tokenizer.convert_tokens_to_ids("<blank>"))
        with torch.no_grad():
            assert not torch.isclose(model(**wrong(examples)).loss, singles.mean(), rtol=1e-3)


def test_rnnt_joint_sees_one_decoder_step_per_label_plus_the_start(feature_extractor, tokenizer):
    examples = prepared_examples(feature_extractor, tokenizer)
    model = tiny_model("rnnt", tokenizer)
    batch = SpeechCollator.for_model(model)(examples)
    with torch.no_grad():
        logits = model(input_features=batch["input_features"], attention_mask=batch["attention_mask"],
                       decoder_input_ids=batch["decoder_input_ids"]).logits
    assert logits.shape[0] == 3 and logits.shape[2:] == (batch["labels"].shape[1] + 1, len(tokenizer))


def test_pad_to_multiple_of(feature_extractor, tokenizer):
    batch = SpeechCollator(label_pad_token_id=0, pad_to_multiple_of=16)(prepared_examples(feature_extractor,
                                                                                          tokenizer))
    assert batch["input_features"].shape[1] % 16 == 0 and batch["attention_mask"].shape[1] % 16 == 0


# ---------------------------------------------------------------------------------------------------- batching


def test_length_grouped_batches_cover_every_index_once_with_little_padding():
    lengths = np.random.default_rng(0).integers(50, 1500, size=1000)
    sampler = LengthGroupedBatchSampler(lengths, batch_size=16, seed=3)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    assert len(sampler) == len(batches) == 63

    def padding(batches):
        return sum(max(lengths[b]) * len(b) - sum(lengths[b]) for b in batches) / lengths.sum()

    random_batches = np.array_split(np.random.default_rng(1).permutation(1000), 63)
    assert padding(batches) < 0.1 < padding(random_batches)
    assert list(sampler) == batches  # same epoch, same batches
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_frame_budget_batches():
    lengths = [*np.random.default_rng(0).integers(50, 1500, size=500).tolist(), 5000]
    sampler = LengthGroupedBatchSampler(lengths, max_frames=6000, seed=0)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(501))
    for batch in batches:
        assert max(lengths[i] for i in batch) * len(batch) <= 6000 or len(batch) == 1
    assert [500] in batches  # longer than the budget: alone


def test_sampler_options():
    with pytest.raises(ValueError):
        LengthGroupedBatchSampler([1, 2], batch_size=2, max_frames=10)
    with pytest.raises(ValueError):
        LengthGroupedBatchSampler([1, 2])
    ordered = LengthGroupedBatchSampler([5, 1, 4, 2, 3], batch_size=2, shuffle=False, drop_last=True)
    assert list(ordered) == [[0, 2], [4, 3]]
