"""A synthetic English speech corpus: espeak-ng voices and accents reading the Harvard sentences, with noise.

Usage::

    hf-binarize make-dataset --out corpus --seed 0 --hours 2 --workers 2     # build_corpus, from the command line
    load_speech_dataset("corpus", split="test_unseen")      # a save_to_disk folder

Text: the 720 Harvard sentences (IEEE 1969, treated as public domain), shipped in ``harvard_sentences.txt`` beside
this module, whose header gives the source. Each split reads its own sentences: texts never cross splits.

Voices: a speaker is an espeak-ng accent (:data:`ACCENTS`, eight English ones) combined with a voice variant
(:data:`VARIANTS`, which sets timbre and gender), e.g. ``en-gb-scotland+f3``. A few accents and variants, drawn from
the seed, are held out: ``train``, ``validation`` and ``test`` use only speakers made of the others, ``test_unseen``
only speakers with a held-out accent or variant, so it measures generalisation to voices never trained on.

Per utterance, drawn from the seed: the split (deterministic interleaving by ``split_fractions``), the next sentence
of that split (cycling: past its last sentence each returns, in other voices), a speaker of that split, the speaking rate (words per minute, espeak-ng ``-s``), the pitch (0-99,
``-p``), the noise and the output level. The noise is additive white or pink noise at a uniform random SNR (a
``clean_fraction`` of utterances get none), generated with numpy: white is Gaussian; pink is white noise shaped in
the frequency domain by 1/sqrt(f), i.e. a 1/f power spectrum (-3 dB per octave), DC removed. The SNR is
``10 log10(P_speech / P_noise)`` with powers averaged over the whole clip, espeak-ng's short leading and trailing
silences included. The mix is then scaled to a random peak level. espeak-ng renders at 22050 Hz; the audio is
resampled to ``sample_rate`` (:func:`hf_binarize.data.audio.resample`) and stored as 16-bit PCM WAV bytes.

Determinism: every random choice comes from numpy generators seeded by ``seed`` in plan order, in the main process;
the workers only run espeak-ng (deterministic for fixed arguments) and numpy with a per-utterance noise seed. The
same seed and options therefore give byte-identical WAV files and splits, whatever the worker count; the whole
output folder is byte-identical too (same espeak-ng, numpy, scipy and libsndfile assumed).
With ``hours``, utterances are kept in plan order until their total duration reaches it.

Output: a ``datasets`` ``save_to_disk`` folder (a DatasetDict with the splits ``train``, ``validation``, ``test``,
``test_unseen``; a split that got no utterance, as with a zero fraction, is left out) plus ``corpus.json`` (options, speakers and sentence counts per split). Columns: ``id``,
``audio`` (``Audio(decode=False)``: WAV ``bytes`` and a ``path`` name), ``text``, ``sentence_id`` (``H07-03``: list 7,
sentence 3), ``voice`` (the speaker, ``accent+variant``), ``accent``, ``accent_name``, ``variant``, ``gender``,
``rate``, ``pitch``, ``noise`` (``none``/``white``/``pink``), ``snr_db`` (null when clean), ``peak_dbfs``,
``duration`` (seconds). Audio is spooled to disk as it is made, so memory stays flat whatever ``hours`` is.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from .audio import resample

if TYPE_CHECKING:
    import datasets

ACCENTS: dict[str, str] = {
    "en-us": "American",
    "en-us-nyc": "New York City",
    "en-gb": "British",
    "en-gb-x-rp": "Received Pronunciation",
    "en-gb-scotland": "Scottish",
    "en-gb-x-gbclan": "Lancastrian",
    "en-gb-x-gbcwmd": "West Midlands",
    "en-029": "Caribbean",
}
"""espeak-ng English voices (``espeak-ng --voices=en``) and the accent each renders."""

VARIANTS: dict[str, str] = {
    **{f"f{i}": "female" for i in range(1, 6)},
    **dict.fromkeys(("Alicia", "Andrea", "Annie", "anika", "aunty", "belinda", "linda", "steph", "steph2"), "female"),
    **{f"m{i}": "male" for i in range(1, 9)},
    **{name: "male" for name in ("klatt", "klatt2", "klatt3", "klatt4")},
    **dict.fromkeys(("adam", "Andy", "benjamin", "boris", "david", "edward", "john", "max", "paul", "rob",
                     "robert", "travis", "victor"), "male"),
}
"""espeak-ng voice variants (``espeak-ng --voices=variant``, files ``!v/NAME``) with the gender their files give;
the novelty ones (whisper, croak, robots, announcer, ...) are left out."""

SPLITS = ("train", "validation", "test", "test_unseen")
NoiseKind = Literal["none", "white", "pink"]


@dataclass(frozen=True)
class CorpusConfig:
    """What to synthesise; every field is recorded in ``corpus.json``. Set exactly one of ``hours`` and
    ``utterances``. ``split_fractions`` (train, validation, test, test_unseen) apportion both the sentences and the
    utterances."""

    seed: int = 0
    hours: float | None = None
    utterances: int | None = None
    sample_rate: int = 16000
    rate_range: tuple[int, int] = (130, 210)
    pitch_range: tuple[int, int] = (25, 75)
    snr_db_range: tuple[float, float] = (5.0, 30.0)
    clean_fraction: float = 0.1
    peak_dbfs_range: tuple[float, float] = (-18.0, -1.0)
    split_fractions: tuple[float, float, float, float] = (0.8, 0.1, 0.05, 0.05)
    unseen_accents: int = 1
    unseen_variants: int = 4

    def __post_init__(self) -> None:
        if (self.hours is None) == (self.utterances is None):
            raise ValueError("set exactly one of hours and utterances")
        if (self.hours is not None and self.hours <= 0) or (self.utterances is not None and self.utterances < 1):
            raise ValueError("hours and utterances must be positive")
        if len(self.split_fractions) != len(SPLITS) or min(self.split_fractions) < 0 or \
                not math.isclose(sum(self.split_fractions), 1.0):
            raise ValueError(f"split_fractions must be {len(SPLITS)} non-negative numbers adding up to 1")
        if self.split_fractions[3] > 0 and self.unseen_accents + self.unseen_variants == 0:
            raise ValueError("test_unseen needs unseen_accents or unseen_variants > 0")
        if not (0 <= self.unseen_accents < len(ACCENTS) and 0 <= self.unseen_variants < len(VARIANTS)):
            raise ValueError("unseen_accents and unseen_variants must leave some accents and variants for training")
        if not 0.0 <= self.clean_fraction <= 1.0:
            raise ValueError("clean_fraction must be in [0, 1]")


@dataclass(frozen=True)
class Utterance:
    """One planned utterance: everything needed to render it, and its metadata columns."""

    id: str
    split: str
    text: str
    sentence_id: str
    accent: str
    variant: str
    rate: int
    pitch: int
    noise: NoiseKind
    snr_db: float | None
    peak_dbfs: float
    noise_seed: int

    @property
    def voice(self) -> str:
        """The espeak-ng voice argument, which is also the speaker id."""
        return f"{self.accent}+{self.variant}"


@dataclass
class BuildReport:
    """What :func:`build_corpus` made and how fast."""

    out_dir: Path
    utterances: dict[str, int] = field(default_factory=dict)
    audio_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def throughput(self) -> float:
        """Seconds of audio made per second of wall time, writing included."""
        return sum(self.audio_seconds.values()) / self.wall_seconds if self.wall_seconds else 0.0


def load_harvard_sentences() -> list[str]:
    """The 720 Harvard sentences in list order (see ``harvard_sentences.txt`` for source and licence)."""
    text = resources.files(__package__).joinpath("harvard_sentences.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def speaker_pools(config: CorpusConfig) -> dict[str, list[tuple[str, str]]]:
    """The (accent, variant) speakers of each split: held-out accents and variants only in ``test_unseen``."""
    generator = np.random.default_rng([config.seed, 1])
    accents, variants = list(ACCENTS), list(VARIANTS)
    held_accents = {accents[i] for i in generator.choice(len(accents), config.unseen_accents, replace=False)}
    held_variants = {variants[i] for i in generator.choice(len(variants), config.unseen_variants, replace=False)}
    seen = [(a, v) for a in accents for v in variants if a not in held_accents and v not in held_variants]
    unseen = [(a, v) for a in accents for v in variants if a in held_accents or v in held_variants]
    return {"train": seen, "validation": seen, "test": seen, "test_unseen": unseen}


def sentence_splits(config: CorpusConfig, count: int) -> dict[str, list[int]]:
    """Disjoint sentence indices per split, in a seeded random order, sized by ``split_fractions`` (at least one
    sentence for every split with a non-zero fraction)."""
    order = np.random.default_rng([config.seed, 2]).permutation(count).tolist()
    sizes = [max(1, round(count * fraction)) if fraction > 0 else 0 for fraction in config.split_fractions[1:]]
    if sum(sizes) >= count:
        raise ValueError(f"{count} sentences are too few for the split fractions {config.split_fractions}")
    splits, start = {}, count - sum(sizes)
    splits["train"] = order[:start]
    for name, size in zip(SPLITS[1:], sizes, strict=True):
        splits[name] = order[start : start + size]
        start += size
    return splits


def plan_corpus(config: CorpusConfig, sentences: Sequence[str]) -> Iterator[Utterance]:
    """The endless, seed-determined sequence of utterances that :func:`build_corpus` renders a prefix of."""
    generator = np.random.default_rng([config.seed, 3])
    speakers = speaker_pools(config)
    texts = sentence_splits(config, len(sentences))
    weights = np.asarray(config.split_fractions, dtype=np.float64)
    # Smooth weighted round-robin: every prefix of the plan holds the splits in proportion, even a short one.
    credit = np.zeros(len(SPLITS))
    counts = dict.fromkeys(SPLITS, 0)
    while True:
        credit += weights
        choice = int(np.argmax(credit))
        credit[choice] -= weights.sum()
        split = SPLITS[choice]
        number = counts[split]
        counts[split] += 1
        sentence = texts[split][number % len(texts[split])]
        accent, variant = speakers[split][int(generator.integers(len(speakers[split])))]
        rate = int(generator.integers(config.rate_range[0], config.rate_range[1] + 1))
        pitch = int(generator.integers(config.pitch_range[0], config.pitch_range[1] + 1))
        clean = bool(generator.random() < config.clean_fraction)
        noise: NoiseKind = "none" if clean else ("white", "pink")[int(generator.integers(2))]
        snr_db = None if clean else round(float(generator.uniform(*config.snr_db_range)), 2)
        peak_dbfs = round(float(generator.uniform(*config.peak_dbfs_range)), 2)
        yield Utterance(id=f"{split}-{number:06d}", split=split, text=sentences[sentence],
                        sentence_id=f"H{sentence // 10 + 1:02d}-{sentence % 10 + 1:02d}", accent=accent,
                        variant=variant, rate=rate, pitch=pitch, noise=noise, snr_db=snr_db, peak_dbfs=peak_dbfs,
                        noise_seed=int(generator.integers(2**63)))


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


def synthesize(utterance: Utterance, sample_rate: int) -> tuple[bytes, int]:
    """Renders one utterance: returns its 16-bit WAV bytes and its number of samples."""
    import soundfile as sf

    rendered = subprocess.run(
        ["espeak-ng", "-b", "1", "-v", utterance.voice, "-s", str(utterance.rate), "-p", str(utterance.pitch),
         "--stdout"],
        input=utterance.text.encode("utf-8"), capture_output=True, check=True, timeout=120).stdout
    speech, rate = sf.read(io.BytesIO(rendered), dtype="float32")
    speech = resample(speech, rate, sample_rate).astype(np.float64)
    if utterance.noise != "none":
        noise = colored_noise(speech.shape[0], utterance.noise, np.random.default_rng(utterance.noise_seed))
        speech_power = float(np.mean(speech**2))
        speech = speech + noise * math.sqrt(speech_power / 10 ** (utterance.snr_db / 10))
    peak = float(np.max(np.abs(speech))) or 1.0
    speech *= 10 ** (utterance.peak_dbfs / 20) / peak
    buffer = io.BytesIO()
    sf.write(buffer, speech, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue(), int(speech.shape[0])


def _synthesize_task(task: tuple[Utterance, int]) -> tuple[bytes, int]:
    return synthesize(*task)


def check_espeak() -> None:
    """Raises ``RuntimeError`` when espeak-ng or one of the voices this module uses is missing."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (scripts/install_system_deps.sh installs it)")
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    missing = [variant for variant in VARIANTS if f"!v/{variant} " not in listing.replace("\n", " \n")]
    if missing:
        raise RuntimeError(f"this espeak-ng lacks the voice variants {missing}")


