"""``DataLoader``: batches from a dataset, in the main process or in worker processes.

Worker processes (``num_workers > 0``)
--------------------------------------
On Linux, workers are started with ``fork``, as PyTorch starts them, when that is safe: when
no other Python thread runs in the process (a thread holding a lock — logging, an I/O
buffer, a user's queue — at the moment of the fork would leave it locked forever in the
child; ``multiprocessing``'s own queue feeder threads are harmless, a worker never uses
another pool's queues; OpenBLAS re-creates its pool after a fork).  A forked worker starts
in milliseconds and maps the parent's memory copy-on-write.  Otherwise (other threads, other
platforms) they start with ``forkserver`` where the platform has it, else ``spawn``; the
fork server preloads fnarray, so after the first loader a worker starts in well under 0.1 s,
where ``spawn`` re-imports everything for every worker (about 1 s each here).  Choose a
method with ``multiprocessing_context=``.

Under every method the dataset, ``collate_fn`` and ``worker_init_fn`` are sent to the
workers as one payload pickled by value with cloudpickle, and the workers never re-run the
main script (``_payload``), so datasets defined in notebook cells or functions, lambdas and
scripts without an ``if __name__ == "__main__":`` guard work, an object that cannot be
serialised is explained the same way, and a worker sees the dataset as it was when the
epoch started.  Large NumPy buffers in that payload (a ``TensorDataset``'s columns,
``MNIST.data``) are not pickled to each worker: a forked worker gets a read-only view of
the parent's buffer, other workers map one shared-memory copy read-only (``_shared``).

Each worker has its own index queue and its own result pipe (``_channel``); results are
reordered, so batches arrive in sampler order.  At most ``prefetch_factor * num_workers``
batches are in flight.  Worker ``i`` seeds Python's ``random``, NumPy's global state and
the generator of random transforms with ``base_seed + i``, where ``base_seed`` is drawn
from the loader's ``generator`` every epoch (so ``generator=`` an int repeats runs).
Workers send NumPy buffers; the main process wraps them into arrays or tensors.

Failures never hang: the main process waits on all result pipes in short polls, checking
that every worker is alive, and reads a message without ever blocking on an incomplete one
(a worker killed in the middle of sending a batch is reported, not waited for).  An
exception in a worker is re-raised with the worker id, the sample index and the worker's
traceback; a worker that dies (e.g. killed by a signal) ends the epoch with a
``RuntimeError`` naming it; ``timeout > 0`` bounds the wait for each batch.  Workers are
shut down (and, if needed, terminated) at the end of an epoch, on an error, and when an
abandoned iterator — or, for ``persistent_workers=True``, the loader — is garbage collected.

``pin_memory`` is accepted for compatibility and has no effect: batches are built in
ordinary host memory and moved with ``fa.device_put`` / ``tensor.to``.
"""

from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.connection
import pickle
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator

from fnarray.data import _channel, _failures, _payload, _shared, _worker
from fnarray.data.collate import default_collate
from fnarray.data.dataset import IterableDataset
from fnarray.data.sampler import (
    BatchSampler, RandomSampler, SequentialSampler, as_generator, draw_seed)

_SHUTDOWN_SECONDS = 2.0


def default_convert(data):
    """The ``collate_fn`` used when ``batch_size=None``: samples are passed on unbatched."""
    return data


