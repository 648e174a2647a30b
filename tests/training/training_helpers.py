"""Helpers of the training tests: a tiny espeak-ng corpus, tiny model options, the recipes loaded as modules.

A plain module rather than a conftest.py: the tests elsewhere import the top-level tests/conftest.py by the name
``conftest``, which a second conftest.py would shadow.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from hf_binarize.data.augment import AugmentConfig
from hf_binarize.data.synthetic import CorpusConfig, build_corpus, check_espeak
from hf_binarize.training import (
    ParakeetArchitecture,
    build_character_tokenizer,
    build_parakeet_model,
    build_processor,
)

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

# A model that memorises a dozen utterances in 300 steps of batch 6 (measured: WER 6-32% on them, 3 seeds).
TINY_MODEL = ["--hidden-size", "96", "--decoder-size", "96", "--layers", "2", "--heads", "2",
              "--subsampling-channels", "32", "--dropout", "0"]
# Smaller still, for tests of mechanics rather than learning.
MICRO_MODEL = ["--hidden-size", "32", "--decoder-size", "32", "--layers", "1", "--heads", "2",
               "--subsampling-channels", "8", "--mel-bins", "32"]
QUIET = ["--sample-steps", "0", "--logging-steps", "1"]


MEL_BINS = 32
TINY_SIZE = ParakeetArchitecture(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, subsampling_channels=8,
                      decoder_hidden_size=32)


def tiny_processor():
    return build_processor(build_character_tokenizer(), num_mel_bins=MEL_BINS)


def tiny_model(processor=None, seed: int = 0, family: str = "rnnt", size: ParakeetArchitecture = TINY_SIZE):
    return build_parakeet_model(processor or tiny_processor(), size, family=family, seed=seed)


def fake_examples(count: int, seed: int = 0, frames: tuple[int, int] = (40, 120)) -> list[dict]:
    """Rows shaped like SpeechPreparer's, with random features (no audio needed)."""
    generator = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        length = int(generator.integers(*frames))
        rows.append({"input_features": generator.standard_normal((length, MEL_BINS), dtype=np.float32),
                     "labels": generator.integers(2, 20, size=length // 8).tolist(), "length": length,
                     "text": f"utterance {index}"})
    return rows


@cache
def _corpus_problem() -> str | None:
    for module in ("datasets", "soundfile", "scipy"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is missing: the data extra is not installed (pip install -e '.[data]')"
    try:
        check_espeak()
    except (RuntimeError, OSError) as error:
        return f"{error} (scripts/install_system_deps.sh installs espeak-ng)"
    return None


needs_espeak = pytest.mark.skipif(_corpus_problem() is not None, reason=str(_corpus_problem()))


def build_tiny_corpus(folder: Path, utterances: int = 24) -> Path:
    """A few dozen clean espeak-ng utterances, most in ``train`` (every split gets at least one: datasets cannot
    load an empty split back)."""
    config = CorpusConfig(seed=0, utterances=utterances, split_fractions=(0.85, 0.05, 0.05, 0.05),
                          text_sources=("harvard",), engines=("espeak-ng",),
                          augment=AugmentConfig(enabled=False, clean_fraction=1.0))
    build_corpus(folder, config, workers=2)
    return folder


def load_recipe(name: str) -> ModuleType:
    """``recipes/<name>.py`` as a module (the recipes folder is not a package), to call its ``main(argv)``."""
    module_name = f"recipe_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, RECIPES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]
