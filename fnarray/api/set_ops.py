"""Set membership and value-dependent-shape functions with a static ``size=``.

``nonzero``, ``argwhere``, ``flatnonzero``, ``where(cond)``, ``unique`` and the 1-D set
operations (``union1d``, ``intersect1d``, ``setdiff1d``, ``setxor1d``) return as many
entries as the data holds, so they need concrete input.  With ``size=`` (JAX's argument)
the result has exactly ``size`` entries — truncated, or padded with ``fill_value`` — and
is computed with fixed-shape primitives (a cumulative count and a scatter), so it works
under ``jit`` and ``vmap``.
"""

from __future__ import annotations

import numpy as np

from fnarray.api import elementwise as ew, manipulation as mp, reductions as red
from fnarray.api._convert import as_operand, astype, device_of
from fnarray.api.creation import arange, full, zeros
from fnarray.api.indexing import take
from fnarray.api.searching import argsort
from fnarray.core.shapes import is_inexact

__all__ = ["isin", "unique", "union1d", "intersect1d", "setdiff1d", "setxor1d"]


def isin(element, test_elements, assume_unique: bool = False, invert: bool = False):
    """For each entry of ``element``: is it in ``test_elements``?  (``invert`` negates.)"""
    e = as_operand(element)
    t = mp.ravel(as_operand(test_elements))
    hit = red.any(ew.equal(mp.expand_dims(e, -1), t), axis=-1)
    return ew.logical_not(hit) if invert else hit


def _fills(fill_value, ndim: int, op: str) -> tuple:
    if fill_value is None:
        return (0,) * ndim
    if isinstance(fill_value, (tuple, list)):
        if len(fill_value) != ndim:
            raise ValueError(f"{op}: fill_value has {len(fill_value)} entries but the input "
                             f"has {ndim} dimensions; pass a scalar or one per dimension")
        return tuple(fill_value)
    return (fill_value,) * ndim


