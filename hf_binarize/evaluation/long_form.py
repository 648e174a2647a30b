"""Transcription of audio files of any length in bounded memory (``hf-binarize transcribe``).

A file is cut into consecutive spans of ``chunk_seconds``; each span is decoded inside a window that adds
``context_seconds`` of audio on both sides, so that words at a span's edges are heard with their surroundings, and
of the tokens decoded in a window only those emitted inside its own span are kept. Every token is therefore kept
exactly once, from the window where it sits furthest from an edge. Only one window of audio is read, resampled and
encoded at a time (the file is read window by window, never whole), so memory does not grow with the file's length;
the kept token ids are all that accumulates.

Each span with tokens becomes a :class:`Segment` with the times of its first and last kept token (encoder frames
times the frame duration: 80 ms for Parakeet's 8x subsampling of 10 ms features). Greedy decoding restarts the
prediction network at each window, as it does at the start of an utterance.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from tqdm.auto import tqdm

from ..data.audio import AudioDecodeError, resample, to_mono
from .families import blank_id
from .transcription import greedy_decode, greedy_generation_config

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif")
"""What a folder given to :func:`audio_files` is searched for (formats libsndfile reads)."""


@dataclass(frozen=True)
class Segment:
    """The text decoded in one span of a file, from its first to its last token, in seconds."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class FileTranscript:
    """A whole file's transcript, its segments and its duration in seconds."""

    path: str
    text: str
    duration: float
    segments: list[Segment] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def audio_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The files named, with every audio file under a named folder (sorted); raises ``ValueError`` for a folder
    without one and ``FileNotFoundError`` for a path that does not exist."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not inside:
                raise ValueError(f"{path} holds no audio file ({', '.join(AUDIO_SUFFIXES)})")
            found += inside
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path} does not exist")
    return found


class LongFormTranscriber:
    """Greedy transcription of whole files with a transducer and its processor (see the module docstring)."""

    def __init__(self, model: nn.Module, processor: Any, *, chunk_seconds: float = 20.0,
                 context_seconds: float = 2.5):
        if chunk_seconds <= 0 or context_seconds < 0:
            raise ValueError(f"chunk_seconds must be positive and context_seconds non-negative, got {chunk_seconds} "
                             f"and {context_seconds}")
        self.model, self.processor = model.eval(), processor
        self.chunk_seconds, self.context_seconds = chunk_seconds, context_seconds
        self.rate = processor.feature_extractor.sampling_rate
        self.generation = greedy_generation_config(model)
        self._skipped_ids = {blank_id(model.config), *processor.tokenizer.all_special_ids}

    def transcribe_file(self, path: str | os.PathLike, *, progress: bool = False) -> FileTranscript:
        """Transcribes one file; raises :class:`AudioDecodeError` (a ``ValueError``) for audio it cannot use."""
        import soundfile as sf

        try:
            audio = sf.SoundFile(str(path))
        except (sf.LibsndfileError, RuntimeError, OSError) as error:
            raise AudioDecodeError(f"unreadable audio: {error}") from error
        with audio:
            if audio.frames <= 0:
                raise AudioDecodeError("empty audio: the file holds no samples")
            duration = audio.frames / audio.samplerate
            spans = math.ceil(duration / self.chunk_seconds)
            kept: list[int] = []
            segments = []
            bar = tqdm(total=spans, desc=Path(path).name, unit="chunk", disable=not progress, leave=False)
            for span in range(spans):
                start, stop = span * self.chunk_seconds, min((span + 1) * self.chunk_seconds, duration)
                tokens, times, frame_seconds = self._decode_span(audio, start, stop, duration)
                if tokens:
                    kept += tokens
                    segments.append(Segment(round(times[0], 3), round(times[-1] + frame_seconds, 3),
                                            self._text(tokens)))
                bar.update()
            bar.close()
        return FileTranscript(str(path), self._text(kept), round(duration, 3), segments)

    def _decode_span(self, audio: Any, start: float, stop: float,
                     duration: float) -> tuple[list[int], list[float], float]:
        """Token ids emitted in ``[start, stop)`` seconds, their times, and the seconds per encoder frame, decoded
        with the context around the span."""
        window_start = max(0.0, start - self.context_seconds)
        window_stop = min(duration, stop + self.context_seconds)
        first = round(window_start * audio.samplerate)
        audio.seek(first)
        samples = audio.read(round(window_stop * audio.samplerate) - first, dtype="float32", always_2d=True)
        samples = resample(to_mono(samples), audio.samplerate, self.rate)
        features = self.processor.feature_extractor(samples, sampling_rate=self.rate, return_tensors="pt",
                                                    return_attention_mask=True)
        decoded = greedy_decode(self.model, self.generation, features["input_features"], features["attention_mask"])
        # Seconds per encoder frame: this window's feature frames (10 ms each) over its encoder frames.
        feature_frames = int(features["attention_mask"].sum())
        hop = self.processor.feature_extractor.hop_length / self.rate
        frame_seconds = hop * feature_frames / max(int(decoded.frames[0]), 1)
        tokens, times = [], []
        last = stop >= duration
        for token, frame in zip(decoded.tokens[0].tolist(), decoded.emitted_at[0].tolist(), strict=True):
            time = window_start + frame * frame_seconds
            if token in self._skipped_ids or time < start or (time >= stop and not last):
                continue
            tokens.append(token)
            times.append(time)
        return tokens, times, frame_seconds

    def _text(self, tokens: list[int]) -> str:
        return self.processor.tokenizer.decode(tokens, skip_special_tokens=True, group_tokens=False).strip()


def transcribe_files(transcriber: LongFormTranscriber, paths: Iterable[str | os.PathLike], *,
                     progress: bool = False) -> Iterator[FileTranscript | tuple[Path, Exception]]:
    """Transcribes each file in turn, yielding its transcript, or ``(path, error)`` for a file that could not be
    used (unreadable, empty): one bad file does not stop the others."""
    for path in paths:
        try:
            yield transcriber.transcribe_file(path, progress=progress)
        except (AudioDecodeError, ValueError, OSError) as error:
            yield Path(path), error

