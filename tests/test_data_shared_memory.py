"""Datasets reach DataLoader workers through shared memory, not one pickle per worker
(issue 10): the worker sees read-only views of one shared copy, the payload stays small,
blocks are reused across epochs and unlinked when the loader goes away; batches are
fetched with one fancy index per column (``__getitems__``), also without workers."""

from __future__ import annotations

import gc
import os
import pickle

import numpy as np
import pytest

import fnarray as fa
from fnarray.data import DataLoader, Dataset, TensorDataset, _payload, _shared, _worker

pytest.importorskip("cloudpickle")


class Probe(Dataset):
    """Reports, from the loading process, how its big array is held."""

    def __init__(self, n=4096):
        self.big = np.arange(n * 64, dtype=np.float64).reshape(n, 64)  # 2 MiB

    def __len__(self):
        return len(self.big)

    def __getitem__(self, i):
        return (float(self.big[i, 0]), bool(self.big.flags.writeable),
                type(self.big.base).__name__, os.getpid())


def _shm_names(loader) -> list[str]:
    return [block.name for _, block in loader._shared._blocks.values()]


def _exists(name: str) -> bool:
    return os.path.exists(f"/dev/shm/{name}")


def test_workers_view_one_read_only_shared_copy():
    loader = DataLoader(Probe(), batch_size=512, num_workers=2,
                        collate_fn=lambda b: b)
    rows = [s for batch in loader for s in batch]
    assert [r[0] for r in rows] == [float(i * 64) for i in range(4096)]
    assert all(not writeable for _, writeable, _, _ in rows)
    assert {base for _, _, base, _ in rows} <= {"mmap", "memoryview"}
    assert os.getpid() not in {pid for *_, pid in rows}
    names = _shm_names(loader)
    assert len(names) == 1 and all(_exists(n) for n in names)
    list(loader)  # a second epoch reuses the block
    assert _shm_names(loader) == names
    del loader, rows
    gc.collect()
    if os.path.isdir("/dev/shm"):
        assert not any(_exists(n) for n in names)


def test_payload_carries_references_not_the_data():
    images = fa.asarray(np.random.default_rng(0).random((2048, 28, 28), dtype=np.float32))
    dataset = TensorDataset(images, fa.asarray(np.arange(2048)))
    spec = DataLoader(dataset, batch_size=64)._spec(0)

    class Owner:
        pass
    owner = Owner()
    table = _shared.SharedArrays(owner)
    payload, by_value = _payload.dump(spec, table)
    assert by_value and len(payload) < 100_000 < np.asarray(images).nbytes
    # the image column's tensor-free NumPy view and the Array share one block
    assert len(table._blocks) == 1
    restored = pickle.loads(payload)
    np.testing.assert_array_equal(restored.dataset[5][0], np.asarray(images)[5])
    table.close()
    assert not table._blocks


def test_tensor_dataset_batches_identical_with_and_without_workers():
    x = np.random.default_rng(1).random((3000, 100)).astype(np.float32)  # 1.2 MB: shared
    y = np.arange(3000)
    dataset = TensorDataset(fa.asarray(x), y)
    kwargs = dict(batch_size=100, shuffle=True, generator=7)
    plain = list(DataLoader(dataset, **kwargs))
    workers = list(DataLoader(dataset, num_workers=2, **kwargs))
    assert len(plain) == len(workers) == 30
    for (a, b), (c, d) in zip(plain, workers):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
        np.testing.assert_array_equal(np.asarray(b), np.asarray(d))


def test_batches_use_one_fancy_index_per_column():
    class Counting(TensorDataset):
        calls = 0

        def __getitem__(self, index):
            Counting.calls += 1
            return super().__getitem__(index)
    dataset = Counting(fa.asarray(np.ones((256, 3), np.float32)), np.arange(256))
    batches = list(DataLoader(dataset, batch_size=64))
    assert Counting.calls == 0 and len(batches) == 4
    fetch = _worker.MapFetcher(dataset, lambda b: b, True)
    assert len(fetch([0, 5, 9])) == 3 and Counting.calls == 0


MNIST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")


@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="MNIST files not found")
def test_mnist_batches_by_fancy_index_match_per_sample_collation():
    from fnarray.data.datasets import MNIST
    dataset = MNIST(MNIST_DIR, train=False)
    fast = next(iter(DataLoader(dataset, batch_size=32, shuffle=True, generator=3)))
    slow = next(iter(DataLoader(dataset, batch_size=32, shuffle=True, generator=3,
                                collate_fn=lambda b: _collate_samples(list(b)))))
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert isinstance(dataset[0][1], int)


def _collate_samples(samples):
    from fnarray.data import default_collate
    return default_collate([(image, label) for image, label in samples])
