"""A local copy of a Hub dataset repository shaped like Common Voice, shared by the data, evaluation and card tests
(needs the data extra: soundfile, pyarrow)."""

from __future__ import annotations

import io

import numpy as np


def make_common_voice_like(root, sentences: dict[str, dict[str, list[str]]], rate: int = 48000):
    """A local copy of a Hub repository shaped like Common Voice: one config per language (``sentences`` maps
    config -> split -> sentences), parquet files of ``path``, ``audio`` (MP3 at ``rate`` Hz, one tone per
    utterance) and ``sentence`` (cased and punctuated, as Common Voice writes them) plus ``locale``, and a README.md
    whose YAML header declares the configs and the languages."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import soundfile as sf

    header = ["---", "language:", *[f"- {config}" for config in sentences], "license: cc0-1.0", "configs:"]
    for number, (config, splits) in enumerate(sentences.items()):
        header += [f"- config_name: {config}", "  data_files:"]
        (root / config).mkdir(parents=True, exist_ok=True)
        for split, texts in splits.items():
            rows = []
            for index, text in enumerate(texts):
                frequency = 220 + 40 * index + 400 * number
                tone = (0.5 * np.sin(2 * np.pi * frequency * np.arange(round(1.2 * rate)) / rate)).astype(np.float32)
                buffer = io.BytesIO()
                sf.write(buffer, tone, rate, format="MP3")
                name = f"common_voice_{config}_{split}_{index}.mp3"
                rows.append({"path": name, "audio": {"bytes": buffer.getvalue(), "path": name}, "sentence": text,
                             "locale": config})
            pq.write_table(pa.Table.from_pylist(rows), root / config / f"{split}-00000-of-00001.parquet")
            header += [f"  - split: {split}", f"    path: {config}/{split}-*.parquet"]
    (root / "README.md").write_text("\n".join([*header, "---", "", "# A Common-Voice-shaped test repository", ""]))
    return root
