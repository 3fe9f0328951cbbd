"""``DistributedSampler``: each rank of a data-parallel job visits its own shard.

The indices of an epoch (shuffled with ``seed + epoch`` when ``shuffle``, so every rank
draws the same permutation without talking to the others) are padded by repeating the
first ones until they split evenly (or, with ``drop_last``, trimmed to a multiple of the
replica count), then rank ``r`` takes every ``num_replicas``-th index starting at ``r`` —
PyTorch's layout, so the union of the shards is the (padded) epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import numpy as np

from fnarray.data.sampler import Sampler


def _job(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    if num_replicas is None or rank is None:
        from fnarray import distributed as dist
        if not dist.is_initialized():
            raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                               "fnarray.distributed.init_process_group() first")
        num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
        rank = dist.get_rank() if rank is None else rank
    if not 0 <= rank < num_replicas:
        raise ValueError(f"DistributedSampler: invalid rank {rank}, rank should be in the "
                         f"interval [0, {num_replicas - 1}]")
    return int(num_replicas), int(rank)


class DistributedSampler(Sampler):
    """Indices of ``dataset`` for one rank; call ``set_epoch(e)`` before each epoch so the
    shuffle changes between epochs."""

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        self.num_replicas, self.rank = _job(num_replicas, rank)
        self.dataset, self.shuffle, self.seed, self.drop_last = dataset, shuffle, seed, drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % self.num_replicas:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > n:
            order = np.concatenate([order, np.resize(order, self.total_size - n)])
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples
