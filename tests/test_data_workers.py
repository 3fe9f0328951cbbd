"""DataLoader with worker processes: same batches as in-process, errors, deaths, timeouts,
and no leaked processes.  Datasets live at module level so workers can unpickle them."""

import gc
import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest

from fnarray import _interop
from fnarray.data import DataLoader, Dataset, IterableDataset, TensorDataset, get_worker_info

values = _interop.to_numpy


class Numbers(Dataset):
    """Sample i: (i, the loading process's pid, a draw from the worker-seeded NumPy state)."""

    def __init__(self, n, fail_at=None, slow_at=None, delay=0.0):
        self.n, self.fail_at, self.slow_at, self.delay = n, fail_at, slow_at, delay

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError(f"bad sample {i}")
        if i == self.slow_at or self.delay:
            time.sleep(self.delay or 30)
        return i, os.getpid(), np.random.randint(1 << 30)


class Shards(IterableDataset):
    """Each worker yields its own interleaved share of range(n)."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


def record_worker_id(worker_id):
    os.environ["FNARRAY_TEST_WORKER"] = str(worker_id)


class InitSeen(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return int(os.environ.get("FNARRAY_TEST_WORKER", -1)), get_worker_info().seed


def assert_gone(pids, within=5.0):
    deadline = time.monotonic() + within
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive.discard(pid)
        time.sleep(0.05)
    assert not alive, f"worker processes {alive} still running"
    assert not multiprocessing.active_children()


def test_workers_give_the_same_batches_as_the_main_process():
    x = np.arange(60, dtype=np.float32).reshape(30, 2)
    ds = TensorDataset(x, np.arange(30))
    kw = dict(batch_size=4, shuffle=True, generator=11, drop_last=False)
    serial = [[values(t).tolist() for t in b] for b in DataLoader(ds, **kw)]
    loader = DataLoader(ds, num_workers=2, persistent_workers=True, **kw)
    epochs = [[[values(t).tolist() for t in b] for b in loader] for _ in range(2)]
    assert epochs[0] == serial
    assert epochs[1] != epochs[0] and len(loader) == 8
    pids = [p.pid for p in loader._pool.workers]
    del loader
    gc.collect()
    assert_gone(pids)


def test_workers_seed_shard_and_initialise():
    numbers = DataLoader(Numbers(12), batch_size=3, num_workers=2, generator=5)
    ids, pids, draws = (values(t).tolist() for t in zip(*[[b[0], b[1], b[2]] for b in numbers]))
    assert sum(ids, []) == list(range(12))
    assert len({tuple(p) for p in pids}) == 2 and all(len(set(p)) == 1 for p in pids)
    again = DataLoader(Numbers(12), batch_size=3, num_workers=2, generator=5)
    assert [values(b[2]).tolist() for b in again] == draws  # worker seeds follow the generator
    shards = DataLoader(Shards(11), batch_size=2, num_workers=2)
    got = sum((values(b).tolist() for b in shards), [])
    assert sorted(got) == list(range(11))
    seen = list(DataLoader(InitSeen(), batch_size=None, num_workers=2,
                           worker_init_fn=record_worker_id, generator=0))
    assert sorted(w for w, _ in seen) == [0, 0, 1, 1]
    seeds = {w: s for w, s in seen}
    assert seeds[1] == seeds[0] + 1
    assert_gone(sum(pids, []))


def test_worker_exception_names_worker_and_sample():
    loader = DataLoader(Numbers(10, fail_at=6), batch_size=4, num_workers=2)
    with pytest.raises(ValueError) as info:
        list(loader)
    message = str(info.value)
    assert "worker 1" in message and "sample index 6" in message and "bad sample 6" in message
    assert "Traceback" in message and "__getitem__" in message
    assert not multiprocessing.active_children()


def test_killed_worker_ends_the_epoch_with_an_error():
    loader = DataLoader(Numbers(40, delay=0.05), batch_size=2, num_workers=2)
    it = iter(loader)
    first = next(it)
    victim = int(values(first[1])[0])
    os.kill(victim, signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"worker 0 \(pid \d+\) exited unexpectedly.*SIGKILL"):
        list(it)
    assert time.monotonic() - start < 10
    assert_gone([victim])


def test_timeout_and_abandoned_iterators_leak_nothing():
    # The timeout also bounds the first batches, which include starting the workers:
    # 2 s leaves room for that on a loaded machine.
    loader = DataLoader(Numbers(8, slow_at=5), batch_size=1, num_workers=2, timeout=2.0)
    it = iter(loader)
    pids = {int(values(next(it)[1])[0]) for _ in range(3)}
    with pytest.raises(RuntimeError, match=r"timed out after 2.0 seconds"):
        list(it)
    abandoned = iter(DataLoader(Numbers(50), batch_size=2, num_workers=2))
    pids |= {int(values(next(abandoned)[1])[0])}
    del abandoned
    gc.collect()
    assert_gone(pids)


def test_unpicklable_dataset_is_explained():
    dataset = Numbers(3)
    dataset.lock = threading.Lock()  # lambdas travel by value; a lock cannot
    with pytest.raises(RuntimeError, match=r"could not send the dataset.*lock.*cannot be "
                                           r"serialised even by value"):
        iter(DataLoader(dataset, collate_fn=lambda b: b, num_workers=1))
    assert not multiprocessing.active_children()
