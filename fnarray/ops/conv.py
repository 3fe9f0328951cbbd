"""Convolution: the bilinear primitive ``conv`` and a pair of mutually transposed linear
primitives, ``conv_patches`` (im2col) and ``conv_patches_transpose`` (col2im).

Layouts follow PyTorch: the input is ``(N, C_in, *spatial)``, the weight
``(C_out, C_in // groups, *kernel)``, and ``conv`` is a cross-correlation.  Static
parameters (all tuples with one entry per spatial axis): ``strides``, ``padding`` as
explicit ``((lo, hi), ...)`` zero padding, ``dilation``; plus ``groups``.

``conv_patches(x)`` has shape ``(N, C, *kernel, *out_spatial)``: entry ``[n, c, k.., i..]``
is the padded input at ``i * stride + k * dilation``.  Keeping the output positions last
makes every contraction below a plain batched matrix product over the batch axis ``N``
with no transposed copies (a window of one sample and channel is a ``(C*K, out)`` matrix,
as the output ``(C_out, out)`` is), and lets pooling reduce over the outer kernel axes.
A convolution is a contraction of the patches with the weight, so:

* the weight cotangent contracts the output cotangent with the patches of the input;
* the input cotangent contracts the output cotangent with the weight, giving patch-shaped
  columns, which ``conv_patches_transpose`` adds back onto the input grid.  That second step
  is exactly a transposed convolution, which is also how ``fa.conv_transpose`` is computed.
"""

from __future__ import annotations

import itertools
import math

from fnarray import api as fa
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray
from fnarray.ops._util import move_bdim
from fnarray.ops.linalg import dot_general
from fnarray.ops.shape import linear


def out_size(n: int, k: int, stride: int, pad: tuple, dilation: int) -> int:
    """Number of window positions along one axis (PyTorch's floor formula)."""
    return (n + pad[0] + pad[1] - dilation * (k - 1) - 1) // stride + 1


def out_spatial(spatial, kernel, strides, padding, dilation) -> tuple:
    return tuple(out_size(*a) for a in zip(spatial, kernel, strides, padding, dilation))


# --- kernels ---------------------------------------------------------------------------------

def _windows(xp, x, kernel, strides, padding, dilation):
    """A strided view ``(N, C, *kernel, *out)`` of the zero-padded input (no copy beyond
    the padding)."""
    if any(lo or hi for lo, hi in padding):
        x = xp.pad(x, ((0, 0), (0, 0), *padding))
    spatial_strides = x.strides[2:]
    out = out_spatial(x.shape[2:], kernel, strides, ((0, 0),) * len(kernel), dilation)
    shape = (*x.shape[:2], *kernel, *out)
    steps = (*x.strides[:2], *(s * d for s, d in zip(spatial_strides, dilation)),
             *(s * st for s, st in zip(spatial_strides, strides)))
    return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=steps, writeable=False)


def _patches_impl(xp, x, *, kernel, strides, padding, dilation):
    return xp.ascontiguousarray(_windows(xp, x, kernel, strides, padding, dilation))


def _patches_transpose_impl(xp, cols, *, in_spatial, kernel, strides, padding, dilation):
    """col2im: add every window's column back onto the (padded) input grid, one kernel
    offset at a time (a loop over the kernel's ``prod(kernel)`` offsets, not the data).
    Where no two windows share a grid cell (e.g. pooling with stride == kernel), each
    offset's cells are written once, so a plain assignment replaces the addition."""
    nd = len(kernel)
    lead, out = cols.shape[:2], cols.shape[2 + nd:]
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(in_spatial, padding))
    acc = xp.zeros((*lead, *padded), dtype=cols.dtype)
    disjoint = all(k == 1 or m == 1 or s >= d * (k - 1) + 1
                   for k, m, s, d in zip(kernel, out, strides, dilation))
    if all(out):
        for offs in itertools.product(*(range(k) for k in kernel)):
            region = (Ellipsis, *(slice(o * d, o * d + (m - 1) * s + 1, s)
                                  for o, d, m, s in zip(offs, dilation, out, strides)))
            col = cols[(slice(None), slice(None), *offs)]
            if disjoint:
                acc[region] = col
            else:
                acc[region] += col
    crop = tuple(slice(lo, lo + n) for n, (lo, _) in zip(in_spatial, padding))
    return xp.ascontiguousarray(acc[(Ellipsis, *crop)])


