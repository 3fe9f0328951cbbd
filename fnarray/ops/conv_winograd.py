"""Winograd F(2x2, 3x3): the 3x3, stride-1, dilation-1, ungrouped 2-d correlation as 16
matrix products, an algorithm the convolution primitives' impls choose
(``fnarray/ops/conv.py``, ``fnarray/ops/conv_transpose.py``); no primitive of its own.

Each 2x2 block of output cells ("tile") of output channel ``o`` is
``A^T [sum_c U[o, c] * V[c]] A`` with ``U = G g G^T`` the 4x4 transform of the weight
``g = w[o, c]`` and ``V = B^T d B`` that of the 4x4 input block ``d`` under the tile
(``*`` elementwise; ``A``, ``B``, ``G`` hold only 0, +-1 and +-1/2).  The sum over channels
of each of the 16 entries is one product ``(tiles, C) @ (C, O)``: 16 products of ``2 * C *
O`` flops per tile instead of im2col's one of ``9 * 2 * C * O`` per output cell, 2.25x fewer,
and the transformed tiles are smaller than im2col's patches (4x4 values per 2x2 cells
against 9 per cell).  The compiled kernels of :mod:`fnarray.backends.kernels.winograd`
transform the inputs and outputs; the products run through BLAS, chunk of samples by chunk
so that the transformed tiles and the products stay in cache.  :func:`correlate` is the
forward correlation (``conv``'s forward pass and ``conv_transpose``'s), and
:func:`weight_cotangent` its adjoint for the weight, ``G^T [sum over tiles of (A dY A^T) *
(B^T d B)] G`` (``conv_weight_cotangent``).

Measured on conv2 of the tutorial ConvNet (32 -> 64 channels, 26x26 -> 24x24, N=64,
float32; /work/notes/winograd-scripts): forward 23.2 -> 14.5 ms (one BLAS thread, thread
time; about 13 -> 11 ms at two), weight cotangent 20.8 -> 12.0 ms, input cotangent 18.8 ->
17.2 ms; the Adam step of the ConvNet 72.9 -> 50.3 ms (``compat.compile``, one thread).

Threads: a call's chunks can run side by side, dealt round-robin to the calling thread and
a small pool (:func:`_run`; each thread with its own scratch, BLAS at one thread a product
for the call, entered and left through ``threadpoolctl`` in ~8 us).  The transforms are
numba kernels that release the GIL and the products are NumPy's, so the threads overlap
fully.  Each chunk is computed by the same operations whichever thread runs it, and the
weight cotangent adds the chunks' products in chunk order, so the results are the serial
driver's bit for bit.  How many threads (:meth:`_Workers.count`): one for a single chunk
(a chunk is ~2 MB of work, and a hand-off to the pool costs ~50 us), never more than BLAS's
thread count (one when the user limits BLAS to one thread) and never more than the CPUs
left by BLAS's busy-waiting threads.  That last rule decides it on small machines:
OpenBLAS's idle threads spin for ~0.1 s after each product (2^28 cycles, its default
``OPENBLAS_THREAD_TIMEOUT``), so in a training step, whose products come every few ms, each
holds a CPU all the time.  With two CPUs and two BLAS threads the driver therefore stays
serial by default: forced to two threads, the ConvNet step lost 1.6-1.9 ms (its two threads
shared two CPUs with the spinning one; a numba parallel loop in the transforms did worse,
3x slower).  With ``OPENBLAS_THREAD_TIMEOUT=20`` in the environment before NumPy is imported
(OpenBLAS's threads then sleep after ~2^20 cycles, 0.4 ms at 2.6 GHz), the driver runs
threaded and the step took 47.9 -> 34.7 ms (``compat.compile``) and 51.6 -> 39.9 ms
(eager), two threads, quiet machine, interleaved A/B against the serial driver
(/work/notes/winograd-par.md).  The setting is the user's, since it changes how every
OpenBLAS product in the process waits (the MLP workload's step, cross-process and noisy,
showed no clear change at 20); on a busy machine, where a thread of the call can be
descheduled, the threaded step was often slower.

It needs the ``accel`` extra (numba; threadpoolctl for the threads) and float32/float64;
results agree with the im2col path to float rounding (the transforms add and halve,
exactly in float64 and to a few ulps in float32).
"""

