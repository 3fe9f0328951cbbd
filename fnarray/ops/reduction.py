"""Reductions and scans along axes.

Parameters are static: ``axes`` is a tuple of non-negative axes, ``keepdims`` a bool.
"""

from __future__ import annotations

from fnarray import api as fa
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray, bool_, int64
from fnarray.ops._util import move_bdim
from fnarray.transforms.buffers import declare_fresh


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_abstract(out_dtype=None):
    return lambda a, *, axes, keepdims: ShapedArray(
        _reduced_shape(a.shape, axes, keepdims), out_dtype or a.dtype, a.weak_type)


def _batch_reduce(prim):
    def rule(vals, dims, *, axes, keepdims, **params):
        x, = vals
        d, = dims
        x = move_bdim(x, d, 0)
        return prim.bind(x, axes=tuple(a + 1 for a in axes), keepdims=keepdims, **params), 0
    return rule


def keep(ct, x_shape, axes, keepdims):
    """Re-insert reduced axes (as size 1) so ``ct`` broadcasts against the input."""
    if keepdims:
        return ct
    return fa.reshape(ct, _reduced_shape(x_shape, axes, True))


def _declare_reduction(name, kernel, jvp=None, vjp=None, out_dtype=None):
    def impl(xp, x, *, axes, keepdims):
        # The array's own method: what ``xp.sum(x, ...)`` calls for an array, without the
        # module function's Python wrapper (~1.3 us of a 2.3 us small sum).
        out = getattr(x, kernel)(axis=axes, keepdims=keepdims)
        # NumPy widens small integer sums and products; the primitive keeps its input dtype
        # (the API functions choose the accumulation dtype before binding it).
        return out if out.dtype == x.dtype or out_dtype else out.astype(x.dtype)
    p = declare(name, impl=impl, abstract=_reduce_abstract(out_dtype), jvp=jvp, vjp=vjp,
                batch=None, differentiable=jvp is not None)
    declare_fresh(p)  # NumPy's reductions always allocate their result
    p.batch = _batch_reduce(p)
    if jvp is None:
        p.jvp = p.vjp = _no_derivative
    return p


def _no_derivative(*args, **kwargs):
    """Placeholder for non-differentiable primitives; the transforms never call it."""
    return (None,)


# --- sum: linear -----------------------------------------------------------------------------

def _sum_jvp(primals, tangents, *, axes, keepdims):
    return (reduce_sum.bind(primals[0], axes=axes, keepdims=keepdims),
            reduce_sum.bind(tangents[0], axes=axes, keepdims=keepdims))


def _sum_vjp(ct, x, *, out, axes, keepdims):
    return (fa.broadcast_to(keep(ct, x.shape, axes, keepdims), x.shape),)


reduce_sum = _declare_reduction("reduce_sum", "sum", _sum_jvp, _sum_vjp)


# --- max / min: the derivative is shared evenly between tied extrema -------------------------

def _extremum_rules(get_prim):
    def weights(x, out, axes, keepdims):
        hit = fa.astype(x == keep(out, x.shape, axes, keepdims), x.dtype)
        return hit / fa.sum(hit, axis=axes, keepdims=True)

    def jvp(primals, tangents, *, axes, keepdims):
        x, = primals
        out = get_prim().bind(x, axes=axes, keepdims=keepdims)
        w = weights(x, out, axes, keepdims)
        return out, fa.sum(tangents[0] * w, axis=axes, keepdims=keepdims)

    def vjp(ct, x, *, out, axes, keepdims):
        return (keep(ct, x.shape, axes, keepdims) * weights(x, out, axes, keepdims),)

    return jvp, vjp


reduce_max = _declare_reduction("reduce_max", "max", *_extremum_rules(lambda: reduce_max))
reduce_min = _declare_reduction("reduce_min", "min", *_extremum_rules(lambda: reduce_min))


# --- prod: gradient is the product of all other elements (exact with zeros) -----------------

