"""NaN-ignoring reductions, differences, covariance and correlation (NumPy's semantics).

The ``nan*`` reductions replace NaNs by the reduction's identity (0 for sums, 1 for
products, ``-inf``/``+inf`` for max/min) and count only the non-NaN entries for means and
variances; an all-NaN slice gives NaN (no warning), and ``nanargmax``/``nanargmin`` give
-1 there (JAX's choice, which works under ``jit``; NumPy raises).  Integer input has no
NaNs and reduces as usual.  All of it composes differentiable primitives.
"""

from __future__ import annotations

import numpy as np

from fnarray.api import elementwise as ew, manipulation as mp, reductions as red
from fnarray.api._convert import as_operand, astype, to_inexact
from fnarray.api.contraction import diagonal, matmul
from fnarray.api.creation import ones_like
from fnarray.core.shapes import is_inexact

__all__ = ["nansum", "nanprod", "nanmax", "nanmin", "nanmean", "nanvar", "nanstd",
           "nanargmax", "nanargmin", "average", "ptp", "diff", "ediff1d", "cov", "corrcoef"]


def _nan_mask(x):
    """``(x, isnan(x))``, or ``(x, None)`` for input that cannot hold NaN."""
    x = as_operand(x)
    return (x, ew.isnan(x)) if is_inexact(x.dtype) else (x, None)


def _fill(x, nan, value):
    return x if nan is None else ew.where(nan, value, x)


def nansum(a, axis=None, dtype=None, keepdims: bool = False, initial=None, where=None):
    """``sum`` treating NaN as 0."""
    x, nan = _nan_mask(a)
    return red.sum(_fill(x, nan, 0), axis=axis, dtype=dtype, keepdims=keepdims,
                   initial=initial, where=where)


def nanprod(a, axis=None, dtype=None, keepdims: bool = False, initial=None, where=None):
    """``prod`` treating NaN as 1."""
    x, nan = _nan_mask(a)
    return red.prod(_fill(x, nan, 1), axis=axis, dtype=dtype, keepdims=keepdims,
                    initial=initial, where=where)


def _nan_extremum(name: str, reduce, identity: float):
    def f(a, axis=None, keepdims: bool = False, initial=None, where=None):
        x, nan = _nan_mask(a)
        if nan is None:
            return reduce(x, axis=axis, keepdims=keepdims, initial=initial, where=where)
        out = reduce(_fill(x, nan, identity), axis=axis, keepdims=keepdims, initial=initial,
                     where=where)
        valid = ew.logical_not(nan) if where is None else ew.logical_and(ew.logical_not(nan), where)
        seen = red.any(valid, axis=axis, keepdims=keepdims)
        return out if initial is not None else ew.where(seen, out, float("nan"))
    f.__name__ = name
    f.__doc__ = f"``{name[3:]}`` ignoring NaNs (NaN for an all-NaN slice)."
    return f


nanmax = _nan_extremum("nanmax", red.max, -np.inf)
nanmin = _nan_extremum("nanmin", red.min, np.inf)


def _nan_arg(name: str, reduce, identity: float):
    def f(a, axis=None, keepdims: bool = False):
        x, nan = _nan_mask(a)
        if nan is None:
            return reduce(x, axis=axis, keepdims=keepdims)
        out = reduce(_fill(x, nan, identity), axis=axis, keepdims=keepdims)
        if axis is None:
            seen = red.any(ew.logical_not(nan), keepdims=keepdims)
            seen = mp.reshape(seen, out.shape)
        else:
            seen = red.any(ew.logical_not(nan), axis=axis, keepdims=keepdims)
        return ew.where(seen, out, -1)
    f.__name__ = name
    f.__doc__ = f"``{name[3:]}`` ignoring NaNs (-1 for an all-NaN slice, as JAX)."
    return f


nanargmax = _nan_arg("nanargmax", red.argmax, -np.inf)
nanargmin = _nan_arg("nanargmin", red.argmin, np.inf)


