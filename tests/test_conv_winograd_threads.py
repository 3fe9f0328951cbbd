"""The threaded Winograd driver (``fnarray/ops/conv_winograd.py``: a call's chunks of samples
dealt to the calling thread and a small pool): its results equal the serial driver's bit for
bit (forward correlation, input cotangent, weight cotangent; float32 and float64; one chunk,
odd and even numbers of chunks; eager and under ``fa.jit``), an exception in a pool thread
reaches the caller with its message, and the rule for how many threads run (one chunk, the
BLAS thread count, busy-waiting BLAS threads)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

import fnarray as fa
from fnarray.backends import accel
from fnarray.ops import conv_transpose as ct_ops
from fnarray.ops import conv_winograd
from fnarray.ops.conv_weight import conv_weight_cotangent

pytestmark = pytest.mark.skipif(not accel.available(),
                                reason="Winograd runs on the compiled transforms (numba)")

_G = dict(strides=(1, 1), dilation=(1, 1), groups=1)


@pytest.fixture(autouse=True)
def small_winograd(monkeypatch):
    """Winograd for any number of channels, compiled kernels at every size."""
    monkeypatch.setattr(conv_winograd, "_MIN_CHANNELS", 1)
    with accel.forced(True):
        yield


class _Spy:
    """``conv_winograd._WORKERS.count`` replaced by a fixed number of threads (at most one a
    chunk), recording each call's thread count and the threads that ran its chunks."""

    def __init__(self, monkeypatch):
        self.threads = 1
        self.calls: list[tuple[int, set[str]]] = []
        run = conv_winograd._run
        monkeypatch.setattr(conv_winograd._WORKERS, "count",
                            lambda chunks: min(chunks, self.threads))

        def spied(share, spans, threads):
            names: set[str] = set()

            def share_seen(slot, mine):
                names.add(threading.current_thread().name)
                share(slot, mine)

            run(share_seen, spans, threads)
            self.calls.append((threads, names))

        monkeypatch.setattr(conv_winograd, "_run", spied)

    def both(self, f, threads=2):
        """``f()`` serially, then on ``threads`` threads."""
        self.threads = 1
        serial = f()
        self.threads = threads
        return serial, f()


@pytest.fixture
def spy(monkeypatch):
    return _Spy(monkeypatch)


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


