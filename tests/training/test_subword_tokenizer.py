"""The subword tokenizer: Hub Parakeet layout (<unk> 0, <blank> last and padding, Metaspace BPE), trained on the
training text only, round-trips test transcripts exactly, keeps repeated pieces and words through RNN-T decoding, and
loads back through AutoProcessor like a Hub checkpoint."""

from __future__ import annotations

import pytest
from transformers import AutoProcessor, ParakeetTokenizer

from hf_binarize.data.text import normalize_transcript
from hf_binarize.training import BLANK_TOKEN, build_processor
from hf_binarize.training.subword_tokenizer import build_subword_tokenizer


@pytest.fixture(scope="module")
def harvard_split():
    from hf_binarize.data.synthetic import load_harvard_sentences

    sentences = [normalize_transcript(sentence) for sentence in load_harvard_sentences()]
    return sentences[:600], sentences[600:]


@pytest.fixture(scope="module")
def processor(harvard_split):
    return build_processor(build_subword_tokenizer(harvard_split[0], 200))


def test_layout_is_the_hub_parakeet_one(processor):
    tokenizer = processor.tokenizer
    vocab = tokenizer.get_vocab()
    assert isinstance(tokenizer, ParakeetTokenizer) and len(vocab) == 200
    assert vocab["<unk>"] == 0 and vocab[BLANK_TOKEN] == 199 == tokenizer.pad_token_id == processor.blank_token_id
    backend = tokenizer.backend_tokenizer
    assert type(backend.model).__name__ == "BPE" and type(backend.pre_tokenizer).__name__ == "Metaspace"
    assert any(token.startswith("▁") and len(token) > 2 for token in vocab)  # whole-word pieces were learnt


def test_unseen_test_transcripts_round_trip_exactly(processor, harvard_split):
    train, test = harvard_split
    assert not set(train) & set(test)
    for text in test:
        ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert processor.tokenizer.unk_token_id not in ids
        assert processor.batch_decode([ids], skip_special_tokens=True)[0] == text
        # Subwords: fewer labels than characters, which is what lets 8x subsampling work.
        assert len(ids) < len(text)


@pytest.mark.parametrize("text", ["the the the cat", "that that is is", "a aa aaa", "bookkeeper's committee"])
def test_repeats_survive_rnnt_decoding(processor, text):
    ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert processor.batch_decode([ids], skip_special_tokens=True)[0] == text
    assert processor.decode(ids, skip_special_tokens=True) == text


def test_saved_processor_loads_like_a_hub_checkpoint(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(loaded.tokenizer) is ParakeetTokenizer
    assert loaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    text = "the the small pup gnawed a hole in the sock"
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert loaded.batch_decode([[*ids, loaded.blank_token_id]], skip_special_tokens=True)[0] == text


def test_training_is_deterministic_and_small_texts_give_a_smaller_vocabulary(harvard_split, caplog):
    texts = harvard_split[0][:50]
    assert build_subword_tokenizer(texts, 120).get_vocab() == build_subword_tokenizer(texts, 120).get_vocab()
    small = build_subword_tokenizer(["a cat", "a dog"], 120)
    assert len(small) < 120 and small.pad_token_id == len(small) - 1
    assert "fewer than vocab_size" in caplog.text
    with pytest.raises(ValueError, match="too small"):
        build_subword_tokenizer(texts, 20)
