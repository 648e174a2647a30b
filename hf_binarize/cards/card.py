"""The Hugging Face model card of one variant, and :func:`write_cards`, which writes every card, the plots and the
summary of all variants."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..atomic import write_atomically
from ..evaluation.families import FAMILIES
from .plot import plot_png
from .provenance import Licence, base_models, find_language, find_licence, on_synthetic_corpus
from .results import data_differences, fmt, index_results, size_mb, split_names
from .table import relative_cell, summary_table

TAGS = ["hf-binarize", "binarization", "1-bit", "speech"]

# What a model of each Parakeet family is, in the card's words; a record without a family (written before records
# carried it, or of another model) gets the generic words and no family tag.
_KINDS = {"rnnt": "speech recognition transducer (RNN-T)",
          "tdt": "speech recognition token-and-duration transducer (TDT)",
          "ctc": "speech recognition model with a CTC head"}

# Variant and split names become file and folder names.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

_SYNTHETIC_DATA = (
    "The evaluation data is synthetic (hf-binarize's corpus): English sentences (dictionary glosses and examples, "
    "fortunes, the Harvard lists) spoken by speech synthesisers (espeak-ng and flite voices) with simulated rooms, "
    "noise and channels. The absolute WER says nothing about accuracy on real speech; only the differences "
    "between variants scored on the same split mean something, and those may not transfer to real speech either."
)
_OTHER_DATA = (
    "The WERs hold for the data described above, normalised as stated; other speakers, recording conditions, "
    "domains or normalisers give other numbers, and the differences between variants may not carry over."
)
_SPEEDS = (
    "Speeds are real-time factors (decode seconds per second of audio) measured on the machine that ran the "
    "evaluation, with the thread count given beside them; they are not comparable across machines."
)
# What each scoring normaliser (hf_binarize.data.text.SCORING_NORMALIZERS) does, in a few words.
_NORMALIZERS = {"basic": "lower case, punctuation dropped",
                "whisper": "OpenAI Whisper's English normaliser: contractions expanded, numbers as digits",
                "none": "as written: case and punctuation count"}


def _limitations(results: Sequence[dict]) -> str:
    data = _SYNTHETIC_DATA if any(on_synthetic_corpus(r) for r in results) else _OTHER_DATA
    return f"{data} {_SPEEDS}"


def model_card(results: Sequence[dict], variant: str, baseline: str = "float", *, repo_id: str | None = None,
               base_model: str | None = None, dataset_name: str | None = None,
               plot_file: str | Sequence[str] | None = None, license: Licence | str | None = None,
               language: Sequence[str] = ()) -> ModelCard:
    """The Hugging Face model card of ``variant``: metadata with a ``model-index`` (WER and CER in %, one entry per
    split) and a body with its accuracy, size and speed against ``baseline``, the data it was scored on, the
    command behind every number, how to load it, the comparison of all variants and the limitations of the data.

    ``repo_id`` names the model in the card (and in the loading example); ``base_model`` (a Hub id) is recorded as
    the model this variant was quantized from (not on the baseline's own card); ``dataset_name`` replaces the
    dataset folder of the JSON files in the metadata; ``plot_file`` is the path, relative to the card, of one plot
    or several to embed; ``license`` and ``language`` go into the metadata as given (none when not given:
    :func:`write_cards` finds them).
    """
    table = index_results(results, baseline)
    if variant not in table:
        raise ValueError(f"variant {variant!r} is not among the results: {', '.join(table)}")
    rows, base = table[variant], table[baseline]
    is_baseline = variant == baseline
    name = repo_id or variant
    size = next(iter(rows.values()))["size"]
    family = next(iter(rows.values())).get("family")

    eval_results = []
    for split, r in rows.items():
        dataset = dataset_name or r["dataset"]
        for metric, value in (("wer", r["wer"]), ("cer", r["cer"])):
            # Rounded only to drop float noise (0.467 * 100 = 46.699999999999996), far below one error in a split.
            eval_results.append(EvalResult(
                task_type="automatic-speech-recognition", task_name="Automatic Speech Recognition",
                dataset_type=dataset, dataset_name=dataset, dataset_split=split,
                metric_type=metric, metric_name=f"{metric.upper()} (%)", metric_value=round(100 * value, 6)))
    extra = {}
    if base_model and not is_baseline:
        extra = {"base_model": base_model, "base_model_relation": "quantized"}
    if isinstance(license, str):
        license = Licence(license)
    extra.update(license.metadata() if license else {})
    tags = [*TAGS, family] if family in _KINDS else list(TAGS)
    data = ModelCardData(model_name=name, language=list(language) or None, library_name="transformers",
                         pipeline_tag="automatic-speech-recognition", tags=tags, eval_results=eval_results,
                         **extra)

    plots = [plot_file] if isinstance(plot_file, str) else list(plot_file or [])
    body = [f"# {name}", "", _what_it_is(variant, baseline, size, base_model, family), "",
            *_results_section(rows, base, baseline, is_baseline), "",
            *_size_section(size), "",
            *_speed_section(rows, base, baseline, is_baseline), "",
            *_commands_section(rows), "",
            *_usage_section(name, is_baseline, family), "",
            "## All variants", "",
            _same_data_note(results, baseline), "",
            summary_table(results, baseline), "",
            *[f"![Size vs WER]({p})" for p in plots], *([""] if plots else []),
            "## Limitations", "", _limitations(list(rows.values())), ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))


def _same_data_note(results: Sequence[dict], baseline: str) -> str:
    differences = data_differences(results)
    data = ("All variants on the same data" if not differences else
            "**Not all variants were scored on the same data, so their WERs do not compare** ("
            + "; ".join(differences) + ")")
    return (f"{data}; relative changes are `(WER - WER_{baseline}) / WER_{baseline}`, size is the saved folder on "
            "disk, RTF is decode seconds per second of audio.")


def _what_it_is(variant: str, baseline: str, size: dict, base_model: str | None, family: str | None) -> str:
    params, precision = size["params"], size["precision"]
    # Formats the JSON has no key for (int4 of another library, say) would otherwise vanish from the breakdown.
    counts = [("1-bit", precision["binary"]), ("int8", precision["int8"]), ("float", precision["float"]),
              ("other formats", params - sum(precision.values()))]
    shares = ", ".join(f"{label} {fmt(100 * n / params, 1)}%" for label, n in counts if n > 0) if params else ""
    kind = ("the float baseline the other `hf-binarize` variants are compared with" if variant == baseline else
            f"a binarized or otherwise quantized version of the `{baseline}` baseline"
            + (f" ([{base_model}](https://huggingface.co/{base_model}))" if base_model else ""))
    text = f"`{variant}`: a {_KINDS.get(family, 'speech recognition model')} for transformers, {kind}. "
    text += f"It has {params:,} parameters"
    text += f", stored as: {shares}." if shares else "."
    if precision["binary"]:
        text += (" Packed 1-bit weights store `alpha * sign(W)`: one bit per weight and a float scale per output "
                 "channel or group (hf-binarize, after Rybakov et al., *USM RNN-T model weights binarization*, "
                 "Interspeech 2024).")
    return text


def _results_section(rows: dict[str, dict], base: dict[str, dict], baseline: str, is_baseline: bool) -> list[str]:
    lines = ["## Results", "",
             "WER is word errors (substitutions, deletions and insertions) over reference words, both sides "
             "normalised as said below the table.", ""]
    head = ["split", "utterances", "WER", "word errors / words", "CER"]
    if not is_baseline:
        head += [f"WER of {baseline}", f"relative change vs {baseline}"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for split, r in rows.items():
        cells = [split, f"{r['utterances']:,}", fmt(100 * r["wer"], 2, suffix="%"),
                 f"{r['word_errors']:,} / {r['words']:,}", fmt(100 * r["cer"], 2, suffix="%")]
        if not is_baseline:
            if split in base:
                cells += [fmt(100 * base[split]["wer"], 2, suffix="%"), relative_cell(rows, base, split, False)]
            else:
                cells += [f"not evaluated on {split}", "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Scored on:", "", *[f"* {split}: {_scored_on(r)}" for split, r in rows.items()]]
    # Evaluations before hf-binarize recorded its skips have no "skipped": nothing can be said of them.
    left_out = [f"* {split}: {_left_out(r)}" for split, r in rows.items() if r.get("skipped")]
    if left_out:
        lines += ["", "Utterances of the split left out of these scores:", "", *left_out]
    return lines


def _scored_on(result: dict) -> str:
    """The data behind one result, e.g. ``dataset `corpus`, split `test`: 219 utterances, 0.15 hours of audio;
    transcripts normalised with `basic` (lower case, punctuation dropped)``, and the transcript words the model's
    vocabulary cannot write."""
    config = f" (config `{result['dataset_config']}`)" if result.get("dataset_config") else ""
    hours = result["speed"]["audio_seconds"] / 3600
    # Evaluations before the normaliser was selectable all used the basic one.
    normalizer = result.get("normalizer", "basic")
    how = f" ({_NORMALIZERS[normalizer]})" if normalizer in _NORMALIZERS else ""
    read = result.get("dataset_split", result["split"])
    filed = f" (named `{result['split']}` here)" if read != result["split"] else ""
    text = (f"dataset `{result['dataset']}`{config}, split `{read}`{filed}: {result['utterances']:,} utterances, "
            f"{fmt(hours, 2)} hours of audio; transcripts normalised with `{normalizer}`{how}")
    unknown = result.get("unknown_labels") or {}
    if unknown.get("words"):
        examples = ", ".join(f"`{word}`" for word in unknown.get("examples", []))
        text += (f"; {unknown['words']:,} of {unknown['total_words']:,} words of the transcripts hold a character "
                 f"the model's vocabulary lacks (an `<unk>` label), so it cannot write them"
                 + (f", e.g. {examples}" if examples else ""))
    return text


def _left_out(result: dict) -> str:
    """``result["skipped"]`` (utterances per reason) in words, e.g. ``3 utterances: 2 longer than 30.0 s (the
    evaluation's --max-duration), 1 unreadable_audio``."""
    skipped = result["skipped"]
    total = sum(skipped.values())
    reasons = [f"{count:,} longer than {result.get('max_duration')} s (the evaluation's --max-duration)"
               if reason == "too_long" else f"{count:,} {reason}" for reason, count in sorted(skipped.items())]
    return f"{total:,} utterance{'s' if total != 1 else ''}: {', '.join(reasons)}"


def _size_section(size: dict) -> list[str]:
    return ["## Size", "",
            f"* On disk: {size_mb(size['folder_bytes'])} MB ({size['folder_bytes']:,} bytes, the whole saved folder: "
            "weights, config, processor).",
            f"* Weights: {size['weight_bytes']:,} bytes for {size['params']:,} parameters, "
            f"{fmt(size['bits_per_param'], 2)} bits per parameter (scales, offsets and float layers included).",
            f"* Compression vs fp32: {fmt(size['compression_vs_fp32'], 1)}x smaller than the same weights in float32."]


def _speed_section(rows: dict[str, dict], base: dict[str, dict], baseline: str, is_baseline: bool) -> list[str]:
    lines = ["## Speed", "", "Real-time factor (RTF): decode seconds per second of audio; lower is faster.", ""]
    for split, r in rows.items():
        s = r["speed"]
        line = (f"* {split}: RTF {fmt(s['rtf'], 4)} ({fmt(s['decode_seconds'], 2)} s for "
                f"{fmt(s['audio_seconds'], 1)} s of audio, {s['threads']} thread{'s' if s['threads'] != 1 else ''})")
        if not is_baseline and split in base:
            b = base[split]["speed"]
            ratio = "n/a" if s["rtf"] == 0 else fmt(b["rtf"] / s["rtf"], 2, suffix="x")
            line += f"; {baseline}: RTF {fmt(b['rtf'], 4)}, speed-up {ratio}"
            if b["threads"] != s["threads"]:
                line += f" (but {baseline} was timed with {b['threads']} threads)"
        lines.append(line)
    return lines


def _commands_section(rows: dict[str, dict]) -> list[str]:
    lines = ["## How these numbers were produced", ""]
    for split, r in rows.items():
        lines += [f"{split} (model folder `{r['model']}`, hf_binarize {r['hf_binarize_version']}, "
                  f"torch {r['torch_version']}, transformers {r['transformers_version']}):", "",
                  "```bash", r["command"], "```", ""]
    return lines[:-1]


def _usage_section(name: str, is_baseline: bool, family: str | None) -> list[str]:
    why = ("harmless for a float model, and needed by its binarized siblings" if is_baseline else
           "registers the packed format with transformers; without it loading fails with a size mismatch")
    # The pipeline finds the model's class itself; the explicit load needs the family's auto class.
    auto = FAMILIES[family][0].__name__ if family in FAMILIES else None
    return ["## How to use", "", "```python",
            f"import hf_binarize  # {why}",
            f"from transformers import {f'{auto}, ' if auto else ''}AutoProcessor, pipeline", "",
            *([f'model = {auto}.from_pretrained("{name}")'] if auto else []),
            f'processor = AutoProcessor.from_pretrained("{name}")',
            f'asr = pipeline("automatic-speech-recognition", model="{name}")',
            'print(asr("speech.wav")["text"])', "```"]


# --- writing ------------------------------------------------------------------------------------------------------

# The last line of every card written here: how a README.md this module may replace is told from a user's own.
_WRITTEN_BY = "<!-- written by hf-binarize card -->"


def write_cards(results: Sequence[dict], out_dir: str | os.PathLike, baseline: str = "float", *,
                repo_prefix: str | None = None, base_model: str | None = None,
                dataset_name: str | None = None, how_made: str | None = None,
                no_card: Sequence[str] = (), allow_mixed_data: bool = False, license: str | None = None,
                language: Sequence[str] = (), model_folders: Mapping[str, str | os.PathLike] | None = None,
                overwrite_readme: bool = False) -> list[Path]:
    """Write ``out_dir/<variant>/README.md`` for every variant (with the plots beside it),
    ``out_dir/size_vs_wer_<split>.png`` for every split and ``out_dir/README.md``; returns the paths written.

    With ``repo_prefix`` (``you/parakeet-rnnt``), variant ``binary-all`` is named ``you/parakeet-rnnt-binary-all``
    and, unless ``base_model`` is given, the baseline's repository is recorded as the base model of the others.
    ``how_made`` (Markdown: the training commands, say) becomes a "How these models were made" section of the
    summary and of every card. Variants in ``no_card`` (peers measured in memory, with no folder to publish) get
    their row in the summary but no card. Results of one split scored on different data (dataset, utterance or
    word counts) raise ``ValueError`` naming them, unless ``allow_mixed_data``: then every card says so.

    The cards' licence is ``license``, else the base model's: the card metadata (``license:``) or ``config.json``
    of the folder (or cached Hub repository) the baseline was scored from, or of ``base_model``; without one,
    ``ValueError`` asks for ``--license``. Their ``language`` is the given one, else the base model card's, else
    the dataset card's (see :mod:`hf_binarize.cards.provenance`), else none.

    ``model_folders`` maps variants to their model folders: each variant's card (and its plots) is also written
    there as ``README.md``, so that the folder uploads to the Hub with its card (``hf-binarize push --folder``). A
    ``README.md`` already there that this function did not write raises ``ValueError`` unless ``overwrite_readme``;
    every folder is checked before anything is written. Every file is written to a temporary file first and
    renamed, so a reader never sees half a file.
    """
    table = index_results(results, baseline)
    differences = data_differences(results)
    if differences and not allow_mixed_data:
        raise ValueError("the variants were scored on different data, so their WERs do not compare ("
                         + "; ".join(differences) + "): score them on the same split, or pass --allow-mixed-data")
    models = base_models(results, baseline, base_model)
    licence = Licence(license) if license else find_licence(models)
    if licence is None:
        raise ValueError(f"the models' licence is unknown: no model card (README.md) or config.json of "
                         f"{', '.join(models)} states one; pass --license with the base model's licence (e.g. "
                         "apache-2.0, cc-by-4.0)")
    languages = list(language) or find_language(results, models)
    made = [] if how_made is None else ["## How these models were made", "", how_made.strip(), ""]
    splits = split_names(results)
    for kind, name in [("variant", v) for v in table] + [("split", s) for s in splits]:
        if not _SAFE_NAME.fullmatch(name):
            raise ValueError(f"{kind} name {name!r} cannot be a file name; use letters, digits, '.', '_' and '-'")
    if repo_prefix is not None and repo_prefix.count("/") != 1:
        raise ValueError(f"--repo-prefix {repo_prefix!r} must be OWNER/NAME, e.g. you/parakeet-rnnt")
    unknown = sorted(set(no_card) - set(table))
    if unknown:
        raise ValueError(f"--no-card names no variant of the results: {', '.join(unknown)}")
    folders = {variant: Path(folder) for variant, folder in (model_folders or {}).items()}
    for variant, folder in folders.items():
        _check_model_folder(variant, folder, table, no_card, overwrite_readme)
    if len({folder.resolve() for folder in folders.values()}) < len(folders):
        raise ValueError("--model-folder gives two variants the same folder: one card per model folder")
    out = Path(out_dir)
    written = []
    plots = {split: plot_png(results, baseline, split) for split in splits}
    plot_names = {split: f"size_vs_wer_{split}.png" for split in splits}
    for split, png in plots.items():
        written.append(write_atomically(out / plot_names[split], png))

    def repo(variant: str) -> str | None:
        return None if repo_prefix is None else f"{repo_prefix}-{variant}"

    for variant, rows in ((v, r) for v, r in table.items() if v not in no_card):
        card = model_card(results, variant, baseline, repo_id=repo(variant),
                          base_model=base_model or repo(baseline), dataset_name=dataset_name,
                          plot_file=[plot_names[s] for s in rows], license=licence, language=languages)
        text = "\n".join([str(card).rstrip(), "", *made, _WRITTEN_BY, ""])
        for folder in [out / variant, *([folders[variant]] if variant in folders else [])]:
            for split in rows:
                written.append(write_atomically(folder / plot_names[split], plots[split]))
            written.append(write_atomically(folder / "README.md", text.encode("utf-8")))

    summary = ["# hf-binarize variants: size vs WER", "",
               f"{len(table)} variants compared with `{baseline}` on {', '.join(splits)}. Relative WER changes are "
               f"`(WER - WER_{baseline}) / WER_{baseline}`; sizes are saved folders on disk in MB (10^6 bytes); RTF is "
               "decode seconds per second of audio. Each variant's card is in its folder.", "",
               summary_table(results, baseline), ""]
    summary += [f"![Size vs WER on {s}]({plot_names[s]})" for s in splits] + ["", *made, "## Commands", ""]
    for variant, rows in table.items():
        for split, r in rows.items():
            summary += [f"`{variant}` on {split}:", "", "```bash", r["command"], "```", ""]
    summary += ["## Limitations", "", _limitations(results), ""]
    written.append(write_atomically(out / "README.md", "\n".join(summary).encode("utf-8")))
    return written


def _check_model_folder(variant: str, folder: Path, table: dict, no_card: Sequence[str],
                        overwrite_readme: bool) -> None:
    """Raises ``ValueError`` unless ``variant``'s card may be written into ``folder`` as its README.md."""
    if variant not in table or variant in no_card:
        raise ValueError(f"--model-folder {variant}={folder}: {variant!r} is not a variant with a card; variants: "
                         + ", ".join(v for v in table if v not in no_card))
    if not (folder / "config.json").is_file():
        raise ValueError(f"--model-folder {variant}={folder}: not a model folder (no config.json); pass the folder "
                         "the model was saved to")
    readme = folder / "README.md"
    if readme.exists() and not overwrite_readme and _WRITTEN_BY not in readme.read_text(errors="replace"):
        raise ValueError(f"{readme} exists and was not written by hf-binarize card: pass --overwrite-readme to "
                         "replace it")
