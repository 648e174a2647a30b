"""Helpers of the data pipeline tests: a character tokenizer, a small Parakeet feature extractor and audio written
on the fly (sine waves; espeak-ng speech where installed).

A plain module rather than a conftest.py: the tests elsewhere import the top-level tests/conftest.py by the name
``conftest``, which a second conftest.py would shadow.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("soundfile", reason="the data extra is not installed (pip install -e '.[data]')")
pytest.importorskip("scipy", reason="the data extra is not installed (pip install -e '.[data]')")
pytest.importorskip("datasets", reason="the data extra is not installed (pip install -e '.[data]')")

import soundfile as sf

CHARACTERS = "abcdefghijklmnopqrstuvwxyz'"
MEL_BINS = 32
HAS_ESPEAK = shutil.which("espeak-ng") is not None
needs_espeak = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed (scripts/install_system_deps.sh)")


def sine(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def speak(text: str, voice: str = "en-us") -> bytes:
    """espeak-ng speech as WAV bytes (22050 Hz)."""
    return subprocess.run(["espeak-ng", "-v", voice, "--stdout"], input=text.encode(), capture_output=True,
                          check=True).stdout


def write_wav(path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> str:
    sf.write(str(path), samples, rate, subtype=subtype)
    return str(path)


def build_tokenizer():
    """A character-level ParakeetTokenizer: '▁' between words, '<pad>' 1, '<blank>' the last id."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import ParakeetTokenizer

    vocab = {"<unk>": 0, "<pad>": 1, "▁": 2, **{c: i + 3 for i, c in enumerate(CHARACTERS)}}
    vocab["<blank>"] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never"),
        pre_tokenizers.Split(Regex("."), behavior="isolated"),
    ])
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="never")
    tokenizer = ParakeetTokenizer(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<blank>"]})
    return tokenizer


def build_feature_extractor():
    from transformers import ParakeetFeatureExtractor

    return ParakeetFeatureExtractor(feature_size=MEL_BINS)


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
