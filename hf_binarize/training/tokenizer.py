"""The character tokenizer and processor of models trained from scratch by the recipes.

Why characters and not a small SentencePiece vocabulary: with 4x subsampling (40 ms encoder frames) English
characters come at about 0.6 per frame, within the one-label-per-frame budget the transducer and the auxiliary CTC
loss need; a character vocabulary needs no training of its own, covers every transcript of a small corpus (a
SentencePiece model fitted on a few hundred sentences over-fits their words), keeps the joint network's output at
a few dozen classes, and its errors read directly as spelling in the training logs.

Layout (ids): ``<unk>`` 0, the word delimiter ``▁`` 1, the characters in sorted order, and ``<blank>`` last, the
id NeMo and transformers' Parakeet transducers use for blank (``vocab_size - 1``). The blank is also the padding
token, so that ``ParakeetTokenizer`` drops it when decoding and labels the processor pads are ones the RNN-T loss
counts as padding (``labels != blank_token_id``).

Transducer output must not be collapsed like CTC output ("hello" would read "helo"): the processor of a transducer
is built with ``decoder_type="rnnt"`` (or ``"tdt"``), so ``processor.batch_decode`` passes ``group_tokens=False``;
code that calls the tokenizer directly must pass it itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import ParakeetFeatureExtractor, ParakeetProcessor, ParakeetTokenizer

UNK_TOKEN = "<unk>"
BLANK_TOKEN = "<blank>"
WORD_DELIMITER = "▁"
DEFAULT_ALPHABET = "abcdefghijklmnopqrstuvwxyz'"
"""What :func:`hf_binarize.data.text.normalize_transcript` leaves of English text, digits aside."""


def build_character_tokenizer(texts: Iterable[str] = (), alphabet: str = DEFAULT_ALPHABET) -> ParakeetTokenizer:
    """A character-level ``ParakeetTokenizer`` over ``alphabet`` plus every non-space character of ``texts``.

    Pass the normalised training transcripts as ``texts`` so that no training label is ``<unk>`` (digits, accented
    letters); the vocabulary depends only on the set of characters, not on their order or counts.
    """
    characters = set(alphabet)
    for text in texts:
        characters.update(character for character in text if not character.isspace())
    characters -= {WORD_DELIMITER}
    vocab = {UNK_TOKEN: 0, WORD_DELIMITER: 1}
    for character in sorted(characters):
        vocab[character] = len(vocab)
    vocab[BLANK_TOKEN] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK_TOKEN))
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=WORD_DELIMITER, prepend_scheme="never"),
        pre_tokenizers.Split(Regex("."), behavior="isolated"),
    ])
    backend.decoder = decoders.Metaspace(replacement=WORD_DELIMITER, prepend_scheme="never")
    return ParakeetTokenizer(tokenizer_object=backend, unk_token=UNK_TOKEN, pad_token=BLANK_TOKEN)


def build_processor(tokenizer: ParakeetTokenizer, num_mel_bins: int = 80, sampling_rate: int = 16000,
                    decoder_type: str = "rnnt") -> ParakeetProcessor:
    """A ``ParakeetProcessor`` (log-mel features) around ``tokenizer`` that decodes the way the model family
    ``decoder_type`` emits: ``"rnnt"`` and ``"tdt"`` keep repeated tokens, ``"ctc"`` merges them."""
    feature_extractor = ParakeetFeatureExtractor(feature_size=num_mel_bins, sampling_rate=sampling_rate)
    return ParakeetProcessor(feature_extractor, tokenizer, blank_token=BLANK_TOKEN, decoder_type=decoder_type)