def _metadata_row(utterance: Utterance, samples: int, sample_rate: int) -> dict:
    return {"id": utterance.id, "text": utterance.text, "sentence_id": utterance.sentence_id,
            "voice": utterance.voice, "accent": utterance.accent, "accent_name": ACCENTS[utterance.accent],
            "variant": utterance.variant, "gender": VARIANTS[utterance.variant], "rate": utterance.rate,
            "pitch": utterance.pitch, "noise": utterance.noise, "snr_db": utterance.snr_db,
            "peak_dbfs": utterance.peak_dbfs, "duration": round(samples / sample_rate, 4)}


def _features() -> datasets.Features:
    import datasets

    return datasets.Features({
        "id": datasets.Value("string"),
        "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
        "text": datasets.Value("string"), "sentence_id": datasets.Value("string"),
        "voice": datasets.Value("string"), "accent": datasets.Value("string"),
        "accent_name": datasets.Value("string"), "variant": datasets.Value("string"),
        "gender": datasets.Value("string"), "rate": datasets.Value("int32"), "pitch": datasets.Value("int32"),
        "noise": datasets.Value("string"), "snr_db": datasets.Value("float32"),
        "peak_dbfs": datasets.Value("float32"), "duration": datasets.Value("float32"),
    })


def build_corpus(out_dir: str | os.PathLike, config: CorpusConfig, *, workers: int = 2,
                 block_size: int = 64, overwrite: bool = False) -> BuildReport:
    """Synthesises the corpus ``config`` describes into ``out_dir`` (see the module docstring) with ``workers``
    processes, ``block_size`` utterances at a time, and returns what was made and how fast."""
    import datasets
    import pyarrow as pa

    # Imported here, before the pool forks, so that each worker inherits them rather than spending seconds on
    # importing them itself.
    import scipy.signal  # noqa: F401
    import soundfile  # noqa: F401

    check_espeak()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True / --overwrite)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    features = _features()
    schema = features.arrow_schema
    report = BuildReport(out, dict.fromkeys(SPLITS, 0), dict.fromkeys(SPLITS, 0.0))
    target_seconds = None if config.hours is None else config.hours * 3600
    start = time.perf_counter()

    with tempfile.TemporaryDirectory(dir=out, prefix=".spool-") as spool:
        spools = {split: pa.ipc.new_stream(os.path.join(spool, f"{split}.arrow"), schema) for split in SPLITS}
        plan = plan_corpus(config, load_harvard_sentences())
        done = False
        with multiprocessing.Pool(workers) as pool:
            while not done:
                block = [next(plan) for _ in range(block_size)]
                if config.utterances is not None:
                    block = block[: config.utterances - sum(report.utterances.values())]
                rows: dict[str, list[dict]] = {split: [] for split in SPLITS}
                for utterance, (wav, samples) in zip(
                        block, pool.imap(_synthesize_task, [(u, config.sample_rate) for u in block]), strict=True):
                    row = _metadata_row(utterance, samples, config.sample_rate)
                    row["audio"] = {"bytes": wav, "path": f"{utterance.id}.wav"}
                    rows[utterance.split].append(row)
                    report.utterances[utterance.split] += 1
                    report.audio_seconds[utterance.split] += samples / config.sample_rate
                    if target_seconds is not None and sum(report.audio_seconds.values()) >= target_seconds:
                        done = True
                        break
                done = done or (config.utterances is not None
                                and sum(report.utterances.values()) >= config.utterances)
                for split, split_rows in rows.items():
                    if split_rows:
                        spools[split].write_table(pa.Table.from_pylist(split_rows, schema=schema))
        for writer in spools.values():
            writer.close()
        splits = {}
        # datasets cannot load an empty split back: a split without utterances is left out of the folder.
        for split in (split for split in SPLITS if report.utterances[split]):
            table = datasets.Dataset.from_file(os.path.join(spool, f"{split}.arrow"), in_memory=False)
            # The fingerprint would otherwise hash the random spool path into state.json.
            fingerprint = hashlib.sha256(repr((asdict(config), split)).encode()).hexdigest()[:16]
            splits[split] = table.cast_column("audio", datasets.Audio(sampling_rate=config.sample_rate,
                                                                      decode=False), new_fingerprint=fingerprint)
        datasets.DatasetDict(splits).save_to_disk(str(out))

    speakers = speaker_pools(config)
    texts = sentence_splits(config, len(load_harvard_sentences()))
    summary = {
        "config": asdict(config),
        "text_source": "Harvard sentences (IEEE 1969), hf_binarize/data/harvard_sentences.txt",
        "splits": {split: {"utterances": report.utterances[split],
                           "hours": round(report.audio_seconds[split] / 3600, 4),
                           "sentences": len(texts[split]),
                           "speakers": [f"{accent}+{variant}" for accent, variant in speakers[split]]}
                   for split in SPLITS},
    }
    (out / "corpus.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    report.wall_seconds = time.perf_counter() - start
    return report
