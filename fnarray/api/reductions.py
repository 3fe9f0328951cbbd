"""Statistical reductions and cumulative functions."""

from __future__ import annotations

import builtins

from fnarray.api._convert import as_operand, astype, to_inexact
from fnarray.core.shapes import DEFAULT_INT, bool_, canonical_dtype, is_float
from fnarray.ops import reduction as red


def normalize_axes(axis, ndim: int, op: str) -> tuple:
    """``axis`` (None, int or sequence) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and 0 <= axis < ndim:  # the common case, kept short
        return (axis,)
    axes = (axis,) if isinstance(axis, int) or hasattr(axis, "__index__") else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < builtins.max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise ValueError(f"{op}: axis {a} is out of bounds for an array with {ndim} "
                             f"dimension(s); use an axis in [{-ndim}, {ndim - 1}]")
        out.append(a % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out)) if ndim else ()


def _reduce(prim, x, axis, keepdims, op):
    axes = normalize_axes(axis, x.ndim, op)
    return prim.bind(x, axes=axes, keepdims=bool(keepdims))


def _masked(x, where, identity):
    """``x`` with the entries outside the ``where`` mask replaced by ``identity``."""
    if where is None:
        return x
    from fnarray.api.elementwise import where as where_
    return where_(where, x, identity)


def _accumulating(x, dtype):
    """``x`` in the dtype its sum/product/cumulative sum is computed in: ``dtype`` if given,
    else (Array API default) bool and signed integers narrower than the default int in
    ``int64``, unsigned ones in ``uint64``, anything else as is."""
    if dtype is not None:
        return astype(x, dtype)
    if x.dtype.kind in "bi" and x.dtype.itemsize < 8:
        return astype(x, DEFAULT_INT)
    if x.dtype.kind == "u" and x.dtype.itemsize < 8:
        return astype(x, canonical_dtype("uint64"))
    return x


def sum(x, axis=None, dtype=None, keepdims: bool = False, initial=None,  # noqa: A001
        where=None):
    """Sum over ``axis`` of the entries selected by ``where`` (all by default), plus
    ``initial``; booleans and small integers accumulate in ``int64``."""
    x = _accumulating(as_operand(x), dtype)
    out = _reduce(red.reduce_sum, _masked(x, where, 0), axis, keepdims, "sum")
    return out if initial is None else out + initial


def prod(x, axis=None, dtype=None, keepdims: bool = False, initial=None, where=None):
    """Product over ``axis`` of the entries selected by ``where``, times ``initial``."""
    x = _accumulating(as_operand(x), dtype)
    out = _reduce(red.reduce_prod, _masked(x, where, 1), axis, keepdims, "prod")
    return out if initial is None else out * initial


def _extremum(prim, name):
    def f(x, axis=None, keepdims: bool = False, initial=None, where=None):
        x = as_operand(x)
        axes = normalize_axes(axis, x.ndim, name)
        if where is not None and initial is None:
            raise ValueError(f"{name}: a where= mask needs initial= (the {name}imum has no "
                             f"identity to put in the masked-out entries), e.g. "
                             f"initial=-fa.inf for max")
        if builtins.any(x.shape[a] == 0 for a in axes):
            if initial is None:
                raise ValueError(f"{name}: cannot reduce over a zero-size axis of an array "
                                 f"with shape {x.shape} (there is no identity); check the "
                                 f"input is non-empty or pass initial=")
            from fnarray.api.creation import full
            shape = tuple(1 if a in axes else d for a, d in enumerate(x.shape)) if keepdims \
                else tuple(d for a, d in enumerate(x.shape) if a not in axes)
            return astype(full(shape, initial, dtype=x.dtype), x.dtype)
        out = prim.bind(_masked(x, where, initial), axes=axes, keepdims=bool(keepdims))
        if initial is None:
            return out
        from fnarray.api import elementwise as ew
        return (ew.maximum if name == "max" else ew.minimum)(out, initial)
    f.__name__ = name
    f.__doc__ = (f"The {name}imum along ``axis`` (all axes by default) of the entries "
                 f"selected by ``where``, and ``initial``.")
    return f


max = _extremum(red.reduce_max, "max")  # noqa: A001
min = _extremum(red.reduce_min, "min")  # noqa: A001
amax, amin = max, min


def all(x, axis=None, keepdims: bool = False, where=None):  # noqa: A001
    x = as_operand(x)
    x = _masked(x if x.dtype == bool_ else astype(x, bool_), where, True)
    return _reduce(red.reduce_and, x, axis, keepdims, "all")


def any(x, axis=None, keepdims: bool = False, where=None):  # noqa: A001
    x = as_operand(x)
    x = _masked(x if x.dtype == bool_ else astype(x, bool_), where, False)
    return _reduce(red.reduce_or, x, axis, keepdims, "any")


def _count(x, axes) -> int:
    n = 1
    for a in axes:
        n *= x.shape[a]
    return n


def _where_count(x, axes, where, keepdims):
    """How many entries each reduction sees: a Python int, or an array for ``where``."""
    if where is None:
        return _count(x, axes)
    from fnarray.api.manipulation import broadcast_to
    mask = broadcast_to(as_operand(where), x.shape)
    return red.reduce_sum.bind(astype(mask, x.dtype), axes=axes, keepdims=bool(keepdims))


def mean(x, axis=None, keepdims: bool = False, dtype=None, where=None):
    """Arithmetic mean (of the entries selected by ``where``); integer input gives the
    default float."""
    x = to_inexact(as_operand(x) if dtype is None else astype(x, dtype))
    axes = normalize_axes(axis, x.ndim, "mean")
    total = red.reduce_sum.bind(_masked(x, where, 0), axes=axes, keepdims=bool(keepdims))
    return total / _where_count(x, axes, where, keepdims)


def var(x, axis=None, correction=None, keepdims: bool = False, ddof: int = 0, where=None):
    """Variance with ``correction`` (Array API) or ``ddof`` (NumPy) degrees of freedom, of
    the entries selected by ``where``."""
    x = to_inexact(x)
    axes = normalize_axes(axis, x.ndim, "var")
    corr = ddof if correction is None else correction
    centered = x - mean(x, axis=axes, keepdims=True, where=where)
    sq = centered * centered if is_float(x.dtype) else (centered * centered.conj()).real
    total = red.reduce_sum.bind(_masked(sq, where, 0), axes=axes, keepdims=bool(keepdims))
    count = _where_count(x, axes, where, keepdims)
    if where is None:
        return total / builtins.max(count - corr, 0)
    from fnarray.api.elementwise import maximum
    return total / maximum(count - corr, 0)


def std(x, axis=None, correction=None, keepdims: bool = False, ddof: int = 0, where=None):
    from fnarray.api.elementwise import sqrt
    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims, ddof=ddof,
                    where=where))


def _arg(prim, name):
    def f(x, axis=None, keepdims: bool = False):
        from fnarray.api.manipulation import ravel, reshape
        x = as_operand(x)
        if x.size == 0:
            raise ValueError(f"{name}: attempt to get {name} of an empty array of shape {x.shape}")
        if axis is None:
            out = prim.bind(ravel(x), axes=(0,), keepdims=False)
            return reshape(out, (1,) * x.ndim) if keepdims else out
        axes = normalize_axes(axis, x.ndim, name)
        return prim.bind(x, axes=axes, keepdims=bool(keepdims))
    f.__name__ = name
    f.__doc__ = f"Index of the first {name[3:]}imum along ``axis`` (flattened when None)."
    return f


argmax = _arg(red.argmax, "argmax")
argmin = _arg(red.argmin, "argmin")


def _scan(prim, name, x, axis, dtype, reverse=False):
    from fnarray.api.manipulation import ravel
    x = _accumulating(as_operand(x), dtype)
    if axis is None:
        x, axis = ravel(x), 0
    axis = normalize_axes(axis, x.ndim, name)[0] if x.ndim else 0
    if x.ndim == 0:
        return x
    return prim.bind(x, axis=axis, reverse=reverse)


def cumsum(x, axis=None, dtype=None):
    return _scan(red.cumsum, "cumsum", x, axis, dtype)


def cumprod(x, axis=None, dtype=None):
    return _scan(red.cumprod, "cumprod", x, axis, dtype)


def cumulative_sum(x, axis=None, dtype=None, include_initial: bool = False):
    """Array API ``cumulative_sum`` (optionally with a leading zero)."""
    x = as_operand(x)
    if axis is None and x.ndim > 1:
        raise ValueError("cumulative_sum: axis is required for arrays with more than one dimension")
    out = cumsum(x, axis=0 if axis is None else axis, dtype=dtype)
    if include_initial:
        from fnarray.api.manipulation import concatenate
        from fnarray.api.creation import zeros
        ax = 0 if axis is None else axis % x.ndim
        shape = list(out.shape)
        shape[ax] = 1
        out = concatenate([zeros(tuple(shape), out.dtype), out], axis=ax)
    return out


def logsumexp(x, axis=None, keepdims: bool = False):
    """``log(sum(exp(x)))`` along ``axis``, stable for large values."""
    from fnarray.api.elementwise import exp, isfinite, log, where
    from fnarray.transforms.custom import stop_gradient
    x = to_inexact(x)
    axes = normalize_axes(axis, x.ndim, "logsumexp")
    m = red.reduce_max.bind(x, axes=axes, keepdims=True) if x.size else x.sum(axis=axes, keepdims=True)
    m = stop_gradient(where(isfinite(m), m, 0.0))
    s = red.reduce_sum.bind(exp(x - m), axes=axes, keepdims=True)
    out = log(s) + m
    if not keepdims:
        from fnarray.api.manipulation import squeeze
        out = squeeze(out, axes) if axes else out
    return out


def count_nonzero(x, axis=None, keepdims: bool = False):
    from fnarray.api.elementwise import not_equal
    return sum(not_equal(as_operand(x), 0), axis=axis, keepdims=keepdims)