class DataLoader:
    """Iterate over ``dataset`` in batches (see the module docstring for workers)."""

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False,
                 sampler=None, batch_sampler=None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, generator=None,
                 persistent_workers: bool = False, prefetch_factor: int = 2,
                 multiprocessing_context=None):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be an int >= 0, got {num_workers!r}")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout must be >= 0 seconds, got {timeout!r}")
        if not isinstance(prefetch_factor, int) or prefetch_factor < 1:
            raise ValueError(f"DataLoader: prefetch_factor must be an int >= 1, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers=True needs num_workers > 0")
        self.is_iterable = isinstance(dataset, IterableDataset)
        if self.is_iterable and (shuffle or sampler is not None or batch_sampler is not None):
            raise ValueError("DataLoader: an IterableDataset decides its own order; shuffle, "
                             "sampler and batch_sampler must be left unset")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True are mutually exclusive")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("DataLoader: batch_sampler is mutually exclusive with batch_size, "
                             "shuffle, sampler and drop_last")
        self.dataset, self.num_workers, self.pin_memory = dataset, num_workers, pin_memory
        self.timeout, self.worker_init_fn = timeout, worker_init_fn
        self.persistent_workers, self.prefetch_factor = persistent_workers, prefetch_factor
        self.drop_last = drop_last
        self.generator = generator
        self._rng = as_generator(generator)
        self.multiprocessing_context = multiprocessing_context
        if num_workers > 0:
            _start_context(multiprocessing_context, prepare=True)
        if batch_sampler is not None:
            batch_size = None
        if sampler is None and not self.is_iterable:
            sampler = (RandomSampler(dataset, generator=self._rng) if shuffle
                       else SequentialSampler(dataset))
        if batch_size is not None and batch_sampler is None and not self.is_iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size, self.sampler, self.batch_sampler = batch_size, sampler, batch_sampler
        self.auto_collation = batch_sampler is not None or (self.is_iterable and batch_size is not None)
        self.collate_fn = collate_fn or (default_collate if self.auto_collation else default_convert)
        self._pool: _WorkerPool | None = None
        self._shared: _shared.SharedArrays | None = None  # dataset buffers for workers

    @property
    def _index_sampler(self):
        return self.batch_sampler if self.batch_sampler is not None else self.sampler

    def __len__(self) -> int:
        if not self.is_iterable:
            return len(self._index_sampler)
        n = len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator:
        base_seed = draw_seed(self._rng)
        if self.num_workers == 0:
            return self._single_process(base_seed)
        return _MultiProcessIter(self, base_seed)

    def _single_process(self, base_seed: int) -> Iterator:
        spec = self._spec(base_seed)
        fetch = spec.fetcher()
        if self.is_iterable:
            while True:
                try:
                    batch = fetch()
                except StopIteration:
                    return
                yield batch
        for index in self._index_sampler:
            yield fetch(index)

    def _spec(self, base_seed: int) -> _worker.WorkerSpec:
        return _worker.WorkerSpec(self.dataset, self.is_iterable, self.collate_fn,
                                  self.auto_collation, self.batch_size, self.drop_last,
                                  base_seed, self.num_workers, self.worker_init_fn)

    def _worker_pool(self, base_seed: int) -> tuple[_WorkerPool, bool]:
        """A pool for one epoch, and whether it is already running (persistent reuse)."""
        if not self.persistent_workers:
            return _WorkerPool(self, base_seed), False
        if self._pool is None or not self._pool.running:
            self._pool = _WorkerPool(self, base_seed)
            return self._pool, False
        return self._pool, True


def _start_context(spec, prepare: bool = False):
    """The context workers start with: the user's ``multiprocessing_context`` (a context or
    a method name), else ``fork`` when ``_fork_is_safe()``, else ``forkserver`` or
    ``spawn``.  The fork server preloads what every worker imports (fnarray, the compat
    layer that batches become tensors of, cloudpickle); with ``prepare`` (at the loader's
    construction) it is started now, in the background, so its imports overlap with the
    rest of the user's setup instead of delaying the first batch."""
    if spec is not None and not isinstance(spec, str):
        return spec
    methods = multiprocessing.get_all_start_methods()
    method = spec or ("fork" if "fork" in methods and _fork_is_safe() else
                      "forkserver" if "forkserver" in methods else "spawn")
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["fnarray", "fnarray.data", "fnarray.compat", "cloudpickle"])
        if prepare:
            from multiprocessing import forkserver
            forkserver.ensure_running()
    return ctx


