"""Datasets reach DataLoader workers without one pickle per worker (issue 10): a forked
worker sees a read-only view of the parent's own buffer, a forkserver worker a read-only
view of one shared-memory copy; the payload stays small, blocks are reused across epochs
and unlinked when the loader goes away; batches are fetched with one fancy index per
column (``__getitems__``), also without workers."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import sys
import threading

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
                type(self.big.base).__name__, os.getpid(),
                self.big.__array_interface__["data"][0])


def _shm_names(loader) -> list[str]:
    return [block.name for _, block in loader._shared._blocks.values()]


def _exists(name: str) -> bool:
    return os.path.exists(f"/dev/shm/{name}")


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_forked_workers_view_the_parents_buffer_read_only():
    probe = Probe()
    loader = DataLoader(probe, batch_size=512, num_workers=2, collate_fn=lambda b: b,
                        multiprocessing_context="fork")
    rows = [s for batch in loader for s in batch]
    assert [r[0] for r in rows] == [float(i * 64) for i in range(4096)]
    assert all(not writeable for _, writeable, *_ in rows)
    assert os.getpid() not in {r[3] for r in rows}
    # the very pages the parent holds (copy-on-write): no copy, no shared-memory block
    assert {r[4] for r in rows} == {probe.big.__array_interface__["data"][0]}
    assert not _shm_names(loader)
    assert probe.big.flags.writeable  # the parent's own array is untouched


def test_default_start_method_is_fork_only_without_other_threads(monkeypatch):
    from fnarray.data import dataloader
    me = threading.current_thread()
    feeder = threading.Thread(name="QueueFeederThread")
    user = threading.Thread(name="user thread")
    linux = sys.platform.startswith("linux")
    monkeypatch.setattr(threading, "enumerate", lambda: [me, feeder])
    assert dataloader._fork_is_safe() == linux
    assert (dataloader._start_context(None).get_start_method() == "fork") == linux
    monkeypatch.setattr(threading, "enumerate", lambda: [me, feeder, user])
    assert not dataloader._fork_is_safe()
    assert dataloader._start_context(None).get_start_method() != "fork"


def test_forkserver_workers_view_one_read_only_shared_copy():
    loader = DataLoader(Probe(), batch_size=512, num_workers=2,
                        collate_fn=lambda b: b, multiprocessing_context="forkserver")
    rows = [s for batch in loader for s in batch]
    assert [r[0] for r in rows] == [float(i * 64) for i in range(4096)]
    assert all(not writeable for _, writeable, *_ in rows)
    assert {r[2] for r in rows} <= {"mmap", "memoryview"}
    assert os.getpid() not in {r[3] for r in rows}
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


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_tensor_dataset_batches_identical_with_and_without_workers(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")
    x = np.random.default_rng(1).random((3000, 100)).astype(np.float32)  # 1.2 MB: shared
    y = np.arange(3000)
    dataset = TensorDataset(fa.asarray(x), y)
    kwargs = dict(batch_size=100, shuffle=True, generator=7)
    plain = list(DataLoader(dataset, **kwargs))
    workers = list(DataLoader(dataset, num_workers=2, multiprocessing_context=method, **kwargs))
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
