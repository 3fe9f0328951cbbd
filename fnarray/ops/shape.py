"""Shape primitives.  All are linear, so each declares its transpose and gets both
derivative modes from it: the JVP applies the primitive to the tangent and the VJP applies
the transpose to the cotangent."""

from __future__ import annotations

from fnarray import api as fa
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray, is_inexact
from fnarray.ops._util import bdim_to_front, batch_size, move_bdim, unbroadcast
from fnarray.transforms.layout import declare_permutation


def linear(name, impl, abstract, transpose, batch):
    """Declare a primitive that is linear in its single operand."""
    p = declare(name, impl=impl, abstract=abstract, jvp=None, vjp=None, batch=batch)

    def jvp(primals, tangents, **params):
        return p.bind(primals[0], **params), p.bind(tangents[0], **params)

    def vjp(ct, x, *, out, **params):
        return (transpose(ct, x.shape, **params),)

    p.jvp, p.vjp = jvp, vjp
    return p


# --- reshape ----------------------------------------------------------------------------------

def _reshape_batch(vals, dims, *, shape):
    x = move_bdim(vals[0], dims[0], 0)
    return reshape.bind(x, shape=(x.shape[0], *shape)), 0


reshape = linear(
    "reshape",
    impl=lambda xp, x, *, shape: x.reshape(shape),  # the method: no module-function wrapper
    abstract=lambda a, *, shape: ShapedArray(shape, a.dtype, a.weak_type),
    transpose=lambda ct, shape_in, *, shape: reshape.bind(ct, shape=tuple(shape_in)),
    batch=_reshape_batch)


# --- transpose --------------------------------------------------------------------------------

def _inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _transpose_batch(vals, dims, *, perm):
    x = move_bdim(vals[0], dims[0], 0)
    return transpose.bind(x, perm=(0, *(p + 1 for p in perm))), 0


transpose = linear(
    "transpose",
    impl=lambda xp, x, *, perm: x.transpose(perm),
    abstract=lambda a, *, perm: ShapedArray(tuple(a.shape[p] for p in perm), a.dtype, a.weak_type),
    transpose=lambda ct, shape_in, *, perm: transpose.bind(ct, perm=_inverse(perm)),
    batch=_transpose_batch)
declare_permutation(transpose, lambda params: params["perm"])


# --- broadcast_to -----------------------------------------------------------------------------

def _broadcast_batch(vals, dims, *, shape):
    x = move_bdim(vals[0], dims[0], 0)
    lead = len(shape) - (x.ndim - 1)
    x = reshape.bind(x, shape=(x.shape[0],) + (1,) * lead + x.shape[1:])
    return broadcast_to.bind(x, shape=(x.shape[0], *shape)), 0


broadcast_to = linear(
    "broadcast_to",
    impl=lambda xp, x, *, shape: xp.broadcast_to(x, shape),
    abstract=lambda a, *, shape: ShapedArray(shape, a.dtype, a.weak_type),
    transpose=lambda ct, shape_in, *, shape: unbroadcast(ct, shape_in),
    batch=_broadcast_batch)


# --- rev (flip) -------------------------------------------------------------------------------

rev = linear(
    "rev",
    impl=lambda xp, x, *, axes: xp.flip(x, axes),
    abstract=lambda a, *, axes: a,
    transpose=lambda ct, shape_in, *, axes: rev.bind(ct, axes=axes),
    batch=lambda vals, dims, *, axes: (
        rev.bind(move_bdim(vals[0], dims[0], 0), axes=tuple(a + 1 for a in axes)), 0))


# --- slice and pad: each other's transpose ------------------------------------------------------

def _slice_impl(xp, x, *, starts, limits, strides):
    return x[tuple(slice(s, e, st) for s, e, st in zip(starts, limits, strides))]


