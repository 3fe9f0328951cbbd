"""Searching, sorting and set functions.

Functions whose output shape depends on the values (``nonzero``, ``unique_*``) need
concrete input; under ``jit`` or on batched values they raise with the fix.
"""

from __future__ import annotations

import numpy as np

from fnarray.api._convert import as_operand, device_of, from_python
from fnarray.api.reductions import normalize_axes
from fnarray.core.trace import ConcretizationError
from fnarray.ops import sorting


def _host(x, op: str) -> np.ndarray:
    try:
        return np.asarray(x)
    except ConcretizationError as e:
        raise ConcretizationError(
            f"{op}: the output shape depends on the values, so it needs a concrete array, "
            f"but got a traced one ({e}). Pass size= (a fixed number of results, padded "
            f"with fill_value=) to use it under jit/vmap, use fa.where(cond, x, y) with a "
            f"fixed shape, or compute {op} outside the transformation") from None


def _back(a: np.ndarray, like):
    return from_python(a, device=device_of(like))


def argsort(x, axis: int = -1, descending: bool = False, stable: bool = True):
    """Indices that sort ``x`` along ``axis`` (stable: ties keep their order)."""
    x = as_operand(x)
    if x.ndim == 0:
        return from_python(np.int64(0))
    ax = normalize_axes(axis, x.ndim, "argsort")[0]
    return sorting.argsort.bind(x, axis=ax, descending=bool(descending))


def sort(x, axis: int = -1, descending: bool = False, stable: bool = True):
    """Sorted copy; the derivative follows each element to its sorted position."""
    from fnarray.api.indexing import take_along_axis
    x = as_operand(x)
    if x.ndim == 0:
        return x
    return take_along_axis(x, argsort(x, axis, descending), axis)


def searchsorted(x1, x2, side: str = "left", sorter=None):
    """Insertion points of ``x2`` into the sorted 1-D ``x1`` (vectorised comparisons)."""
    from fnarray.api.elementwise import less, less_equal
    from fnarray.api.indexing import take
    from fnarray.api.manipulation import expand_dims
    from fnarray.api.reductions import sum as sum_
    x1, x2 = as_operand(x1), as_operand(x2)
    if sorter is not None:
        x1 = take(x1, sorter)
    cmp = less if side == "left" else less_equal
    return sum_(cmp(x1, expand_dims(x2, -1)), axis=-1)


def nonzero(x, *, size=None, fill_value=None):
    """Indices of the non-zero entries, one array per axis; with ``size`` exactly that
    many (padded with ``fill_value``), which works under ``jit``."""
    x = as_operand(x)
    if size is not None:
        from fnarray.api.set_ops import sized_nonzero
        return sized_nonzero(x, size, fill_value)
    host = _host(x, "nonzero")
    if host.ndim == 0:
        raise ValueError("nonzero: 0-d arrays are not supported; use atleast_1d first")
    return tuple(_back(i.astype(np.int64), x) for i in np.nonzero(host))


def argwhere(x, *, size=None, fill_value=None):
    """``(count, ndim)`` indices of the non-zero entries (``size`` rows with ``size``)."""
    x = as_operand(x)
    if size is not None:
        from fnarray.api.manipulation import atleast_1d, stack
        from fnarray.api.set_ops import sized_nonzero
        return stack(sized_nonzero(atleast_1d(x), size, fill_value, "argwhere"), axis=-1)
    return _back(np.argwhere(_host(x, "argwhere")).astype(np.int64), x)


def flatnonzero(x, *, size=None, fill_value=None):
    """Indices of the non-zero entries of the flattened ``x``."""
    x = as_operand(x)
    if size is not None:
        from fnarray.api.manipulation import ravel
        from fnarray.api.set_ops import sized_nonzero
        return sized_nonzero(ravel(x), size, fill_value, "flatnonzero")[0]
    return _back(np.flatnonzero(_host(x, "flatnonzero")).astype(np.int64), x)


def _sized(x, size, fill_value):
    from fnarray.api.set_ops import sized_unique
    return sized_unique(x, size, fill_value)


def unique_values(x, *, size=None, fill_value=None):
    x = as_operand(x)
    if size is not None:
        return _sized(x, size, fill_value)[0]
    return _back(np.unique(_host(x, "unique_values")), x)


def unique_counts(x, *, size=None, fill_value=None):
    x = as_operand(x)
    if size is not None:
        v, _, _, c = _sized(x, size, fill_value)
        return UniqueCountsResult(v, c)
    v, c = np.unique(_host(x, "unique_counts"), return_counts=True)
    return UniqueCountsResult(_back(v, x), _back(c.astype(np.int64), x))


def unique_inverse(x, *, size=None, fill_value=None):
    x = as_operand(x)
    if size is not None:
        v, _, inv, _ = _sized(x, size, fill_value)
        return UniqueInverseResult(v, inv)
    host = _host(x, "unique_inverse")
    v, inv = np.unique(host, return_inverse=True)
    return UniqueInverseResult(_back(v, x), _back(inv.reshape(host.shape).astype(np.int64), x))


def unique_all(x, *, size=None, fill_value=None):
    x = as_operand(x)
    if size is not None:
        return UniqueAllResult(*_sized(x, size, fill_value))
    host = _host(x, "unique_all")
    v, ind, inv, c = np.unique(host, return_index=True, return_inverse=True, return_counts=True)
    return UniqueAllResult(_back(v, x), _back(ind.astype(np.int64), x),
                           _back(inv.reshape(host.shape).astype(np.int64), x),
                           _back(c.astype(np.int64), x))


from typing import NamedTuple  # noqa: E402


class UniqueCountsResult(NamedTuple):
    values: object
    counts: object


class UniqueInverseResult(NamedTuple):
    values: object
    inverse_indices: object


class UniqueAllResult(NamedTuple):
    values: object
    indices: object
    inverse_indices: object
    counts: object