from __future__ import annotations

import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import nullcontext

import numpy as np

from fnarray.backends import accel

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Below this many input or output channels the transforms (per tile: ~16 (C + O) values
# moved) outweigh the products' savings (2.25x fewer of 2 C O flops per cell); measured
# (ab_fwd.py, 2 threads, N=64, 26x26-32x32 maps): 1->32 0.97 vs 13 ms (a one-column product
# misses BLAS), 3->16 1.3 vs 2.4, 4->8 1.0 vs 1.3, 8->16 2.2 vs 2.1, 16->16 (14x14) 1.3 vs 0.9,
# 32->64 13.1 vs 9.5 (im2col vs Winograd)
_MIN_CHANNELS = 8
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

# transformed tiles plus products per chunk of samples: small, so that they stay in L2 and
# OpenBLAS runs the products on one or two threads (it splits a product only past 2^18
# multiply-adds per thread).  conv2 of the tutorial ConvNet (0.9-1 MB a sample), two BLAS
# threads, ab_ops.py: 1-2 MB chunks take forward / input / weight cotangent 10.9 / 11.9 /
# 11.4 ms (the previous paths: 13 / 10.5 / 14.6 in quiet moments), 8 MB chunks 9.5 / 11 /
# 15 when the machine is quiet, but on a busy one every product of 8 samples waits for a
# descheduled BLAS thread: medians 2-8x the 1-2 MB chunks' (which stayed within 3x).
_CHUNK_BYTES = 2 << 20
# the 16 entries' matrices of a chunk lie _GAP values apart: a stride of a multiple of 4 KB
# (conv2's are) would put the kernels' 16 streams on the same cache sets
_GAP = 16


class _Scratch:
    """A one-slot scratch buffer that only grows: a training step runs three different
    Winograd operations (forward, input and weight cotangents) whose chunks have other
    shapes, so ``_Recycler``'s exact-shape slot would hand each a fresh buffer (page
    faults: measured 2-4x slower transforms in the step).  The slot is handed out again
    only while it is its ONLY holder (``sys.getrefcount``), as a prefix of the requested
    shape, so no array anybody can see is ever written."""

    def __init__(self):
        self.slot = None

    def empty(self, xp, shape, dtype):
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        buf = self.slot
        # references: the slot, ``buf`` and getrefcount's argument
        if buf is None or buf.nbytes < nbytes or sys.getrefcount(buf) > 3:
            buf = xp.empty(nbytes, dtype=np.uint8)
            if isinstance(buf, np.ndarray):
                self.slot = buf
        return buf[:nbytes].view(dtype).reshape(shape)


# per worker slot (0: the calling thread): a chunk's V (16, T, C) and M (16, T, O)
_TILES: list[_Scratch] = [_Scratch()]
_PRODUCTS: list[_Scratch] = [_Scratch()]
_PARTS = _Scratch()  # the weight cotangent's per-chunk products


def takes(x, w, strides, dilation, groups) -> bool:
    """Whether Winograd runs the correlation of ``x`` with ``w`` when compiled kernels do
    (see :func:`kernels`): two spatial axes, a 3x3 kernel, stride 1, dilation 1, one
    group, float32/float64 operands of one dtype, and at least ``_MIN_CHANNELS`` channels
    on both sides of the weight.  Shapes and dtypes only, so abstract values answer too."""
    return (len(w.shape) == 4 and tuple(w.shape[2:]) == (3, 3) and groups == 1
            and all(s == 1 for s in strides) and all(d == 1 for d in dilation)
            and x.dtype in _DTYPES and w.dtype == x.dtype
            and min(w.shape[0], w.shape[1]) >= _MIN_CHANNELS)


def kernels(xp, x, w, strides, dilation, groups):
    """The compiled transforms when Winograd takes this correlation of ``x`` with ``w``
    (:func:`takes`, and ``accel.kernels``' size and backend choice), else None."""
    if not takes(x, w, strides, dilation, groups):
        return None
    return accel.kernels("winograd", xp, x.size)


def weight_tiles(xp, w):
    """``G w[o, c] G^T`` of every channel pair, laid out ``(16, C, O)``: the right-hand
    operands of the 16 products (small; computed in the weight's dtype as two products
    over all channel pairs at once: a three-operand einsum took 0.36 ms for conv2)."""
    g = _G.astype(w.dtype)
    o, c = w.shape[:2]
    wt = xp.ascontiguousarray(xp.transpose(w, (2, 3, 1, 0))).reshape(3, 3 * c * o)
    rows = xp.matmul(g, wt).reshape(4, 3, c * o)  # G along the kernel's rows
    return xp.matmul(g, rows).reshape(16, c, o)  # ... then along its columns


def correlate(k, xp, x, w, low, out, bias=None):
    """``y[n, o, i, j] = sum_{c, a, b} x[n, c, i + a - low[0], j + b - low[1]] w[o, c, a,
    b]`` (+ ``bias[o]``), ``x`` read as zero off its cells, for the output cells ``out =
    (H, W)``: a fresh C-ordered ``(N, O, H, W)`` array.  ``k`` is :func:`kernels`' module;
    ``low`` may be negative (cells skipped)."""
    n, c, o = x.shape[0], x.shape[1], w.shape[0]
    res = xp.empty((n, o, *out), dtype=x.dtype)
    if res.size == 0:
        return res
    if c == 0:
        res[...] = 0 if bias is None else bias.reshape(o, 1, 1)
        return res
    x = xp.ascontiguousarray(x)
    u = weight_tiles(xp, w)
    bias = xp.zeros(0, x.dtype) if bias is None else xp.ascontiguousarray(bias)
    tiles, per_sample, spans, most = _plan(n, out, c + o, x.itemsize)

    def share(slot, mine):
        for start, t, v_all, m_all, v, m in _chunk_views(xp, slot, mine, per_sample, c, o,
                                                         most, x.dtype):
            k.input_tiles(x, v_all, t, start, tuple(low), tiles)
            xp.matmul(v, u, out=m)
            k.output_tiles(m_all, t, res, start, bias)

    _run(share, spans, _WORKERS.count(len(spans)))
    return res


def weight_cotangent(k, xp, x, ct, low):
    """The weight cotangent of :func:`correlate` (same ``x`` and ``low``) for the output
    cotangent ``ct`` ``(N, O, H, W)``: ``G^T [sum over tiles of (A dY A^T) * (B^T d B)] G``
    per channel pair, i.e. 16 products ``(C, tiles) @ (tiles, O)`` summed over chunks of
    samples, then the small ``G^T . G``: a fresh C-ordered ``(O, C, 3, 3)`` array."""
    n, c, o = x.shape[0], x.shape[1], ct.shape[1]
    out = ct.shape[2:]
    if n == 0 or c == 0 or o == 0 or math.prod(out) == 0:
        return xp.zeros((o, c, 3, 3), dtype=x.dtype)
    x, ct = xp.ascontiguousarray(x), xp.ascontiguousarray(ct)
    tiles, per_sample, spans, most = _plan(n, out, c + o, x.itemsize)
    threads = _WORKERS.count(len(spans))
    total = xp.zeros((16, c, o), dtype=x.dtype)
    # the chunks' products, added to ``total`` in chunk order whichever thread computed
    # them: right away in one thread, after all of them in several
    parts = _PARTS.empty(xp, (len(spans) if threads > 1 else 1, 16, c, o), x.dtype)
    index = {start: i for i, (start, _) in enumerate(spans)}

    def share(slot, mine):
        for start, t, v_all, m_all, v, m in _chunk_views(xp, slot, mine, per_sample, c, o,
                                                         most, x.dtype):
            k.input_tiles(x, v_all, t, start, tuple(low), tiles)
            k.cotangent_tiles(ct, m_all, t, start)
            part = parts[index[start] % len(parts)]
            xp.matmul(xp.swapaxes(v, 1, 2), m, out=part)
            if threads == 1:
                total[...] += part

    _run(share, spans, threads)
    if threads > 1:
        for part in parts:
            total += part
    gt = _G.T.astype(x.dtype)
    rows = xp.matmul(gt, total.reshape(4, 4 * c * o)).reshape(3, 4, c * o)  # G^T . [i, j]
    dw = xp.matmul(gt, rows).reshape(3, 3, c, o)  # ... . G  (an einsum: 1 ms for conv2)
    return xp.ascontiguousarray(xp.transpose(dw, (3, 2, 0, 1)))


def _chunk(n: int, per_sample: int, channels: int, itemsize: int) -> int:
    """Samples per chunk: about ``_CHUNK_BYTES`` of transformed tiles and products, in
    chunks as even as they come."""
    chunk = max(1, min(n, _CHUNK_BYTES // (16 * per_sample * channels * itemsize)))
    return -(-n // -(-n // chunk))


def _plan(n: int, out, channels: int, itemsize: int):
    """How a call over ``n`` samples with outputs ``out`` ``(H, W)`` and ``channels`` input
    plus output channels is cut up: the tile grid ``(ceil(H/2), ceil(W/2))``, the tiles per
    sample, the chunks of samples (:func:`_spans`) and the most tiles one chunk holds."""
    tiles = ((out[0] + 1) // 2, (out[1] + 1) // 2)
    per_sample = math.prod(tiles)
    spans = _spans(n, _chunk(n, per_sample, channels, itemsize))
    return tiles, per_sample, spans, max(stop - start for start, stop in spans) * per_sample


def _chunk_views(xp, slot: int, mine, per_sample: int, c: int, o: int, most: int, dtype):
    """Per chunk ``(start, stop)`` of ``mine``: ``(start, t, v_all, m_all, v, m)``, with ``t``
    its tiles, ``v_all``/``m_all`` thread ``slot``'s scratch for the transformed tiles and the
    products (room for ``most`` tiles), and ``v`` ``(16, t, c)``, ``m`` ``(16, t, o)`` the
    chunk's matrices in them."""
    v_all = _TILES[slot].empty(xp, (16, c * most + _GAP), dtype)
    m_all = _PRODUCTS[slot].empty(xp, (16, most * o + _GAP), dtype)
    for start, stop in mine:
        t = (stop - start) * per_sample
        yield (start, t, v_all, m_all, v_all[:, :t * c].reshape(16, t, c),
               m_all[:, :t * o].reshape(16, t, o))


def _spans(n: int, chunk: int) -> list[tuple[int, int]]:
    """The chunks ``[start, stop)`` of ``n`` samples, ``chunk`` a chunk."""
    return [(start, min(n, start + chunk)) for start in range(0, n, chunk)]


class _Workers:
    """The threads that run a call's chunks side by side: the calling thread and a small
    pool, created on first use (again after a fork, whose child has none of the parent's
    threads), and the BLAS libraries' thread controls (``threadpoolctl``, optional)."""

    def __init__(self):
        self.pool: ThreadPoolExecutor | None = None
        self.size = self.pid = -1
        # held by the one call that runs threaded: BLAS's limit is process-wide, and two
        # overlapping limits would restore each other's values in the wrong order
        self.lock = threading.Lock()
        self.blas = None  # threadpoolctl's controller of the BLAS libraries; False: none
        self.sleeping: list[bool] = []  # per BLAS library: do its idle threads sleep?
        self.cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count() or 1

    def count(self, chunks: int) -> int:
        """How many threads run a call of ``chunks`` chunks: at most one a chunk, at most
        BLAS's thread count (so one when the user limits BLAS to one thread), and no more
        than the CPUs that BLAS's busy-waiting threads leave (see :func:`_sleeps`); one
        when threadpoolctl is missing."""
        if chunks < 2:
            return 1
        if self.blas is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                self.blas = False
            else:
                self.blas = ThreadpoolController().select(user_api="blas") or False
                if self.blas:
                    self.sleeping = [_sleeps(lib) for lib in self.blas.lib_controllers]
        if not self.blas:
            return 1
        sizes = [lib.num_threads for lib in self.blas.lib_controllers]
        spinning = sum(n - 1 for n, asleep in zip(sizes, self.sleeping) if not asleep)
        return max(1, min(chunks, *sizes, self.cpus - spinning))

    def executor(self, threads: int) -> ThreadPoolExecutor:
        """The pool, of at least ``threads`` threads."""
        if self.pool is None or self.pid != os.getpid() or self.size < threads:
            self.pool = ThreadPoolExecutor(threads, "fnarray-winograd")
            self.size, self.pid = threads, os.getpid()
        return self.pool


# OpenBLAS's idle threads busy-wait for 2^timeout cycles after each product (default 28:
# ~0.1 s) before they sleep, so in a training step, whose products come every few ms, they
# hold their CPUs all the time; at or below this timeout the threaded driver won the
# ConvNet step (OPENBLAS_THREAD_TIMEOUT 4-24, one run each: 45 -> 30-36 ms, two CPUs; 20:
# 47.9 -> 34.7 ms over 11 rounds), at the default 28 it lost 1.6-1.9 ms
_SLEEPY_TIMEOUT = 24


def _sleeps(lib) -> bool:
    """Whether the idle threads of the BLAS library ``lib`` (a threadpoolctl controller)
    sleep soon: OpenBLAS's pthreads build with ``OPENBLAS_THREAD_TIMEOUT`` (or
    ``GOTO_THREAD_TIMEOUT``; read by OpenBLAS when its threads start, i.e. before NumPy is
    imported) at most ``_SLEEPY_TIMEOUT``.  Other libraries count as busy-waiting (MKL's
    and OpenMP's threads spin too, by default)."""
    if lib.internal_api != "openblas" or getattr(lib, "threading_layer", None) != "pthreads":
        return False
    value = os.environ.get("OPENBLAS_THREAD_TIMEOUT") or os.environ.get("GOTO_THREAD_TIMEOUT")
    try:
        return value is not None and int(value) <= _SLEEPY_TIMEOUT
    except ValueError:
        return False


_WORKERS = _Workers()


def _run(share, spans: list[tuple[int, int]], threads: int) -> None:
    """Run ``share(slot, chunks)`` over the chunks ``spans``: all of them in the calling
    thread (``slot`` 0) when ``threads`` is 1, else dealt round-robin to ``threads``
    threads (the calling one and the pool's), ``slot`` numbering each one's scratch,
    while BLAS runs one thread a product (so that the threads do not share BLAS's own
    pool).  While another thread's call runs threaded, this one runs serially.  Every
    chunk is computed by the same operations whichever thread runs it, so the results do
    not depend on the threads; the first exception of any thread is raised once all have
    stopped."""
    if threads == 1 or not _WORKERS.lock.acquire(blocking=False):
        share(0, spans)
        return
    try:
        while len(_TILES) < threads:
            _TILES.append(_Scratch())
            _PRODUCTS.append(_Scratch())
        pool = _WORKERS.executor(threads - 1)
        with _WORKERS.blas.limit(limits=1) if _WORKERS.blas else nullcontext():
            others = [pool.submit(share, slot, spans[slot::threads])
                      for slot in range(1, threads)]
            try:
                share(0, spans[::threads])
            finally:
                wait(others)
            for other in others:
                other.result()
    finally:
        _WORKERS.lock.release()
