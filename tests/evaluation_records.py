"""Evaluation records of four variants on two splits, as ``hf-binarize evaluate --json`` writes them, shared by the
tests of hf_binarize.cards and of ``hf-binarize card``."""

from __future__ import annotations

import json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def result(variant: str, split: str, wer: float, folder_bytes: int, decode_seconds: float, *,
           audio_seconds: float = 100.0, threads: int = 2, words: int = 2000, family: str = "rnnt") -> dict:
    """One evaluation JSON as ``hf-binarize evaluate --json`` writes it."""
    params = 5_600_000
    binary = 0 if variant == "float" else params - 600_000
    int8 = 0 if variant == "float" else 500_000
    weight_bytes = folder_bytes - 20_000
    return {
        "variant": variant, "model": f"runs/{variant}", "family": family, "dataset": "corpus", "split": split,
        "utterances": 200, "synthetic_corpus": True, "normalizer": "basic",
        "unknown_labels": {"tokens": 0, "words": 0, "total_words": words, "examples": []},
        "wer": wer, "cer": wer / 2.5, "word_errors": round(wer * words), "words": words,
        "size": {"params": params, "weight_bytes": weight_bytes, "folder_bytes": folder_bytes,
                 "bits_per_param": 8 * weight_bytes / params, "compression_vs_fp32": 4 * params / weight_bytes,
                 "precision": {"binary": binary, "int8": int8, "float": params - binary - int8}},
        "speed": {"audio_seconds": audio_seconds, "decode_seconds": decode_seconds,
                  "rtf": decode_seconds / audio_seconds, "threads": threads},
        "command": f"hf-binarize evaluate --model runs/{variant} --data corpus --split {split} --json "
                   f"results/{variant}-{split}.json",
        "hf_binarize_version": "0.1.0", "torch_version": "2.13.0", "transformers_version": "5.24.0",
    }


def sample_results() -> list[dict]:
    sizes = {"float": 22_450_000, "binary-int8-joint": 1_070_000, "binary-all": 760_000, "hqq-1bit-g64": 1_400_000}
    wers = {"float": (0.467, 0.560), "binary-int8-joint": (0.495, 0.582), "binary-all": (0.61, 0.70),
            "hqq-1bit-g64": (0.52, 0.58)}
    decode = {"float": (20.0, 22.0), "binary-int8-joint": (8.0, 9.5), "binary-all": (7.0, 8.0),
              "hqq-1bit-g64": (30.0, 31.0)}
    return [result(v, split, wers[v][i], sizes[v], decode[v][i], audio_seconds=(100.0, 120.0)[i])
            for v in sizes for i, split in enumerate(("test", "test_unseen"))]


def write_json(tmp_path, results: list[dict]) -> list[str]:
    paths = []
    for r in results:
        path = tmp_path / f"{r['variant']}-{r['split']}.json"
        path.write_text(json.dumps(r))
        paths.append(str(path))
    return paths
