"""Counting into bins and piecewise-linear interpolation: ``bincount``, ``histogram``,
``digitize`` and ``interp`` (NumPy's semantics).

Counting is a scatter-add of weights into a fixed number of bins, so it runs under ``jit``
once the number of bins is static: ``bincount`` needs ``length=`` there (without it the
length comes from the data's maximum, which must be concrete), ``histogram`` needs
``range=`` or concrete data for its edges.  ``histogram`` is differentiable with respect to
its ``weights``; ``interp`` with respect to ``x``, ``xp`` and ``fp``.
"""

from __future__ import annotations

import numpy as np

from fnarray.api import elementwise as ew, manipulation as mp, reductions as red
from fnarray.api._convert import as_operand, astype, device_of, to_inexact
from fnarray.api.creation import arange, asarray, ones, zeros
from fnarray.api.indexing import take
from fnarray.api.searching import argsort, searchsorted
from fnarray.core.trace import ConcretizationError
from fnarray.core.shapes import is_inexact

__all__ = ["bincount", "histogram", "histogram_bin_edges", "digitize", "interp"]


def _concrete(x, op: str, fix: str):
    try:
        return np.asarray(x)
    except ConcretizationError:
        raise ConcretizationError(
            f"{op}: the output shape depends on the values of a traced array; {fix}") from None


def bincount(x, weights=None, minlength: int = 0, *, length: int | None = None):
    """Counts (or summed ``weights``) of each value ``0, 1, ...`` in the non-negative
    integer array ``x``.  ``length`` fixes the number of bins (values ``>= length`` are
    dropped), which makes it usable under ``jit``; there, negative values (refused with a
    ``ValueError`` when ``x`` is concrete) are dropped too."""
    x = as_operand(x)
    if x.ndim != 1 or x.dtype.kind not in "iub":
        raise TypeError(f"bincount: x must be a 1-D array of non-negative integers, got "
                        f"{x.dtype} of shape {x.shape}")
    try:
        host = np.asarray(x)
    except ConcretizationError:
        host = None
    if host is not None and host.size and host.min() < 0:
        raise ValueError(f"bincount: x must be non-negative, found {host.min()}")
    if length is None:
        if host is None:
            _concrete(x, "bincount", "pass length= (the number of bins) to use it under jit "
                                     "or vmap")
        length = max(int(host.max()) + 1 if host.size else 0, int(minlength))
    if weights is None:
        w = ones(x.shape, dtype=np.int64, device=device_of(x))
    else:
        w = as_operand(weights)
        if w.shape != x.shape:
            raise ValueError(f"bincount: weights (shape {w.shape}) must have the shape of x "
                             f"({x.shape})")
        w = w if is_inexact(w.dtype) else astype(w, np.float64)
    out = zeros((int(length),), dtype=w.dtype, device=device_of(x))
    idx = astype(x, np.int64)
    return out.at[ew.where(idx < 0, int(length), idx)].add(w, mode="drop")


def histogram_bin_edges(a, bins=10, range=None, weights=None):  # noqa: A002 - NumPy name
    """The bin edges ``histogram`` uses: ``bins + 1`` evenly spaced edges over ``range``
    (default: the data's min and max), or the given monotonic edges."""
    a = to_inexact(a)
    if not isinstance(bins, (int, np.integer)):
        edges = to_inexact(bins)
        if edges.ndim != 1 or edges.shape[0] < 2:
            raise ValueError(f"histogram: bins must be an int or a 1-D array of at least 2 "
                             f"edges, got shape {edges.shape}")
        return astype(edges, np.promote_types(edges.dtype, a.dtype))
    if bins < 1:
        raise ValueError(f"histogram: bins must be positive, got {bins}")
    if range is None:
        host = _concrete(a, "histogram", "pass range=(lo, hi) to use it under jit or vmap")
        lo, hi = (float(host.min()), float(host.max())) if host.size else (0.0, 1.0)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"histogram: the autodetected range [{lo}, {hi}] is not finite; "
                             f"remove NaN/inf values or pass range=")
    else:
        lo, hi = range
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        if lo > hi:
            raise ValueError(f"histogram: range max must exceed min, got {range}")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        return asarray(np.linspace(lo, hi, int(bins) + 1), dtype=a.dtype, device=device_of(a))
    lo, hi = to_inexact(lo), to_inexact(hi)
    step = arange(int(bins) + 1, dtype=a.dtype, device=device_of(a)) / int(bins)
    return lo + (hi - lo) * step


