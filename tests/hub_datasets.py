"""Local copies of Hub dataset repositories, for the tests of loading, evaluation and the training recipes.

A plain module rather than a conftest.py: the tests elsewhere import the top-level tests/conftest.py by the name
``conftest``, which a second conftest.py would shadow.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

# Utterances per config and split of the LibriSpeech-shaped repository: configs clean/other, dotted split names.
LIBRISPEECH_SPLITS = {"clean": {"train.100": 6, "validation": 3, "test": 4}, "other": {"validation": 2, "test": 5}}


_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def transcript(config: str, split: str, index: int) -> str:
    """Utterance ``index``'s transcript in words, as LibriSpeech's are ("clean train one zero zero three" for utterance
    3 of train.100): a character vocabulary writes every label of it."""
    words = [config, *split.split("."), str(index)]
    return " ".join(" ".join(_DIGITS[int(d)] for d in w) if w.isdigit() else w for w in words)


def librispeech_like(root: Path, seconds: float = 0.1) -> Path:
    """A local copy of a Hub repository shaped like LibriSpeech: one parquet file per config and split under
    ``root/<config>/``, declared by the ``configs:`` of ``root/README.md`` as the Hub declares them, so that
    ``load_dataset(root, config, split=...)`` reads it as it reads the Hub repository. Utterance ``i`` of a split is
    a 16 kHz tone of ``seconds`` (its pitch and level grow with ``i``) transcribed ``transcript(config, split, i)``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import soundfile as sf

    rate = 16000
    time = np.arange(round(seconds * rate)) / rate
    header = ["---", "configs:"]
    for config, splits in LIBRISPEECH_SPLITS.items():
        header += [f"- config_name: {config}", "  data_files:"]
        folder = root / config
        folder.mkdir(parents=True, exist_ok=True)
        for split, count in splits.items():
            rows = []
            for i in range(count):
                buffer = io.BytesIO()
                tone = 0.1 * (i + 1) * np.sin(2 * np.pi * 200 * (i + 1) * time)
                sf.write(buffer, tone.astype(np.float32), rate, format="WAV")
                rows.append({"audio": {"bytes": buffer.getvalue(), "path": f"{config}-{split}-{i}.wav"},
                             "text": transcript(config, split, i), "id": f"{config}-{split}-{i}"})
            pq.write_table(pa.Table.from_pylist(rows), folder / f"{split}-00000-of-00001.parquet")
            header += [f"  - split: {split}", f"    path: {config}/{split}-*.parquet"]
    (root / "README.md").write_text("\n".join([*header, "---", "", "# A LibriSpeech-shaped test repository", ""]))
    return root