def _slice_len(start, limit, stride):
    return max(0, -(-(limit - start) // stride))


def _slice_transpose(ct, shape_in, *, starts, limits, strides):
    config = []
    for n, s, e, st in zip(shape_in, starts, limits, strides):
        m = _slice_len(s, e, st)
        if m == 0:
            config.append((0, n, 0))
        else:
            config.append((s, n - (s + (m - 1) * st + 1), st - 1))
    return pad.bind(ct, config=tuple(config))


slice_ = linear(
    "slice",
    impl=_slice_impl,
    abstract=lambda a, *, starts, limits, strides: ShapedArray(
        tuple(_slice_len(s, e, st) for s, e, st in zip(starts, limits, strides)),
        a.dtype, a.weak_type),
    transpose=_slice_transpose,
    batch=lambda vals, dims, *, starts, limits, strides: (
        slice_.bind(move_bdim(vals[0], dims[0], 0), starts=(0, *starts),
                    limits=(vals[0].shape[dims[0]], *limits), strides=(1, *strides)), 0))


def _pad_out_len(n, lo, hi, interior):
    return lo + hi + n + max(n - 1, 0) * interior


def _pad_impl(xp, x, *, config):
    """Zero padding with ``(low, high, interior)`` per axis (all non-negative)."""
    shape = tuple(_pad_out_len(n, *c) for n, c in zip(x.shape, config))
    out = xp.zeros(shape, dtype=x.dtype)
    out[tuple(slice(lo, lo + _pad_out_len(n, 0, 0, it), it + 1)
              for n, (lo, hi, it) in zip(x.shape, config))] = x
    return out


def _pad_transpose(ct, shape_in, *, config):
    starts = tuple(lo for lo, _, _ in config)
    limits = tuple(lo + _pad_out_len(n, 0, 0, it) for n, (lo, _, it) in zip(shape_in, config))
    strides = tuple(it + 1 for _, _, it in config)
    return slice_.bind(ct, starts=starts, limits=limits, strides=strides)


pad = linear(
    "pad",
    impl=_pad_impl,
    abstract=lambda a, *, config: ShapedArray(
        tuple(_pad_out_len(n, *c) for n, c in zip(a.shape, config)), a.dtype, a.weak_type),
    transpose=_pad_transpose,
    batch=lambda vals, dims, *, config: (
        pad.bind(move_bdim(vals[0], dims[0], 0), config=((0, 0, 0), *config)), 0))


# --- concatenate: linear in every operand -------------------------------------------------------

def _concat_jvp(primals, tangents, *, axis):
    out = concatenate.bind(*primals, axis=axis)
    ts = [fa.zeros_like(p) if t is None else t for p, t in zip(primals, tangents)]
    return out, concatenate.bind(*ts, axis=axis)


def _concat_vjp(ct, *xs, out, axis):
    cts, start = [], 0
    for x in xs:
        n = x.shape[axis]
        starts = tuple(start if i == axis else 0 for i in range(ct.ndim))
        limits = tuple(start + n if i == axis else d for i, d in enumerate(ct.shape))
        cts.append(slice_.bind(ct, starts=starts, limits=limits, strides=(1,) * ct.ndim)
                   if is_inexact(x.dtype) else None)
        start += n
    return tuple(cts)


def _concat_batch(vals, dims, *, axis):
    size = batch_size(vals, dims)
    xs = [bdim_to_front(v, d, size) for v, d in zip(vals, dims)]
    return concatenate.bind(*xs, axis=axis + 1), 0


def _concat_abstract(*avals, axis):
    shape = list(avals[0].shape)
    shape[axis] = sum(a.shape[axis] for a in avals)
    return ShapedArray(tuple(shape), avals[0].dtype, all(a.weak_type for a in avals))


concatenate = declare(
    "concatenate",
    impl=lambda xp, *xs, axis: xp.concatenate(xs, axis=axis),
    abstract=_concat_abstract, jvp=_concat_jvp, vjp=_concat_vjp, batch=_concat_batch)
