"""Reading and checking evaluation JSON files (hf_binarize.cards.results)."""

from __future__ import annotations

import copy
import json

import pytest
from evaluation_records import sample_results, write_json

from hf_binarize.cards import load_results


@pytest.fixture
def results() -> list[dict]:
    return sample_results()


def test_load_results_files_and_globs(tmp_path, results):
    paths = write_json(tmp_path, results)
    assert load_results(paths) == results
    assert sorted(map(json.dumps, load_results([str(tmp_path / "*.json")]))) == sorted(map(json.dumps, results))
    assert len(load_results([str(tmp_path / "float-*.json"), paths[0]])) == 2  # a file named twice counts once


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r.pop("wer"), "missing key 'wer'"),
    (lambda r: r["speed"].pop("rtf"), "missing key 'speed.rtf'"),
    (lambda r: r["size"]["precision"].pop("int8"), "missing key 'size.precision.int8'"),
    (lambda r: r.update(words="2000"), "'words' must be a number"),
    (lambda r: r.update(utterances=True), "'utterances' must be a number"),
    (lambda r: r["size"].update(folder_bytes=-1), "'size.folder_bytes' must be a finite number >= 0"),
    (lambda r: r.update(speed=[]), "speed must be a JSON object"),
])
def test_load_results_names_file_and_key(tmp_path, results, edit, message):
    bad = copy.deepcopy(results[0])
    edit(bad)
    path = write_json(tmp_path, [bad])[0]
    with pytest.raises(ValueError, match=message) as error:
        load_results([path])
    assert path in str(error.value)


def test_load_results_bad_input(tmp_path, results):
    broken = tmp_path / "broken.json"
    broken.write_text('{"variant": "float",')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        load_results([str(broken)])
    with pytest.raises(FileNotFoundError, match=r"nothing\.json"):
        load_results([str(tmp_path / "nothing.json")])
    with pytest.raises(FileNotFoundError, match="no evaluation JSON matches"):
        load_results([str(tmp_path / "none-*.json")])
    paths = write_json(tmp_path, results[:1])
    twin = tmp_path / "twin.json"
    twin.write_text(json.dumps(results[0]))
    with pytest.raises(ValueError, match="two results for variant 'float' on split 'test'"):
        load_results([paths[0], str(twin)])
    other = copy.deepcopy(results[1])
    other["size"]["folder_bytes"] += 1
    with pytest.raises(ValueError, match="variant 'float' has different sizes"):
        load_results([paths[0], write_json(tmp_path, [other])[0]])