# samples and one-sample chunks: 1 chunk, an odd number, an even number; (chunk bytes, N)
_CHUNKINGS = [(1 << 30, 4), (1, 5), (1, 4), (30_000, 7)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunking", _CHUNKINGS)
@pytest.mark.parametrize("threads", [2, 3])
def test_three_operations_bit_identical(spy, monkeypatch, dtype, chunking, threads):
    chunk_bytes, n = chunking
    monkeypatch.setattr(conv_winograd, "_CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3, 11, 10)).astype(dtype)
    w = rng.normal(size=(4, 3, 3, 3)).astype(dtype)
    b = rng.normal(size=4).astype(dtype)
    ct = rng.normal(size=(n, 4, 11, 10)).astype(dtype)
    pad = ((1, 1), (1, 1))
    k = conv_winograd.kernels(np, x, w, (1, 1), (1, 1), 1)
    ops = [lambda: conv_winograd.correlate(k, np, x, w, (1, 1), (11, 10), b),
           lambda: ct_ops._transpose_impl(np, ct, w, in_spatial=(11, 10), padding=pad, **_G),
           lambda: np.asarray(conv_weight_cotangent.bind(fa.asarray(x), fa.asarray(ct),
                                                         kernel=(3, 3), padding=pad, **_G))]
    for op in ops:
        spy.calls.clear()
        serial, threaded = spy.both(op, threads)
        _same(serial, threaded)
        (serial_threads, _), (used, names) = spy.calls
        assert serial_threads == 1
        if chunk_bytes > 1 << 20:  # one chunk: the calling thread alone
            assert used == 1 and names == {threading.current_thread().name}
        elif chunk_bytes == 1:  # one sample a chunk; pool threads may take several shares
            assert used == min(threads, n) and len(names) >= 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_eager_and_jit_bit_identical(spy, monkeypatch, dtype):
    """Forward, input and weight gradients of ``fa.conv`` through the public API, eager and
    jitted, on three threads equal the serial driver's bits; a result held across later
    threaded calls (which reuse each thread's scratch) is unchanged."""
    monkeypatch.setattr(conv_winograd, "_CHUNK_BYTES", 1)
    rng = np.random.default_rng(3)
    x = fa.asarray(rng.normal(size=(5, 4, 9, 8)).astype(dtype))
    w = fa.asarray(rng.normal(size=(6, 4, 3, 3)).astype(dtype))
    b = fa.asarray(rng.normal(size=6).astype(dtype))

    def loss(x, w, b):
        y = fa.conv(x, w, b, padding=1)
        return fa.sum(y * y), y

    grad = fa.grad(loss, argnums=(0, 1, 2), has_aux=True)
    jitted = fa.jit(grad)
    serial_eager, threaded_eager = spy.both(lambda: grad(x, w, b), 3)
    serial_jit, threaded_jit = spy.both(lambda: jitted(x, w, b), 3)
    assert {used for used, _ in spy.calls} == {1, 3}
    held = np.asarray(threaded_eager[1]).copy()
    for _ in range(2):
        jitted(x * 2, w, b)
    _same(held, threaded_eager[1])
    for a, b_ in [(serial_eager, threaded_eager), (serial_jit, threaded_jit),
                  (serial_eager, serial_jit)]:
        (ga, ya), (gb, yb) = a, b_
        _same(ya, yb)
        for u, v in zip(ga, gb):
            _same(u, v)


class _Failing:
    """The compiled transforms, with ``output_tiles`` failing for chunks past the first."""

    def __init__(self, k):
        self.input_tiles, self.k = k.input_tiles, k

    def output_tiles(self, mm, total, y, start, bias):
        if start > 0:
            raise FloatingPointError(f"output transform failed at sample {start}")
        self.k.output_tiles(mm, total, y, start, bias)


def test_worker_exception_reaches_the_caller(spy, monkeypatch):
    monkeypatch.setattr(conv_winograd, "_CHUNK_BYTES", 1)
    x = np.ones((2, 2, 6, 6), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    k = _Failing(conv_winograd.kernels(np, x, w, (1, 1), (1, 1), 1))
    spy.threads = 2
    with pytest.raises(FloatingPointError, match="output transform failed at sample 1"):
        conv_winograd.correlate(k, np, x, w, (0, 0), (4, 4))
    assert spy.calls == [] and spy.threads == 2  # the failing call recorded nothing
    # the pool and the BLAS limit recover: the next call runs threaded and right
    k = conv_winograd.kernels(np, x, w, (1, 1), (1, 1), 1)
    np.testing.assert_array_equal(conv_winograd.correlate(k, np, x, w, (0, 0), (4, 4)),
                                  np.full((2, 3, 4, 4), 18, np.float32))
    assert spy.calls[-1][0] == 2


def test_exception_in_the_calling_thread_waits_for_the_pool():
    """The calling thread's own chunk fails while a pool thread still runs: the error is
    raised only after the pool thread has finished (its scratch is not handed out while
    in use)."""
    done = threading.Event()

    def share(slot, mine):
        if slot == 0:
            raise KeyError("calling thread's chunk")
        done.wait(0.05)
        done.set()

    with pytest.raises(KeyError, match="calling thread's chunk"):
        conv_winograd._run(share, [(0, 1), (1, 2)], 2)
    assert done.is_set()


def test_a_call_overlapping_a_threaded_one_runs_serially():
    """BLAS's limit is process-wide: while one call runs threaded (holding the driver's
    lock), another thread's call runs serially, and BLAS's thread count is restored."""
    names: set[str] = set()
    before = conv_winograd._WORKERS.count(64)
    with conv_winograd._WORKERS.lock:
        conv_winograd._run(lambda slot, mine: names.add(threading.current_thread().name),
                           [(0, 1), (1, 2)], 2)
    assert names == {threading.current_thread().name}
    conv_winograd._run(lambda slot, mine: names.add(threading.current_thread().name),
                       [(0, 1), (1, 2)], 2)
    assert len(names) == 2 and not conv_winograd._WORKERS.lock.locked()
    assert conv_winograd._WORKERS.count(64) == before


class _Lib(SimpleNamespace):
    """A threadpoolctl library controller's face: name, threading layer, thread count."""


def test_thread_count_rule(monkeypatch):
    workers = conv_winograd._Workers()
    lib = _Lib(internal_api="openblas", threading_layer="pthreads", num_threads=4)
    workers.blas = SimpleNamespace(lib_controllers=[lib])
    workers.sleeping, workers.cpus = [True], 8
    assert workers.count(1) == 1  # one chunk: the calling thread
    assert workers.count(3) == 3  # one a chunk
    assert workers.count(32) == 4  # BLAS's thread count
    lib.num_threads = 1
    assert workers.count(32) == 1  # the user's one-thread limit
    lib.num_threads, workers.sleeping = 4, [False]  # 3 busy-waiting BLAS threads
    assert workers.count(32) == 4 and workers.cpus - 3 == 5
    workers.cpus = 4
    assert workers.count(32) == 1
    workers.cpus = 6
    assert workers.count(32) == 3
    workers.blas = False  # no threadpoolctl
    assert workers.count(32) == 1


@pytest.mark.parametrize("env,value,sleeps", [
    ("OPENBLAS_THREAD_TIMEOUT", "16", True), ("GOTO_THREAD_TIMEOUT", "4", True),
    ("OPENBLAS_THREAD_TIMEOUT", str(conv_winograd._SLEEPY_TIMEOUT + 1), False),
    ("OPENBLAS_THREAD_TIMEOUT", "soon", False), (None, None, False)])
def test_sleeping_blas_threads(monkeypatch, env, value, sleeps):
    for name in ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    if env:
        monkeypatch.setenv(env, value)
    openblas = _Lib(internal_api="openblas", threading_layer="pthreads", num_threads=2)
    assert conv_winograd._sleeps(openblas) is sleeps
    assert not conv_winograd._sleeps(_Lib(internal_api="mkl", threading_layer="intel",
                                           num_threads=2))
    assert not conv_winograd._sleeps(_Lib(internal_api="openblas", threading_layer="openmp",
                                          num_threads=2))


def test_blas_limit_of_one_thread_runs_serially():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    conv_winograd._WORKERS.count(2)  # loads the BLAS controls
    if not conv_winograd._WORKERS.blas:
        pytest.skip("threadpoolctl finds no BLAS library")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert conv_winograd._WORKERS.count(64) == 1
