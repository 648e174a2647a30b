"""Writes the independent evaluation set: sentences from the Python standard library's docstrings, read by the
festival synthesiser, an engine and a text domain that the training corpus never uses (EVALUATION ONLY: nothing
here may guide a training or tuning choice).

    python scripts/make_independent_eval.py --out runs/independent --corpus runs/corpus --count 150

Text: the docstrings of the modules in :data:`MODULES` (this interpreter's standard library, so the set depends on
the Python version; the sentences are stored in the output), cut into sentences and kept only when
:func:`hf_binarize.data.text_sources.readable` keeps them, as for the training text; sentences whose normalised
form occurs anywhere in ``--corpus`` are dropped. A seeded sample of ``--count`` is read alternately by festival's
``ked_diphone`` (festvox-kdlpc16k: an American male speaker no training voice has) and ``cmu_us_slt_arctic_hts``
(festvox-us-slt-hts: the speaker of flite's slt, through a different synthesis method), without noise or other
augmentation, resampled to 16 kHz.

Output: an audiofolder, ``OUT/test/metadata.csv`` (``file_name``, ``text``, ``voice``) and the WAV files, which
``hf-binarize evaluate --dataset OUT --split test`` reads.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import inspect
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from hf_binarize.atomic import replaced_folder
from hf_binarize.data.audio import resample
from hf_binarize.data.text import normalize_transcript
from hf_binarize.data.text_sources import readable

MODULES = ("argparse", "bisect", "calendar", "collections", "contextlib", "csv", "datetime", "decimal", "difflib",
           "email.message", "fractions", "functools", "glob", "gzip", "heapq", "http.client", "inspect",
           "itertools", "json", "logging", "mailbox", "os", "pathlib", "pickle", "queue", "random", "sched",
           "shutil", "smtplib", "socket", "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap",
           "threading", "turtle", "unittest", "urllib.parse", "uuid", "wave", "zipfile")
VOICES = ("ked_diphone", "cmu_us_slt_arctic_hts")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_CALL = re.compile(r"\w\(")  # "enumerate()": a name, not prose


def docstring_sentences() -> list[str]:
    """Readable sentences of the docstrings of :data:`MODULES` and their public classes and functions, in a
    stable order, without duplicates."""
    seen, sentences = set(), []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # turtle needs tkinter, which some Pythons lack
            continue
        objects = [module] + [value for key, value in sorted(vars(module).items()) if not key.startswith("_")
                              and (inspect.isclass(value) or inspect.isfunction(value))
                              and getattr(value, "__module__", None) == module.__name__]
        for value in objects:
            for paragraph in (inspect.getdoc(value) or "").split("\n\n"):
                # Indented lines are examples and tables, not prose.
                if any(line.startswith((" ", ">>>")) for line in paragraph.splitlines()):
                    continue
                for candidate in _SENTENCE_END.split(" ".join(paragraph.split())):
                    sentence = None if _CALL.search(candidate) else readable(candidate)
                    key = sentence and normalize_transcript(sentence)
                    if key and key not in seen:
                        seen.add(key)
                        sentences.append(sentence)
    return sentences


def corpus_texts(corpus: Path) -> set[str]:
    import datasets

    loaded = datasets.load_from_disk(str(corpus))
    return {normalize_transcript(text) for split in loaded.values() for text in split["text"]}


def speak(text: str, voice: str, rate: int = 16000) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as output:
        subprocess.run(["text2wave", "-o", output.name, "-otype", "riff", "-eval", f"(voice_{voice})"],
                       input=text.encode(), capture_output=True, check=True, timeout=120)
        samples, source_rate = sf.read(output.name, dtype="float32")
    return resample(samples, source_rate, rate)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced when complete)")
    parser.add_argument("--corpus", type=Path, action="append", default=[],
                        help="training corpus whose sentences are excluded (repeatable)")
    parser.add_argument("--count", type=int, default=150, help="utterances (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sentence sample (default 0)")
    args = parser.parse_args(argv)
    if shutil.which("text2wave") is None:
        parser.exit(1, "needs festival: apt-get install festival festvox-kdlpc16k festvox-us-slt-hts\n")

    sentences = docstring_sentences()
    excluded = set().union(*(corpus_texts(corpus) for corpus in args.corpus)) if args.corpus else set()
    kept = [sentence for sentence in sentences if normalize_transcript(sentence) not in excluded]
    chosen = np.random.default_rng(args.seed).choice(len(kept), min(args.count, len(kept)), replace=False)
    print(f"{len(sentences)} docstring sentences, {len(sentences) - len(kept)} found in the corpus and dropped; "
          f"reading {len(chosen)}", file=sys.stderr)
    with replaced_folder(args.out) as staging:
        folder = staging / "test"
        folder.mkdir()
        with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as metadata:
            writer = csv.writer(metadata)
            writer.writerow(["file_name", "text", "voice"])
            for number, index in enumerate(sorted(chosen.tolist())):
                voice = VOICES[number % len(VOICES)]
                name = f"independent-{number:04d}.wav"
                sf.write(folder / name, speak(kept[index], voice), 16000, subtype="PCM_16")
                writer.writerow([name, kept[index], voice])


if __name__ == "__main__":
    main()
