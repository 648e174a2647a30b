"""Length-grouped batching (hf_binarize.data.sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from hf_binarize.data.sampling import LengthGroupedBatchSampler


def test_length_grouped_batches_cover_every_index_once_with_little_padding():
    lengths = np.random.default_rng(0).integers(50, 1500, size=1000)
    sampler = LengthGroupedBatchSampler(lengths, batch_size=16, seed=3)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    assert len(sampler) == len(batches) == 63

    def padding(batches):
        return sum(max(lengths[b]) * len(b) - sum(lengths[b]) for b in batches) / lengths.sum()

    random_batches = np.array_split(np.random.default_rng(1).permutation(1000), 63)
    assert padding(batches) < 0.1 < padding(random_batches)
    assert list(sampler) == batches  # same epoch, same batches
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_sampler_options():
    with pytest.raises(ValueError):
        LengthGroupedBatchSampler([1, 2], batch_size=0)
    ordered = LengthGroupedBatchSampler([5, 1, 4, 2, 3], batch_size=2, shuffle=False, drop_last=True)
    assert list(ordered) == [[0, 2], [4, 3]]
