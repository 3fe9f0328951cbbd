"""Selection, set, counting and reshaping functions under PyTorch names: ``nonzero``,
``unique``, ``isin``, ``bincount``, ``histc``, ``count_nonzero``, ``nan_to_num``, ``diff``,
``einsum``, ``split``, ``meshgrid``, ``movedim``.

Functions whose output shape depends on the values (``nonzero``, ``unique``, ``bincount``)
read the concrete value on the host, as PyTorch does (a device sync there); the others are
compositions of recorded fnarray operations, so gradients flow where PyTorch's do.
"""

from __future__ import annotations

import numpy as np

from fnarray import api as fa
from fnarray.compat.ops import FUNCTIONS, METHODS
from fnarray.compat.tape import op_scope
from fnarray.compat.tensor import Tensor
from fnarray.core import bfloat16
from fnarray.core.shapes import is_float


def _t(value) -> Tensor:
    """A tensor (no graph) holding ``value`` (a NumPy array or core array)."""
    return Tensor._make(fa.asarray(value), None, 0)


def _host(x) -> np.ndarray:
    return np.asarray(x.detach().concrete("a value-dependent shape") if isinstance(x, Tensor)
                      else x)


def nonzero(input, *, as_tuple: bool = False):
    """Indices of the non-zero elements: an ``(n, ndim)`` int64 tensor, or with
    ``as_tuple=True`` one 1-D index tensor per dimension."""
    host = _host(input)
    if as_tuple:
        return tuple(_t(i.astype(np.int64)) for i in np.nonzero(np.atleast_1d(host)))
    return _t(np.argwhere(host).astype(np.int64))


def argwhere(input):
    return nonzero(input)


