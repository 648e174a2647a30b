"""A subword tokenizer laid out like the SentencePiece vocabularies of the Hub's Parakeet checkpoints, trained with
the ``tokenizers`` library.

How the Hub checkpoints represent SentencePiece: transformers' NeMo conversion (``ParakeetConverter`` in
``transformers/convert_slow_tokenizer.py``) turns the ``.model`` file into a ``tokenizers`` BPE model (pieces in
SentencePiece order, merges ranked from the piece scores, ``fuse_unk``), a Metaspace pre-tokenizer and decoder
(``▁`` marks a word start and is prepended to the text), and wraps it in ``ParakeetTokenizer``; the blank is the
last id (``vocab_size - 1``) and also the padding token. :func:`build_subword_tokenizer` builds the same structure
directly: a BPE model trained by ``tokenizers.trainers.BpeTrainer`` on the given texts, ``<unk>`` at id 0, the
characters, the merged pieces, ``<blank>`` last. Byte fallback is off: the byte pieces it needs are absent from
these vocabularies, and the normalised transcripts use a small alphabet that the trainer's initial alphabet covers.
Saved with ``save_pretrained`` beside a ``ParakeetProcessor`` (``tokenizer.json`` and ``tokenizer_config.json``),
it loads back with ``AutoProcessor.from_pretrained`` like a Hub checkpoint's.

Why subwords: a piece covers two to four characters of English, so labels stay well below the encoder frames even
with Parakeet's own 8x subsampling (80 ms frames), which halves the encoder's work compared with the 4x needed by
characters (see :mod:`.tokenizer`). Train it on the training split's transcripts only: fitting it on evaluation
text would leak those sentences' words into the vocabulary.

RNN-T output must not be collapsed like CTC output: decode with ``group_tokens=False`` (what the processor does
for ``decoder_type="rnnt"``), or "that that" and a doubled piece lose a copy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import ParakeetTokenizer

from .tokenizer import BLANK_TOKEN, DEFAULT_ALPHABET, UNK_TOKEN, WORD_DELIMITER

logger = logging.getLogger(__name__)

DEFAULT_VOCAB_SIZE = 256
"""Pieces including ``<unk>`` and ``<blank>``. Small on purpose: the joint network's output layer, evaluated for
every (frame, label) pair of the RNN-T lattice, grows with it, and a corpus of tens of thousands of sentences gives
enough examples of each piece only for a few hundred pieces; at 256 English text still averages under one piece
per 80 ms frame of speech."""


def build_subword_tokenizer(texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE,
                            alphabet: str = DEFAULT_ALPHABET) -> ParakeetTokenizer:
    """A BPE ``ParakeetTokenizer`` of ``vocab_size`` ids (``<unk>`` 0, ``<blank>`` last) trained on ``texts``, the
    normalised training transcripts. Every character of ``alphabet`` and of ``texts`` is in the vocabulary, so no
    training transcript encodes to ``<unk>``; texts too few to fill the vocabulary give a smaller one (with a
warning). Deterministic for the same texts in the same order."""
    texts = list(texts)
    characters = set(alphabet)
    for text in texts:
        characters.update(character for character in text if not character.isspace())
    # <unk>, the characters and their word-initial forms are the least the model needs, and <blank> comes on top.
    if vocab_size < 2 * len(characters) + 2:
        raise ValueError(f"vocab_size {vocab_size} is too small for {len(characters)} characters")
    backend = Tokenizer(models.BPE(unk_token=UNK_TOKEN, fuse_unk=True))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=WORD_DELIMITER, prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement=WORD_DELIMITER, prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 1, special_tokens=[UNK_TOKEN], show_progress=False, min_frequency=2,
        initial_alphabet=sorted(characters | {WORD_DELIMITER}), limit_alphabet=len(characters) + 1)
    backend.train_from_iterator(texts, trainer=trainer)
    backend.add_special_tokens([AddedToken(BLANK_TOKEN, special=True, normalized=False)])
    if backend.get_vocab_size() < vocab_size:
        # BPE stops when no pair occurs twice: a handful of sentences cannot fill a vocabulary.
        logger.warning("the texts give only %d pieces, fewer than vocab_size %d", backend.get_vocab_size(),
                       vocab_size)
    return ParakeetTokenizer(tokenizer_object=backend, unk_token=UNK_TOKEN, pad_token=BLANK_TOKEN)
