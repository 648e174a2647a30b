"""The synthetic speakers of the corpus: espeak-ng accents x voice variants, and flite voices.

A speaker is a :class:`Voice`, an engine and the engine's name for it: ``espeak-ng`` voices are an accent
(:data:`ACCENTS`) combined with a variant (:data:`VARIANTS`, timbre and gender), e.g. ``en-gb-scotland+f3``;
``flite`` voices are :data:`FLITE_VOICES` (``awb``, ``rms`` and ``slt`` are clustergen models of three CMU ARCTIC
speakers, ``kal16`` and ``kal`` diphone voices, ``kal`` at 8 kHz). The festival synthesiser is not used here: it is
reserved for independent evaluation.

:func:`render` runs the engine with a speaking-rate factor (espeak-ng ``-s`` words per minute, flite
``duration_stretch``) and a pitch (espeak-ng ``-p`` 0-99; flite's ``int_f0_target_mean`` in Hz, which only its
diphone voices follow), and returns float32 samples and their rate. Both engines are deterministic for fixed
arguments.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

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

FLITE_VOICES: dict[str, str] = {"awb": "male", "rms": "male", "slt": "female", "kal16": "male", "kal": "male"}
"""flite voices (``flite -lv``) and their speakers' gender: awb Scottish English, rms and slt American (CMU ARCTIC),
kal16 and kal an American diphone voice (16 and 8 kHz)."""

FLITE_SPEAKERS: dict[str, tuple[str, ...]] = {"awb": ("awb",), "rms": ("rms",), "slt": ("slt",),
                                               "kal": ("kal16", "kal")}
"""flite voices by recorded speaker: kal16 and kal are one speaker at two sampling rates, so they are held out
together, or a held-out voice would not be unseen."""

ENGINES = ("espeak-ng", "flite")


class UnknownVoiceError(ValueError):
    """The engine does not have the voice asked for (or the engine is not installed); one line says which."""


@dataclass(frozen=True, order=True)
class Voice:
    """A speaker: ``engine`` and the engine's voice name (``en-us+f3`` for espeak-ng, ``awb`` for flite)."""

    engine: str
    name: str

    @property
    def accent(self) -> str:
        return self.name.split("+")[0] if self.engine == "espeak-ng" else f"flite-{self.name}"

    @property
    def variant(self) -> str:
        return self.name.split("+")[1] if self.engine == "espeak-ng" else self.name

    @property
    def gender(self) -> str:
        return VARIANTS[self.variant] if self.engine == "espeak-ng" else FLITE_VOICES[self.name]

    @property
    def accent_name(self) -> str:
        return ACCENTS[self.accent] if self.engine == "espeak-ng" else f"flite {self.name}"

    def __str__(self) -> str:
        return self.name if self.engine == "espeak-ng" else f"flite:{self.name}"


@cache
def _installed_voices(engine: str) -> frozenset[str]:
    if shutil.which(engine) is None:
        package = "espeak-ng" if engine == "espeak-ng" else "flite"
        raise UnknownVoiceError(f"{engine} is not installed: apt-get install {package}")
    if engine == "flite":
        listing = subprocess.run(["flite", "-lv"], capture_output=True, text=True, check=True).stdout
        return frozenset(listing.split(":", 1)[1].split())
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    variants = {line.split()[4].removeprefix("!v/") for line in listing.splitlines()[1:] if line.strip()}
    return frozenset(f"{accent}+{variant}" for accent in ACCENTS for variant in variants)


def check_voices(voices: list[Voice]) -> None:
    """Raises :class:`UnknownVoiceError` naming the first voice its engine lacks (flite silently falls back to
    its default voice for an unknown name, hence the check before rendering)."""
    for voice in voices:
        if voice.engine not in ENGINES:
            raise UnknownVoiceError(f"unknown engine {voice.engine!r} for voice {voice.name!r}; engines: {ENGINES}")
        if voice.name not in _installed_voices(voice.engine):
            raise UnknownVoiceError(f"{voice.engine} has no voice {voice.name!r}")


def render(voice: Voice, text: str, *, speed: float = 1.0, pitch: int = 50) -> tuple[np.ndarray, int]:
    """Synthesises ``text``: float32 samples and their rate. ``speed`` scales the speaking rate (1 is the
    engine's default: 175 words per minute for espeak-ng), ``pitch`` is 0-99 (50 is each voice's default)."""
    import soundfile as sf

    if voice.engine == "espeak-ng":
        command = ["espeak-ng", "-b", "1", "-v", voice.name, "-s", str(round(175 * speed)), "-p", str(pitch),
                   "--stdout"]
        wav = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, check=True,
                             timeout=120).stdout
    elif voice.engine == "flite":
        # flite's diphone voices centre on about 105 Hz; pitch 0-99 maps to 80-130 Hz around it.
        # flite writes only to a file.
        with tempfile.NamedTemporaryFile(suffix=".wav") as output:
            command = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={1 / speed:.3f}",
                       "--setf", f"int_f0_target_mean={80 + pitch / 2:.1f}", "-t", text, "-o", output.name]
            subprocess.run(command, capture_output=True, check=True, timeout=120)
            wav = Path(output.name).read_bytes()
    else:
        raise UnknownVoiceError(f"unknown engine {voice.engine!r}")
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return samples, int(rate)
