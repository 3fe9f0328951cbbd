"""Convolution: the bilinear primitives ``conv`` and ``conv_columns``, which take an
optional bias, over a pair of mutually transposed linear primitives, ``conv_patches``
(im2col) and ``conv_patches_transpose`` (col2im), declared in
``fnarray/ops/conv_patches.py``.  The transposed convolution, ``conv``'s input
cotangent, is the primitive of ``fnarray/ops/conv_transpose.py``.

Layouts follow PyTorch: the input is ``(N, C_in, *spatial)``, the weight
``(C_out, C_in // groups, *kernel)``, and ``conv`` is a cross-correlation.  Static
parameters (all tuples with one entry per spatial axis): ``strides``, ``padding`` as
explicit ``((lo, hi), ...)`` zero padding, ``dilation``; plus ``groups``.

``conv_patches(x)`` has shape ``(C, *kernel, N, *out)``: entry ``[c, k.., n, i..]`` is the
padded input at ``i * stride + k * dilation``.  Channels and kernel offsets first, samples
and output positions last, makes every contraction of a convolution ONE matrix product
per group, with no transposed copy of a large operand (BLAS reads transposed operands in
place):

* forward, ``conv_columns(cols, w[, bias])``: ``(O, C*K) @ (C*K, N*out)``, whose
  ``(O, N, *out)`` result becomes the ``(N, O, *out)`` output by a copy that swaps the two
  outer axes (whole rows of ``out`` move) and adds the bias on the way (no pass of its
  own; its cotangent sums the channel-major copy of ``ct`` the weight cotangent makes);
* weight cotangent: ``(O, N*out) @ (N*out, C*K)`` with the patches of the forward pass
  (``conv``'s ``fwd`` rule runs ``conv_columns(conv_patches(x), w)`` and keeps the patches
  as the residual, so im2col runs once per training step);
* input cotangent: the primitive ``conv_transpose`` (also ``fa.conv_transpose``).  With
  stride 1 it is one ``(K*C, O) @ (O, N*padded)`` product on the cotangent laid out over
  the padded input grid, whose kernel offsets become constant flat shifts (one long add
  each); otherwise ``(C*K, O) @ (O, N*out)`` gives patch columns, which col2im (the
  kernel of ``conv_patches_transpose``) adds back onto the input grid.

Every result is an ordinary C-ordered array, so eager and jitted programs (whose executor
writes into reused C-ordered buffers) see the same layouts and sum reductions in the same
order.  The one large copy of a convolution is the im2col of its forward pass; the output
cotangent's ``(N, O)`` swaps cost one cheap pass each.

With compiled kernels (the ``accel`` extra), 3x3 stride-1 ungrouped 2-d convolutions with
enough channels (``conv_winograd.takes``; conv2 of the tutorial ConvNet) run ``conv``'s
forward as Winograd F(2x2, 3x3) instead (``fnarray/ops/conv_winograd.py``: 16 products of
``(tiles, C) @ (C, O)``, 2.25x fewer flops, no patches).  Reverse mode then keeps no
patches either: ``conv``'s ``fwd`` rule binds ``conv`` itself, and the VJP takes the
weight cotangent from the primitive ``conv_weight_cotangent``
(``fnarray/ops/conv_weight.py``: Winograd's adjoint, 16 products ``(C, tiles) @ (tiles,
O)``), and the input cotangent from ``conv_transpose``, whose impl runs Winograd too.  The
results agree with the im2col path to float rounding.
"""

from __future__ import annotations

import math

from fnarray import api as fa
from fnarray.backends import accel
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray
from fnarray.ops import conv_winograd
from fnarray.ops._util import move_bdim
# the im2col pair lives in conv_patches.py; the names other modules read from here stay
from fnarray.ops.conv_patches import (  # noqa: F401 (conv_transpose.py, pooling.py, api.nn)
    _compiled, _patches_impl, _patches_transpose_impl, _Recycler, conv_patches,
    conv_patches_transpose, out_spatial, window_cover, window_offsets)
from fnarray.ops.linalg import dot_general, shorter_rows_first
from fnarray.transforms.buffers import declare_fresh