def histogram(a, bins=10, range=None, weights=None, density: bool = False):  # noqa: A002
    """``(hist, bin_edges)``: counts (or summed ``weights``) of the flattened ``a`` in each
    bin; every bin is half-open except the last, which includes its right edge; values
    outside the edges are ignored.  ``density`` divides by the total and the bin widths."""
    a = mp.ravel(to_inexact(a))
    edges = histogram_bin_edges(a, bins, range)
    nb = edges.shape[0] - 1
    idx = searchsorted(edges, a, side="right") - 1
    idx = ew.where(a == edges[-1], nb - 1, idx)
    inside = ew.logical_and(a >= edges[0], a <= edges[-1])
    idx = ew.where(inside, idx, nb)  # out of range: dropped below
    if weights is None:
        w = astype(inside, np.int64 if not density else a.dtype)
    else:
        w = mp.ravel(as_operand(weights))
        if w.shape != a.shape:
            raise ValueError(f"histogram: weights (shape {as_operand(weights).shape}) must "
                             f"have the shape of a")
    hist = zeros((nb,), dtype=w.dtype, device=device_of(a)).at[idx].add(w, mode="drop")
    if density:
        widths = edges[1:] - edges[:-1]
        hist = hist / red.sum(hist) / widths
    return hist, edges


def digitize(x, bins, right: bool = False):
    """Index of the bin of each ``x`` (NumPy's ``digitize``, increasing or decreasing
    ``bins``)."""
    x, bins = as_operand(x), as_operand(bins)
    host = None
    try:
        host = np.asarray(bins)
    except ConcretizationError:
        pass
    if host is not None and host.size > 1 and host[0] > host[-1]:
        rev = mp.flip(bins, axis=0)
        return bins.shape[0] - searchsorted(rev, x, side="left" if right else "right")
    return searchsorted(bins, x, side="left" if right else "right")


def interp(x, xp, fp, left=None, right=None, period=None):
    """Piecewise-linear interpolation of the points ``(xp, fp)`` (``xp`` increasing) at
    ``x``; ``left``/``right`` (default ``fp[0]``/``fp[-1]``) outside the range, or
    periodic interpolation with ``period``."""
    x, xp, fp = to_inexact(x), to_inexact(xp), as_operand(fp)
    fp = fp if is_inexact(fp.dtype) else to_inexact(fp)
    if xp.ndim != 1 or fp.shape != xp.shape or xp.shape[0] == 0:
        raise ValueError(f"interp: xp and fp must be 1-D of the same non-zero length, got "
                         f"shapes {xp.shape} and {fp.shape}")
    if period is not None:
        if period == 0:
            raise ValueError("interp: period must be non-zero")
        period = abs(period)
        x = ew.remainder(x, period)
        xp = ew.remainder(xp, period)
        order = argsort(xp)
        xp, fp = take(xp, order), take(fp, order)
        xp = mp.concatenate([xp[-1:] - period, xp, xp[:1] + period])
        fp = mp.concatenate([fp[-1:], fp, fp[:1]])
        left = right = None
    n = xp.shape[0]
    if n == 1:
        out = mp.broadcast_to(fp[0], x.shape)
    else:
        i = ew.clip(searchsorted(xp, x, side="right"), 1, n - 1)
        x0, x1 = take(xp, i - 1), take(xp, i)
        f0, f1 = take(fp, i - 1), take(fp, i)
        dx = x1 - x0
        safe = ew.where(dx == 0, 1, dx)
        out = f0 + (x - x0) * ((f1 - f0) / safe)
        out = ew.where(x == x1, f1, out)
    if period is None:
        out = ew.where(x < xp[0], fp[0] if left is None else left, out)
        out = ew.where(x > xp[-1], fp[-1] if right is None else right, out)
    return out