def _nan_count(nan, axis, keepdims, dtype):
    return red.sum(astype(ew.logical_not(nan), dtype), axis=axis, keepdims=keepdims)


def nanmean(a, axis=None, dtype=None, keepdims: bool = False, where=None):
    """``mean`` of the non-NaN entries (NaN for an all-NaN slice)."""
    x = to_inexact(as_operand(a) if dtype is None else astype(a, dtype))
    x, nan = _nan_mask(x)
    if nan is None:
        return red.mean(x, axis=axis, keepdims=keepdims, where=where)
    ok = ew.logical_not(nan) if where is None else ew.logical_and(ew.logical_not(nan), where)
    return red.mean(_fill(x, nan, 0), axis=axis, keepdims=keepdims, where=ok)


def nanvar(a, axis=None, dtype=None, ddof: int = 0, keepdims: bool = False, where=None,
           correction=None):
    """``var`` of the non-NaN entries."""
    x = to_inexact(as_operand(a) if dtype is None else astype(a, dtype))
    x, nan = _nan_mask(x)
    if nan is None:
        return red.var(x, axis=axis, ddof=ddof, keepdims=keepdims, where=where,
                       correction=correction)
    ok = ew.logical_not(nan) if where is None else ew.logical_and(ew.logical_not(nan), where)
    return red.var(_fill(x, nan, 0), axis=axis, ddof=ddof, keepdims=keepdims, where=ok,
                   correction=correction)


def nanstd(a, axis=None, dtype=None, ddof: int = 0, keepdims: bool = False, where=None,
           correction=None):
    """``std`` of the non-NaN entries."""
    return ew.sqrt(nanvar(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims,
                          where=where, correction=correction))


# --- weighted mean and range -------------------------------------------------------------------

def average(a, axis=None, weights=None, returned: bool = False, keepdims: bool = False):
    """The weighted mean along ``axis`` (NumPy's ``average``): ``weights`` has ``a``'s shape
    or is 1-D along a single ``axis``; ``returned`` also gives the sum of the weights."""
    x = to_inexact(a)
    if weights is None:
        out = red.mean(x, axis=axis, keepdims=keepdims)
        if not returned:
            return out
        count = red.sum(ones_like(x), axis=axis, keepdims=keepdims)
        return out, astype(count, out.dtype)
    w = to_inexact(weights)
    if w.shape != x.shape:
        if axis is None or not isinstance(axis, int) or w.ndim != 1:
            raise ValueError(f"average: weights of shape {w.shape} differ from a's shape "
                             f"{x.shape}; 1-D weights need an int axis")
        ax = red.normalize_axes(axis, x.ndim, "average")[0]
        if w.shape[0] != x.shape[ax]:
            raise ValueError(f"average: weights of length {w.shape[0]} do not match axis "
                             f"{axis} of a (length {x.shape[ax]})")
        w = mp.reshape(w, (1,) * ax + w.shape + (1,) * (x.ndim - ax - 1))
    total = red.sum(mp.broadcast_to(w, x.shape), axis=axis, keepdims=keepdims)
    out = red.sum(x * w, axis=axis, keepdims=keepdims) / total
    return (out, astype(total, out.dtype)) if returned else out


def ptp(a, axis=None, keepdims: bool = False):
    """Peak to peak: ``max - min`` along ``axis``."""
    x = as_operand(a)
    return red.max(x, axis=axis, keepdims=keepdims) - red.min(x, axis=axis, keepdims=keepdims)


# --- differences ---------------------------------------------------------------------------

