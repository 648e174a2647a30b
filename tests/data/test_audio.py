"""Audio decoding, mono mixing, resampling and validity checks against signals of known content."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from speech_helpers import sine, write_wav

from hf_binarize.data.audio import (
    AudioDecodeError,
    check_audio,
    decode_audio,
    load_audio,
    peak_dbfs,
    resample,
    to_mono,
)


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples)


@pytest.mark.parametrize(("orig", "target"), [(44100, 16000), (22050, 16000), (48000, 16000), (8000, 16000),
                                              (16000, 24000)])
def test_resampled_sine_keeps_its_frequency_and_duration(orig, target):
    seconds, frequency = 2.0, 1000.0
    out = resample(sine(frequency, seconds, orig), orig, target)
    assert out.dtype == np.float32
    assert len(out) == seconds * target  # exactly: 2 s in, 2 s out
    # An FFT bin is 1 / seconds = 0.5 Hz wide.
    assert abs(peak_frequency(out, target) - frequency) <= 1.0
    # Away from the edges the waveform is the same tone, same amplitude and phase.
    middle = slice(target // 4, -target // 4)
    expected = sine(frequency, seconds, target)
    np.testing.assert_allclose(out[middle], expected[middle], atol=2e-3)


def test_resampled_length_is_the_ceiling_of_the_scaled_length():
    for length in (1, 7, 441, 1000, 22051):
        assert len(resample(np.ones(length, np.float32), 44100, 16000)) == math.ceil(length * 16000 / 44100)
    assert len(resample(np.zeros(0, np.float32), 44100, 16000)) == 0


def test_content_above_the_new_nyquist_frequency_is_filtered_not_aliased():
    # 11 kHz is above the 8 kHz Nyquist frequency of 16 kHz audio: unfiltered, it would alias to 5 kHz.
    def level_db(frequency: float) -> float:
        out = resample(sine(frequency, 1.0, 44100), 44100, 16000)[2000:-2000]
        return 20 * math.log10(np.sqrt(np.mean(out**2)) / (0.5 / math.sqrt(2)))

    assert abs(level_db(6000.0)) < 0.1
    assert level_db(11000.0) < -60


def test_same_rate_is_a_no_op_and_bad_rates_raise():
    samples = sine(440.0, 0.1, 16000)
    np.testing.assert_array_equal(resample(samples, 16000, 16000), samples)
    with pytest.raises(ValueError):
        resample(samples, 0, 16000)


def test_decode_from_path_bytes_and_dataset_cells(tmp_path):
    samples = sine(440.0, 0.5, 22050)
    path = write_wav(tmp_path / "a.wav", samples, 22050, subtype="FLOAT")
    data = (tmp_path / "a.wav").read_bytes()
    for source in (path, tmp_path / "a.wav", data, {"bytes": data, "path": None}, {"bytes": None, "path": path},
                   {"array": samples, "sampling_rate": 22050}):
        decoded, rate = decode_audio(source)
        assert rate == 22050 and decoded.shape == (len(samples), 1)
        np.testing.assert_array_equal(decoded[:, 0], samples)


def test_integer_pcm_is_scaled_to_unit_range(tmp_path):
    path = write_wav(tmp_path / "full.wav", np.array([0.5, -1.0], np.float32), 16000, subtype="PCM_16")
    decoded, _ = decode_audio(path)
    np.testing.assert_array_equal(decoded[:, 0], [0.5, -1.0])


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = sine(440.0, 0.25, 16000), sine(880.0, 0.25, 16000, amplitude=0.25)
    buffer = io.BytesIO()
    import soundfile as sf

    sf.write(buffer, np.stack([left, right], axis=1), 16000, format="WAV", subtype="FLOAT")
    mono, rate = load_audio(buffer.getvalue())
    assert rate == 16000
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-7)
    np.testing.assert_array_equal(to_mono(left), left)


def test_load_audio_resamples_to_the_target_rate(tmp_path):
    path = write_wav(tmp_path / "a.wav", sine(500.0, 1.0, 8000), 8000)
    samples, rate = load_audio(path, target_rate=16000)
    assert rate == 16000 and len(samples) == 16000
    assert abs(peak_frequency(samples, rate) - 500.0) <= 1.0


@pytest.mark.parametrize("source", [b"not audio at all", {"bytes": None, "path": None}, "/no/such/file.wav", 42])
def test_unreadable_audio_raises_a_decode_error(source):
    with pytest.raises(AudioDecodeError):
        decode_audio(source)


def test_check_audio_names_each_problem():
    rate = 16000
    good = sine(300.0, 1.0, rate)
    assert check_audio(good, rate, max_seconds=2.0) is None
    assert check_audio(np.zeros(0, np.float32), rate)[0] == "empty_audio"
    with_nan = good.copy()
    with_nan[10] = np.nan
    assert check_audio(with_nan, rate) == ("non_finite_audio", "1 NaN or infinite samples")
    assert check_audio(good[:800], rate, min_seconds=0.1)[0] == "too_short"
    assert check_audio(good, rate, max_seconds=0.5)[0] == "too_long"
    assert check_audio(np.zeros(rate, np.float32), rate)[0] == "silent_audio"
    assert check_audio(good * 1e-4, rate)[0] == "silent_audio"  # peak -86 dBFS
    assert check_audio(good * 1e-2, rate) is None  # peak -46 dBFS: quiet, not silent
    assert peak_dbfs(np.zeros(3, np.float32)) == -math.inf
    assert peak_dbfs(np.array([0.5], np.float32)) == pytest.approx(-6.0206, abs=1e-4)
