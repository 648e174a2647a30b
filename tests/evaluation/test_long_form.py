"""Long-form transcription: every token kept exactly once across spans, audio read one window at a time, and
files that cannot be used reported without stopping the others (``hf-binarize transcribe``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import hf_binarize  # noqa: F401  (registers the quantizer for the packed model)
from hf_binarize.commands.main import main
from hf_binarize.evaluation.long_form import LongFormTranscriber, audio_files

ROOT = Path(__file__).resolve().parents[2]
FLOAT, PACKED, AUDIO = ROOT / "model_cards" / "float", ROOT / "model_cards" / "binary-int8", ROOT / "demo" / "audio"
RATE = 16_000


@pytest.fixture(scope="module")
def transcriber_for():
    from transformers import AutoModelForRNNT, AutoProcessor

    model, processor = AutoModelForRNNT.from_pretrained(FLOAT), AutoProcessor.from_pretrained(FLOAT)
    return lambda **options: LongFormTranscriber(model, processor, **options)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """Three bundled utterances with pauses: about 11 s."""
    parts = []
    for name in ("test-000000.flac", "test-000001.flac", "test-000002.flac"):
        samples, rate = sf.read(AUDIO / "test" / name, dtype="float32")
        assert rate == RATE
        parts += [samples, np.zeros(RATE, np.float32)]
    path = tmp_path_factory.mktemp("long") / "clip.wav"
    sf.write(path, np.concatenate(parts), RATE)
    return path


@pytest.mark.parametrize("chunk_seconds", [0.7, 2.0, 3.3])
def test_spans_partition_the_tokens_of_a_window(transcriber_for, clip, chunk_seconds):
    # With a context longer than the file every window is the whole file, so each decodes the same tokens: keeping
    # by emission time must then give exactly the one-window transcript, nothing lost or doubled at span edges.
    whole = transcriber_for(chunk_seconds=1000).transcribe_file(clip)
    chunked = transcriber_for(chunk_seconds=chunk_seconds, context_seconds=100).transcribe_file(clip)
    assert whole.text and chunked.text == whole.text
    spans = [(s.start, s.end) for s in chunked.segments]
    assert spans == sorted(spans) and spans[-1][1] <= chunked.duration + 0.2 and len(spans) > 1


def test_audio_is_read_one_window_at_a_time(transcriber_for, clip, monkeypatch):
    reads = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        reads.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    result = transcriber_for(chunk_seconds=2.0, context_seconds=0.5).transcribe_file(clip)
    # Every read is one window (span + context on both sides), never the whole file.
    assert reads and max(reads) <= round(3.0 * RATE) and 0 not in reads and -1 not in reads
    assert len(reads) == -(-result.duration // 2.0)


def test_other_sampling_rates_are_resampled(transcriber_for, tmp_path):
    samples, _ = sf.read(AUDIO / "test" / "test-000000.flac", dtype="float32")
    native = transcriber_for().transcribe_file(AUDIO / "test" / "test-000000.flac").text
    from scipy.signal import resample_poly

    sf.write(tmp_path / "cd.wav", resample_poly(samples, 441, 160).astype(np.float32), 44_100)
    resampled = transcriber_for().transcribe_file(tmp_path / "cd.wav").text
    assert resampled.split()[:3] == native.split()[:3]


def test_audio_files_expands_folders_and_refuses_empty_ones(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.flac").write_bytes(b"")
    (tmp_path / "a" / "notes.txt").write_text("not audio")
    (tmp_path / "empty").mkdir()
    assert audio_files([tmp_path / "a"]) == [tmp_path / "a" / "x.flac"]
    with pytest.raises(ValueError, match="holds no audio file"):
        audio_files([tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        audio_files([tmp_path / "missing.wav"])


def test_command_reports_bad_files_in_one_line_each_and_transcribes_the_rest(tmp_path, capsys, clip):
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "silence-free-empty.flac", np.zeros(0, np.float32), RATE)
    (tmp_path / "garbage.wav").write_bytes(b"RIFF not really a wave file")
    out_json = tmp_path / "out.json"
    status = main(["transcribe", "--model", str(PACKED), str(tmp_path / "empty.wav"), str(clip),
                   str(tmp_path / "silence-free-empty.flac"), str(tmp_path / "garbage.wav"), "--json", str(out_json),
                   "--chunk-seconds", "5"])
    out, err = capsys.readouterr()
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("hf-binarize transcribe: error:")]
    assert len(errors) == 4, err  # three files, then the count
    assert "empty.wav" in errors[0] and "garbage.wav" in errors[2] and "3 of 4 files" in errors[3]
    assert f"{clip}: " in out
    record = json.loads(out_json.read_text())
    assert [r["path"] for r in record] == [str(clip)] and record[0]["segments"]


def test_command_refuses_a_folder_without_audio(tmp_path, capsys):
    assert main(["transcribe", "--model", str(PACKED), str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip().endswith(f"{tmp_path} holds no audio file (.wav, .flac, .mp3, .ogg, "
                                                    ".opus, .aiff, .aif)")
