"""im2col and col2im: the mutually transposed linear primitives ``conv_patches`` and
``conv_patches_transpose`` (see ``fnarray/ops/conv.py`` for the layout and its use by the
convolution's matrix products), and the window geometry that convolutions and pooling
share.

``conv_patches(x)`` has shape ``(C, *kernel, N, *out)``: entry ``[c, k.., n, i..]`` is the
zero-padded input ``x`` ``(N, C, *spatial)`` at ``i * stride + k * dilation``.  Both
kernels have a compiled form (``fnarray/backends/kernels/conv.py``, the ``accel`` extra)
for C-ordered float32/float64 operands with up to 3 spatial axes; the NumPy code below
stays the reference, and both give the same values exactly.
"""

from __future__ import annotations

import itertools
import math
import sys

import numpy as np

from fnarray import api as fa
from fnarray.backends import accel
from fnarray.core.shapes import ShapedArray
from fnarray.ops._util import move_bdim
from fnarray.ops.shape import linear
from fnarray.transforms.buffers import declare_fresh


def out_size(n: int, k: int, stride: int, pad: tuple, dilation: int) -> int:
    """Number of window positions along one axis (PyTorch's floor formula)."""
    return (n + pad[0] + pad[1] - dilation * (k - 1) - 1) // stride + 1


def out_spatial(spatial, kernel, strides, padding, dilation) -> tuple:
    return tuple(out_size(*a) for a in zip(spatial, kernel, strides, padding, dilation))


# --- kernels ---------------------------------------------------------------------------------

def _windows(xp, x, kernel, strides, padding, dilation):
    """A read-only strided view ``(C, *kernel, N, *out)`` of the zero-padded input ``x``
    ``(N, C, *spatial)``, whatever its memory layout.  With padding, the input is first
    written into a fresh zero buffer laid out ``(C, N, *padded)`` (the only copy)."""
    n, c, spatial = x.shape[0], x.shape[1], x.shape[2:]
    if any(lo or hi for lo, hi in padding):
        padded = tuple(s + lo + hi for s, (lo, hi) in zip(spatial, padding))
        buf = xp.zeros((c, n, *padded), dtype=x.dtype)
        inner = tuple(slice(lo, lo + s) for s, (lo, _) in zip(spatial, padding))
        buf[(slice(None), slice(None), *inner)] = xp.swapaxes(x, 0, 1)
        x = xp.swapaxes(buf, 0, 1)
    out = out_spatial(x.shape[2:], kernel, strides, ((0, 0),) * len(kernel), dilation)
    sp = x.strides[2:]
    steps = (x.strides[1], *(s * d for s, d in zip(sp, dilation)),
             x.strides[0], *(s * st for s, st in zip(sp, strides)))
    return xp.lib.stride_tricks.as_strided(x, shape=(c, *kernel, n, *out), strides=steps,
                                           writeable=False)


class _Recycler:
    """A one-slot cache for a large buffer: the patches of ``conv_patches``, the products
    inside ``conv_transpose``'s kernels.

    An im2col buffer is tens of MB (conv2 of the tutorial ConvNet: 42 MB), above glibc's
    largest mmap threshold, so every fresh one costs page faults and the kernel's zero fill
    (~3.5 ms of a 7 ms im2col).  The slot keeps the last such buffer; it is handed out again
    only when the slot is its ONLY holder (``sys.getrefcount``: no Array, view, tape node
    or residual still reads it), so no array anybody can see is ever written."""

    MIN_BYTES = 8 << 20

    def __init__(self):
        self.slot = None

    def empty(self, xp, shape, dtype):
        buf = self.slot
        # references: the slot, ``buf`` and getrefcount's argument
        if (buf is not None and buf.shape == shape and buf.dtype == dtype
                and sys.getrefcount(buf) <= 3):
            return buf
        buf = xp.empty(shape, dtype=dtype)
        if isinstance(buf, np.ndarray) and buf.nbytes >= self.MIN_BYTES:
            self.slot = buf
        return buf


_PATCH_BUFFERS = _Recycler()


def _compiled(xp, a, size: int, nd: int):
    """The compiled kernels (``fnarray/backends/kernels/conv.py``) for operand ``a`` of a
    convolution with ``nd`` spatial axes, or None: they take C-ordered float32/float64
    operands with at most 3 spatial axes; anything else runs the NumPy code."""
    if nd > 3 or a.dtype not in _COMPILED_DTYPES or not a.flags.c_contiguous:
        return None
    return accel.kernels("conv", xp, size)


_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _rank3(shape, at: int) -> tuple:
    """``shape`` with size-1 axes inserted at ``at`` until the ``nd`` spatial axes that
    follow are 3: the fixed rank of the compiled kernels (a free view)."""
    return (*shape[:at], *(1,) * (3 - (len(shape) - at)), *shape[at:])


def _geometry3(nd: int, strides, padding, dilation) -> tuple:
    """The compiled kernels' ``(strides, low padding, dilation)`` over 3 spatial axes."""
    lead = 3 - nd
    return ((1,) * lead + tuple(strides), (0,) * lead + tuple(lo for lo, _ in padding),
            (1,) * lead + tuple(dilation))


def _cols3(cols, nd: int):
    """Patch columns ``(C, *kernel, N, *out)`` viewed with 3 kernel and 3 output axes."""
    head = _rank3(cols.shape[:1 + nd], 1)
    return cols.reshape(*head, *_rank3(cols.shape[1 + nd:], 1))


