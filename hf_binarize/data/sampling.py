"""Length-grouped batches: examples of similar length together, in an order fixed by the seed and the epoch.

Prepared datasets carry a ``length`` column (feature frames), the default ``length_column_name`` of transformers'
``TrainingArguments``, so ``Trainer`` groups by it with ``train_sampling_strategy="group_by_length"`` and
``remove_unused_columns=False`` (otherwise ``Trainer`` drops ``length`` before building its sampler, which then
measures every example itself; the collator ignores the extra columns). :class:`LengthGroupedBatchSampler` is what
:class:`hf_binarize.training.ParakeetTrainer` uses instead, because its order resumes exactly, and what custom
loops can use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch


class LengthGroupedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of examples of similar length, in random order, for a ``DataLoader(batch_sampler=...)``.

    Each epoch the indices are shuffled (seeded by ``seed`` and :meth:`set_epoch`), cut into pools of
    ``pool_size`` batches' worth, each pool sorted by length and cut into batches, and the batches shuffled: batches
    hold similar lengths (little padding) while their order and content still vary between epochs. A batch holds
    ``batch_size`` examples; ``drop_last`` drops the final incomplete one.
    """

    def __init__(self, lengths: Sequence[int], *, batch_size: int, shuffle: bool = True, seed: int = 0,
                 pool_size: int = 50, drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_size = pool_size
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Selects the shuffle of ``epoch`` (call before each epoch, like ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def _batches_of(self, ordered: np.ndarray) -> list[list[int]]:
        batches = [ordered[start : start + self.batch_size].tolist()
                   for start in range(0, len(ordered), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def batches(self) -> list[list[int]]:
        """This epoch's batches, in the order they are yielded."""
        generator = np.random.default_rng([self.seed, self.epoch])
        order = generator.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        pool = self.batch_size * self.pool_size
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            # A stable sort keeps equal lengths in shuffled order, so ties do not always batch together.
            batches.extend(self._batches_of(chunk[np.argsort(-self.lengths[chunk], kind="stable")]))
        if self.shuffle:
            batches = [batches[i] for i in generator.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
