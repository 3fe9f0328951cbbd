"""The transposed convolution: the bilinear primitive
``conv_transpose(ct, w; in_spatial, strides, padding, dilation, groups)``.

It is the adjoint of ``conv(·, w)`` (same static parameters, see ``fnarray/ops/conv.py``)
applied to ``ct``: the input cotangent of a convolution, and PyTorch's
``conv_transpose1d/2d/3d``.  ``ct`` is ``(N, C_out, *out)``, ``w`` the convolution's weight
``(C_out, C_in // groups, *kernel)``, the result ``(N, C_in, *in_spatial)``.  ``ct`` covers
the FIRST ``out`` window positions of ``conv`` on ``in_spatial``; when the convolution has
more (a transposed convolution's ``output_padding``), the rest have zero cotangent.

With the ``accel`` extra, a 3x3 stride-1 ungrouped 2-d operation with enough channels
(``conv_winograd.takes``: the input cotangent of conv2 of the tutorial ConvNet) is the
Winograd F(2x2, 3x3) correlation of ``fnarray/ops/conv_winograd.py``: the cotangent
padded by ``2 - lo`` on the low side (cells past its last window position read zero)
against the weight turned 180 degrees and laid out ``(C_in, C_out, 3, 3)``; results agree
with the other kernels to float rounding.  Other float32/float64 operands of up to three
spatial axes and any stride take the compiled path (``_compiled_kernel``): per chunk of samples, one matrix
product over the window positions only, and a compiled gather that adds the products onto
the input grid while they are in cache and writes each result cell once (about 0.7x the
NumPy kernels' time for conv2 of the tutorial ConvNet).  Otherwise two NumPy kernels:

* stride 1 (the input cotangent of most "same"/"valid" convolutions; ``_shifted_pays``
  decides): shifted matrix products.  The cotangent is laid out channel-major on the
  PADDED INPUT grid, flat, ``(C_out, N * prod(padded))``, with zeros at the grid cells
  that are no window position.  Kernel offset ``t`` then moves every window position by
  one constant flat shift (``t * dilation`` in flat grid units), so ONE matrix product
  per group, ``(prod(kernel) * C_in/g, C_out/g) @ (C_out/g, L)``, gives every offset's
  contribution, and each is added onto the flat input grid at its shift: ``prod(kernel)``
  adds along rows of ``L ~ N * prod(padded)`` contiguous values.  A contribution that
  crosses a row (or sample) boundary of the grid comes from a zero cell, so adds nothing;
  the padding is cropped at the end.  (The general kernel's col2im instead adds strided
  rows of only ``out[-1]`` values: 24 for conv2 of the tutorial ConvNet.)
* otherwise: one product per group gives the patch columns ``(C_in, *kernel, N, *out)``
  and col2im (``conv_patches_transpose``'s kernel) adds them onto the grid.

All return a fresh C-ordered array (``declare_fresh``); their large products go to
recycled scratch buffers that no result refers to.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from fnarray import api as fa
from fnarray.backends import accel
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray
from fnarray.ops import conv_winograd
from fnarray.ops._util import move_bdim
from fnarray.ops.conv import (_channel_major, _patches_of, _patches_transpose_impl, _Recycler,
                              _weight_cotangent, bilinear_jvp, conv, out_spatial)
from fnarray.transforms.buffers import declare_fresh

# --- kernels ---------------------------------------------------------------------------------

# Both kernels' large intermediate (the products, 50 MB for conv2 of the tutorial ConvNet)
# never leaves the kernel; a fresh one per call costs ~5 ms of page faults at one thread.
_SCRATCH = _Recycler()


def _shifted_kernel(xp, ct, w, *, in_spatial, padding, dilation, groups):
    """Stride 1: one product per group on the flat padded grid, then one long add per
    kernel offset (see the module docstring)."""
    n, o, out = ct.shape[0], ct.shape[1], ct.shape[2:]
    cg, kernel = w.shape[1], w.shape[2:]
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(in_spatial, padding))
    grid_strides = [math.prod(padded[a + 1:]) for a in range(len(padded))]
    shifts = [sum(t * d * g for t, d, g in zip(offs, dilation, grid_strides))
              for offs in itertools.product(*(range(k) for k in kernel))]
    total = n * math.prod(padded)
    span = total - shifts[-1]  # window positions whose every shifted cell is on the grid
    acc = xp.empty((groups, cg, total), dtype=ct.dtype)
    if ct.size == 0 or span <= 0:
        acc[...] = 0
    else:
        # the cotangent on the padded grid, channel-major, zero off the window positions
        grid = xp.zeros((o, n, *padded), dtype=ct.dtype)
        grid[(slice(None), slice(None), *(slice(0, m) for m in out))] = xp.swapaxes(ct, 0, 1)
        grid = grid.reshape(groups, o // groups, total)
        # the weight as (g, kernel..., C/g, O/g) matrices (a small copy)
        wt = xp.ascontiguousarray(xp.moveaxis(
            w.reshape(groups, o // groups, cg, len(shifts)), (1, 3), (3, 1)))
        parts = xp.matmul(wt.reshape(groups, len(shifts) * cg, o // groups),
                          grid[:, :, :span], out=_SCRATCH.empty(
                              xp, (groups, len(shifts) * cg, span), ct.dtype))
        parts = parts.reshape(groups, len(shifts), cg, span)
        acc[:, :, :span] = parts[:, 0]  # shift 0 (the first offset) covers [0, span)
        acc[:, :, span:] = 0
        for t, shift in enumerate(shifts[1:], 1):
            acc[:, :, shift:shift + span] += parts[:, t]
    acc = xp.swapaxes(acc.reshape(groups * cg, n, *padded), 0, 1)
    crop = tuple(slice(lo, lo + s) for s, (lo, _) in zip(in_spatial, padding))
    return xp.ascontiguousarray(acc[(slice(None), slice(None), *crop)])


def _columns_kernel(xp, ct, w, *, in_spatial, strides, padding, dilation, groups):
    """Any stride: ``(C/g*K, O/g) @ (O/g, N*out)`` per group (BLAS reads the transposed
    weight in place) gives the patch columns, which col2im adds onto the grid."""
    n, o, out = ct.shape[0], ct.shape[1], ct.shape[2:]
    ctm = xp.ascontiguousarray(xp.swapaxes(ct, 0, 1)).reshape(groups, o // groups,
                                                              n * math.prod(out))
    wg = w.reshape(groups, o // groups, math.prod(w.shape[1:]))
    cols = xp.matmul(xp.swapaxes(wg, 1, 2), ctm, out=_SCRATCH.empty(
        xp, (groups, wg.shape[2], ctm.shape[2]), ct.dtype))
    cols = cols.reshape(w.shape[1] * groups, *w.shape[2:], n, *out)
    return _patches_transpose_impl(xp, cols, in_spatial=in_spatial, kernel=w.shape[2:],
                                   strides=strides, padding=padding, dilation=dilation)


def _shifted_pays(padded, out, og) -> bool:
    """Is the stride-1 kernel the cheaper one?  It multiplies over every padded grid cell,
    the general one only over the window positions, but then adds them back in rows of only
    ``out[-1]`` values.  Cost per cell and (kernel offset, input channel), in units of one
    multiply-add (~0.025 ns at one thread, float32): the product ``og = C_out / groups``;
    the shifted add ~20; col2im's add ~80 plus ~640 / row length (measured: ConvNet-sized
    and small maps, 3-512 channels, kernels 3-7, dilation 1-2).  Few channels or long rows
    favour the shifted kernel (1.5-2.5x faster); many channels over small maps (the
    product dominates: 256 channels on 7x7, 1.4x slower) or a large kernel over few window
    positions favour the general one."""
    return math.prod(padded) * (og + 20) <= math.prod(out) * (og + 80 + 640 / max(out[-1], 1))


# --- compiled kernel (the ``accel`` extra) ----------------------------------------------------

_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_COMPILED_RANK = 3  # spatial axes the compiled gather takes (fewer: leading unit axes)
# products per chunk, written by the GEMM and read back while in cache.  conv2 of the
# tutorial ConvNet (42 MB of products), against the NumPy kernel: 2-4 MB chunks 0.68x
# at 2 threads, 0.74x at 1; 16 MB 0.88x / 0.91x (out of cache).  Each chunk is one BLAS
# call whose threads must all meet: on an oversubscribed machine fewer chunks fare better.
_CHUNK_BYTES = 4 << 20
_ROWS, _PARTS = _Recycler(), _Recycler()  # a chunk's cotangent copy and products
_ROWS.MIN_BYTES = _PARTS.MIN_BYTES = 0  # small, but a fresh one still costs page faults


def _compiled(xp, ct, w, in_spatial, padding, groups):
    """The compiled gather when it takes this operation (float32/float64 operands of one
    dtype, at most three spatial axes, no negative padding, ``accel.kernels``' size and
    backend choice), else None."""
    if (ct.dtype not in _COMPILED_DTYPES or w.dtype != ct.dtype or len(in_spatial) > _COMPILED_RANK
            or any(lo < 0 for lo, _ in padding)):
        return None
    size = max(ct.size, ct.shape[0] * w.shape[1] * groups * math.prod(in_spatial))
    return accel.kernels("conv_transpose", xp, size)


def _compiled_kernel(k, xp, ct, w, *, in_spatial, strides, padding, dilation, groups):
    """Any geometry, chunk by chunk of samples: the chunk's cotangent is copied
    channel-major, ``(C_out, samples * positions)``, one product per group ``(samples *
    positions, C_out/g) @ (C_out/g, kernel * C_in/g)`` (BLAS reading the copy transposed)
    gives every window position's contributions, and ``k.gather`` adds them onto the input
    grid while they are still in cache (see :mod:`fnarray.backends.kernels.conv_transpose`).
    No padding cell is multiplied.  Chunks of up to ``_CHUNK_BYTES`` of products keep them
    out of memory, and one product per chunk (not per sample) keeps BLAS's thread start-ups
    few."""
    n, o, out = ct.shape[0], ct.shape[1], ct.shape[2:]
    cg, kernel = w.shape[1], w.shape[2:]
    og, taps, positions = o // groups, math.prod(kernel), math.prod(out)
    lead = (1,) * (_COMPILED_RANK - len(out))
    res = xp.empty((n, groups, cg, *lead, *in_spatial), dtype=ct.dtype)
    # the weight as (g, C_out/g, kernel..., C_in/g) matrices (a small copy)
    wg = xp.ascontiguousarray(xp.moveaxis(w.reshape(groups, og, cg, taps), 2, 3)).reshape(
        groups, og, taps * cg)
    ct = ct.reshape(n, groups, og, positions)
    per_sample = groups * positions * taps * cg * ct.itemsize
    chunks = max(1, min(n, -(-n * per_sample // _CHUNK_BYTES)))
    chunk = max(1, -(-n // chunks))  # as even as they come
    # flat scratch: a shorter last chunk takes a contiguous prefix of each
    rows = _ROWS.empty(xp, (groups * og * chunk * positions,), ct.dtype)
    parts = _PARTS.empty(xp, (groups * chunk * positions * taps * cg,), ct.dtype)
    geometry = [lead + tuple(v) for v in (out, kernel, strides)]
    geometry += [(0,) * len(lead) + tuple(lo for lo, _ in padding), lead + tuple(dilation)]
    for start in range(0, n, chunk):
        m = min(n, start + chunk) - start
        cm = rows[:groups * og * m * positions].reshape(groups, og, m, positions)
        xp.copyto(cm, xp.moveaxis(ct[start:start + m], 0, 2))
        p = xp.matmul(xp.swapaxes(cm.reshape(groups, og, m * positions), 1, 2), wg,
                      out=parts[:groups * m * positions * taps * cg].reshape(
                          groups, m * positions, taps * cg))
        k.gather(p.reshape(groups, m, positions, taps * cg), res[start:start + m], *geometry)
    return res.reshape(n, groups * cg, *in_spatial)


def _transpose_impl(xp, ct, w, *, in_spatial, strides, padding, dilation, groups):
    k = conv_winograd.kernels(xp, ct, w, strides, dilation, groups)
    if k is not None:
        # a 3x3 stride-1 correlation of ct, padded by 2 - lo, with the weight turned 180
        # degrees and laid out (C_in, C_out, 3, 3); cells past ct's last window read zero
        turned = xp.swapaxes(w[:, :, ::-1, ::-1], 0, 1)
        return conv_winograd.correlate(k, xp, ct, turned, [2 - lo for lo, _ in padding],
                                       tuple(in_spatial))
    k = _compiled(xp, ct, w, in_spatial, padding, groups)
    if k is not None:
        return _compiled_kernel(k, xp, ct, w, in_spatial=in_spatial, strides=strides,
                                padding=padding, dilation=dilation, groups=groups)
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(in_spatial, padding))
    if all(s == 1 for s in strides) and _shifted_pays(padded, ct.shape[2:],
                                                      ct.shape[1] // groups):
        return _shifted_kernel(xp, ct, w, in_spatial=in_spatial, padding=padding,
                               dilation=dilation, groups=groups)
    return _columns_kernel(xp, ct, w, in_spatial=in_spatial, strides=strides,
                           padding=padding, dilation=dilation, groups=groups)


# --- rules -----------------------------------------------------------------------------------

def _transpose_abstract(ct, w, *, in_spatial, strides, padding, dilation, groups):
    return ShapedArray((ct.shape[0], w.shape[1] * groups, *in_spatial), ct.dtype,
                       ct.weak_type and w.weak_type)


def _transpose_vjp(g, ct, w, *, out, needed=(True, True), in_spatial, strides, padding,
                   dilation, groups):
    """The adjoint of the adjoint: ``ct``'s cotangent is ``conv(g, w)``; ``w``'s is the
    weight cotangent of that convolution, whose output cotangent is ``ct`` (the patches of
    ``g`` against the channel-major ``ct``).  Window positions beyond ``ct``'s are
    dropped."""
    geometry = dict(strides=strides, padding=padding, dilation=dilation)
    kernel = w.shape[2:]
    first = None
    if out_spatial(in_spatial, kernel, strides, padding, dilation) != tuple(ct.shape[2:]):
        first = (Ellipsis, *(slice(0, m) for m in ct.shape[2:]))
    gct = gw = None
    if needed[0]:
        gct = conv.bind(g, w, groups=groups, **geometry)
        gct = gct if first is None else gct[first]
    if needed[1]:
        cols = _patches_of(g, kernel, **geometry)
        cols = cols if first is None else cols[first]
        gw = _weight_cotangent(_channel_major(ct, groups), cols, w.shape, groups)
    return gct, gw


def _transpose_batch(vals, dims, *, groups, **params):
    """vmap, always one application: ``ct`` batched alone folds into N; a batched weight
    puts its copies side by side as extra output channels of each group (``ct``
    unbatched) or as extra groups (both batched)."""
    ct, w = vals
    dc, dw = dims
    if dw is None:
        ct = move_bdim(ct, dc, 0)
        b, n = ct.shape[:2]
        y = conv_transpose.bind(fa.reshape(ct, (b * n, *ct.shape[2:])), w, groups=groups,
                                **params)
        return fa.reshape(y, (b, n, *y.shape[1:])), 0
    w = move_bdim(w, dw, 0)
    b, o, cg, kernel = w.shape[0], w.shape[1], w.shape[2], w.shape[3:]
    if dc is None:  # weight (O, b * C/g, *kernel): copy i is channels [i*C/g, (i+1)*C/g)
        wide = fa.reshape(fa.moveaxis(w, 0, 1), (o, b * cg, *kernel))
        y = conv_transpose.bind(ct, wide, groups=groups, **params)
        n, spatial = y.shape[0], y.shape[2:]
        y = fa.moveaxis(fa.reshape(y, (n, groups, b, cg, *spatial)), 2, 0)
        return fa.reshape(y, (b, n, groups * cg, *spatial)), 0
    ct = move_bdim(ct, dc, 1)  # (N, b, O, *out): copy i is groups [i*g, (i+1)*g)
    n = ct.shape[0]
    y = conv_transpose.bind(fa.reshape(ct, (n, b * o, *ct.shape[3:])),
                            fa.reshape(w, (b * o, cg, *kernel)), groups=b * groups, **params)
    return fa.reshape(y, (n, b, groups * cg, *y.shape[2:])), 1


conv_transpose = declare(
    "conv_transpose", impl=_transpose_impl, abstract=_transpose_abstract,
    jvp=lambda primals, tangents, **p: bilinear_jvp(conv_transpose, primals, tangents, **p),
    vjp=_transpose_vjp, batch=_transpose_batch, vjp_selective=True)

declare_fresh(conv_transpose)
