"""Augmentation: each step does what its definition says (speed, reverberation time, SNR, telephone band,
clipping), the chain is seeded, it changes audio and never transcripts, and SpecAugment masks only real frames."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch

from hf_binarize.data.augment import (
    Augmentation,
    AugmentConfig,
    SpecAugment,
    augment,
    change_speed,
    draw_augmentation,
    impulse_response,
    telephone_band,
)

RATE = 16000


def tone_burst(seconds: float = 1.0) -> np.ndarray:
    time = np.arange(int(seconds * RATE)) / RATE
    return np.sin(2 * np.pi * 440 * time) * np.hanning(time.size)


def test_speed_changes_duration_by_the_factor():
    speech = tone_burst(2.0)
    assert change_speed(speech, 1.1).size == pytest.approx(speech.size / 1.1, abs=2)
    assert change_speed(speech, 0.9).size == pytest.approx(speech.size / 0.9, abs=2)
    assert change_speed(speech, 1.0) is speech


def test_impulse_response_decays_sixty_db_in_rt60_and_keeps_the_direct_to_reverberant_ratio():
    response = impulse_response(0.5, 6.0, RATE, np.random.default_rng(0))
    assert response[0] == 1.0 and response.size == RATE // 2
    assert 10 * math.log10(1.0 / np.sum(response[1:] ** 2)) == pytest.approx(6.0, abs=1e-6)
    # Energy in the first and last 50 ms of the tail, whose centres are 450 ms apart: 60 dB per rt60 predicts 54 dB.
    window = RATE // 20
    early, late = np.mean(response[1 : 1 + window] ** 2), np.mean(response[-window:] ** 2)
    assert 10 * math.log10(early / late) == pytest.approx(60 * 0.45 / 0.5, abs=3)


def test_telephone_band_removes_what_a_phone_line_cannot_carry():
    generator = np.random.default_rng(1)
    noise = generator.standard_normal(RATE)
    narrow = telephone_band(noise, RATE)
    spectrum = np.abs(np.fft.rfft(narrow)) ** 2
    frequencies = np.fft.rfftfreq(narrow.size, 1 / RATE)
    inside = spectrum[(frequencies > 500) & (frequencies < 3000)].mean()
    assert spectrum[frequencies > 4500].mean() < inside * 1e-3
    assert spectrum[frequencies < 100].mean() < inside * 1e-2
    assert narrow.size == noise.size


@pytest.mark.parametrize(("kind", "snr"), [("white", 10.0), ("pink", 20.0), ("babble", 5.0)])
def test_noise_is_mixed_at_the_drawn_snr(kind, snr):
    speech = tone_burst()
    babble_voice = np.sin(2 * np.pi * 130 * np.arange(3000) / RATE)
    augmentation = Augmentation(noise=kind, snr_db=snr, babble_talkers=2 if kind == "babble" else 0,
                                peak_dbfs=-3.0, seed=5)
    noisy = augment(speech, RATE, augmentation, babble=lambda talkers, generator: babble_voice)
    assert np.max(np.abs(noisy)) == pytest.approx(10 ** (-3 / 20))
    # The noisy clip is speech * gain + noise: project out the speech to measure the SNR.
    gain = float(noisy @ speech / (speech @ speech))
    residual = noisy - gain * speech
    measured = 10 * math.log10(np.mean((gain * speech) ** 2) / np.mean(residual**2))
    assert measured == pytest.approx(snr, abs=0.5 if kind != "babble" else 1.5)


def test_clipping_drives_the_clip_past_full_scale():
    clipped = augment(tone_burst(), RATE, Augmentation(peak_dbfs=-6.0, clip_db=4.0))
    assert np.max(np.abs(clipped)) == 1.0
    assert np.count_nonzero(np.abs(clipped) == 1.0) > 100


def test_draws_are_seeded_and_cover_every_step():
    config = AugmentConfig()
    first = [draw_augmentation(config, np.random.default_rng([0, 3, i])) for i in range(400)]
    assert first == [draw_augmentation(config, np.random.default_rng([0, 3, i])) for i in range(400)]
    assert all(0.9 <= a.speed <= 1.1 for a in first)
    assert {a.noise for a in first} == {"none", "white", "pink", "babble"}
    assert all(a.snr_db is None or 0 <= a.snr_db <= 30 for a in first)
    for attribute in ("rt60", "clip_db"):
        assert any(getattr(a, attribute) is not None for a in first) and \
            any(getattr(a, attribute) is None for a in first)
    assert any(a.telephone for a in first) and not all(a.telephone for a in first)
    # The number of draws does not depend on the outcome, so disabling augmentation keeps the rest of the plan.
    generators = [np.random.default_rng(9), np.random.default_rng(9)]
    draw_augmentation(config, generators[0])
    draw_augmentation(dataclasses.replace(config, enabled=False), generators[1])
    assert generators[0].random() == generators[1].random()


def test_augmentation_changes_audio_but_not_transcripts():
    from hf_binarize.data.synthetic import CorpusConfig, plan_corpus
    from hf_binarize.data.text_sources import load_sentences

    sentences = load_sentences(["harvard"])
    plain = CorpusConfig(utterances=1, text_sources=("harvard",), augment=AugmentConfig(enabled=False))
    augmented = dataclasses.replace(plain, augment=AugmentConfig())
    pairs = list(zip(itertools.islice(plan_corpus(plain, sentences), 200),
                     itertools.islice(plan_corpus(augmented, sentences), 200), strict=True))
    assert all(a.id == b.id and a.text == b.text for a, b in pairs)
    assert sum(a.augmentation != b.augmentation for a, b in pairs) == len(pairs)


def test_spec_augment_masks_only_real_frames():
    features = torch.ones(3, 200, 80)
    lengths = torch.tensor([200, 120, 50])
    masked = SpecAugment(freq_masks=2, freq_width=15, time_masks=5, time_width=0.05)(
        features.clone(), lengths, generator=torch.Generator().manual_seed(0))
    assert (masked == 0).any()
    for row, length in enumerate(lengths.tolist()):
        assert (masked[row, length:] == 1).all()  # padding untouched
        assert (masked[row, :length] == 0).float().mean() < 0.5
    assert not SpecAugment(0, 0, 0, 0).enabled
