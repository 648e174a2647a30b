"""The character tokenizer and processor: id layout, blank as padding, RNN-T decoding that keeps repeated letters,
and a save/load round trip through AutoProcessor."""

from __future__ import annotations

from transformers import AutoProcessor

from hf_binarize.training import BLANK_TOKEN, build_character_tokenizer, build_processor


def test_layout_unk_delimiter_characters_then_blank_last():
    tokenizer = build_character_tokenizer(["it cost 42 dollars"])
    vocab = tokenizer.get_vocab()
    assert vocab["<unk>"] == 0 and vocab["▁"] == 1
    assert vocab[BLANK_TOKEN] == len(vocab) - 1 == tokenizer.pad_token_id
    assert {"4", "2", "'", "z"} <= set(vocab)
    characters = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])][2:-1]
    assert characters == sorted(characters)
    # Only the set of characters matters, not the order or number of texts.
    assert build_character_tokenizer(["42 dollars it cost", "it"]).get_vocab() == vocab


def test_text_round_trips_and_repeats_survive_rnnt_decoding():
    processor = build_processor(build_character_tokenizer())
    text = "the bookkeeper's three little kittens"
    ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text) and processor.tokenizer.unk_token_id not in ids
    blank = processor.blank_token_id
    # What greedy RNN-T generate returns: the start blank, tokens, blanks between frames, blank padding.
    interleaved = [blank, *(token for id_ in ids for token in (id_, blank)), blank, blank]
    assert processor.batch_decode([interleaved], skip_special_tokens=True) == [text]
    assert processor.decode(ids) == text
    # The CTC habit of the bare tokenizer, which the processor's decoder_type turns off.
    assert processor.tokenizer.decode(ids) != text


def test_unknown_characters_become_unk():
    tokenizer = build_character_tokenizer()
    assert tokenizer("é", add_special_tokens=False)["input_ids"] == [tokenizer.unk_token_id]


def test_processor_round_trip(tmp_path):
    processor = build_processor(build_character_tokenizer(["ok 1"]), num_mel_bins=40)
    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert loaded.decoder_type == "rnnt" and loaded.blank_token_id == processor.blank_token_id
    assert loaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    assert loaded.feature_extractor.feature_size == 40
    ids = loaded.tokenizer("ok 11", add_special_tokens=False)["input_ids"]
    assert loaded.batch_decode([ids], skip_special_tokens=True) == ["ok 11"]
