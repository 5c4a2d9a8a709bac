"""Sharded, epoch-seeded sampling and a data loader that resumes mid-epoch.

Two things Lightning leaves to the data loader:

* **Distributed shards.** :class:`ShardedSampler` gives rank ``r`` of ``R`` the samples
  ``perm[r::R]`` of one epoch-seeded permutation, cut to a multiple of ``R`` when training
  so that ranks are disjoint and take the same number of steps (validation pads instead,
  as :class:`torch.utils.data.DistributedSampler` does, so no sample is skipped).
* **Mid-epoch resumption.** :class:`ResumableDataLoader` implements ``state_dict`` /
  ``load_state_dict``, which Lightning stores in every checkpoint and restores on
  ``fit(ckpt_path=...)``: the resumed run continues the *same* permutation after the last
  batch the interrupted run trained on, so it sees exactly the batches the uninterrupted
  run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Sampler


class ShardedSampler(Sampler[int]):
    """Indices of one rank's shard of an epoch-seeded permutation.

    Args:
        n: dataset length.
        shuffle: permute each epoch with ``seed + epoch`` (else keep time order).
        seed: base seed; the same seed gives the same order on every rank and every run.
        rank, world_size: this process' shard.
        drop_remainder: cut to a multiple of ``world_size`` (training; shards disjoint) or
            pad by wrapping around (evaluation; every sample seen at least once).
    """

    def __init__(
        self,
        n: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_remainder: bool = True,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of size {world_size}")
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world_size, self.drop_remainder = rank, world_size, drop_remainder
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def epoch_indices(self) -> np.ndarray:
        """This rank's indices for the current epoch (before any resume skip)."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        if self.drop_remainder:
            order = order[: self.n - self.n % self.world_size]
        elif self.n % self.world_size and self.n:
            order = np.resize(order, -(-self.n // self.world_size) * self.world_size)
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        indices = self.epoch_indices()[self.skip :]
        self.skip = 0
        return iter(indices.tolist())

    def __len__(self) -> int:
        return len(self.epoch_indices())


class ResumableDataLoader(DataLoader):
    """A :class:`DataLoader` over a :class:`ShardedSampler` with a resumable position.

    ``state_dict()`` records the epoch and how many batches this epoch has handed out
    (Lightning does not prefetch from loaders with a length, so that equals the batches
    trained on); ``load_state_dict`` makes the next iteration start right after them.
    """

    def __init__(self, dataset: Any, sampler: ShardedSampler, batch_size: int, **kwargs: Any):
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, **kwargs)
        self._served = 0
        self._resume: dict | None = None
        self.epoch_batches: int | None = None  # batches per epoch if the trainer limits them

    def __iter__(self) -> Iterator[Any]:
        sampler: ShardedSampler = self.sampler  # type: ignore[assignment]
        if self._resume is not None:
            sampler.set_epoch(self._resume["epoch"])
            sampler.skip = self._resume["batches"] * self.batch_size
            self._served = self._resume["batches"]
            self._resume = None
        else:
            self._served = 0
        for batch in super().__iter__():
            self._served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.sampler.epoch), "batches": int(self._served)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, batches = int(state["epoch"]), int(state["batches"])
        if batches >= (self.epoch_batches or len(self)):  # saved after the last batch
            epoch, batches = epoch + 1, 0
        self._resume = {"epoch": epoch, "batches": batches}
