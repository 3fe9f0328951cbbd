"""DataLoader epochs over 60,000 synthetic 28x28 images versus NumPy and PyTorch.

Run: ``python benchmarks/dataloader.py [--torch-python PATH]``.  The dataset is a
``TensorDataset`` of float32 images and int64 labels; loaders shuffle with batch size 64.

* The NumPy reference is the vectorised loop a hand-written trainer would use (one
  permutation, then fancy indexing per batch).
* For ``num_workers`` 0 and 2 it times the first epoch of a fresh loader (its
  construction and the worker start-up included), the next epoch of the same loader
  (default ``persistent_workers=False``, so workers start again, as in PyTorch), and the
  first epoch of a second fresh loader (for fnarray the fork server, started by the first
  loader with workers in a process, is then already running).
* PyTorch's ``DataLoader`` on the same data is timed the same way when a Python with
  ``torch`` is available: ``--torch-python`` (default ``/work/benchvenv/bin/python`` when it
  exists) runs this file with ``--torch-only``.  PyTorch is never a dependency.

fnarray fetches a whole batch with one fancy index per column (``__getitems__``) and
shares the dataset with workers through shared memory instead of pickling it to each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

N, BATCH, WORKERS = 60_000, 64, (0, 2)
DEFAULT_TORCH_PYTHON = "/work/benchvenv/bin/python"


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((N, 28, 28), dtype=np.float32), rng.integers(0, 10, N)


def numpy_epoch(images: np.ndarray, labels: np.ndarray, seed: int) -> int:
    order = np.random.default_rng(seed).permutation(len(images))
    batches = 0
    for start in range(0, len(images), BATCH):
        idx = order[start:start + BATCH]
        images[idx], labels[idx]
        batches += 1
    return batches


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def epochs(make_loader) -> dict:
    """``{workers: [first_epoch_s, second_epoch_s, first_epoch_of_another_loader_s]}``; a
    first epoch includes making the loader (start-up work done at construction counts)."""
    def first_epoch(workers):
        start = time.perf_counter()
        loader = make_loader(workers)
        sum(1 for _ in loader)
        return time.perf_counter() - start, loader

    out = {}
    for workers in WORKERS:
        first, loader = first_epoch(workers)
        second = timed(lambda: sum(1 for _ in loader))  # noqa: B023
        loader = None  # its workers and shared memory go before the next loader starts
        out[workers] = [first, second, first_epoch(workers)[0]]
    return out


def fnarray_epochs(images, labels) -> dict:
    import fnarray as fa
    from fnarray.data import DataLoader, TensorDataset
    dataset = TensorDataset(fa.asarray(images), fa.asarray(labels))
    return epochs(lambda w: DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=w))


def torch_epochs(images, labels) -> dict:
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    dataset = TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))
    return epochs(lambda w: DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=w))


def torch_from(python: str | None) -> dict | None:
    if not python or not os.path.exists(python):
        return None
    proc = subprocess.run([python, __file__, "--torch-only"], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        print(f"(PyTorch run failed: {proc.stderr.strip().splitlines()[-1:]})")
        return None
    return {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default=DEFAULT_TORCH_PYTHON,
                        help="a Python with torch installed (skipped when missing)")
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    images, labels = data()
    if args.torch_only:
        print(json.dumps(torch_epochs(images, labels)))
        return
    reference = min(timed(lambda: numpy_epoch(images, labels, s)) for s in range(3))
    print(f"NumPy reference (permutation + fancy indexing): {reference * 1e3:8.1f} ms/epoch")
    ours = fnarray_epochs(images, labels)
    theirs = torch_from(args.torch_python)
    for workers in WORKERS:
        for i, name in enumerate(("first epoch", "next epoch ", "2nd loader ")):
            s = ours[workers][i]
            line = (f"fnarray DataLoader num_workers={workers}, {name}: {s * 1e3:8.1f} ms "
                    f"({s / reference:6.2f}x NumPy")
            if theirs is not None:
                t = theirs[workers][i]
                line += f", PyTorch {t * 1e3:8.1f} ms, {s / t:5.2f}x PyTorch"
            print(line + ")")


if __name__ == "__main__":
    sys.exit(main())
