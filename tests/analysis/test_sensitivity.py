"""analyse and suggest on a tiny random RNN-T: the float model is left as it was, sizes are checked before any
scoring, a suggestion's bytes are those size_report counts for the config it prints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import BLANK, MEL_BINS, build_model

from hf_binarize import BinaryQuantizationConfig, PackedModule, quantize_model, size_report
from hf_binarize.analysis import analyse, sensitivity, suggest


class Characters:
    """The tokenizer surface transcribe uses: ids to text."""

    def batch_decode(self, sequences, **_):
        return [" ".join(str(int(token)) for token in row if int(token) != BLANK) for row in sequences]


def examples() -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"input_features": rng.standard_normal((frames, MEL_BINS)).astype(np.float32),
             "labels": [1, 2, 3], "length": frames, "text": "1 2 3"} for frames in (24, 16)]


@pytest.fixture(scope="module")
def model():
    return build_model("rnnt", hidden=32, intermediate=64)


def test_analysis_leaves_the_float_model_as_it_was_and_suggests_what_it_sizes(model):
    before = {key: tensor.clone() for key, tensor in model.state_dict().items()}
    report = analyse(model, Characters(), examples(), base=BinaryQuantizationConfig(group_size=16))
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[key], after[key]) for key in before)
    assert not any(isinstance(module, PackedModule) for module in model.modules())
    assert report.base_config == {"group_size": 16, "centred": False, "scale_dtype": "float16"}
    assert len(report.results) == 2 * 14 - 1  # 8 blocks of two layers and 6 other groups; the embedding: int8 only

    target = (report.best_ratio() + 4) / 2
    suggestion = suggest(report, target)
    packed = quantize_model(build_model("rnnt", hidden=32, intermediate=64),
                            BinaryQuantizationConfig(**suggestion.config))
    sizes = size_report(packed)
    assert sizes.total_bytes == suggestion.bytes and sizes.compression >= target
    assert {m.fmt.group_size for m in packed.modules() if isinstance(m, PackedModule) and m.fmt.method == "binary"} \
        == {16}
    with pytest.raises(ValueError, match="above 1"):
        suggest(report, 1.0)


def test_an_unreachable_target_fails_before_any_scoring(model, monkeypatch):
    def no_scoring(*args, **kwargs):
        raise AssertionError("scored a model although the target was out of reach")

    monkeypatch.setattr(sensitivity, "score", no_scoring)
    with pytest.raises(ValueError, match=r"500x vs fp32 cannot be reached: the best possible is \d+\.\d\dx"):
        analyse(model, Characters(), examples(), target_ratio=500)


def test_a_quantized_model_is_refused():
    packed = quantize_model(build_model("rnnt", hidden=32, intermediate=64))
    with pytest.raises(ValueError, match="quantized already"):
        analyse(packed, Characters(), examples())