def _patches_impl(xp, x, *, kernel, strides, padding, dilation):
    nd = len(kernel)
    shape = (x.shape[1], *kernel, x.shape[0],
             *out_spatial(x.shape[2:], kernel, strides, padding, dilation))
    k = _compiled(xp, x, math.prod(shape), nd)
    if k is not None:
        out = _PATCH_BUFFERS.empty(xp, shape, x.dtype)
        k.patches(x.reshape(_rank3(x.shape, 2)), _cols3(out, nd),
                  *_geometry3(nd, strides, padding, dilation))
        return out
    windows = _windows(xp, x, kernel, strides, padding, dilation)
    out = _PATCH_BUFFERS.empty(xp, windows.shape, windows.dtype)
    xp.copyto(out, windows)
    return out


def window_offsets(kernel, strides, dilation, out):
    """``(flat offset, offset, slices)`` for every kernel offset, row-major: the slices of
    the trailing (padded) spatial axes that pick, for every window, its cell at that
    offset."""
    for t, offs in enumerate(itertools.product(*(range(k) for k in kernel))):
        yield t, offs, tuple(slice(o * d, o * d + (m - 1) * s + 1, s)
                             for o, d, m, s in zip(offs, dilation, out, strides))


def window_cover(kernel, strides, dilation, out, spatial) -> tuple[bool, bool]:
    """``(disjoint, tiled)``: no grid cell lies in two windows (stride >= dilated kernel),
    and, further, every cell lies in exactly one (so writing the windows back needs no
    zero fill and no addition)."""
    disjoint = all(k == 1 or m == 1 or s >= d * (k - 1) + 1
                   for k, m, s, d in zip(kernel, out, strides, dilation))
    tiled = all((d == 1 or k == 1) and d * (k - 1) + 1 == s and m * s == n
                for k, m, s, d, n in zip(kernel, out, strides, dilation, spatial))
    return disjoint, tiled


def _patches_transpose_impl(xp, cols, *, in_spatial, kernel, strides, padding, dilation):
    """col2im: columns ``(C, *kernel, N, *out)`` added back onto the padded input grid, one
    strided add per kernel offset into one fresh ``(N, C, *padded)`` buffer (a loop over
    the ``prod(kernel)`` offsets, never over the data; every pass runs along contiguous
    output rows).  Where no two windows share a grid cell (stride >= dilated kernel), each
    offset's cells are written once, so a plain assignment replaces the addition."""
    nd = len(kernel)
    c, n, out = cols.shape[0], cols.shape[1 + nd], cols.shape[2 + nd:]
    k = _compiled(xp, cols, cols.size, nd)
    if k is not None:  # adds straight onto the unpadded grid: no crop copy
        acc = xp.zeros((n, c, *in_spatial), dtype=cols.dtype)
        k.patches_transpose(_cols3(cols, nd), acc.reshape(_rank3(acc.shape, 2)),
                            *_geometry3(nd, strides, padding, dilation))
        return acc
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(in_spatial, padding))
    disjoint, tiled = window_cover(kernel, strides, dilation, out, padded)
    acc = (xp.empty if tiled else xp.zeros)((n, c, *padded), dtype=cols.dtype)
    if all(out):
        for _, offs, region in window_offsets(kernel, strides, dilation, out):
            col = xp.swapaxes(cols[(slice(None), *offs)], 0, 1)
            if disjoint:
                acc[(slice(None), slice(None), *region)] = col
            else:
                acc[(slice(None), slice(None), *region)] += col
    if not any(lo or hi for lo, hi in padding):
        return acc
    crop = tuple(slice(lo, lo + s) for s, (lo, _) in zip(in_spatial, padding))
    return xp.ascontiguousarray(acc[(slice(None), slice(None), *crop)])


# --- the linear pair ---------------------------------------------------------------------------

def _patches_abstract(a, *, kernel, strides, padding, dilation):
    out = out_spatial(a.shape[2:], kernel, strides, padding, dilation)
    return ShapedArray((a.shape[1], *kernel, a.shape[0], *out), a.dtype, a.weak_type)


def _patches_transpose_abstract(a, *, in_spatial, kernel, strides, padding, dilation):
    return ShapedArray((a.shape[1 + len(kernel)], a.shape[0], *in_spatial), a.dtype,
                       a.weak_type)


def _patches_batch(vals, dims, **params):
    """vmap: fold the batch axis into N (reshapes on each side, no loop)."""
    x = move_bdim(vals[0], dims[0], 0)
    b, n = x.shape[:2]
    cols = conv_patches.bind(fa.reshape(x, (b * n, *x.shape[2:])), **params)
    at = 1 + len(params["kernel"])
    return fa.reshape(cols, (*cols.shape[:at], b, n, *cols.shape[at + 1:])), at


def _patches_transpose_batch(vals, dims, **params):
    at = 1 + len(params["kernel"])
    cols = move_bdim(vals[0], dims[0], at)
    b, n = cols.shape[at:at + 2]
    y = conv_patches_transpose.bind(
        fa.reshape(cols, (*cols.shape[:at], b * n, *cols.shape[at + 2:])), **params)
    return fa.reshape(y, (b, n, *y.shape[1:])), 0


conv_patches = linear(
    "conv_patches", impl=_patches_impl, abstract=_patches_abstract,
    transpose=lambda ct, shape_in, **p: conv_patches_transpose.bind(
        ct, in_spatial=tuple(shape_in[2:]), **p),
    batch=_patches_batch)

conv_patches_transpose = linear(
    "conv_patches_transpose", impl=_patches_transpose_impl,
    abstract=_patches_transpose_abstract,
    transpose=lambda ct, shape_in, *, in_spatial, **p: conv_patches.bind(ct, **p),
    batch=_patches_transpose_batch)

# col2im returns a new C-ordered buffer (the jit executor may reuse it once dead);
# conv_patches recycles its buffer (``_Recycler``), so it is not declared
declare_fresh(conv_patches_transpose)
