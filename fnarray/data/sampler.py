"""Samplers: which dataset indices to visit, in which order, and how to group them.

Randomness.  Every random sampler draws from a ``numpy.random.Generator``.  The
``generator`` argument accepted here (and by ``DataLoader`` and ``random_split``) may be:

* ``None`` — each epoch draws a fresh seed from the global random state: the compat
  layer's (so ``fnarray.compat.manual_seed(s)`` makes runs repeat) when it exists, else
  NumPy's legacy global state (``np.random.seed(s)``);
* an ``int`` seed — a private generator seeded once, so successive epochs differ but every
  run repeats the same sequence of epochs;
* an ``fa.random`` key (a uint32 ``Array``) — seeds a private generator from its bits;
* a ``numpy.random.Generator`` — used (and advanced) directly;
* an object with ``initial_seed()`` (a compat ``Generator``) — seeds a private generator
  from its seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from fnarray import _interop
from fnarray.core.array import Array

_SEED_BOUND = 2**63 - 1


def as_generator(generator) -> np.random.Generator | None:
    """Resolve a ``generator`` argument (see the module docstring); ``None`` stays ``None``."""
    if generator is None or isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    if isinstance(generator, Array):
        return np.random.default_rng(np.asarray(generator).astype(np.uint32).ravel().tolist())
    if callable(getattr(generator, "initial_seed", None)):
        return np.random.default_rng(int(generator.initial_seed()))
    raise TypeError(f"generator must be None, an int seed, an fa.random key, a "
                    f"numpy.random.Generator or a compat Generator, not {type(generator).__name__}")


def draw_seed(rng: np.random.Generator | None) -> int:
    """A 63-bit seed from ``rng``, or from the global random state when ``rng`` is None."""
    if rng is not None:
        return int(rng.integers(_SEED_BOUND))
    compat = _interop.compat_module()
    if compat is not None and callable(getattr(compat, "randint", None)):
        return int(compat.randint(0, 2**62, ()).item())
    return int(np.random.randint(0, 2**62, dtype=np.int64))


def epoch_generator(rng: np.random.Generator | None) -> np.random.Generator:
    """The generator one epoch uses: ``rng`` itself, or a fresh one from the global state."""
    return rng if rng is not None else np.random.default_rng(draw_seed(None))


class Sampler:
    """Base class: an iterable of dataset indices (or of index lists, for batch samplers)."""

    def __iter__(self) -> Iterator:
        raise TypeError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """0, 1, …, len(data_source) - 1."""

    def __init__(self, data_source: Sequence):
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation of the indices, or ``num_samples`` draws with replacement."""

    def __init__(self, data_source: Sequence, replacement: bool = False,
                 num_samples: int | None = None, generator=None):
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples must be a positive int, got {num_samples!r}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = as_generator(generator)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n, rng = len(self.data_source), epoch_generator(self.generator)
        if self.replacement:
            return iter(rng.integers(0, n, size=self.num_samples).tolist())
        rounds = -(-self.num_samples // n) if n else 0
        order = np.concatenate([rng.permutation(n) for _ in range(rounds)] or [np.zeros(0, int)])
        return iter(order[:self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order."""

    def __init__(self, indices: Sequence[int], generator=None):
        self.indices = indices
        self.generator = as_generator(generator)

    def __iter__(self) -> Iterator[int]:
        order = epoch_generator(self.generator).permutation(len(self.indices))
        return (self.indices[i] for i in order.tolist())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probability proportional to ``weights``."""

    def __init__(self, weights, num_samples: int, replacement: bool = True, generator=None):
        w = np.asarray(_interop.to_numpy(weights), dtype=np.float64).reshape(-1)
        if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite, non-negative, "
                             f"and not all zero; got {w[:8].tolist()}{'...' if w.size > 8 else ''}")
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples without "
                             f"replacement from {np.count_nonzero(w)} non-zero weights")
        self.weights, self.num_samples, self.replacement = w, num_samples, replacement
        self.generator = as_generator(generator)

    def __iter__(self) -> Iterator[int]:
        rng = epoch_generator(self.generator)
        drawn = rng.choice(self.weights.size, size=self.num_samples, replace=self.replacement,
                           p=self.weights / self.weights.sum())
        return iter(drawn.tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size must be a positive int, got {batch_size!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
