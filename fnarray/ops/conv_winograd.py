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
At two threads the products speed up but the transforms do not: they are serial, since a
numba parallel loop next to OpenBLAS's spinning workers made the step 3x slower here.

It needs the ``accel`` extra (numba) and float32/float64; results agree with the im2col
path to float rounding (the transforms add and halve, exactly in float64 and to a few ulps
in float32).
"""

from __future__ import annotations

import math
import sys

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


_TILES, _PRODUCTS = _Scratch(), _Scratch()  # a chunk's V (16, T, C) and M (16, T, O)


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
    tiles = ((out[0] + 1) // 2, (out[1] + 1) // 2)
    per_sample = math.prod(tiles)
    chunk = _chunk(n, per_sample, c + o, x.itemsize)
    v_all = _TILES.empty(xp, (16, c * chunk * per_sample + _GAP), x.dtype)
    m_all = _PRODUCTS.empty(xp, (16, chunk * per_sample * o + _GAP), x.dtype)
    for start in range(0, n, chunk):
        t = (min(n, start + chunk) - start) * per_sample
        k.input_tiles(x, v_all, t, start, tuple(low), tiles)
        xp.matmul(v_all[:, :t * c].reshape(16, t, c), u,
                  out=m_all[:, :t * o].reshape(16, t, o))
        k.output_tiles(m_all, t, res, start, bias)
    return res


def weight_cotangent(k, xp, x, ct, low):
    """The weight cotangent of :func:`correlate` (same ``x`` and ``low``) for the output
    cotangent ``ct`` ``(N, O, H, W)``: ``G^T [sum over tiles of (A dY A^T) * (B^T d B)] G``
    per channel pair, i.e. 16 products ``(C, tiles) @ (tiles, O)`` summed over chunks of
    samples, then the small ``G^T . G``: a fresh C-ordered ``(O, C, 3, 3)`` array."""
    n, c, o = x.shape[0], x.shape[1], ct.shape[1]
    out = ct.shape[2:]
    tiles = ((out[0] + 1) // 2, (out[1] + 1) // 2)
    per_sample = math.prod(tiles)
    if n == 0 or c == 0 or o == 0 or per_sample == 0:
        return xp.zeros((o, c, 3, 3), dtype=x.dtype)
    x, ct = xp.ascontiguousarray(x), xp.ascontiguousarray(ct)
    chunk = _chunk(n, per_sample, c + o, x.itemsize)
    v_all = _TILES.empty(xp, (16, c * chunk * per_sample + _GAP), x.dtype)
    m_all = _PRODUCTS.empty(xp, (16, chunk * per_sample * o + _GAP), x.dtype)
    total = xp.zeros((16, c, o), dtype=x.dtype)
    part = xp.empty((16, c, o), dtype=x.dtype)
    for start in range(0, n, chunk):
        t = (min(n, start + chunk) - start) * per_sample
        k.input_tiles(x, v_all, t, start, tuple(low), tiles)
        k.cotangent_tiles(ct, m_all, t, start)
        xp.matmul(xp.swapaxes(v_all[:, :t * c].reshape(16, t, c), 1, 2),
                  m_all[:, :t * o].reshape(16, t, o), out=part)
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