def _others_product(x, axes):
    """For each element, the product of the other elements in its reduction group."""
    nred = len(axes)
    moved = fa.moveaxis(x, axes, tuple(range(x.ndim - nred, x.ndim)))
    flat = fa.reshape(moved, moved.shape[:x.ndim - nred] + (-1,))
    ones = fa.ones_like(flat[..., :1])
    left = fa.cumprod(fa.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = fa.flip(fa.cumprod(fa.flip(fa.concatenate([flat[..., 1:], ones], axis=-1), -1), axis=-1), -1)
    others = fa.reshape(left * right, moved.shape)
    return fa.moveaxis(others, tuple(range(x.ndim - nred, x.ndim)), axes)


def _prod_jvp(primals, tangents, *, axes, keepdims):
    x, = primals
    out = reduce_prod.bind(x, axes=axes, keepdims=keepdims)
    return out, fa.sum(tangents[0] * _others_product(x, axes), axis=axes, keepdims=keepdims)


def _prod_vjp(ct, x, *, out, axes, keepdims):
    return (keep(ct, x.shape, axes, keepdims) * _others_product(x, axes),)


reduce_prod = _declare_reduction("reduce_prod", "prod", _prod_jvp, _prod_vjp)

reduce_and = _declare_reduction("reduce_and", "all", out_dtype=bool_)
reduce_or = _declare_reduction("reduce_or", "any", out_dtype=bool_)


# --- argmax / argmin: one axis, integer result -----------------------------------------------

def _arg_impl(kernel):
    def impl(xp, x, *, axes, keepdims):
        return getattr(xp, kernel)(x, axis=axes[0], keepdims=keepdims).astype(xp.int64)
    return impl


argmax = _declare_reduction("argmax", "argmax", out_dtype=int64)
argmax.impl = _arg_impl("argmax")
argmin = _declare_reduction("argmin", "argmin", out_dtype=int64)
argmin.impl = _arg_impl("argmin")


# --- scans ----------------------------------------------------------------------------------

def _scan_abstract(a, *, axis, reverse):
    return a


def _batch_scan(prim):
    def rule(vals, dims, *, axis, reverse):
        x = move_bdim(vals[0], dims[0], 0)
        return prim.bind(x, axis=axis + 1, reverse=reverse), 0
    return rule


def _cumsum_impl(xp, x, *, axis, reverse):
    if reverse:
        return xp.flip(xp.cumsum(xp.flip(x, axis), axis=axis, dtype=x.dtype), axis)
    return xp.cumsum(x, axis=axis, dtype=x.dtype)  # no widening of small integers


def _cumsum_jvp(primals, tangents, *, axis, reverse):
    return (cumsum.bind(primals[0], axis=axis, reverse=reverse),
            cumsum.bind(tangents[0], axis=axis, reverse=reverse))


def _cumsum_vjp(ct, x, *, out, axis, reverse):
    return (cumsum.bind(ct, axis=axis, reverse=not reverse),)


cumsum = declare("cumsum", impl=_cumsum_impl, abstract=_scan_abstract, jvp=_cumsum_jvp,
                 vjp=_cumsum_vjp, batch=None)
cumsum.batch = _batch_scan(cumsum)


def _cumprod_impl(xp, x, *, axis, reverse):
    if reverse:
        return xp.flip(xp.cumprod(xp.flip(x, axis), axis=axis, dtype=x.dtype), axis)
    return xp.cumprod(x, axis=axis, dtype=x.dtype)  # no widening of small integers


def _cumprod_jacobian(x, axis, reverse):
    """``P[..., k, j] = d out_j / d x_k`` along ``axis`` (moved last), exact with zeros:
    the running product up to ``j`` with ``x_k`` replaced by 1, masked to ``k <= j``."""
    xm = fa.moveaxis(x, axis, -1)
    if reverse:
        xm = fa.flip(xm, -1)
    n = xm.shape[-1]
    eye = fa.eye(n, dtype=bool_)
    a = fa.where(eye, fa.ones((), x.dtype), fa.expand_dims(xm, -2))  # [..., k, i]
    upper = fa.triu(fa.ones((n, n), dtype=bool_))  # k <= j
    return fa.where(upper, fa.cumprod(a, axis=-1), fa.zeros((), x.dtype))


def _cumprod_jvp(primals, tangents, *, axis, reverse):
    x, = primals
    out = cumprod.bind(x, axis=axis, reverse=reverse)
    p = _cumprod_jacobian(x, axis, reverse)
    t = fa.moveaxis(tangents[0], axis, -1)
    if reverse:
        t = fa.flip(t, -1)
    t_out = fa.sum(fa.expand_dims(t, -1) * p, axis=-2)
    if reverse:
        t_out = fa.flip(t_out, -1)
    return out, fa.moveaxis(t_out, -1, axis)


def _cumprod_vjp(ct, x, *, out, axis, reverse):
    p = _cumprod_jacobian(x, axis, reverse)
    c = fa.moveaxis(ct, axis, -1)
    if reverse:
        c = fa.flip(c, -1)
    g = fa.sum(fa.expand_dims(c, -2) * p, axis=-1)
    if reverse:
        g = fa.flip(g, -1)
    return (fa.moveaxis(g, -1, axis),)


cumprod = declare("cumprod", impl=_cumprod_impl, abstract=_scan_abstract, jvp=_cumprod_jvp,
                  vjp=_cumprod_vjp, batch=None)
cumprod.batch = _batch_scan(cumprod)
