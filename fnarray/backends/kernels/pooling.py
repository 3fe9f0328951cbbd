"""Compiled max pooling: one pass over the input for ``max_pool``, one over the cotangent for
``max_pool_scatter`` (the NumPy kernels of :mod:`fnarray.ops.pooling` make about four passes
per kernel offset).

The kernels are compiled per window geometry (kernel, strides, dilation), which they hold
as constants: LLVM then unrolls the loop over a window's cells and vectorises the loop
over a row of windows (a 2x2 max-pool ran some ten times faster so than with the geometry
as arguments).  A geometry compiles once (about a second) and is cached on disk.

Both kernels take C-ordered operands reshaped to ``(batch, n0, n1, n2)``: three spatial
axes, 1-d and 2-d pooling adding leading unit axes (kernel 1, stride 1), which leave the
row-major tap numbering unchanged.  Their results equal the NumPy kernels' bit for bit:

* ``pool``: within a window, scanned in row-major order, a strictly greater value moves the
  tap (the first maximum wins) and a NaN moves it too (the last NaN wins); the value is the
  first NaN, else the running ``numpy.maximum``, which on a tie keeps the later operand (a
  window of ``-0.0`` then ``+0.0`` pools to ``+0.0`` at tap 0, as NumPy's does on x86).
* ``scatter``: each window's cotangent is written (disjoint windows) or added (overlapping
  ones) at its tap; other cells hold +0.  Where windows overlap, a cell receives its
  contributions in the order of the kernel offset at which each window sees it, as the
  NumPy kernel's one pass per offset adds them: windows are visited in reverse row-major
  order.  A tap outside the kernel reaches no cell, as in the NumPy kernel.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from fnarray.backends.kernels import compiled

# ``scatter`` modes: how the windows cover the grid (``window_cover`` of the conv ops)
OVERLAP, DISJOINT, TILED = 0, 1, 2


@cache
def pool(kernel: tuple, strides: tuple, dilation: tuple, nan: bool):
    """``run(x, best, taps) -> bool``: the window maxima of ``x`` ``(b, n0, n1, n2)`` into
    ``best`` and their taps into ``taps`` (both ``(b, o0, o1, o2)``, written in full);
    returns whether some window holds a NaN.  Without ``nan``, NaN cells are passed
    over (the results are then wrong where a window holds one, and the caller reruns the
    ``nan`` kernel): the two comparisons per cell compile to vector max/compare
    instructions, which the NaN rule's third branch would prevent (a 2x2 max-pool runs
    some ten times slower with it)."""
    (k0, k1, k2), (s0, s1, s2), (d0, d1, d2) = kernel, strides, dilation

    @compiled
    def run(x, best, taps):
        nb, o0, o1, o2 = best.shape
        seen = False
        for b in range(nb):
            for i0 in range(o0):
                for i1 in range(o1):
                    for i2 in range(o2):
                        top = x[b, i0 * s0, i1 * s1, i2 * s2]
                        tap = 0
                        t = 0
                        for a0 in range(k0):
                            for a1 in range(k1):
                                for a2 in range(k2):
                                    v = x[b, i0 * s0 + a0 * d0, i1 * s1 + a1 * d1,
                                          i2 * s2 + a2 * d2]
                                    if v > top:
                                        tap = t
                                    if v >= top:  # numpy.maximum: the later of equals
                                        top = v
                                    elif nan and v != v:  # the last NaN, valued the first
                                        tap = t
                                        if top == top:
                                            top = v
                                    seen |= v != v
                                    t += 1
                        best[b, i0, i1, i2] = top
                        taps[b, i0, i1, i2] = tap
        return seen

    return run


@cache
def scatter(kernel: tuple, strides: tuple, dilation: tuple, mode: int):
    """``run(ct, taps, gx)``: each window's cotangent (``ct``, ``taps``: ``(b, o0, o1,
    o2)``) at its tap in ``gx`` ``(b, n0, n1, n2)``.  ``TILED``: every cell is written
    (+0 off the taps), in memory order; ``DISJOINT``: the taps are written into a zeroed
    ``gx``; ``OVERLAP``: they are added into it."""
    (k0, k1, k2), (s0, s1, s2), (d0, d1, d2) = kernel, strides, dilation
    size = k0 * k1 * k2

    @compiled
    def run(ct, taps, gx):
        nb, o0, o1, o2 = ct.shape
        zero = np.zeros(1, gx.dtype)[0]  # a float of gx's type: no round trip through float64
        for b in range(nb):
            if mode == TILED:
                for i0 in range(o0):
                    for a0 in range(k0):
                        for i1 in range(o1):
                            for a1 in range(k1):
                                for i2 in range(o2):
                                    c = ct[b, i0, i1, i2]
                                    tap = taps[b, i0, i1, i2]
                                    for a2 in range(k2):
                                        t = (a0 * k1 + a1) * k2 + a2
                                        gx[b, i0 * s0 + a0 * d0, i1 * s1 + a1 * d1,
                                           i2 * s2 + a2 * d2] = c if tap == t else zero
                continue
            # reverse row-major windows: offsets ascending at every cell (the NumPy order)
            for i0 in range(o0 - 1, -1, -1):
                for i1 in range(o1 - 1, -1, -1):
                    for i2 in range(o2 - 1, -1, -1):
                        tap = taps[b, i0, i1, i2]
                        if 0 <= tap < size:
                            cell = (b, i0 * s0 + tap // (k1 * k2) * d0,
                                    i1 * s1 + tap // k2 % k1 * d1, i2 * s2 + tap % k2 * d2)
                            if mode == DISJOINT:
                                gx[cell] = ct[b, i0, i1, i2]
                            else:
                                gx[cell] += ct[b, i0, i1, i2]

    return run