# --- kernels ---------------------------------------------------------------------------------

def _conv_impl(xp, x, w, *bias, strides, padding, dilation, groups):
    """Winograd where it takes the operands (``conv_winograd``), else im2col (the one
    copy) and one matrix product per group (``conv_columns``)."""
    _check_bias("conv", bias, w, x.dtype)
    k = conv_winograd.kernels(xp, x, w, strides, dilation, groups)
    if k is not None:
        out = out_spatial(x.shape[2:], w.shape[2:], strides, padding, dilation)
        return conv_winograd.correlate(k, xp, x, w, [lo for lo, _ in padding], out,
                                       bias[0] if bias else None)
    cols = _patches_impl(xp, x, kernel=w.shape[2:], strides=strides, padding=padding,
                         dilation=dilation)
    return _product(xp, cols, w, bias, groups)


def _columns_impl(xp, cols, w, *bias, groups):
    _check_bias("conv_columns", bias, w, cols.dtype)
    return _product(xp, cols, w, bias, groups)


def _product(xp, cols, w, bias: tuple, groups: int):
    """``(g, O/g, C/g*K) @ (g, C/g*K, N*out)``, then ``(O, N, *out)`` -> ``(N, O, *out)``
    plus the optional bias (one per output channel) in the same pass: a contiguous copy
    that only swaps the two outer axes (whole output rows move), so every activation is an
    ordinary C-ordered array (eager and jit agree on layouts, and with them on the
    summation order of later reductions)."""
    nd = w.ndim - 2
    n, out = cols.shape[1 + nd], cols.shape[2 + nd:]
    wg = w.reshape(groups, w.shape[0] // groups, math.prod(w.shape[1:]))
    y = xp.matmul(wg, cols.reshape(groups, wg.shape[2], n * math.prod(out)))
    y = y.reshape(w.shape[0], n, math.prod(out))
    res = xp.empty((n, w.shape[0], y.shape[2]), dtype=y.dtype)
    k = _compiled(xp, y, y.size, 0)
    if k is None:
        if bias:
            xp.add(xp.swapaxes(y, 0, 1), bias[0][:, None], out=res)
        else:
            xp.copyto(res, xp.swapaxes(y, 0, 1))
    elif bias:
        k.swap_outer_bias(y, xp.ascontiguousarray(bias[0]), res)
    else:
        k.swap_outer(y, res)
    return res.reshape(n, w.shape[0], *out)


# --- conv_channel_major: the output cotangent's layout for the products ---------------------

def _channel_major_impl(xp, ct, *, groups, sums):
    """``(N, O, *out)`` -> ``(g, O/g, N*out)``, and with ``sums`` also ``ct`` summed over
    its samples ``(O, *out)`` (in sample order, as ``ct.sum(axis=0)``), in the same pass
    on the compiled path."""
    n, o, out = ct.shape[0], ct.shape[1], ct.shape[2:]
    y = ct.reshape(n, o, math.prod(out))
    res = xp.empty((o, n, y.shape[2]), dtype=ct.dtype)
    total = None
    k = _compiled(xp, y, y.size, 0)
    if k is None:
        xp.copyto(res, xp.swapaxes(y, 0, 1))
        if sums:
            total = y.sum(axis=0)
    elif sums:
        total = xp.zeros((o, y.shape[2]), dtype=ct.dtype)
        k.swap_outer_sum(y, res, total)
    else:
        k.swap_outer(y, res)
    res = res.reshape(groups, o // groups, n * y.shape[2])
    return (res,) if total is None else (res, total.reshape(o, *out))


def _channel_major_abstract(a, *, groups, sums):
    n, o, out = a.shape[0], a.shape[1], a.shape[2:]
    ctm = ShapedArray((groups, o // groups, n * math.prod(out)), a.dtype, a.weak_type)
    return (ctm, ShapedArray((o, *out), a.dtype, a.weak_type)) if sums else (ctm,)


def _channel_major_jvp(primals, tangents, **params):
    return (conv_channel_major.bind(primals[0], **params),
            conv_channel_major.bind(tangents[0], **params))


def _channel_major_vjp(cts, ct, *, out, groups, sums):
    """The transpose: the channel-major cotangent swapped back, plus the sums' cotangent
    broadcast over the samples."""
    n, o, rest = ct.shape[0], ct.shape[1], ct.shape[2:]
    g = None
    if cts[0] is not None:
        g = fa.permute_dims(fa.reshape(cts[0], (o, n, *rest)), (1, 0, *range(2, ct.ndim)))
    if sums and cts[1] is not None:
        spread = fa.broadcast_to(fa.expand_dims(cts[1], 0), ct.shape)
        g = spread if g is None else g + spread
    return (g if g is not None else fa.zeros(ct.shape, ct.dtype),)


def _channel_major_batch(vals, dims, *, groups, sums):
    """vmap: the batch axis folds into the samples of the channel-major result; the sums
    (per batch entry) are a reduction of the batched operand."""
    ct = move_bdim(vals[0], dims[0], 0)
    b, n = ct.shape[:2]
    ctm = conv_channel_major.bind(fa.reshape(ct, (b * n, *ct.shape[2:])), groups=groups,
                                  sums=False)[0]
    ctm = fa.reshape(ctm, (*ctm.shape[:2], b, ctm.shape[2] // b))
    if not sums:
        return (ctm,), (2,)
    return (ctm, fa.sum(ct, axis=1)), (2, 0)


conv_channel_major = declare(
    "conv_channel_major", impl=_channel_major_impl, abstract=_channel_major_abstract,
    jvp=_channel_major_jvp, vjp=_channel_major_vjp, batch=_channel_major_batch,
    multiple_results=True)
"""``conv_channel_major(ct; groups, sums)``: a convolution's output cotangent ``(N, O,
*out)`` laid out ``(g, O/g, N*out)`` for the weight's and the patches' products, and with
``sums`` also summed over samples, ``(O, *out)``, for the bias's cotangent (one pass over
``ct`` on the compiled path instead of a copy and a reduction)."""


# --- the contractions of a convolution (shared by its rules) -----------------------------------

def _channel_major(ct, groups):
    """``(N, O, *out)`` as ``(g, O/g, N*out)``: a copy that swaps the two outer axes."""
    return conv_channel_major.bind(ct, groups=groups, sums=False)[0]


def _cotangent_layout(ct, groups: int, need_ctm: bool, need_bias: bool):
    """``(ctm, bias cotangent)``, each None unless needed: the output cotangent ``ct``
    channel-major (``_channel_major``) and summed over samples and positions, both from
    one pass over ``ct`` when both are needed."""
    if not need_ctm:
        return None, fa.sum(ct, axis=(0, *range(2, ct.ndim))) if need_bias else None
    outs = conv_channel_major.bind(ct, groups=groups, sums=need_bias)
    if not need_bias:
        return outs[0], None
    return outs[0], fa.sum(outs[1], axis=tuple(range(1, ct.ndim - 1)))


def _grouped(w, groups):
    """The weight as one ``(O/g, C/g*K)`` matrix per group (a view)."""
    return fa.reshape(w, (groups, w.shape[0] // groups, math.prod(w.shape[1:])))


def _columns_cotangent(ct, ctm, w, groups):
    """``(C/g*K, O/g) @ (O/g, N*out)`` per group: the patch columns ``(C, *kernel, N,
    *out)`` of the input cotangent (BLAS reads the transposed weight in place);
    ``ctm = _channel_major(ct, groups)``."""
    n, out = ct.shape[0], ct.shape[2:]
    cols = dot_general.bind(_grouped(w, groups), ctm, contract=((1,), (1,)),
                            batch=((0,), (0,)))  # (g, C/g*K, N*out)
    return fa.reshape(cols, (w.shape[1] * groups, *w.shape[2:], n, *out))


def _weight_cotangent(ctm, cols, w_shape, groups):
    """``(O/g, N*out) @ (N*out, C/g*K)`` per group: the output cotangent
    ``ctm = _channel_major(ct, groups)`` against the forward's patch columns (read
    transposed by GEMM, not copied).

    Where BLAS runs that product faster the other way round (``shorter_rows_first``: a
    longer patch side and a long contraction, as in conv2 of the MNIST ConvNet, ``O=64,
    C*K=288, N*out=36864``: 10.0 against 15.1 ms at 2 threads), it is computed as
    ``(C/g*K, N*out) @ (N*out, O/g)`` and its small result transposed (the layout pass
    leaves that transpose alone, see ``ops/linalg.py``)."""
    nd = len(w_shape) - 2
    pg = fa.reshape(cols, (groups, math.prod(cols.shape[:1 + nd]) // groups,
                           math.prod(cols.shape[1 + nd:])))
    if shorter_rows_first(ctm.shape[1], pg.shape[1], pg.shape[2]):
        gw = fa.permute_dims(dot_general.bind(pg, ctm, contract=((2,), (2,)),
                                              batch=((0,), (0,))), (0, 2, 1))
    else:
        gw = dot_general.bind(ctm, pg, contract=((2,), (2,)),
                              batch=((0,), (0,)))  # (g, O/g, C/g*K)
    return fa.reshape(gw, tuple(w_shape))


def bilinear_jvp(prim, primals, tangents, **params):
    """The JVP rule of a primitive bilinear in its two operands (``conv``,
    ``conv_columns``, ``conv_transpose``): ``prim(t1, b) + prim(a, t2)``."""
    a, b = primals
    ta, tb = tangents
    out = prim.bind(a, b, **params)
    t = None if ta is None else prim.bind(ta, b, **params)
    if tb is not None:
        tb_out = prim.bind(a, tb, **params)
        t = tb_out if t is None else t + tb_out
    return out, t


def _biased_jvp(prim, primals, tangents, **params):
    """The JVP rule of ``conv``/``conv_columns``: bilinear in the first two operands
    (``bilinear_jvp``) plus, when there is one, the bias, which is linear: its tangent
    rides as the bias of the first product term (so it costs no pass of its own)."""
    if len(primals) == 2:
        return bilinear_jvp(prim, primals, tangents, **params)
    a, b, bias = primals
    ta, tb, tbias = tangents
    out = prim.bind(a, b, bias, **params)
    terms = [(ta, b), (a, tb)]
    t = None
    for u, v in terms:
        if u is not None and v is not None:
            extra = () if t is not None or tbias is None else (tbias,)
            term = prim.bind(u, v, *extra, **params)
            t = term if t is None else t + term
    if t is None and tbias is not None:
        t = fa.broadcast_to(_per_channel(tbias, out.ndim), out.shape)
    return out, t


def _per_channel(bias, ndim: int):
    """A bias ``(O,)`` shaped to broadcast over ``(N, O, *out)`` (ndim axes)."""
    return fa.reshape(bias, (bias.shape[-1],) + (1,) * (ndim - 2))


def _biased_batch(prim, batch, vals, dims, **params):
    """vmap of ``conv``/``conv_columns`` with a bias: ``batch`` (the rule for the two
    product operands) gets the bias along when only the input is batched (the common
    case, which keeps the fused add); otherwise the bias is added to the batched result."""
    if len(vals) == 2:
        return batch(vals, dims, **params)
    (x, w, bias), (dx, dw, db) = vals, dims
    if db is None and dw is None and dx is not None:
        return batch((x, w), (dx, dw), bias=bias, **params)
    if dx is None and dw is None:
        y, dy = prim.bind(x, w, **params), None
    else:
        y, dy = batch((x, w), (dx, dw), **params)
    ndim = y.ndim if dy is None else y.ndim - 1
    if db is None:
        return y + _per_channel(bias, ndim), dy
    y = fa.expand_dims(y, 0) if dy is None else move_bdim(y, dy, 0)
    bias = move_bdim(bias, db, 0)
    return y + fa.reshape(bias, (bias.shape[0], 1, bias.shape[1]) + (1,) * (ndim - 2)), 0


def _bilinear_batch(prim, vals, dims, *, n_axis, c_axis, groups, bias=None, **p):
    """vmap of ``conv``/``conv_columns`` (operands ``x`` with its sample axis ``n_axis``
    and channel axis ``c_axis``, and the weight).  x batched: fold into N.  w batched:
    its copies become extra output channels of each group (x unbatched) or extra groups
    (both batched).  Always one application of ``prim``, never a loop.  An unbatched
    ``bias`` (only with ``w`` unbatched) stays the product's own."""
    x, w = vals
    dx, dw = dims
    if dw is None:
        x = move_bdim(x, dx, n_axis)
        b, n = x.shape[n_axis:n_axis + 2]
        y = prim.bind(fa.reshape(x, (*x.shape[:n_axis], b * n, *x.shape[n_axis + 2:])), w,
                      *(() if bias is None else (bias,)), groups=groups, **p)
        return fa.reshape(y, (b, n, *y.shape[1:])), 0
    w = move_bdim(w, dw, 0)
    b, o, rest = w.shape[0], w.shape[1], w.shape[2:]
    g = groups
    if dx is None:
        wg = fa.moveaxis(fa.reshape(w, (b, g, o // g, *rest)), 0, 1)
        y = prim.bind(x, fa.reshape(wg, (g * b * (o // g), *rest)), groups=g, **p)
        n, out = y.shape[0], y.shape[2:]
        y = fa.moveaxis(fa.reshape(y, (n, g, b, o // g, *out)), 2, 0)
        return fa.reshape(y, (b, n, o, *out)), 0
    x = move_bdim(x, dx, c_axis)  # (..., b, c, ...)
    xs = fa.reshape(x, (*x.shape[:c_axis], b * x.shape[c_axis + 1], *x.shape[c_axis + 2:]))
    y = prim.bind(xs, fa.reshape(w, (b * o, *rest)), groups=b * g, **p)
    return fa.reshape(y, (y.shape[0], b, o, *y.shape[2:])), 1


# --- conv_columns: the GEMM half of a convolution ---------------------------------------------

def _check_bias(op, bias, w, dtype):
    """A bias operand must be ``(C_out,)`` of the product's dtype (``fa.conv`` adds any
    other one after the primitive, with type promotion)."""
    if bias and (tuple(bias[0].shape) != (w.shape[0],) or bias[0].dtype != dtype):
        raise ValueError(f"{op}: the bias operand must have shape ({w.shape[0]},) and dtype "
                         f"{dtype} (one per output channel of weight {tuple(w.shape)}), got "
                         f"{tuple(bias[0].shape)} {bias[0].dtype}; add other biases to the "
                         f"result instead")


def _columns_abstract(cols, w, *bias, groups):
    _check_bias("conv_columns", bias, w, cols.dtype)
    nd = w.ndim - 2
    shape = (cols.shape[1 + nd], w.shape[0], *cols.shape[2 + nd:])
    weak = cols.weak_type and w.weak_type and all(b.weak_type for b in bias)
    return ShapedArray(shape, cols.dtype, weak)


def _columns_vjp(ct, cols, w, *bias, out, groups, needed=(True, True, True)):
    # swapped once, read by both products
    ctm, gb = _cotangent_layout(ct, groups, needed[0] or needed[1], bool(bias) and needed[2])
    gc = _columns_cotangent(ct, ctm, w, groups) if needed[0] else None
    gw = _weight_cotangent(ctm, cols, w.shape, groups) if needed[1] else None
    return (gc, gw, gb) if bias else (gc, gw)


def _columns_batch(vals, dims, *, groups, bias=None):
    w, dw = vals[1], dims[1]
    nd = w.ndim - 2 - (dw is not None)
    return _bilinear_batch(conv_columns, vals, dims, n_axis=1 + nd, c_axis=0, groups=groups,
                           bias=bias)


conv_columns = declare("conv_columns", impl=_columns_impl, abstract=_columns_abstract,
                       jvp=lambda pr, tg, **p: _biased_jvp(conv_columns, pr, tg, **p),
                       vjp=_columns_vjp,
                       batch=lambda v, d, **p: _biased_batch(conv_columns, _columns_batch,
                                                             v, d, **p),
                       vjp_selective=True)
"""``conv_columns(cols, w[, bias]; groups)``: the convolution of the patches
``cols = conv_patches(x)`` with ``w``, plus the optional bias ``(C_out,)``,
``conv(x, w, b) == conv_columns(conv_patches(x), w, b)``; ``conv``'s reverse mode runs it
so that the patches are built once and kept for the weight cotangent."""


# --- conv --------------------------------------------------------------------------------------

def _conv_abstract(a, w, *bias, strides, padding, dilation, groups):
    _check_bias("conv", bias, w, a.dtype)
    out = out_spatial(a.shape[2:], w.shape[2:], strides, padding, dilation)
    weak = a.weak_type and w.weak_type and all(b.weak_type for b in bias)
    return ShapedArray((a.shape[0], w.shape[0], *out), a.dtype, weak)


def _patches_of(x, kernel, strides, padding, dilation):
    return conv_patches.bind(x, kernel=tuple(kernel), strides=strides, padding=padding,
                             dilation=dilation)


def _conv_fwd(x, w, *bias, strides, padding, dilation, groups):
    """Reverse mode's forward: the output and, as the residual, the patch columns the
    weight cotangent contracts with (so im2col runs once per step, not twice).  Where
    Winograd computes the output (compiled kernels on, ``conv_winograd.takes``), there are
    no patches to keep: the output is ``conv``'s own and the VJP binds
    ``conv_weight_cotangent`` (no residual).  (The test is static: operands below
    ``accel``'s size threshold or on another backend then run im2col in the forward pass
    and again in the weight cotangent, a small cost where it happens.)"""
    if accel.enabled() and conv_winograd.takes(x, w, strides, dilation, groups):
        return conv.bind(x, w, *bias, strides=strides, padding=padding, dilation=dilation,
                         groups=groups), None
    cols = _patches_of(x, w.shape[2:], strides, padding, dilation)
    return conv_columns.bind(cols, w, *bias, groups=groups), cols


def _conv_vjp(ct, x, w, *bias, out, needed=(True, True, True), residuals=None, strides,
              padding, dilation, groups):
    gx = gw = None
    if needed[0]:
        # declared in its own module, whose rules bind ``conv``
        from fnarray.ops.conv_transpose import conv_transpose
        gx = conv_transpose.bind(ct, w, in_spatial=tuple(x.shape[2:]), strides=strides,
                                 padding=padding, dilation=dilation, groups=groups)
    # without patches from the forward pass, Winograd's geometry gets the weight cotangent
    # from its own primitive (Winograd's adjoint; see conv_weight.py)
    separate = (needed[1] and residuals is None
                and conv_winograd.takes(x, w, strides, dilation, groups))
    ctm, gb = _cotangent_layout(ct, groups, needed[1] and not separate,
                                bool(bias) and needed[2])
    if separate:
        from fnarray.ops.conv_weight import conv_weight_cotangent  # binds conv in its rules
        gw = conv_weight_cotangent.bind(x, ct, kernel=tuple(w.shape[2:]), strides=strides,
                                        padding=padding, dilation=dilation, groups=groups)
    elif needed[1]:
        cols = residuals if residuals is not None else _patches_of(
            x, w.shape[2:], strides, padding, dilation)
        gw = _weight_cotangent(ctm, cols, w.shape, groups)
    return (gx, gw, gb) if bias else (gx, gw)


def _conv_batch(vals, dims, **params):
    return _bilinear_batch(conv, vals, dims, n_axis=0, c_axis=1, **params)


conv = declare("conv", impl=_conv_impl, abstract=_conv_abstract,
               jvp=lambda pr, tg, **p: _biased_jvp(conv, pr, tg, **p), vjp=_conv_vjp,
               batch=lambda v, d, **p: _biased_batch(conv, _conv_batch, v, d, **p),
               vjp_selective=True, fwd=_conv_fwd)

# these kernels return a new C-ordered buffer (the jit executor may reuse it once dead)
declare_fresh(conv, conv_columns)
