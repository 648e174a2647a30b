"""Seeded audio augmentation of synthetic speech, applied once when the corpus is rendered, and SpecAugment,
applied to features on the fly during training only.

Audio chain (:func:`augment`), each step drawn per utterance by :func:`draw_augmentation` from an
:class:`AugmentConfig`; the drawn values are stored as corpus columns so every clip says what was done to it:

1. Speed perturbation (Kaldi style): resampling by a factor in ``speed_range`` (0.9-1.1) and playing back at the
   original rate, which changes tempo and pitch together.
2. Room reverberation (probability ``reverb_probability``): convolution with a synthetic impulse response, a unit
   direct path followed by Gaussian noise under an exponential envelope that falls 60 dB in ``rt60`` seconds
   (uniform in ``rt60_range``), scaled so the reverberant energy sits ``drr_db`` (direct-to-reverberant ratio, uniform
   in ``drr_db_range``) below the direct sound. Late reverberation in real rooms is close to exponentially decaying
   noise, which is why this simple model is the usual synthetic one.
3. Additive noise (unless clean, probability ``clean_fraction``) at a uniform SNR in ``snr_db_range`` (0-30 dB):
   white, pink (1/f power) or babble, a sum of ``babble_talkers`` other sentences of the same split spoken by other
   voices. The SNR is computed over the whole clip.
4. Telephone channel (probability ``telephone_probability``): band-pass 300-3400 Hz and a round trip through 8 kHz.
5. Gain: the clip is scaled to a uniform random peak level in ``peak_dbfs_range``.
6. Clipping (probability ``clip_probability``): the clip is driven ``clip_db`` (uniform in ``clip_db_range``) above
   full scale and hard-clipped at +-1.

Transcripts are never touched. Determinism: every value comes from the generator passed to
:func:`draw_augmentation`, and the noise of step 2 and 3 from a per-utterance seed drawn there too.

SpecAugment (:func:`spec_augment`, Park et al. 2019, without time warping): ``freq_masks`` bands of up to
``freq_width`` mel bins and ``time_masks`` spans of up to ``time_width`` (a fraction of the utterance's frames)
set to zero, the value of a normalised feature's mean. transformers' Parakeet configuration has no SpecAugment
option (NeMo applies it in its preprocessor, which the port leaves out), so the trainer's collator applies it to
training batches only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

NoiseKind = Literal["none", "white", "pink", "babble"]


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges and probabilities of the audio augmentation (see the module docstring); ``enabled=False`` keeps
    only the noise and gain that the corpus always had."""

    enabled: bool = True
    speed_range: tuple[float, float] = (0.9, 1.1)
    reverb_probability: float = 0.4
    rt60_range: tuple[float, float] = (0.15, 0.8)
    drr_db_range: tuple[float, float] = (0.0, 15.0)
    clean_fraction: float = 0.1
    snr_db_range: tuple[float, float] = (0.0, 30.0)
    babble_probability: float = 0.25
    babble_talkers: tuple[int, int] = (2, 5)
    telephone_probability: float = 0.1
    peak_dbfs_range: tuple[float, float] = (-18.0, -1.0)
    clip_probability: float = 0.05
    clip_db_range: tuple[float, float] = (1.0, 6.0)


@dataclass(frozen=True)
class Augmentation:
    """What is done to one clip: the values drawn by :func:`draw_augmentation`."""

    speed: float = 1.0
    rt60: float | None = None
    drr_db: float | None = None
    noise: NoiseKind = "none"
    snr_db: float | None = None
    babble_talkers: int = 0
    telephone: bool = False
    peak_dbfs: float = -3.0
    clip_db: float | None = None
    seed: int = 0


def draw_augmentation(config: AugmentConfig, generator: np.random.Generator) -> Augmentation:
    """Draws one clip's augmentation. The number of draws is the same whatever the outcome, so one utterance's
    choices never shift the next one's."""
    speed = round(float(generator.uniform(*config.speed_range)), 2)
    reverb = bool(generator.random() < config.reverb_probability)
    rt60 = round(float(generator.uniform(*config.rt60_range)), 3)
    drr_db = round(float(generator.uniform(*config.drr_db_range)), 1)
    clean = bool(generator.random() < config.clean_fraction)
    babble = bool(generator.random() < config.babble_probability)
    colour = ("white", "pink")[int(generator.integers(2))]
    snr_db = round(float(generator.uniform(*config.snr_db_range)), 2)
    talkers = int(generator.integers(config.babble_talkers[0], config.babble_talkers[1] + 1))
    telephone = bool(generator.random() < config.telephone_probability)
    peak_dbfs = round(float(generator.uniform(*config.peak_dbfs_range)), 2)
    clip = bool(generator.random() < config.clip_probability)
    clip_db = round(float(generator.uniform(*config.clip_db_range)), 2)
    seed = int(generator.integers(2**63))
    if not config.enabled:
        noise: NoiseKind = "none" if clean else colour
        return Augmentation(noise=noise, snr_db=None if clean else snr_db, peak_dbfs=peak_dbfs, seed=seed)
    noise = "none" if clean else ("babble" if babble else colour)
    return Augmentation(speed=speed, rt60=rt60 if reverb else None, drr_db=drr_db if reverb else None, noise=noise,
                        snr_db=None if clean else snr_db, babble_talkers=talkers if noise == "babble" else 0,
                        telephone=telephone, peak_dbfs=peak_dbfs, clip_db=clip_db if clip else None, seed=seed)


