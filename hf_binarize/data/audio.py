"""Audio decoding, mono mixing, resampling and validity checks, without torchcodec or torchaudio.

``datasets`` decodes audio through torchcodec, whose PyPI wheels do not load on CPU-only machines, and torchaudio
has no build for the torch this project pins. Everything here therefore reads with ``soundfile`` (libsndfile: WAV,
FLAC, OGG/Vorbis, Opus and, from libsndfile 1.1, MP3) and resamples with ``scipy.signal.resample_poly``.

Resampling method: polyphase FIR filtering (``resample_poly``). The rate ratio is reduced to ``up / down`` by their
greatest common divisor; the signal is upsampled by ``up`` (zero insertion), low-pass filtered and downsampled by
``down``, computing only the output samples that are kept. The filter is scipy's default: a Kaiser-windowed sinc
(beta 5.0) with ``10 * max(up, down)`` taps on each side and its cut-off at the lower of the two Nyquist
frequencies, so content above the new Nyquist frequency is attenuated rather than aliased. Measured from 44.1 to
16 kHz: flat (within 0.01 dB) to 6 kHz, -0.25 dB at 7 kHz, -7 dB at 8.1 kHz, -30 dB at 9 kHz, -66 dB at 11 kHz,
ample for 16 kHz speech features. The output has exactly ``ceil(n * target_rate / orig_rate)`` samples and no
delay (the filter is zero-phase), so a tone keeps its frequency and a clip keeps its duration.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

AudioProblem = Literal["empty_audio", "non_finite_audio", "too_short", "too_long", "silent_audio"]
"""Why :func:`check_audio` rejects a clip."""

AudioSource = str | os.PathLike | bytes | bytearray | memoryview | Mapping[str, Any]
"""What :func:`decode_audio` accepts: a path, encoded bytes, a ``datasets`` audio cell (``{"bytes", "path"}`` as
stored with ``Audio(decode=False)``, or ``{"array", "sampling_rate"}`` once decoded). :func:`decode_audio` also takes
any object with a torchcodec-style ``get_all_samples()``, which is what ``datasets`` 4+ hands out where torchcodec
works."""


class AudioDecodeError(ValueError):
    """The audio could not be read: missing file, unknown or corrupt format, or a cell with neither bytes nor path."""


def decode_audio(source: AudioSource) -> tuple[np.ndarray, int]:
    """Decodes ``source`` to float32 samples of shape ``(frames, channels)`` in [-1, 1] and the sampling rate.

    Integer PCM is scaled by libsndfile (16-bit: divided by 32768). Raises :class:`AudioDecodeError` for anything
    that cannot be read.
    """
    import soundfile as sf

    if isinstance(source, Mapping):
        if source.get("array") is not None:
            array = np.asarray(source["array"], dtype=np.float32)
            rate = source.get("sampling_rate")
            if rate is None:
                raise AudioDecodeError("decoded audio cell has an array but no sampling_rate")
            return (array[:, None] if array.ndim == 1 else array), int(rate)
        if source.get("bytes") is not None:
            source = source["bytes"]
        elif source.get("path") is not None:
            source = source["path"]
        else:
            raise AudioDecodeError("audio cell has neither bytes nor path")
    elif hasattr(source, "get_all_samples"):
        samples = source.get_all_samples()
        return np.asarray(samples.data, dtype=np.float32).T, int(samples.sample_rate)

    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    elif not isinstance(source, (str, os.PathLike)):
        raise AudioDecodeError(f"cannot read audio from a {type(source).__name__}")
    try:
        array, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as error:
        raise AudioDecodeError(f"unreadable audio: {error}") from error
    return array, int(rate)


def to_mono(array: np.ndarray) -> np.ndarray:
    """Averages the channels of ``(frames, channels)`` samples into ``(frames,)``; 1-D input is returned as is.

    A plain mean keeps the level of a centred (identical in all channels) source; it is what the feature extractors
    of transformers do with multichannel input too.
    """
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 1:
        return array
    if array.ndim != 2:
        raise ValueError(f"expected (frames,) or (frames, channels) samples, got shape {array.shape}")
    return array.mean(axis=1, dtype=np.float32) if array.shape[1] > 1 else array[:, 0]


def resample(samples: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resamples 1-D ``samples`` from ``orig_rate`` to ``target_rate`` Hz (polyphase FIR, see the module docstring).

    Returns float32 with ``ceil(len(samples) * target_rate / orig_rate)`` samples; the input unchanged (as float32)
    when the rates match.
    """
    from scipy.signal import resample_poly

    if orig_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sampling rates must be positive, got {orig_rate} and {target_rate}")
    samples = np.asarray(samples, dtype=np.float32)
    if orig_rate == target_rate or samples.size == 0:
        return samples
    divisor = math.gcd(orig_rate, target_rate)
    return resample_poly(samples, target_rate // divisor, orig_rate // divisor).astype(np.float32, copy=False)


def load_audio(source: AudioSource, target_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decodes, mono-mixes and (when ``target_rate`` is given) resamples: returns float32 ``(frames,)`` and its rate."""
    array, rate = decode_audio(source)
    mono = to_mono(array)
    if target_rate is None:
        return mono, rate
    return resample(mono, rate, target_rate), target_rate


def peak_dbfs(samples: np.ndarray) -> float:
    """Peak level in dB relative to full scale (1.0); ``-inf`` for digital silence."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def check_audio(samples: np.ndarray, rate: int, *, min_seconds: float = 0.0, max_seconds: float | None = None,
                silence_dbfs: float = -60.0) -> tuple[AudioProblem, str] | None:
    """Returns ``(problem, detail)`` for a clip that should not be trained on, else ``None``.

    Checks, in order: no samples; NaN or infinite samples (float files can hold them, and one poisons a whole batch
    through the per-utterance feature normalisation); shorter than ``min_seconds``; longer than ``max_seconds``;
    peak below ``silence_dbfs`` (the default, -60 dBFS, is far below any real recording's peak but above the
    dither and codec noise of a silent one).
    """
    if samples.size == 0:
        return "empty_audio", "no samples"
    if not np.all(np.isfinite(samples)):
        return "non_finite_audio", f"{int(np.count_nonzero(~np.isfinite(samples)))} NaN or infinite samples"
    seconds = samples.shape[0] / rate
    if seconds < min_seconds:
        return "too_short", f"{seconds:.3f} s < {min_seconds} s"
    if max_seconds is not None and seconds > max_seconds:
        return "too_long", f"{seconds:.1f} s > {max_seconds} s"
    level = peak_dbfs(samples)
    if level < silence_dbfs:
        return "silent_audio", f"peak {level:.1f} dBFS < {silence_dbfs} dBFS"
    return None
