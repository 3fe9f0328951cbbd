"""Max pooling with saved window positions: ``max_pool`` and the linear ``max_pool_scatter``.

``max_pool(x; kernel, strides, dilation)`` pools the trailing ``len(kernel)`` axes of ``x``
(any leading axes; padding, with ``-inf``, is the caller's ``pad``).  It returns two
arrays of the output shape: the window maxima, and ``taps``, the flat (row-major) kernel
offset at which each window's maximum sits.  Its derivative is the PyTorch/JAX one
(``select_and_scatter``): each window's cotangent goes to ONE element, the maximum.

Tie rule: the FIRST maximum in the window's row-major scan order wins (as PyTorch's CPU
kernel).  A window holding NaN has maximum NaN, and its cotangent goes to the LAST NaN
of the window (PyTorch's ``val > max || isnan(val)`` rule).

``max_pool_scatter(ct, taps; spatial, kernel, strides, dilation)`` is the VJP: a fresh
``(*lead, *spatial)`` buffer receiving ``ct`` at each window's tap, one strided write (or
add, where windows overlap) per kernel offset, and +0 elsewhere (``ct`` is selected, never
multiplied by a 0/1 mask, so an infinite or NaN cotangent reaches its tap only).  It is
linear in ``ct``; its transpose gathers each window's tapped element.

Both kernels loop over the ``prod(kernel)`` offsets, never over the data; every pass is a
vectorised NumPy loop along whole rows, and every result a fresh C-ordered array.  As
those passes revisit the same operands ``prod(kernel)`` times, the kernels run them block
by block over the leading axes (``_blocks``), each block small enough to stay in cache
between its passes: on a 26 MB input (3x3 windows, stride 2) this halves both kernels'
time; inputs that fit the cache whole are one block.

With the ``accel`` extra, large float32/float64 operands of up to three pooled axes run
the compiled kernels of :mod:`fnarray.backends.kernels.pooling` instead: one pass over the
data, with the same results bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from fnarray import api as fa
from fnarray.backends import accel
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray, is_inexact
from fnarray.ops._util import move_bdim
from fnarray.ops.conv import window_cover, window_offsets
from fnarray.transforms.buffers import declare_fresh


def _out(spatial, kernel, strides, dilation) -> tuple:
    return tuple((n - d * (k - 1) - 1) // s + 1
                 for n, k, s, d in zip(spatial, kernel, strides, dilation))


def tap_dtype(kernel) -> np.dtype:
    """The integer type of ``taps``: the smallest that holds every kernel offset."""
    return np.dtype(np.uint8 if math.prod(kernel) <= 256 else np.int32)


def _offset_slices(kernel, strides, dilation, out):
    """``(flat offset, index)`` per kernel offset: the index picks, for every window of
    the trailing axes, its cell at that offset."""
    for t, _, region in window_offsets(kernel, strides, dilation, out):
        yield t, (Ellipsis, *region)


BLOCK_BYTES = 4 << 20  # per block of a kernel's operand: well inside the shared L3 cache


def _blocks(lead, grid_bytes):
    """Indices over the ``lead`` axes (``grid_bytes``: one trailing grid) that cover them
    in blocks of at most ``BLOCK_BYTES`` (or one grid where a grid alone is larger): a
    slice of the first axis whose one index fits, under integer indices of those before.
    The first block is the largest."""
    if grid_bytes * math.prod(lead) <= BLOCK_BYTES:
        yield ()
        return
    k = next(k for k in range(len(lead) + 1)
             if k == len(lead) or grid_bytes * math.prod(lead[k + 1:]) <= BLOCK_BYTES)
    if k == len(lead):
        yield from np.ndindex(*lead)
        return
    per = max(1, BLOCK_BYTES // (grid_bytes * math.prod(lead[k + 1:])))
    for outer in np.ndindex(*lead[:k]):
        for a in range(0, lead[k], per):
            yield (*outer, slice(a, a + per))


_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_COMPILED_RANK = 3  # pooled axes the compiled kernels take (fewer: leading unit axes)


def _compiled(xp, dtype, kernel, size: int):
    """The compiled pooling kernels when they take this operation (float32/float64, at
    most three pooled axes, ``accel.kernels``' size and backend choice), else None."""
    if dtype not in _COMPILED_DTYPES or len(kernel) > _COMPILED_RANK:
        return None
    return accel.kernels("pooling", xp, size)


def _grid3(a, nd: int):
    """C-ordered ``a`` as ``(batch, n0, n1, n2)``: its leading axes merged, its ``nd``
    trailing ones preceded by unit axes (a view where ``a`` is C-ordered already)."""
    lead = a.shape[:a.ndim - nd]
    pad = (1,) * (_COMPILED_RANK - nd)
    return np.ascontiguousarray(a).reshape(math.prod(lead), *pad, *a.shape[a.ndim - nd:])


def _geometry3(kernel, strides, dilation) -> tuple:
    """``kernel, strides, dilation`` over three axes: one-cell, unit-step leading axes."""
    pad = (1,) * (_COMPILED_RANK - len(kernel))
    return tuple((*pad, *map(int, p)) for p in (kernel, strides, dilation))


def _scratch(buffers: dict, name: str, xp, like, dtype):
    """Scratch array ``name`` shaped like the block ``like``: a leading slice of the one
    allocated for the first (largest) block."""
    if name not in buffers:
        buffers[name] = xp.empty(like.shape, dtype=dtype)
    return buffers[name][:like.shape[0]]


# --- max_pool ------------------------------------------------------------------------------

def _max_pool_impl(xp, x, *, kernel, strides, dilation):
    nd = len(kernel)
    lead, spatial = x.shape[:x.ndim - nd], x.shape[x.ndim - nd:]
    out = _out(spatial, kernel, strides, dilation)
    offsets = list(_offset_slices(kernel, strides, dilation, out))
    best = xp.empty((*lead, *out), dtype=x.dtype)
    taps = xp.zeros((*lead, *out), dtype=tap_dtype(kernel))
    if best.size == 0:
        return best, taps
    k = _compiled(xp, x.dtype, kernel, x.size)
    if k is not None:
        operands = _grid3(x, nd), _grid3(best, nd), _grid3(taps, nd)
        if k.pool(*_geometry3(kernel, strides, dilation), nan=False)(*operands):
            k.pool(*_geometry3(kernel, strides, dilation), nan=True)(*operands)
        return best, taps
    buffers = {}
    for rows in _blocks(lead, math.prod(spatial) * x.itemsize):
        xs, top, at = x[rows], best[rows], taps[rows]
        v = _scratch(buffers, "v", xp, top, x.dtype)
        wins = _scratch(buffers, "wins", xp, top, bool)
        step = _scratch(buffers, "step", xp, at, at.dtype)
        xp.copyto(top, xs[offsets[0][1]])
        for t, region in offsets[1:]:
            # one strided copy, then contiguous passes: NumPy runs a strided operand row by
            # row (out_w cells per inner loop), so copying once beats comparing twice
            xp.copyto(v, xs[region])
            xp.greater(v, top, out=wins)  # strictly: the first maximum keeps its tap
            xp.maximum(top, v, out=top)  # NaN propagates into the value
            # the last offset to win is the largest, so taps = max over t of t * wins_t
            xp.multiply(wins.view(np.uint8), at.dtype.type(t), out=step)
            xp.maximum(at, step, out=at)
    if is_inexact(best.dtype) and xp.isnan(best.min()):  # min propagates NaN
        for t, region in offsets:  # PyTorch: the last NaN of the window
            nan = xp.isnan(x[region])
            taps[nan] = t
    return best, taps


def _max_pool_abstract(a, *, kernel, strides, dilation):
    nd = len(kernel)
    shape = (*a.shape[:a.ndim - nd], *_out(a.shape[a.ndim - nd:], kernel, strides, dilation))
    return ShapedArray(shape, a.dtype, a.weak_type), ShapedArray(shape, tap_dtype(kernel))


def gather_taps(g, taps, *, kernel, strides, dilation):
    """Each window's element of ``g`` at its tap (the transpose of ``max_pool_scatter``),
    composed of differentiable slicing and selection."""
    out = taps.shape[taps.ndim - len(kernel):]
    picked = None
    for t, region in _offset_slices(kernel, strides, dilation, out):
        term = fa.where(taps == t, g[region], fa.zeros((), dtype=g.dtype))
        picked = term if picked is None else picked + term
    return picked


def _max_pool_jvp(primals, tangents, **params):
    values, taps = max_pool.bind(primals[0], **params)
    return (values, taps), (gather_taps(tangents[0], taps, **params), None)


def _max_pool_vjp(cts, x, *, out, **params):
    if cts[0] is None:
        return (None,)
    nd = len(params["kernel"])
    return (max_pool_scatter.bind(cts[0], out[1], spatial=tuple(x.shape[x.ndim - nd:]),
                                  **params),)


def _max_pool_batch(vals, dims, **params):
    values, taps = max_pool.bind(move_bdim(vals[0], dims[0], 0), **params)
    return (values, taps), (0, 0)


max_pool = declare("max_pool", impl=_max_pool_impl, abstract=_max_pool_abstract,
                   jvp=_max_pool_jvp, vjp=_max_pool_vjp, batch=_max_pool_batch,
                   multiple_results=True)


# --- max_pool_scatter ----------------------------------------------------------------------

def _scatter_impl(xp, ct, taps, *, spatial, kernel, strides, dilation):
    nd = len(kernel)
    out = taps.shape[taps.ndim - nd:]
    lead = taps.shape[:taps.ndim - nd]
    disjoint, tiled = window_cover(kernel, strides, dilation, out, spatial)
    gx = (xp.empty if tiled else xp.zeros)((*lead, *spatial), dtype=ct.dtype)
    if ct.size == 0:
        return gx
    k = _compiled(xp, ct.dtype, kernel, gx.size)
    # the compiled kernel trusts its operands: equal shapes, every window inside the grid
    fits = taps.shape == ct.shape and all(
        o <= m for o, m in zip(out, _out(spatial, kernel, strides, dilation)))
    if k is not None and fits and taps.dtype in (np.uint8, np.int32):
        mode = k.TILED if tiled else k.DISJOINT if disjoint else k.OVERLAP
        k.scatter(*_geometry3(kernel, strides, dilation), mode)(
            _grid3(ct, nd), _grid3(taps, nd), _grid3(gx, nd))
        return gx
    # both operands C-ordered like gx, so that every pass below runs along whole rows
    ct, taps = xp.ascontiguousarray(ct), xp.ascontiguousarray(taps)
    bits = _same_size_int(ct.dtype)
    offsets = list(_offset_slices(kernel, strides, dilation, out))
    buffers = {}
    for rows in _blocks(lead, math.prod(spatial) * ct.itemsize):
        cts, at, grid = ct[rows], taps[rows], gx[rows]
        mask = _scratch(buffers, "mask", xp, at, np.int8)
        for t, region in offsets:
            picked = grid[region] if disjoint else _scratch(buffers, "picked", xp, cts, ct.dtype)
            xp.equal(at, t, out=mask.view(bool))
            # ct where the tap is t, +0 elsewhere: a select, never a product (inf * 0 = NaN)
            if bits is None:  # no integer type this wide (complex128)
                xp.copyto(picked, xp.where(mask.view(bool), cts, 0))
            else:  # a bitwise AND with 0 or -1 (all bits set): one pass
                xp.negative(mask, out=mask)
                xp.bitwise_and(cts.view(bits), mask, out=picked.view(bits))
            if not disjoint:
                grid[region] += picked
    return gx


def _same_size_int(dtype: np.dtype):
    """The signed integer type as wide as an inexact ``dtype`` (bfloat16 included), through
    whose views a bitwise AND selects values exactly; None where there is none."""
    if not is_inexact(dtype) or dtype.itemsize not in (2, 4, 8):
        return None
    return np.dtype(f"i{dtype.itemsize}")


def _scatter_abstract(ct, taps, *, spatial, kernel, strides, dilation):
    lead = ct.shape[:ct.ndim - len(kernel)]
    return ShapedArray((*lead, *spatial), ct.dtype, ct.weak_type)


def _scatter_jvp(primals, tangents, **params):
    ct, taps = primals
    out = max_pool_scatter.bind(ct, taps, **params)
    t = None if tangents[0] is None else max_pool_scatter.bind(tangents[0], taps, **params)
    return out, t


def _scatter_vjp(g, ct, taps, *, out, spatial, **params):
    return gather_taps(g, taps, **params), None


def _scatter_batch(vals, dims, **params):
    ct, taps = vals
    b = ct.shape[dims[0]] if dims[0] is not None else taps.shape[dims[1]]
    ct = move_bdim(ct, dims[0], 0) if dims[0] is not None else fa.broadcast_to(
        ct, (b, *ct.shape))
    taps = move_bdim(taps, dims[1], 0) if dims[1] is not None else fa.broadcast_to(
        taps, (b, *taps.shape))
    return max_pool_scatter.bind(ct, taps, **params), 0


max_pool_scatter = declare("max_pool_scatter", impl=_scatter_impl, abstract=_scatter_abstract,
                           jvp=_scatter_jvp, vjp=_scatter_vjp, batch=_scatter_batch)
declare_fresh(max_pool_scatter)  # for the jit executor's buffer reuse
