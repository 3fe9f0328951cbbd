"""Data loading in PyTorch's style: datasets, samplers, collation and ``DataLoader``.

``from fnarray.data import DataLoader, TensorDataset`` works with or without the compat
layer: batches are compat tensors when ``fnarray.compat`` is available, else ``fa.Array``s.
``fnarray.data.transforms`` and ``fnarray.data.datasets`` hold image transforms and MNIST.
"""

from fnarray.data._worker import WorkerInfo, get_worker_info
from fnarray.data.collate import default_collate
from fnarray.data.dataloader import DataLoader, default_convert
from fnarray.data.distributed_sampler import DistributedSampler
from fnarray.data.dataset import (
    ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split)
from fnarray.data.sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler)
from fnarray.data import datasets, transforms

__all__ = [
    "BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
    "IterableDataset",
    "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler",
    "TensorDataset", "WeightedRandomSampler", "WorkerInfo", "datasets", "default_collate",
    "default_convert", "get_worker_info", "random_split", "transforms"]
