"""A convolution's weight cotangent as a primitive:
``conv_weight_cotangent(x, ct; kernel, strides, padding, dilation, groups)``.

It is ``conv(x, w)``'s cotangent for ``w`` (static parameters as in
``fnarray/ops/conv.py``), for the output cotangent ``ct`` ``(N, C_out, *out)``: a
``(C_out, C_in // groups, *kernel)`` array, bilinear in ``x`` and ``ct``.  ``conv``'s VJP
binds it where Winograd runs the forward pass (``conv_winograd.takes``: 3x3, stride 1,
ungrouped, 2-d, enough channels): that forward keeps no im2col patches, and the impl
computes the cotangent as Winograd's adjoint (16 products ``(C, tiles) @ (tiles, O)`` over
the transformed input and output cotangent, chunk of samples by chunk; conv2 of the
tutorial ConvNet: ~12 against ~21 ms for im2col plus the patches product at one thread).
Other operands (and the ``accel`` extra absent or off) take the patches product:
``(O/g, N*out) @ (N*out, C/g*K)`` per group.  Both agree to float rounding.

Its derivatives are the other two contractions of a convolution: for ``x``, the
transposed convolution ``conv_transpose(ct, g)``; for ``ct``, the convolution ``conv(x,
g)``.
"""

from __future__ import annotations

import math

from fnarray import api as fa
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray
from fnarray.ops import conv_winograd
from fnarray.ops._util import move_bdim
from fnarray.ops.conv import bilinear_jvp, conv
from fnarray.ops.conv_patches import _patches_impl
from fnarray.ops.conv_transpose import conv_transpose
from fnarray.transforms.buffers import declare_fresh


def _impl(xp, x, ct, *, kernel, strides, padding, dilation, groups):
    w = ShapedArray((ct.shape[1], x.shape[1] // groups, *kernel), x.dtype)
    k = conv_winograd.kernels(xp, x, w, strides, dilation, groups)
    if k is not None and ct.dtype == x.dtype:
        return conv_winograd.weight_cotangent(k, xp, x, ct, [lo for lo, _ in padding])
    cols = _patches_impl(xp, x, kernel=kernel, strides=strides, padding=padding,
                         dilation=dilation)  # (C, *kernel, N, *out)
    n, o, positions = ct.shape[0], ct.shape[1], math.prod(ct.shape[2:])
    ctm = xp.ascontiguousarray(xp.swapaxes(ct.reshape(n, o, positions), 0, 1))
    pg = cols.reshape(groups, math.prod(w.shape[1:]), n * positions)
    gw = xp.matmul(ctm.reshape(groups, o // groups, n * positions), xp.swapaxes(pg, 1, 2))
    return gw.reshape(w.shape)


def _abstract(x, ct, *, kernel, strides, padding, dilation, groups):
    return ShapedArray((ct.shape[1], x.shape[1] // groups, *kernel), x.dtype,
                       x.weak_type and ct.weak_type)


def _vjp(g, x, ct, *, out, needed=(True, True), kernel, strides, padding, dilation, groups):
    """``<g, dW(x, ct)>`` is ``<x, conv_transpose(ct, g)>`` and ``<ct, conv(x, g)>``."""
    geometry = dict(strides=strides, padding=padding, dilation=dilation, groups=groups)
    gx = gct = None
    if needed[0]:
        gx = conv_transpose.bind(ct, g, in_spatial=tuple(x.shape[2:]), **geometry)
    if needed[1]:
        gct = conv.bind(x, g, **geometry)
    return gx, gct


def _batch(vals, dims, *, groups, **params):
    """vmap, one application: both operands batched (an unbatched one is broadcast), the
    batch becomes extra groups: ``x`` ``(N, b*C, ...)`` and ``ct`` ``(N, b*O, ...)`` with
    ``b * groups`` groups give the ``b`` cotangents side by side as output channels."""
    x, ct = vals
    b = next(v.shape[d] for v, d in zip(vals, dims) if d is not None)
    x, ct = (fa.broadcast_to(fa.expand_dims(v, 0), (b, *v.shape)) if d is None
             else move_bdim(v, d, 0) for v, d in zip(vals, dims))

    def fold(v):  # (b, N, C, ...) -> (N, b*C, ...)
        v = fa.moveaxis(v, 0, 1)
        return fa.reshape(v, (v.shape[0], b * v.shape[2], *v.shape[3:]))
    gw = conv_weight_cotangent.bind(fold(x), fold(ct), groups=b * groups, **params)
    return fa.reshape(gw, (b, gw.shape[0] // b, *gw.shape[1:])), 0


conv_weight_cotangent = declare(
    "conv_weight_cotangent", impl=_impl, abstract=_abstract,
    jvp=lambda primals, tangents, **p: bilinear_jvp(conv_weight_cotangent, primals,
                                                    tangents, **p),
    vjp=_vjp, batch=_batch, vjp_selective=True)

declare_fresh(conv_weight_cotangent)