def diff(a, n: int = 1, axis: int = -1, prepend=None, append=None):
    """The ``n``-th discrete difference along ``axis`` (``not_equal`` for booleans), after
    joining ``prepend``/``append`` (scalars are broadcast to one slice)."""
    x = as_operand(a)
    if n < 0:
        raise ValueError(f"diff: order n must be non-negative, got {n}")
    if x.ndim == 0:
        raise ValueError("diff: requires an array with at least one dimension")
    ax = red.normalize_axes(axis, x.ndim, "diff")[0]
    parts = [x]
    for extra, at_end in ((prepend, False), (append, True)):
        if extra is None:
            continue
        e = as_operand(extra)
        if e.ndim == 0:
            e = mp.broadcast_to(e, x.shape[:ax] + (1,) + x.shape[ax + 1:])
        parts = [*parts, e] if at_end else [e, *parts]
    if len(parts) > 1:
        x = mp.concatenate(parts, axis=ax)
    head = (slice(None),) * ax
    for _ in range(n):
        lo, hi = x[(*head, slice(None, -1))], x[(*head, slice(1, None))]
        x = ew.not_equal(hi, lo) if x.dtype.kind == "b" else hi - lo
    return x


def ediff1d(ary, to_end=None, to_begin=None):
    """Differences of the flattened array, with optional values at either end."""
    d = diff(mp.ravel(as_operand(ary)))
    parts = [mp.ravel(as_operand(to_begin)) if to_begin is not None else None, d,
             mp.ravel(as_operand(to_end)) if to_end is not None else None]
    parts = [astype(p, d.dtype) for p in parts if p is not None]
    return mp.concatenate(parts) if len(parts) > 1 else d


# --- covariance and correlation ---------------------------------------------------------------

def cov(m, y=None, rowvar: bool = True, bias: bool = False, ddof=None, fweights=None,
        aweights=None):
    """The covariance matrix of the variables in the rows (``rowvar``) or columns of ``m``
    (and ``y``), with NumPy's frequency and analytic weights."""
    x = mp.atleast_2d(to_inexact(m))
    if m is not None and as_operand(m).ndim > 2:
        raise ValueError(f"cov: m has more than 2 dimensions (shape {as_operand(m).shape})")
    if not rowvar and x.shape[0] != 1:
        x = x.T
    if y is not None:
        yy = mp.atleast_2d(to_inexact(y))
        if not rowvar and yy.shape[0] != 1:
            yy = yy.T
        x = mp.concatenate([x, astype(yy, x.dtype)], axis=0)
    ddof = (0 if bias else 1) if ddof is None else ddof
    n = x.shape[1]
    w = None
    if fweights is not None:
        w = astype(as_operand(fweights), x.dtype)
    if aweights is not None:
        aw = astype(as_operand(aweights), x.dtype)
        w = aw if w is None else w * aw
    if w is None:
        avg = red.mean(x, axis=1, keepdims=True)
        fact = float(max(n - ddof, 0))
    else:
        if w.shape != (n,):
            raise ValueError(f"cov: weights must have shape ({n},), got {w.shape}")
        v1 = red.sum(w)
        avg = red.sum(x * w, axis=1, keepdims=True) / v1
        if ddof == 0:
            fact = v1
        elif aweights is None:
            fact = v1 - ddof
        else:
            fact = v1 - ddof * red.sum(w * aw) / v1
        fact = ew.maximum(fact, 0)
    xc = x - avg
    xw = xc if w is None else xc * w
    c = matmul(xw, mp.matrix_transpose(ew.conj(xc) if xc.dtype.kind == "c" else xc)) / fact
    return mp.squeeze(c) if c.shape == (1, 1) else c


def corrcoef(x, y=None, rowvar: bool = True):
    """Pearson correlation coefficients (``cov`` normalised by the standard deviations;
    the real parts clipped into [-1, 1] as NumPy does)."""
    c = cov(x, y, rowvar)
    if c.ndim == 0:
        return c / c
    d = ew.real(diagonal(c)) if c.dtype.kind == "c" else diagonal(c)
    sd = ew.sqrt(d)
    c = c / mp.expand_dims(sd, 1) / mp.expand_dims(sd, 0)
    if c.dtype.kind == "c":
        return ew.clip(ew.real(c), -1, 1) + 1j * ew.clip(ew.imag(c), -1, 1)
    return ew.clip(c, -1, 1)
