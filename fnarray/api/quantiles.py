"""Order statistics: ``quantile``, ``percentile``, ``median`` and their NaN-ignoring forms.

The reduced axes are moved to the end and flattened, the values sorted (NaN sorts last),
and each quantile read off the sorted values at position ``q * (n - 1)`` with NumPy's
``method``: ``linear`` (the default), ``lower``, ``higher``, ``nearest`` (ties to even, as
NumPy) or ``midpoint``.  The ``nan*`` forms use, per slice, the count ``n`` of non-NaN
values, so the positions differ from slice to slice.  Everything is a composition of
``sort``/``take_along_axis`` and arithmetic, so it runs under ``jit`` and ``vmap`` and is
differentiable (the derivative flows to the one or two order statistics each quantile
interpolates, as in JAX).  The output shape is ``q.shape`` followed by the reduced shape.
"""

from __future__ import annotations

import numpy as np

from fnarray.api import elementwise as ew, manipulation as mp
from fnarray.api._convert import astype, to_inexact
from fnarray.api.creation import asarray
from fnarray.api.indexing import take_along_axis
from fnarray.api.reductions import any as any_, normalize_axes, sum as sum_
from fnarray.api.searching import sort
from fnarray.core.trace import ConcretizationError

__all__ = ["quantile", "percentile", "median", "nanquantile", "nanpercentile", "nanmedian"]

METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def _check_q(q, op: str, scale: float):
    """``q / scale`` in float64 (positions are computed in float64, as NumPy does)."""
    q = asarray(q, dtype=np.float64)  # (astype would round a Python float to float32 first)
    try:
        host = np.asarray(q)
    except ConcretizationError:
        return q / scale if scale != 1 else q
    if host.size and not ((host >= 0) & (host <= scale)).all():
        raise ValueError(f"{op}: q must be in [0, {scale:g}], got {host.tolist()}")
    return q / scale if scale != 1 else q


def _to_last(a, axis, op: str):
    """``(a', kept_shape)``: the reduced axes of ``a`` flattened into the last axis, and the
    shape the result has with ``keepdims=True``."""
    axes = normalize_axes(axis, a.ndim, op)
    rest = [d for d in range(a.ndim) if d not in axes]
    kept = tuple(1 if d in axes else n for d, n in enumerate(a.shape))
    moved = mp.permute_dims(a, tuple(rest + list(axes)))
    n = int(np.prod([a.shape[d] for d in axes], dtype=np.int64))
    return mp.reshape(moved, tuple(a.shape[d] for d in rest) + (n,)), kept


def _read(s, pos, method: str):
    """Interpolated order statistics of the sorted ``s`` (..., n) at float positions ``pos``
    (..., m)."""
    n = s.shape[-1]
    lo = ew.clip(ew.floor(pos), 0, n - 1)
    hi = ew.clip(ew.ceil(pos), 0, n - 1)
    if method == "nearest":
        idx = ew.clip(ew.round(pos), 0, n - 1)
        return take_along_axis(s, astype(idx, np.int64), axis=-1)
    a = take_along_axis(s, astype(lo, np.int64), axis=-1)
    b = take_along_axis(s, astype(hi, np.int64), axis=-1)
    if method == "lower":
        return a
    if method == "higher":
        return b
    if method == "midpoint":
        return (a + b) * 0.5
    t = astype(pos - lo, s.dtype)
    return ew.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t)  # NumPy's lerp


def _quantile(a, q, axis, method, keepdims, op, scale, ignore_nan):
    if method not in METHODS:
        raise ValueError(f"{op}: unknown method {method!r}; use one of {METHODS}")
    a = to_inexact(a)
    q = _check_q(q, op, scale)
    if a.dtype.kind == "c":
        raise TypeError(f"{op}: complex input ({a.dtype}) has no order; pass real values")
    x, kept = _to_last(a, axis, op)
    if x.shape[-1] == 0:
        raise ValueError(f"{op}: cannot take a quantile of an empty slice (shape {a.shape}, "
                         f"axis {axis})")
    s = sort(x, axis=-1)
    nan = ew.isnan(x)
    if ignore_nan:
        count = sum_(ew.logical_not(nan), axis=-1, keepdims=True)
        last = astype(ew.maximum(count - 1, 0), np.float64)
    else:
        last = float(x.shape[-1] - 1)
    qf = mp.reshape(q, (1,) * (x.ndim - 1) + (q.size,))
    pos = mp.broadcast_to(qf * last, x.shape[:-1] + (q.size,))
    out = _read(s, pos, method)
    bad = (count == 0) if ignore_nan else any_(nan, axis=-1, keepdims=True)
    out = ew.where(bad, float("nan"), out)
    out = mp.moveaxis(out, -1, 0)
    return mp.reshape(out, q.shape + (kept if keepdims else x.shape[:-1]))


def quantile(a, q, axis=None, method: str = "linear", keepdims: bool = False, *,
             interpolation=None):
    """The ``q``-th quantiles (``q`` in [0, 1]) of ``a`` along ``axis`` (NumPy's semantics;
    a NaN in a slice gives NaN)."""
    return _quantile(a, q, axis, interpolation or method, keepdims, "quantile", 1.0, False)


def percentile(a, q, axis=None, method: str = "linear", keepdims: bool = False, *,
               interpolation=None):
    """The ``q``-th percentiles (``q`` in [0, 100]) of ``a`` along ``axis``."""
    return _quantile(a, q, axis, interpolation or method, keepdims, "percentile", 100.0, False)


def median(a, axis=None, keepdims: bool = False):
    """The median along ``axis`` (the mean of the two middle values for even counts)."""
    return _quantile(a, 0.5, axis, "linear", keepdims, "median", 1.0, False)


def nanquantile(a, q, axis=None, method: str = "linear", keepdims: bool = False, *,
                interpolation=None):
    """``quantile`` ignoring NaNs (NaN only for an all-NaN slice)."""
    return _quantile(a, q, axis, interpolation or method, keepdims, "nanquantile", 1.0, True)


def nanpercentile(a, q, axis=None, method: str = "linear", keepdims: bool = False, *,
                  interpolation=None):
    """``percentile`` ignoring NaNs."""
    return _quantile(a, q, axis, interpolation or method, keepdims, "nanpercentile", 100.0,
                     True)


def nanmedian(a, axis=None, keepdims: bool = False):
    """``median`` ignoring NaNs."""
    return _quantile(a, 0.5, axis, "linear", keepdims, "nanmedian", 1.0, True)