def colored_noise(length: int, kind: Literal["white", "pink"], generator: np.random.Generator) -> np.ndarray:
    """Unit-power noise: Gaussian white, or pink (1/f power spectrum) by spectral shaping of white noise."""
    white = generator.standard_normal(length)
    if kind == "white" or length < 2:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        frequencies = np.arange(spectrum.shape[0], dtype=np.float64)
        frequencies[0] = np.inf  # removes DC
        noise = np.fft.irfft(spectrum / np.sqrt(frequencies), n=length)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def change_speed(speech: np.ndarray, factor: float) -> np.ndarray:
    """``speech`` played ``factor`` times faster (shorter, higher): resampled by 100 / round(100 * factor)."""
    from scipy.signal import resample_poly

    down = round(100 * factor)
    if down == 100:
        return speech
    divisor = math.gcd(100, down)
    return resample_poly(speech, 100 // divisor, down // divisor)


def impulse_response(rt60: float, drr_db: float, rate: int, generator: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: a unit direct path, then exponentially decaying Gaussian noise (60 dB
    down after ``rt60`` seconds) whose energy is ``drr_db`` below the direct path's."""
    length = max(2, int(rt60 * rate))
    time = np.arange(1, length) / rate
    tail = generator.standard_normal(length - 1) * np.exp(-6.9078 * time / rt60)  # ln(1000): 60 dB in amplitude
    tail *= math.sqrt(10 ** (-drr_db / 10) / max(float(np.sum(tail**2)), 1e-12))
    return np.concatenate([[1.0], tail])


def telephone_band(speech: np.ndarray, rate: int) -> np.ndarray:
    """A narrow-band telephone channel: 300-3400 Hz band-pass, then down to 8 kHz and back to ``rate``."""
    from scipy.signal import butter, resample_poly, sosfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=rate, output="sos")
    narrow = sosfilt(sos, speech)
    divisor = math.gcd(rate, 8000)
    low = resample_poly(narrow, 8000 // divisor, rate // divisor)
    return resample_poly(low, rate // divisor, 8000 // divisor)[: speech.shape[0]]


def augment(speech: np.ndarray, rate: int, augmentation: Augmentation,
            babble: Callable[[int, np.random.Generator], np.ndarray] | None = None) -> np.ndarray:
    """Applies ``augmentation`` to mono float ``speech`` at ``rate`` Hz (see the module docstring for the order).
    ``babble(talkers, generator)`` returns the other talkers' speech at ``rate`` (any length, any level); it is
    needed for babble noise only. Returns float64 samples."""
    from scipy.signal import fftconvolve

    generator = np.random.default_rng(augmentation.seed)
    speech = change_speed(np.asarray(speech, dtype=np.float64), augmentation.speed)
    if augmentation.rt60 is not None:
        response = impulse_response(augmentation.rt60, augmentation.drr_db, rate, generator)
        speech = fftconvolve(speech, response)[: speech.shape[0]]
    if augmentation.noise != "none":
        if augmentation.noise == "babble":
            if babble is None:
                raise ValueError("babble noise needs a babble source")
            noise = np.resize(np.asarray(babble(augmentation.babble_talkers, generator), dtype=np.float64),
                              speech.shape[0])
            noise /= max(float(np.sqrt(np.mean(noise**2))), 1e-12)
        else:
            noise = colored_noise(speech.shape[0], augmentation.noise, generator)
        speech_power = float(np.mean(speech**2))
        speech = speech + noise * math.sqrt(speech_power / 10 ** (augmentation.snr_db / 10))
    if augmentation.telephone:
        speech = telephone_band(speech, rate)
    peak = float(np.max(np.abs(speech))) or 1.0
    speech = speech * (10 ** (augmentation.peak_dbfs / 20) / peak)
    if augmentation.clip_db is not None:
        speech = np.clip(speech * 10 ** ((augmentation.clip_db - augmentation.peak_dbfs) / 20), -1.0, 1.0)
    return speech


@dataclass(frozen=True)
class SpecAugment:
    """Frequency and time masks on a batch of features (see the module docstring); all zeros disables it."""

    freq_masks: int = 2
    freq_width: int = 15
    time_masks: int = 5
    time_width: float = 0.05

    @property
    def enabled(self) -> bool:
        return (self.freq_masks > 0 and self.freq_width > 0) or (self.time_masks > 0 and self.time_width > 0)

    def __call__(self, features: torch.Tensor, lengths: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Masks ``features`` (batch, frames, bins) in place, each utterance within its own ``lengths`` frames."""
        batch, _, bins = features.shape
        for row in range(batch):
            frames = int(lengths[row])
            for _ in range(self.freq_masks):
                width = int(torch.randint(0, self.freq_width + 1, (), generator=generator))
                start = int(torch.randint(0, max(1, bins - width + 1), (), generator=generator))
                features[row, :frames, start : start + width] = 0.0
            longest = int(self.time_width * frames)
            for _ in range(self.time_masks):
                width = int(torch.randint(0, longest + 1, (), generator=generator))
                start = int(torch.randint(0, max(1, frames - width + 1), (), generator=generator))
                features[row, start : start + width] = 0.0
        return features
