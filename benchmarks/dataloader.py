"""One epoch of DataLoader over 60,000 synthetic 28x28 images versus plain NumPy.

Run: ``python benchmarks/dataloader.py``.  The dataset is a ``TensorDataset`` of float32
images and int64 labels; the loader shuffles with batch size 64.  The reference is the
vectorised NumPy loop a hand-written trainer would use (one permutation, then fancy
indexing per batch).  It prints the time per epoch of each, and the ratio to NumPy, for
``num_workers=0`` and ``num_workers=2`` (worker start-up included).

With workers, most of the first epoch is start-up: the dataset (188 MB here) is pickled to
every worker process, which fork-free start methods require; later epochs with
``persistent_workers=True`` pay only the per-batch transfer through the result queue.
"""

from __future__ import annotations

import time

import numpy as np

import fnarray as fa
from fnarray.data import DataLoader, TensorDataset

N, BATCH = 60_000, 64


def numpy_epoch(images: np.ndarray, labels: np.ndarray, seed: int) -> int:
    order = np.random.default_rng(seed).permutation(len(images))
    batches = 0
    for start in range(0, len(images), BATCH):
        idx = order[start:start + BATCH]
        images[idx], labels[idx]
        batches += 1
    return batches


def loader_epoch(loader: DataLoader) -> int:
    return sum(1 for _ in loader)


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((N, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, N)
    dataset = TensorDataset(fa.asarray(images), fa.asarray(labels))
    reference = best_of(lambda: numpy_epoch(images, labels, 0))
    print(f"NumPy reference (permutation + fancy indexing): {reference * 1e3:8.1f} ms/epoch")
    for workers in (0, 2):
        loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, generator=0,
                            num_workers=workers)
        seconds = best_of(lambda: loader_epoch(loader), repeat=3 if workers == 0 else 1)
        print(f"DataLoader num_workers={workers}:                    {seconds * 1e3:8.1f} ms/epoch"
              f"  ({seconds / reference:5.2f}x NumPy)")


if __name__ == "__main__":
    main()