def unique(input, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim=None):
    """Distinct values (always sorted, which PyTorch also does for ``sorted=False`` on
    CPU); ``dim`` makes it distinct slices along that dimension."""
    host = _host(input)
    axis = None if dim is None else dim % host.ndim
    values, inverse, counts = np.unique(host, return_inverse=True, return_counts=True,
                                        axis=axis)
    inverse = inverse.reshape(host.shape if axis is None else (host.shape[axis],))
    out = [_t(values)]
    if return_inverse:
        out.append(_t(inverse.astype(np.int64)))
    if return_counts:
        out.append(_t(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(input, return_inverse: bool = False, return_counts: bool = False,
                       dim=None):
    """Collapse runs of equal consecutive elements (of the flattened tensor if no ``dim``)."""
    host = _host(input)
    axis = 0 if dim is None else dim % host.ndim
    flat = host.reshape(-1) if dim is None else np.moveaxis(host, axis, 0)
    n = flat.shape[0]
    if n:
        diff = (flat[1:] != flat[:-1]).reshape(n - 1, -1).any(axis=1)
        starts = np.r_[0, np.flatnonzero(diff) + 1]
    else:
        starts = np.zeros(0, np.int64)
    values = flat[starts] if dim is None else np.moveaxis(flat[starts], 0, axis)
    out = [_t(values)]
    if return_inverse:
        inv = np.cumsum(np.r_[0, diff]) if n else np.zeros(0, np.int64)
        out.append(_t(inv.reshape(host.shape if dim is None else (n,)).astype(np.int64)))
    if return_counts:
        out.append(_t(np.diff(np.r_[starts, n]).astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False):
    """Boolean tensor shaped like ``elements``: True where the element is in
    ``test_elements`` (either may be a scalar)."""
    e, t = _host(elements), _host(test_elements)
    return _t(np.isin(e, t, invert=invert))


def bincount(input, weights=None, minlength: int = 0):
    """Counts of each non-negative int in the 1-D ``input`` (or summed ``weights``: float32
    weights give float32, other weights float64, as in PyTorch)."""
    host = _host(input)
    if host.ndim != 1 or host.dtype.kind not in "iub":
        raise RuntimeError(f"bincount only supports 1-d non-negative integral inputs, got "
                           f"shape {list(host.shape)} and dtype {host.dtype}")
    if host.size and host.min() < 0:
        raise RuntimeError(f"bincount only supports 1-d non-negative integral inputs "
                           f"(input holds {int(host.min())})")
    if weights is None:
        return _t(np.bincount(host, minlength=minlength).astype(np.int64))
    w = _host(weights)
    dtype = np.float32 if w.dtype == np.float32 else np.float64
    return _t(np.bincount(host, weights=w.astype(np.float64),
                          minlength=minlength).astype(dtype))


def histc(input, bins: int = 100, min=0, max=0):  # noqa: A002
    """Histogram of ``bins`` equal-width bins over ``[min, max]`` (the data's range when
    both are 0); elements outside are ignored; the result has the input's dtype."""
    host = _host(input)
    if not is_float(host.dtype):
        raise RuntimeError(f"histc: expected a floating point tensor, got {host.dtype}")
    lo, hi = float(min), float(max)
    if lo == hi and host.size:
        lo, hi = float(host.min()), float(host.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError(f"histc: max must be larger than min (got min={lo}, max={hi})")
    counts, _ = np.histogram(host, bins=bins, range=(lo, hi))
    return _t(counts.astype(host.dtype))


def count_nonzero(input, dim=None):
    dims = tuple(dim) if isinstance(dim, (list, tuple)) else dim
    return fa.sum(fa.astype(fa.not_equal(input.detach(), 0), np.int64), axis=dims)


def nan_to_num(input, nan: float = 0.0, posinf=None, neginf=None):
    """NaN, +inf and -inf replaced (by 0 and the dtype's largest/lowest finite values by
    default); the gradient passes where the input was finite."""
    if not is_float(input.dtype):
        return input.clone()
    info = bfloat16.finfo(input.dtype)
    big = info.max if posinf is None else posinf
    low = info.min if neginf is None else neginf
    with op_scope("NanToNumBackward0"):
        out = fa.where(fa.isnan(input), fa.asarray(nan, dtype=input.dtype), input)
        out = fa.where(out == np.inf, fa.asarray(big, dtype=input.dtype), out)
        return fa.where(out == -np.inf, fa.asarray(low, dtype=input.dtype), out)


def diff(input, n: int = 1, dim: int = -1, prepend=None, append=None):
    """``n``-th forward difference along ``dim`` (``prepend``/``append`` joined first)."""
    parts = [p for p in (prepend, input, append) if p is not None]
    x = fa.concatenate(parts, axis=dim) if len(parts) > 1 else input
    for _ in range(n):
        m = x.shape[dim]
        with op_scope("SubBackward0"):
            x = (x.narrow(dim, 1, m - 1) - x.narrow(dim, 0, m - 1)) if x.dtype != np.bool_ \
                else fa.not_equal(x.narrow(dim, 1, m - 1), x.narrow(dim, 0, m - 1))
    return x


def einsum(equation: str, *operands):
    """``einsum('ij,jk->ik', a, b)`` or ``einsum('ij,jk', [a, b])``; differentiable."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return fa.einsum(equation, *operands)


def split(tensor, split_size_or_sections, dim: int = 0):
    return tensor.split(split_size_or_sections, dim)


def meshgrid(*tensors, indexing: str | None = None):
    """Coordinate grids; ``indexing='ij'`` (PyTorch's default) or ``'xy'``."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    indexing = "ij" if indexing is None else indexing
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    return tuple(fa.meshgrid(*tensors, indexing=indexing))


def movedim(input, source, destination):
    return fa.moveaxis(input, source, destination)


for _name, _f in (("nonzero", nonzero), ("argwhere", argwhere), ("unique", unique),
                  ("unique_consecutive", unique_consecutive), ("bincount", bincount),
                  ("histc", histc), ("count_nonzero", count_nonzero),
                  ("nan_to_num", nan_to_num), ("diff", diff), ("movedim", movedim),
                  ("moveaxis", movedim), ("isin", isin), ("einsum", einsum),
                  ("split", split), ("meshgrid", meshgrid)):
    FUNCTIONS[_name] = _f
    if _name not in ("isin", "einsum", "meshgrid", "split"):
        METHODS[_name] = _f
        setattr(Tensor, _name, _f)


def _nan_to_num_(self, nan: float = 0.0, posinf=None, neginf=None):
    return self._inplace(lambda s: nan_to_num(s, nan, posinf, neginf), "NanToNumBackward0")


Tensor.nan_to_num_ = _nan_to_num_
