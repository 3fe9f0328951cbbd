"""Datasets: indexable (map-style) and iterable collections of samples.

A map-style dataset defines ``__getitem__(index)`` and ``__len__``; an iterable dataset
defines ``__iter__`` (and, with worker processes, shards itself using
``fnarray.data.get_worker_info()``).  A dataset may also define ``__getitems__(indices)``
returning the samples of a whole batch at once; ``DataLoader`` then fetches batches with
one call, which ``TensorDataset`` uses to gather a batch with one fancy-indexing
operation per column instead of one indexing call per sample.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence

import numpy as np

from fnarray import _interop
from fnarray.core.array import Array
from fnarray.data.sampler import as_generator, epoch_generator


class Dataset:
    """Base class of map-style datasets: ``dataset[i]`` and ``len(dataset)``."""

    def __getitem__(self, index):
        raise TypeError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """Base class of datasets that are streams: iterate them instead of indexing."""

    def __iter__(self) -> Iterator:
        raise TypeError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other):
        raise TypeError("IterableDataset does not support +; chain the iterators instead")


class TensorDataset(Dataset):
    """Samples are the ``i``-th rows of equally long arrays, tensors or NumPy arrays.

    ``dataset[i]`` is a tuple with one row per column, of the column's own kind.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one array")
        lengths = [t.shape[0] if len(t.shape) else None for t in tensors]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ValueError(f"TensorDataset: every array needs the same first dimension; "
                             f"got shapes {shapes}")
        self.tensors = tensors
        self._columns = [_Column(t) for t in tensors]

    def __getitem__(self, index):
        return tuple(column.take(index) for column in self._columns)

    def __getitems__(self, indices: Sequence[int]) -> ColumnBatch:
        return ColumnBatch(self._columns, np.asarray(indices, dtype=np.int64))

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class _Column:
    """One column of a ``TensorDataset``: host values plus how to hand rows back."""

    def __init__(self, source):
        self.kind = "tensor" if _interop.is_tensor(source) else \
            "array" if isinstance(source, Array) else "numpy"
        array = source.array if self.kind == "tensor" else source
        self.device = array.device if self.kind != "numpy" else None
        self.values = _interop.to_numpy(array) if self.kind != "numpy" else source

    def take(self, index):
        """Row(s) ``index`` in the column's own kind."""
        rows = self.values[index]
        if self.kind == "numpy":
            return rows
        return _interop.from_numpy(np.asarray(rows), self.device, self.kind == "tensor")


class ColumnBatch(Sequence):
    """The samples of one batch of a ``TensorDataset``, still stored column-wise.

    It behaves as the list of sample tuples (so any ``collate_fn`` accepts it), and
    ``default_collate`` turns it into batched columns with one indexing operation each.
    """

    def __init__(self, columns: list, indices: np.ndarray):
        self.columns, self.indices = columns, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return tuple(column.take(int(self.indices[i])) for column in self.columns)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices: Sequence[int]):
        inner = [self.indices[i] for i in indices]
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__(inner)
        return [self.dataset[i] for i in inner]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """The samples of several map-style datasets, one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not accept an IterableDataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"ConcatDataset index {index} out of range for length {n}")
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(dataset, lengths: Sequence[int | float], generator=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``s.

    ``lengths`` are sizes summing to ``len(dataset)``, or fractions summing to 1 (the
    remainder of flooring is given out one sample at a time, first split first, as
    PyTorch does).  ``generator`` is resolved as described in ``fnarray.data.sampler``.
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(f, float) for f in lengths) and math.isclose(sum(lengths), 1.0):
        if any(f < 0 for f in lengths):
            raise ValueError(f"random_split: fractions must be non-negative, got {lengths}")
        sizes = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if sum(lengths) != n or any(not isinstance(k, int) or k < 0 for k in lengths):
        raise ValueError(f"random_split: lengths {lengths} must be non-negative ints summing to "
                         f"the dataset length {n}, or fractions summing to 1")
    order = epoch_generator(as_generator(generator)).permutation(n).tolist()
    offsets = np.cumsum([0, *lengths]).tolist()
    return [Subset(dataset, order[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
