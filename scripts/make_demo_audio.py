"""Writes the bundled demo test audio (``demo/audio``) from a synthetic corpus, as a datasets audiofolder.

    hf-binarize make-dataset --out corpus --hours 3 --seed 0
    python scripts/make_demo_audio.py --corpus corpus --out demo/audio --per-split 100

The first ``--per-split`` utterances of the ``test`` split (sentences never used in training) and of
``test_unseen`` (new sentences and voices), as 16-bit FLAC files with a ``metadata.csv`` (``file_name``, ``text``,
``voice``, ``duration``) per split: small enough to ship in git (about 5 MB per 100 noisy utterances; the bundled folder has 60 per split) and readable by
any audio tool. The corpus is deterministic given its seed, so this folder can be regenerated bit for bit.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import soundfile

from hf_binarize.atomic import replaced_folder
from hf_binarize.data.loading import load_speech_dataset

SPLITS = ("test", "test_unseen")


def write_split(corpus: Path, split: str, count: int, folder: Path) -> None:
    rows = load_speech_dataset(corpus, split)
    if rows.num_rows < count:
        raise ValueError(f"{corpus} [{split}] has {rows.num_rows} utterances, fewer than --per-split {count}")
    folder.mkdir(parents=True)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file_name", "text", "voice", "duration"])
        for row in rows.select(range(count)):
            samples, rate = soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="int16")
            name = f"{row['id']}.flac"
            soundfile.write(folder / name, samples, rate, subtype="PCM_16", format="FLAC")
            writer.writerow([name, row["text"], row["voice"], f"{len(samples) / rate:.3f}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="synthetic corpus (save_to_disk folder)")
    parser.add_argument("--out", type=Path, default=Path("demo/audio"))
    parser.add_argument("--per-split", type=int, default=100, help="utterances per split (default %(default)s)")
    args = parser.parse_args()
    with replaced_folder(args.out) as staging:
        for split in SPLITS:
            write_split(args.corpus, split, args.per_split, staging / split)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {len(SPLITS)} x {args.per_split} utterances to {args.out}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
