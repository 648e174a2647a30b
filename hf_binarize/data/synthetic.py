"""A synthetic English speech corpus: espeak-ng and flite voices reading sentences of several text sources,
through a seeded augmentation chain.

Usage::

    hf-binarize make-dataset --out corpus --seed 0 --hours 2 --workers 2     # build_corpus, from the command line
    load_speech_dataset("corpus", split="test_unseen")      # a save_to_disk folder

Text (:mod:`hf_binarize.data.text_sources`): by default WordNet glosses and examples, GCIDE definitions and
quotations (each a seeded sample of ``max_per_source``), the fortunes-min cookies and the 720 Harvard sentences,
filtered to what a speaker reads as its normalised transcript and deduplicated by normalised text. Each split reads
its own sentences: a sentence (by normalised text) is never in two splits.

Voices (:mod:`hf_binarize.data.voices`): espeak-ng accents x variants and flite voices. A few accents, variants and
flite voices, drawn from the seed, are held out: ``train``, ``validation`` and ``test`` use only speakers made of the
others, ``test_unseen`` only held-out ones, so it measures generalisation to voices never trained on. A
``flite_fraction`` of each split's utterances is spoken by flite (its few voices would otherwise be drowned by the
hundreds of espeak-ng combinations).

Per utterance, drawn from the seed: the split (deterministic interleaving by ``split_fractions``), the next sentence
of that split (cycling: past its last sentence each returns, in other voices), a speaker of that split, the speaking
rate (words per minute; 175 is both engines' default), the pitch (0-99) and the augmentation
(:mod:`hf_binarize.data.augment`: speed perturbation, synthetic room reverberation, white, pink or babble noise at
0-30 dB SNR, telephone band, random gain, clipping). Babble is other sentences of the same split in other voices of
the same split. The audio is resampled to ``sample_rate`` (:func:`hf_binarize.data.audio.resample`) and stored as
16-bit PCM WAV bytes.

Determinism: every random choice comes from numpy generators seeded by ``seed`` in plan order, in the main process;
the workers only run the synthesisers (deterministic for fixed arguments) and numpy with a per-utterance seed. The
same seed and options therefore give byte-identical WAV files and splits, whatever the worker count; the whole
output folder is byte-identical too (same synthesisers, text packages, numpy, scipy and libsndfile assumed).
With ``hours``, utterances are kept in plan order until their total duration reaches it, so a smaller corpus is a
prefix of a larger one with the same seed.

Output: a ``datasets`` ``save_to_disk`` folder (a DatasetDict with the splits ``train``, ``validation``, ``test``,
``test_unseen``; a split that got no utterance, as with a zero fraction, is left out) plus ``corpus.json`` (options,
speakers, sentence counts per split and source). The folder appears only when complete: it is written beside its
final name and renamed. Columns: ``id``, ``audio`` (``Audio(decode=False)``: WAV ``bytes`` and a ``path`` name),
``text``, ``sentence_id`` (``wordnet:012345``: source and position there), ``source``, ``engine``, ``voice`` (the
speaker: ``accent+variant`` for espeak-ng, ``flite:NAME``), ``accent``, ``accent_name``, ``variant``, ``gender``,
``rate``, ``pitch``, ``speed``, ``rt60`` and ``drr_db`` (null without reverberation), ``noise``
(``none``/``white``/``pink``/``babble``), ``snr_db`` (null when clean), ``telephone``, ``peak_dbfs``, ``clip_db``
(null when not clipped), ``duration`` (seconds). Audio is spooled to disk as it is made, so memory stays flat
whatever ``hours`` is.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import multiprocessing
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import replaced_folder
from .audio import resample
from .augment import Augmentation, AugmentConfig, augment, colored_noise, draw_augmentation
from .text_sources import SOURCES, Sentence, load_sentences
from .voices import ACCENTS, ENGINES, FLITE_SPEAKERS, FLITE_VOICES, VARIANTS, Voice, check_voices, render

if TYPE_CHECKING:
    import datasets

__all__ = ["ACCENTS", "FLITE_VOICES", "SPLITS", "SUMMARY_FILE", "VARIANTS", "BuildReport", "CorpusConfig",
           "Utterance", "build_corpus", "colored_noise", "is_synthetic_corpus", "load_harvard_sentences",
           "plan_corpus", "speaker_pools", "synthesize"]

SPLITS = ("train", "validation", "test", "test_unseen")
SUMMARY_FILE = "corpus.json"
"""What :func:`build_corpus` writes beside the splits: the options and what was made."""


@dataclass(frozen=True)
class CorpusConfig:
    """What to synthesise; every field is recorded in ``corpus.json``. Set exactly one of ``hours`` and
    ``utterances``. ``split_fractions`` (train, validation, test, test_unseen) apportion both the sentences and the
    utterances."""

    seed: int = 0
    hours: float | None = None
    utterances: int | None = None
    sample_rate: int = 16000
    text_sources: tuple[str, ...] = ("wordnet", "gcide", "fortunes", "harvard")
    max_per_source: int | None = 25000
    engines: tuple[str, ...] = ENGINES
    flite_fraction: float = 0.3
    rate_range: tuple[int, int] = (130, 210)
    pitch_range: tuple[int, int] = (25, 75)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    split_fractions: tuple[float, float, float, float] = (0.8, 0.1, 0.05, 0.05)
    unseen_accents: int = 1
    unseen_variants: int = 4
    unseen_flite: int = 1

    def __post_init__(self) -> None:
        if (self.hours is None) == (self.utterances is None):
            raise ValueError("set exactly one of hours and utterances")
        if (self.hours is not None and self.hours <= 0) or (self.utterances is not None and self.utterances < 1):
            raise ValueError("hours and utterances must be positive")
        if len(self.split_fractions) != len(SPLITS) or min(self.split_fractions) < 0 or \
                not math.isclose(sum(self.split_fractions), 1.0):
            raise ValueError(f"split_fractions must be {len(SPLITS)} non-negative numbers adding up to 1")
        unknown = [engine for engine in self.engines if engine not in ENGINES]
        if unknown or not self.engines:
            raise ValueError(f"engines must be some of {ENGINES}, got {list(self.engines)}")
        unknown = [source for source in self.text_sources if source not in SOURCES]
        if unknown or not self.text_sources:
            raise ValueError(f"text_sources must be some of {sorted(SOURCES)}, got {list(self.text_sources)}")
        held = (self.unseen_accents + self.unseen_variants if "espeak-ng" in self.engines else 0) + \
            (self.unseen_flite if "flite" in self.engines else 0)
        if self.split_fractions[3] > 0 and held == 0:
            raise ValueError("test_unseen needs unseen_accents, unseen_variants or unseen_flite > 0")
        if not (0 <= self.unseen_accents < len(ACCENTS) and 0 <= self.unseen_variants < len(VARIANTS)
                and 0 <= self.unseen_flite < len(FLITE_SPEAKERS)):
            raise ValueError("unseen_accents, unseen_variants and unseen_flite must leave some voices for training")
        if not 0.0 <= self.flite_fraction <= 1.0:
            raise ValueError("flite_fraction must be in [0, 1]")


@dataclass(frozen=True)
class Utterance:
    """One planned utterance: everything needed to render it, and its metadata columns."""

    id: str
    split: str
    sentence: Sentence
    voice: Voice
    rate: int
    pitch: int
    augmentation: Augmentation = field(default_factory=Augmentation)
    babble: tuple[tuple[Voice, str], ...] = ()

    @property
    def text(self) -> str:
        return self.sentence.text


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
    return [sentence.text for sentence in load_sentences(["harvard"])]


def speaker_pools(config: CorpusConfig) -> dict[str, list[Voice]]:
    """The speakers of each split: held-out accents, variants and flite voices only in ``test_unseen``."""
    generator = np.random.default_rng([config.seed, 1])
    accents, variants, flite = list(ACCENTS), list(VARIANTS), list(FLITE_SPEAKERS)
    held_accents = {accents[i] for i in generator.choice(len(accents), config.unseen_accents, replace=False)}
    held_variants = {variants[i] for i in generator.choice(len(variants), config.unseen_variants, replace=False)}
    # Drawn last so that an espeak-ng-only corpus holds out the same espeak-ng voices as before flite was added.
    held_flite = {name for i in generator.choice(len(flite), config.unseen_flite, replace=False)
                  for name in FLITE_SPEAKERS[flite[i]]}
    seen, unseen = [], []
    if "espeak-ng" in config.engines:
        for accent in accents:
            for variant in variants:
                held = accent in held_accents or variant in held_variants
                (unseen if held else seen).append(Voice("espeak-ng", f"{accent}+{variant}"))
    if "flite" in config.engines:
        for name in FLITE_VOICES:
            (unseen if name in held_flite else seen).append(Voice("flite", name))
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


def _pick_voice(voices: list[Voice], flite_fraction: float, generator: np.random.Generator) -> Voice:
    by_engine = {engine: [voice for voice in voices if voice.engine == engine] for engine in ENGINES}
    # Two draws whatever the outcome, so the sequence of choices does not depend on which engines a split has.
    use_flite = generator.random() < flite_fraction
    pick = generator.random()
    pool = by_engine["flite"] if (use_flite and by_engine["flite"]) or not by_engine["espeak-ng"] \
        else by_engine["espeak-ng"]
    return pool[int(pick * len(pool))]


def plan_corpus(config: CorpusConfig, sentences: Sequence[Sentence]) -> Iterator[Utterance]:
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
        sentence = sentences[texts[split][number % len(texts[split])]]
        voice = _pick_voice(speakers[split], config.flite_fraction, generator)
        rate = int(generator.integers(config.rate_range[0], config.rate_range[1] + 1))
        pitch = int(generator.integers(config.pitch_range[0], config.pitch_range[1] + 1))
        augmentation = draw_augmentation(config.augment, generator)
        babble = tuple(
            (_pick_voice(speakers[split], config.flite_fraction, generator),
             sentences[texts[split][int(generator.integers(len(texts[split])))]].text)
            for _ in range(augmentation.babble_talkers))
        yield Utterance(id=f"{split}-{number:06d}", split=split, sentence=sentence, voice=voice, rate=rate,
                        pitch=pitch, augmentation=augmentation, babble=babble)


def _spoken(voice: Voice, text: str, rate: int, pitch: int, sample_rate: int) -> np.ndarray:
    samples, rate_hz = render(voice, text, speed=rate / 175, pitch=pitch)
    return resample(samples, rate_hz, sample_rate).astype(np.float64)


def synthesize(utterance: Utterance, sample_rate: int) -> tuple[bytes, int]:
    """Renders and augments one utterance: returns its 16-bit WAV bytes and its number of samples."""
    import soundfile as sf

    speech = _spoken(utterance.voice, utterance.text, utterance.rate, utterance.pitch, sample_rate)

    def babble(talkers: int, generator: np.random.Generator) -> np.ndarray:
        # Each talker repeats to the clip's length from a random start, so the babble never falls silent.
        mix = np.zeros(speech.shape[0])
        for voice, text in utterance.babble[:talkers]:
            other = _spoken(voice, text, 175, 50, sample_rate)
            other = np.roll(np.resize(other, speech.shape[0]), int(generator.integers(max(1, speech.shape[0]))))
            mix += other / max(float(np.sqrt(np.mean(other**2))), 1e-12)
        return mix

    speech = augment(speech, sample_rate, utterance.augmentation, babble)
    buffer = io.BytesIO()
    sf.write(buffer, speech, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue(), int(speech.shape[0])


def _synthesize_task(task: tuple[Utterance, int]) -> tuple[bytes, int]:
    return synthesize(*task)


def check_espeak() -> None:
    """Raises ``RuntimeError`` when espeak-ng or one of the voices this module uses is missing."""
    try:
        check_voices(speaker_pools(CorpusConfig(utterances=1, engines=("espeak-ng",), unseen_accents=0,
                                                unseen_variants=0, split_fractions=(1.0, 0.0, 0.0, 0.0)))["train"])
    except ValueError as error:
        raise RuntimeError(f"{error} (scripts/install_system_deps.sh installs espeak-ng)") from None


def _metadata_row(utterance: Utterance, samples: int, sample_rate: int) -> dict:
    voice, augmentation = utterance.voice, utterance.augmentation
    return {"id": utterance.id, "text": utterance.text, "sentence_id": utterance.sentence.id,
            "source": utterance.sentence.source, "engine": voice.engine, "voice": str(voice),
            "accent": voice.accent, "accent_name": voice.accent_name, "variant": voice.variant,
            "gender": voice.gender, "rate": utterance.rate, "pitch": utterance.pitch, "speed": augmentation.speed,
            "rt60": augmentation.rt60, "drr_db": augmentation.drr_db, "noise": augmentation.noise,
            "snr_db": augmentation.snr_db, "telephone": augmentation.telephone,
            "peak_dbfs": augmentation.peak_dbfs, "clip_db": augmentation.clip_db,
            "duration": round(samples / sample_rate, 4)}


def _features() -> datasets.Features:
    import datasets

    strings = ("text", "sentence_id", "source", "engine", "voice", "accent", "accent_name", "variant", "gender",
               "noise")
    floats = ("speed", "rt60", "drr_db", "snr_db", "peak_dbfs", "clip_db", "duration")
    return datasets.Features({
        "id": datasets.Value("string"),
        "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
        **{name: datasets.Value("string") for name in strings},
        "rate": datasets.Value("int32"), "pitch": datasets.Value("int32"),
        **{name: datasets.Value("float32") for name in floats},
        "telephone": datasets.Value("bool"),
    })


def is_synthetic_corpus(source: str | os.PathLike) -> bool:
    """Whether ``source`` is a folder :func:`build_corpus` made (it holds :data:`SUMMARY_FILE`)."""
    return (Path(source) / SUMMARY_FILE).is_file()


def build_corpus(out_dir: str | os.PathLike, config: CorpusConfig, *, workers: int = 2,
                 block_size: int = 64, overwrite: bool = False, progress: bool = False) -> BuildReport:
    """Synthesises the corpus ``config`` describes into ``out_dir`` (see the module docstring) with ``workers``
    processes, ``block_size`` utterances at a time, and returns what was made and how fast. Everything that can
    fail early (a missing text package, a voice an engine lacks, an existing folder) fails before any audio is
    made; ``out_dir`` is only ever the complete corpus, never a partial one."""
    import datasets
    import pyarrow as pa

    # Imported here, before the pool forks, so that each worker inherits them rather than spending seconds on
    # importing them itself.
    import scipy.signal  # noqa: F401
    import soundfile  # noqa: F401
    from tqdm.auto import tqdm

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True / --overwrite)")
    speakers = speaker_pools(config)
    check_voices(sorted({voice for pool in speakers.values() for voice in pool}))
    schema = _features().arrow_schema
    report = BuildReport(out, dict.fromkeys(SPLITS, 0), dict.fromkeys(SPLITS, 0.0))
    target_seconds = None if config.hours is None else config.hours * 3600
    start = time.perf_counter()

    # The staging folder comes first, so that an unwritable place fails before seconds of text reading.
    with replaced_folder(out) as staging, tempfile.TemporaryDirectory(dir=staging, prefix=".spool-") as spool:
        sentences = load_sentences(config.text_sources, max_per_source=config.max_per_source, seed=config.seed)
        bar = tqdm(total=round(target_seconds) if target_seconds else config.utterances, disable=not progress,
                   unit=" s audio" if target_seconds else " utt", dynamic_ncols=True)
        spools = {split: pa.ipc.new_stream(os.path.join(spool, f"{split}.arrow"), schema) for split in SPLITS}
        plan = plan_corpus(config, sentences)
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
                    bar.update(round(samples / config.sample_rate) if target_seconds else 1)
                    if target_seconds is not None and sum(report.audio_seconds.values()) >= target_seconds:
                        done = True
                        break
                done = done or (config.utterances is not None
                                and sum(report.utterances.values()) >= config.utterances)
                for split, split_rows in rows.items():
                    if split_rows:
                        spools[split].write_table(pa.Table.from_pylist(split_rows, schema=schema))
        bar.close()
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
        datasets.DatasetDict(splits).save_to_disk(str(staging))

        texts = sentence_splits(config, len(sentences))
        summary = {
            "config": asdict(config),
            "text_sources": {name: sum(sentence.source == name for sentence in sentences)
                             for name in config.text_sources},
            "splits": {split: {"utterances": report.utterances[split],
                               "hours": round(report.audio_seconds[split] / 3600, 4),
                               "sentences": len(texts[split]),
                               "sentences_by_source": dict(Counter(sentences[i].source for i in texts[split])),
                               "speakers": [str(voice) for voice in speakers[split]]}
                       for split in SPLITS},
        }
        (staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    report.wall_seconds = time.perf_counter() - start
    return report