def _conv_impl(xp, x, w, *, strides, padding, dilation, groups):
    """Grouped im2col + one batched matmul, ``(g, O/g, C/g*K) @ (N, g, C/g*K, out)``, whose
    result is already in the output layout ``(N, g, O/g, out)``."""
    nd = x.ndim - 2
    kernel = w.shape[2:]
    win = _windows(xp, x, kernel, strides, padding, dilation)
    n, c = x.shape[:2]
    out = win.shape[2 + nd:]
    o, g = w.shape[0], groups
    ck = c // g * math.prod(kernel)
    cols = win.reshape(n, g, ck, math.prod(out))  # the one copy: im2col
    y = xp.matmul(w.reshape(g, o // g, ck), cols)
    return y.reshape(n, o, *out)


# --- the linear pair ---------------------------------------------------------------------------

def _patches_abstract(a, *, kernel, strides, padding, dilation):
    out = out_spatial(a.shape[2:], kernel, strides, padding, dilation)
    return ShapedArray((*a.shape[:2], *kernel, *out), a.dtype, a.weak_type)


def _patches_transpose_abstract(a, *, in_spatial, kernel, strides, padding, dilation):
    return ShapedArray((*a.shape[:2], *in_spatial), a.dtype, a.weak_type)


def _fold_batch(prim):
    """vmap by folding the batch axis of the first operand into N (a reshape on each
    side, no loop); any further operands must be unbatched."""
    def rule(vals, dims, **params):
        x = move_bdim(vals[0], dims[0], 0)
        b, n = x.shape[:2]
        y = prim.bind(fa.reshape(x, (b * n, *x.shape[2:])), *vals[1:], **params)
        return fa.reshape(y, (b, n, *y.shape[1:])), 0
    return rule


conv_patches = linear(
    "conv_patches", impl=_patches_impl, abstract=_patches_abstract,
    transpose=lambda ct, shape_in, **p: conv_patches_transpose.bind(
        ct, in_spatial=tuple(shape_in[2:]), **p),
    batch=None)
conv_patches.batch = _fold_batch(conv_patches)

conv_patches_transpose = linear(
    "conv_patches_transpose", impl=_patches_transpose_impl,
    abstract=_patches_transpose_abstract,
    transpose=lambda ct, shape_in, *, in_spatial, **p: conv_patches.bind(ct, **p),
    batch=None)
conv_patches_transpose.batch = _fold_batch(conv_patches_transpose)


# --- conv --------------------------------------------------------------------------------------

def _conv_abstract(a, w, *, strides, padding, dilation, groups):
    out = out_spatial(a.shape[2:], w.shape[2:], strides, padding, dilation)
    return ShapedArray((a.shape[0], w.shape[0], *out), a.dtype, a.weak_type and w.weak_type)


def transposed_conv(ct, w, in_spatial, *, strides, padding, dilation, groups):
    """The adjoint of ``conv(·, w)`` applied to ``ct``: its input cotangent, and PyTorch's
    transposed convolution.  ``ct`` is ``(N, C_out, *out)``, the result ``(N, C_in, *in)``."""
    n, o, out = ct.shape[0], ct.shape[1], ct.shape[2:]
    cg, kernel, g = w.shape[1], w.shape[2:], groups
    ctg = fa.reshape(ct, (n, g, o // g, *out))
    wg = fa.reshape(w, (g, o // g, cg, *kernel))
    nd = len(kernel)
    # One (cg*K, o/g) @ (o/g, n*out) product per group, then (g, cg, *kernel, n, *out) ->
    # (n, g, cg, *kernel, *out): a view, which col2im reads one kernel offset at a time.
    cols = dot_general.bind(wg, ctg, contract=((1,), (2,)), batch=((0,), (1,)))
    cols = fa.permute_dims(cols, (2 + nd, 0, 1, *range(2, 2 + nd), *range(3 + nd, 3 + 2 * nd)))
    cols = fa.reshape(cols, (n, g * cg, *kernel, *out))
    return conv_patches_transpose.bind(cols, in_spatial=tuple(in_spatial), kernel=kernel,
                                       strides=strides, padding=padding, dilation=dilation)


def _weight_cotangent(ct, x, w_shape, *, strides, padding, dilation, groups):
    n, o, out = ct.shape[0], ct.shape[1], ct.shape[2:]
    kernel, g, nd = tuple(w_shape[2:]), groups, len(out)
    cg = x.shape[1] // g
    patches = conv_patches.bind(x, kernel=kernel, strides=strides, padding=padding,
                                dilation=dilation)
    pg = fa.reshape(patches, (n, g, cg, *kernel, *out))
    ctg = fa.reshape(ct, (n, g, o // g, *out))
    ct_out, p_out = tuple(range(3, 3 + nd)), tuple(range(3 + nd, 3 + 2 * nd))
    if o // g <= math.prod(out):
        # One (o/g, out) @ (out, cg*K) product per sample, summed over the samples: no
        # transposed copies, and the per-sample results are no larger than the patches.
        per_sample = dot_general.bind(ctg, pg, contract=(ct_out, p_out),
                                      batch=((0, 1), (0, 1)))  # (n, g, o/g, cg, *kernel)
        return fa.reshape(fa.sum(per_sample, axis=0), tuple(w_shape))
    gw = dot_general.bind(ctg, pg, contract=((0, *ct_out), (0, *p_out)),
                          batch=((1,), (1,)))  # (g, o/g, cg, *kernel)
    return fa.reshape(gw, tuple(w_shape))


def _conv_jvp(primals, tangents, **params):
    x, w = primals
    tx, tw = tangents
    out = conv.bind(x, w, **params)
    t = None if tx is None else conv.bind(tx, w, **params)
    if tw is not None:
        tw_out = conv.bind(x, tw, **params)
        t = tw_out if t is None else t + tw_out
    return out, t


def _conv_vjp(ct, x, w, *, out, needed=(True, True), **params):
    gx = transposed_conv(ct, w, x.shape[2:], **params) if needed[0] else None
    gw = _weight_cotangent(ct, x, w.shape, **params) if needed[1] else None
    return gx, gw


def _conv_batch(vals, dims, *, strides, padding, dilation, groups):
    """x batched: fold into N.  w batched: its copies become extra output channels of each
    group (x unbatched) or extra groups (both batched)."""
    x, w = vals
    dx, dw = dims
    p = dict(strides=strides, padding=padding, dilation=dilation)
    if dw is None:
        return _fold_batch(conv)(vals, dims, groups=groups, **p)
    w = move_bdim(w, dw, 0)
    b, o, rest = w.shape[0], w.shape[1], w.shape[2:]
    g = groups
    if dx is None:
        wg = fa.moveaxis(fa.reshape(w, (b, g, o // g, *rest)), 0, 1)
        y = conv.bind(x, fa.reshape(wg, (g * b * (o // g), *rest)), groups=g, **p)
        n, out = y.shape[0], y.shape[2:]
        y = fa.moveaxis(fa.reshape(y, (n, g, b, o // g, *out)), 2, 0)
        return fa.reshape(y, (b, n, o, *out)), 0
    x = move_bdim(x, dx, 1)  # (n, b, c, *spatial)
    xs = fa.reshape(x, (x.shape[0], b * x.shape[2], *x.shape[3:]))
    y = conv.bind(xs, fa.reshape(w, (b * o, *rest)), groups=b * g, **p)
    return fa.reshape(y, (y.shape[0], b, o, *y.shape[2:])), 1


conv = declare("conv", impl=_conv_impl, abstract=_conv_abstract, jvp=_conv_jvp,
               vjp=_conv_vjp, batch=_conv_batch, vjp_selective=True)
