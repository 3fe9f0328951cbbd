"""Cumulative reductions beyond ``cumsum``/``cumprod``: ``cummax``, ``cummin`` and
``cumlogsumexp`` (``jax.lax``'s signatures: ``axis=0``, ``reverse=False``), the NaN-ignoring
``nancumsum``/``nancumprod`` and the Array API's ``cumulative_prod``.

The running max/min/logsumexp is an inclusive prefix scan computed by doubling
(Hillis-Steele): ``log2(n)`` steps, each combining the array with itself shifted by
``2**k`` (the vacated front filled with the operation's identity).  Each step is slicing,
concatenation and one elementwise op, so the scan is differentiable (a running max passes
its cotangent to the element that attains it), batchable and jit-able with no new
primitive.
"""

from __future__ import annotations

import numpy as np

from fnarray.api import elementwise as ew, manipulation as mp, reductions as red
from fnarray.api._convert import as_operand, to_inexact
from fnarray.api.creation import full
from fnarray.core.shapes import is_float, is_inexact

__all__ = ["cummax", "cummin", "cumlogsumexp", "nancumsum", "nancumprod", "cumulative_prod"]


def _scan(x, axis: int, reverse: bool, combine, identity, op: str):
    if x.ndim == 0:
        return x
    ax = red.normalize_axes(axis, x.ndim, op)[0]
    if reverse:
        x = mp.flip(x, axis=ax)
    n, shift = x.shape[ax], 1
    head = (slice(None),) * ax
    while shift < n:
        pad_shape = x.shape[:ax] + (shift,) + x.shape[ax + 1:]
        shifted = mp.concatenate(
            [full(pad_shape, identity, dtype=x.dtype, device=x.device),
             x[(*head, slice(0, n - shift))]], axis=ax)
        x = combine(x, shifted)
        shift *= 2
    return mp.flip(x, axis=ax) if reverse else x


def _lowest(dtype):
    if is_float(dtype):
        return -np.inf
    return False if dtype.kind == "b" else np.iinfo(dtype).min


def _highest(dtype):
    if is_float(dtype):
        return np.inf
    return True if dtype.kind == "b" else np.iinfo(dtype).max


def cummax(x, axis: int = 0, reverse: bool = False):
    """Running maximum along ``axis`` (from the end when ``reverse``)."""
    x = as_operand(x)
    return _scan(x, axis, reverse, ew.maximum, _lowest(x.dtype), "cummax")


def cummin(x, axis: int = 0, reverse: bool = False):
    """Running minimum along ``axis`` (from the end when ``reverse``)."""
    x = as_operand(x)
    return _scan(x, axis, reverse, ew.minimum, _highest(x.dtype), "cummin")


def cumlogsumexp(x, axis: int = 0, reverse: bool = False):
    """Running ``log(sum(exp(x)))`` along ``axis``, without overflow."""
    x = to_inexact(x)
    return _scan(x, axis, reverse, ew.logaddexp, -np.inf, "cumlogsumexp")


def nancumsum(a, axis=None, dtype=None):
    """``cumsum`` treating NaN as 0."""
    a = as_operand(a)
    return red.cumsum(ew.where(ew.isnan(a), 0, a) if is_inexact(a.dtype) else a,
                      axis=axis, dtype=dtype)


def nancumprod(a, axis=None, dtype=None):
    """``cumprod`` treating NaN as 1."""
    a = as_operand(a)
    return red.cumprod(ew.where(ew.isnan(a), 1, a) if is_inexact(a.dtype) else a,
                       axis=axis, dtype=dtype)


def cumulative_prod(x, axis=None, dtype=None, include_initial: bool = False):
    """Array API ``cumulative_prod`` (optionally with a leading one)."""
    x = as_operand(x)
    if axis is None and x.ndim > 1:
        raise ValueError("cumulative_prod: axis is required for arrays with more than one "
                         "dimension")
    ax = 0 if axis is None else red.normalize_axes(axis, x.ndim, "cumulative_prod")[0]
    out = red.cumprod(x, axis=ax, dtype=dtype)
    if include_initial:
        ones = full(out.shape[:ax] + (1,) + out.shape[ax + 1:], 1, dtype=out.dtype,
                    device=out.device)
        out = mp.concatenate([ones, out], axis=ax)
    return out
