"""Collating prepared examples for the Parakeet losses (hf_binarize.data.collation)."""

from __future__ import annotations

import functools

import pytest
import torch
from speech_helpers import MEL_BINS, build_feature_extractor, build_tokenizer, sine

from hf_binarize.data.collation import SpeechCollator
from hf_binarize.data.preparation import SpeechPreparer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def feature_extractor():
    return build_feature_extractor()


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