def sized_nonzero(x, size: int, fill_value=None, op: str = "nonzero") -> tuple:
    """The first ``size`` indices (one array per axis) of the non-zero entries of ``x`` in
    row-major order, padded with ``fill_value`` (0 by default)."""
    x = as_operand(x)
    if x.ndim == 0:
        raise ValueError(f"{op}: 0-d arrays are not supported; use atleast_1d first")
    size = int(size)
    if size < 0:
        raise ValueError(f"{op}: size must be non-negative, got {size}")
    dev = device_of(x)
    mask = mp.ravel(ew.not_equal(x, 0))
    n = mask.shape[0]
    rank = red.cumsum(astype(mask, np.int64)) - 1
    target = ew.where(mask, rank, size)  # unselected entries go out of bounds: dropped
    flat = zeros((size,), dtype=np.int64, device=dev).at[target].set(
        arange(n, dtype=np.int64, device=dev), mode="drop")
    valid = arange(size, dtype=np.int64, device=dev) < red.sum(mask)
    out, stride = [], 1
    for dim, fill in zip(reversed(x.shape), reversed(_fills(fill_value, x.ndim, op))):
        out.append(ew.where(valid, (flat // stride) % dim if dim else flat, fill))
        stride *= dim
    return tuple(reversed(out))


def unique(x, return_index: bool = False, return_inverse: bool = False,
           return_counts: bool = False, axis=None, *, equal_nan: bool = True, size=None,
           fill_value=None):
    """The sorted distinct values of ``x`` (NumPy's ``unique``; NaNs count as one value
    when ``equal_nan``), optionally with the index of each value's first occurrence, the
    inverse map and the counts.

    With ``size`` (no ``axis``) the values are padded to ``size`` with ``fill_value`` (the
    smallest value by default); padded slots have index 0 and count 0; the inverse map
    has ``x``'s shape.  This form works under ``jit``."""
    flags = (return_index, return_inverse, return_counts)
    if size is None:
        from fnarray.api.searching import _back, _host
        host = _host(as_operand(x), "unique")
        res = np.unique(host, *flags, axis=axis, equal_nan=equal_nan)
        if not any(flags):
            return _back(res, x)
        return tuple(_back(r if i == 0 else r.astype(np.int64), x) for i, r in enumerate(res))
    if axis is not None:
        raise ValueError("unique: size= is supported only with axis=None (flattened input)")
    values, index, inverse, counts = sized_unique(x, size, fill_value, equal_nan)
    picked = [values] + [r for r, f in zip((index, inverse, counts), flags) if f]
    return picked[0] if len(picked) == 1 else tuple(picked)


def sized_unique(x, size: int, fill_value=None, equal_nan: bool = True) -> tuple:
    """``(values, index, inverse, counts)`` of ``unique`` with ``size`` slots."""
    x = as_operand(x)
    flat = mp.ravel(x)
    n, dev = flat.shape[0], device_of(x)
    if n == 0:
        raise ValueError("unique: size= needs a non-empty input (there is no default "
                         "fill value)")
    perm = argsort(flat)
    s = take(flat, perm)
    new = ew.not_equal(s[1:], s[:-1])
    if equal_nan and is_inexact(s.dtype):
        new = ew.logical_and(new, ew.logical_not(
            ew.logical_and(ew.isnan(s[1:]), ew.isnan(s[:-1]))))
    first = mp.concatenate([full((1,), True, device=dev), new])
    (starts,) = sized_nonzero(first, size, fill_value=n, op="unique")
    valid = starts < n
    at = ew.minimum(starts, n - 1)
    fill = s[0] if fill_value is None else fill_value
    values = ew.where(valid, take(s, at), astype(as_operand(fill), s.dtype))
    index = ew.where(valid, take(perm, at), 0)
    group = red.cumsum(astype(first, np.int64)) - 1
    inverse = mp.reshape(zeros((n,), dtype=np.int64, device=dev).at[perm].set(group), x.shape)
    counts = zeros((size,), dtype=np.int64, device=dev).at[group].add(1, mode="drop")
    return values, index, inverse, counts


# --- 1-D set operations ------------------------------------------------------------------------

def _compact(values, keep, size: int, fill):
    """``(out, present)``: the ``values`` where ``keep`` holds, moved to the front of
    ``size`` slots and padded with ``fill``; ``present`` marks the filled slots."""
    (idx,) = sized_nonzero(keep, size, op="set operation")
    present = arange(size, dtype=np.int64, device=device_of(values)) < red.sum(keep)
    return ew.where(present, take(values, idx), astype(as_operand(fill), values.dtype)), present


def _set_operands(ar1, ar2, op: str):
    a, b = mp.ravel(as_operand(ar1)), mp.ravel(as_operand(ar2))
    if a.shape[0] == 0 and b.shape[0] == 0:
        raise ValueError(f"{op}: size= needs a non-empty input (there is no default fill value)")
    return a, b


def _sized_set(op: str, ar1, ar2, size, fill_value, select):
    """``select(u, in1, in2)`` picks from the sorted distinct values ``u`` of both inputs
    (``in1``/``in2``: membership masks) the ones the operation keeps; ``_compact``'s pair."""
    a, b = _set_operands(ar1, ar2, op)
    both = mp.concatenate([a, astype(b, a.dtype)]) if a.shape[0] else b
    u, _, _, counts = sized_unique(both, both.shape[0])
    valid = counts > 0
    keep = ew.logical_and(valid, select(u, isin(u, a), isin(u, b)))
    fill = u[0] if fill_value is None else fill_value
    return _compact(u, keep, int(size), fill)


def _concrete_set(op: str, fn, *arrays, **kw):
    from fnarray.api.searching import _back, _host
    hosts = [_host(as_operand(x), op) for x in arrays]
    res = fn(*hosts, **kw)
    if isinstance(res, tuple):
        return tuple(_back(r if i == 0 else r.astype(np.int64), arrays[0])
                     for i, r in enumerate(res))
    return _back(res, arrays[0])


def union1d(ar1, ar2, *, size=None, fill_value=None):
    """The sorted distinct values found in either input (flattened)."""
    if size is None:
        return _concrete_set("union1d", np.union1d, ar1, ar2)
    return _sized_set("union1d", ar1, ar2, size, fill_value, lambda u, i1, i2: i1 | i2)[0]


def setdiff1d(ar1, ar2, assume_unique: bool = False, *, size=None, fill_value=None):
    """The sorted distinct values of ``ar1`` that are not in ``ar2``."""
    if size is None:
        return _concrete_set("setdiff1d", np.setdiff1d, ar1, ar2, assume_unique=assume_unique)
    return _sized_set("setdiff1d", ar1, ar2, size, fill_value,
                      lambda u, i1, i2: i1 & ew.logical_not(i2))[0]


def setxor1d(ar1, ar2, assume_unique: bool = False, *, size=None, fill_value=None):
    """The sorted distinct values found in exactly one of the inputs."""
    if size is None:
        return _concrete_set("setxor1d", np.setxor1d, ar1, ar2, assume_unique=assume_unique)
    return _sized_set("setxor1d", ar1, ar2, size, fill_value, lambda u, i1, i2: i1 ^ i2)[0]


def intersect1d(ar1, ar2, assume_unique: bool = False, return_indices: bool = False, *,
                size=None, fill_value=None):
    """The sorted distinct values found in both inputs; with ``return_indices`` also the
    index of each value's first occurrence in each (flattened) input (0 in padded slots)."""
    if size is None:
        return _concrete_set("intersect1d", np.intersect1d, ar1, ar2,
                             assume_unique=assume_unique, return_indices=return_indices)
    a, b = _set_operands(ar1, ar2, "intersect1d")
    values, present = _sized_set("intersect1d", a, b, size, fill_value,
                                 lambda u, i1, i2: i1 & i2)
    if not return_indices:
        return values
    first = [ew.where(present, red.argmax(ew.equal(mp.expand_dims(values, -1), x), axis=-1), 0)
             for x in (a, b)]
    return values, first[0], first[1]