def _fork_is_safe() -> bool:
    """Linux, and no Python thread but this one and ``multiprocessing`` queue feeders (see
    the module docstring)."""
    if not sys.platform.startswith("linux"):
        return False
    me = threading.current_thread()
    return all(t is me or t.name == "QueueFeederThread" for t in threading.enumerate())


class _WorkerPool:
    """Worker processes with their index queues and result pipes; shut down when closed or
    garbage collected."""

    def __init__(self, loader: DataLoader, base_seed: int):
        ctx = _start_context(loader.multiprocessing_context)
        forking = ctx.get_start_method() == "fork"
        try:
            if loader._shared is None:
                loader._shared = _shared.SharedArrays(loader)
            loader._shared.forking = forking
            payload, by_value = _payload.dump(loader._spec(base_seed), loader._shared)
        except Exception as e:  # noqa: BLE001 - cloudpickle raises many types
            raise RuntimeError(
                f"DataLoader could not send the dataset, collate_fn and worker_init_fn to "
                f"its worker processes ({type(e).__name__}: {e}): "
                f"{_payload.pickling_hint(_payload.by_value())}") from e
        self.index_queues, self.readers, self.workers = [], [], []
        self.generation = 0
        self._finalizer = weakref.finalize(self, _shutdown, self.workers, self.index_queues,
                                           self.readers)
        for worker_id in range(loader.num_workers):
            index_queue = ctx.Queue()
            reader, writer = _channel.pipe(ctx)
            process = ctx.Process(target=_worker.worker_loop, daemon=True,
                                  args=(payload, worker_id, index_queue, writer))
            try:
                with _payload.main_hidden(by_value and not forking):
                    process.start()
            except (pickle.PicklingError, AttributeError, TypeError) as e:
                writer.close()
                reader.close()
                self.close()
                raise RuntimeError(
                    f"DataLoader could not start worker {worker_id}: the dataset, collate_fn "
                    f"and worker_init_fn are pickled to worker processes, and one of them "
                    f"cannot be pickled ({type(e).__name__}: {e}): "
                    f"{_payload.pickling_hint(by_value)}") from e
            writer.close()  # the worker holds it now; a dead worker's pipe reads as EOF
            self.index_queues.append(index_queue)
            self.readers.append(reader)
            self.workers.append(process)

    @property
    def running(self) -> bool:
        return self._finalizer.alive

    def close(self) -> None:
        self._finalizer()

    def dead_worker(self):
        """``(worker_id, process)`` of a worker that has exited, else ``None``."""
        for worker_id, process in enumerate(self.workers):
            if not process.is_alive():
                return worker_id, process
        return None


