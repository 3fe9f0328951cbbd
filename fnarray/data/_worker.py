"""What runs inside a ``DataLoader`` worker process, and the messages it exchanges.

A worker receives ``(generation, send_index, index)`` tasks on its own index queue and
answers ``(generation, send_index, result)`` on its own result pipe (``_channel``), written
synchronously from its main thread, where the result is
the collated batch with every array replaced by a ``HostLeaf`` (a NumPy buffer pickles
fast; the main process wraps it back into an ``Array`` or tensor), an ``IterationEnd``
when its share of an ``IterableDataset`` is exhausted, or a ``WorkerFailure`` carrying the
traceback text.  ``None`` tells it to exit; ``RESET`` restarts its dataset iterator for a
new epoch (persistent workers).  It also exits on its own when the main process dies
(noticed while waiting for a task, or as a broken pipe while sending a result).
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import random
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fnarray import _interop
from fnarray.core.array import Array

POLL_SECONDS = 0.1
RESET = "reset"


@dataclass(frozen=True)
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker (``None`` in the main process)."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_info: WorkerInfo | None = None
_rng: np.random.Generator | None = None


def get_worker_info() -> WorkerInfo | None:
    """This worker's id, the number of workers, its seed and its copy of the dataset."""
    return _info


def process_rng() -> np.random.Generator:
    """The generator random transforms use by default in this process.

    In a worker it is seeded with the worker's seed (``base_seed + worker_id``); in the
    main process it is seeded once from the global random state (see ``sampler``).
    """
    global _rng
    if _rng is None:
        from fnarray.data.sampler import draw_seed
        _rng = np.random.default_rng(draw_seed(None))
    return _rng


# ----------------------------------------------------------------------------- fetching

class MapFetcher:
    """Loads one batch (a list of indices) or one sample of a map-style dataset."""

    def __init__(self, dataset, collate_fn: Callable, auto_collation: bool):
        self.dataset, self.collate_fn, self.auto_collation = dataset, collate_fn, auto_collation
        self.current: Any = None  # the sample index being loaded, for error messages

    def __call__(self, index):
        self.current = index
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return self.collate_fn(getitems(index))
        samples = []
        for i in index:
            self.current = i
            samples.append(self.dataset[i])
        return self.collate_fn(samples)


class IterFetcher:
    """Loads the next batch (or sample) of an iterable dataset; ``StopIteration`` at the end."""

    def __init__(self, dataset, collate_fn: Callable, auto_collation: bool, batch_size,
                 drop_last: bool):
        self.iterator = iter(dataset)
        self.collate_fn, self.auto_collation = collate_fn, auto_collation
        self.batch_size, self.drop_last = batch_size, drop_last
        self.ended = False
        self.current: Any = None

    def __call__(self, index=None):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            try:
                return self.collate_fn(next(self.iterator))
            except StopIteration:
                self.ended = True
                raise
        batch = list(itertools.islice(self.iterator, self.batch_size))
        if not batch or (self.drop_last and len(batch) < self.batch_size):
            self.ended = True
            raise StopIteration
        return self.collate_fn(batch)


# ----------------------------------------------------------------------------- messages

@dataclass(frozen=True)
class HostLeaf:
    """An array sent between processes as NumPy values plus how to wrap it back."""

    value: np.ndarray
    tensor: bool
    device: str


@dataclass(frozen=True)
class IterationEnd:
    worker_id: int


@dataclass(frozen=True)
class WorkerFailure:
    worker_id: int
    sample_index: Any
    error_type: str
    message: str
    traceback: str


def to_host(data):
    """``data`` with every array and tensor replaced by a ``HostLeaf``."""
    if isinstance(data, Array):
        return HostLeaf(np.asarray(data), False, str(data.device))
    if _interop.is_tensor(data):
        return HostLeaf(np.asarray(data.array), True, str(data.array.device))
    return _map_containers(data, to_host)


def from_host(data):
    """Inverse of ``to_host`` (run in the main process)."""
    if isinstance(data, HostLeaf):
        return _interop.from_numpy(data.value, data.device, data.tensor)
    return _map_containers(data, from_host)


def _map_containers(data, fn):
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(fn(x) for x in data))
    if type(data) in (list, tuple):
        return type(data)(fn(x) for x in data)
    if isinstance(data, Mapping):
        return {k: fn(v) for k, v in data.items()}
    return data


# ----------------------------------------------------------------------------- the loop

@dataclass
class WorkerSpec:
    """Everything a worker needs, pickled once when the process starts."""

    dataset: Any
    is_iterable: bool
    collate_fn: Callable
    auto_collation: bool
    batch_size: int | None
    drop_last: bool
    base_seed: int
    num_workers: int
    worker_init_fn: Callable | None

    def fetcher(self):
        if self.is_iterable:
            return IterFetcher(self.dataset, self.collate_fn, self.auto_collation,
                               self.batch_size, self.drop_last)
        return MapFetcher(self.dataset, self.collate_fn, self.auto_collation)


def worker_loop(payload, worker_id: int, index_queue, result_writer) -> None:
    """Serve tasks until told to stop or until the main process is gone; ``payload`` is
    the ``WorkerSpec`` as ``_payload.dump`` made it, ``result_writer`` this worker's end
    of its result pipe."""
    global _info, _rng
    from fnarray.data import _channel, _payload
    spec = _payload.load(payload)
    seed = spec.base_seed + worker_id
    random.seed(seed)
    np.random.seed(seed % 2**32)
    _rng = np.random.default_rng(seed)
    _info = WorkerInfo(worker_id, spec.num_workers, seed, spec.dataset)
    parent = multiprocessing.parent_process()
    fetcher, setup_failure = None, None
    try:
        if spec.worker_init_fn is not None:
            spec.worker_init_fn(worker_id)
        fetcher = spec.fetcher()
    except Exception as e:  # noqa: BLE001 - reported to the main process with the batch
        setup_failure = _failure(worker_id, "worker start-up (worker_init_fn / iter(dataset))", e)
    try:
        while True:
            try:
                task = index_queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if parent is not None and not parent.is_alive():
                    return
                continue
            if task is None:
                return
            if task == RESET:
                if setup_failure is None:
                    fetcher = spec.fetcher()
                continue
            generation, send_index, index = task
            result = setup_failure or _run(fetcher, index, worker_id)
            try:
                message = _channel.encode((generation, send_index, result))
            except Exception as e:  # noqa: BLE001 - pickling raises many types
                failure = _failure(worker_id, index, RuntimeError(
                    f"the batch cannot be pickled to the main process "
                    f"({type(e).__name__}: {e}); return arrays, numbers, strings and "
                    f"containers of them from the dataset and collate_fn"))
                message = _channel.encode((generation, send_index, failure))
            _channel.send(result_writer, message)
    except (KeyboardInterrupt, BrokenPipeError):  # interrupted, or the main process is gone
        return
    finally:
        result_writer.close()


def _run(fetcher, index, worker_id: int):
    try:
        return to_host(fetcher(index))
    except StopIteration:
        return IterationEnd(worker_id)
    except Exception as e:  # noqa: BLE001 - re-raised in the main process
        return _failure(worker_id, fetcher.current, e)


def _failure(worker_id: int, sample_index, error: BaseException) -> WorkerFailure:
    return WorkerFailure(worker_id, sample_index, type(error).__name__, str(error),
                         "".join(traceback.format_exception(error)))