def _shutdown(workers: list, index_queues: list, readers: list) -> None:
    """Ask every worker to exit, then terminate and kill the ones that do not.  Results
    still arriving are read and dropped meanwhile: a worker blocked sending a batch nobody
    will take (an abandoned epoch) then finishes its tasks and sees the request."""
    for q in index_queues:
        try:
            q.put(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + _SHUTDOWN_SECONDS
    open_readers = list(readers)
    running = {process.sentinel: process for process in workers}
    while running and time.monotonic() < deadline:
        remaining = deadline - time.monotonic()
        for ready in multiprocessing.connection.wait([*open_readers, *running], remaining):
            if isinstance(ready, _channel.Reader):
                if not ready.discard():
                    open_readers.remove(ready)
            else:
                running.pop(ready).join()
    for process in workers:
        if process.is_alive():
            process.terminate()
            process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join()
    for q in index_queues:
        q.cancel_join_thread()
        q.close()
    for reader in readers:
        reader.close()


class _MultiProcessIter:
    """One epoch over a worker pool: dispatches tasks, reorders results, watches workers."""

    def __init__(self, loader: DataLoader, base_seed: int):
        self.loader = loader
        self.pool, reused = loader._worker_pool(base_seed)
        self.pool.generation += 1
        self.generation = self.pool.generation
        if reused and loader.is_iterable:
            for q in self.pool.index_queues:
                q.put(_worker.RESET)
        n = loader.num_workers
        self.indices = itertools.repeat(None) if loader.is_iterable else iter(loader._index_sampler)
        self.active = [True] * n
        self.next_worker = itertools.cycle(range(n))
        self.sent, self.received = 0, 0
        self.owner: dict[int, int] = {}
        self.pending_index: dict[int, object] = {}
        self.buffer: dict[int, object] = {}
        for _ in range(loader.prefetch_factor * n):
            self._dispatch()

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self.loader)

    def _dispatch(self) -> None:
        if not any(self.active):
            return
        index = next(self.indices, StopIteration)
        if index is StopIteration:
            return
        worker_id = next(self.next_worker)
        while not self.active[worker_id]:
            worker_id = next(self.next_worker)
        self.pool.index_queues[worker_id].put((self.generation, self.sent, index))
        self.owner[self.sent], self.pending_index[self.sent] = worker_id, index
        self.sent += 1

    def __next__(self):
        while True:
            if self.received == self.sent:
                self._finish()
                raise StopIteration
            if self.received not in self.buffer:
                generation, send_index, data = self._receive()
                if generation == self.generation:
                    self.buffer[send_index] = data
                continue
            data = self.buffer.pop(self.received)
            worker_id = self.owner.pop(self.received)
            index = self.pending_index.pop(self.received)
            self.received += 1
            if isinstance(data, _worker.IterationEnd):
                self.active[worker_id] = False
                self._dispatch()
                continue
            if isinstance(data, _worker.WorkerFailure):
                self._finish(error=True)
                raise _failures.reraise(data, index)
            self._dispatch()
            return _worker.from_host(data)

    def _receive(self):
        """The next ``(generation, send_index, data)`` from any worker, preferring the worker
        that owes the batch wanted next."""
        timeout = self.loader.timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None
        readers = self.pool.readers
        while True:
            wait = _worker.POLL_SECONDS
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            ready = multiprocessing.connection.wait(readers, wait)
            if ready:
                wanted = readers[self.owner.get(self.received, 0)]
                return self._read(wanted if wanted in ready else ready[0], deadline)
            dead = self.pool.dead_worker()
            if dead is not None:  # what it sent before it exited is still in its pipe
                return self._read(readers[dead[0]], deadline)
            self._check_deadline(deadline)

    def _read(self, reader: _channel.Reader, deadline: float | None):
        """One message from ``reader``; a worker that died before completing it, or that
        exited with nothing left to read, raises the worker-death error."""
        worker_id = self.pool.readers.index(reader)
        process = self.pool.workers[worker_id]

        def idle() -> bool:
            self._check_deadline(deadline)
            return not process.is_alive()
        try:
            return reader.receive(idle, _worker.POLL_SECONDS)
        except _channel.ChannelClosed as closed:
            process.join(_SHUTDOWN_SECONDS)  # closed its pipe: exiting, if not yet reaped
            self._finish(error=True)
            raise RuntimeError(_failures.death_message(
                worker_id, process, self._indices_of(worker_id), closed)) from None

    def _check_deadline(self, deadline: float | None) -> None:
        if deadline is None or time.monotonic() < deadline:
            return
        timeout = self.loader.timeout
        worker_id = self.owner.get(self.received)
        self._finish(error=True)
        raise RuntimeError(
            f"DataLoader timed out after {timeout} seconds (timeout={timeout}) waiting "
            f"for batch {self.received} from worker {worker_id}; raise the timeout or "
            f"make the dataset's __getitem__ faster")

    def _indices_of(self, worker_id: int) -> list:
        return [self.pending_index[i] for i, w in self.owner.items() if w == worker_id]

    def _finish(self, error: bool = False) -> None:
        if error or not self.loader.persistent_workers:
            self.pool.close()
