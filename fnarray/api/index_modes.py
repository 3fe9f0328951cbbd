"""Out-of-bounds handling for ``x.at[idx]`` (JAX's ``mode=`` and ``fill_value=``).

Without ``mode`` an out-of-bounds concrete index raises ``IndexError`` (NumPy's rule).
With a mode, negative indices first count from the end (as in NumPy), then:

* ``"clip"`` / ``"promise_in_bounds"``: indices are clamped into ``[0, n - 1]`` (the promise
  is not checked, so an out-of-bounds index reads/writes the nearest edge element);
* ``"fill"`` / ``"drop"``: ``get`` returns ``fill_value`` at out-of-bounds positions (NaN for
  inexact dtypes, the minimum of signed and the maximum of unsigned integers, ``True`` for
  booleans — JAX's defaults); updates at out-of-bounds positions are dropped.

Fill and drop pad each integer-indexed axis by one slot and send out-of-bounds indices to
it, so any NumPy index (slices, ``None``, ``...``, masks mixed with integer arrays) keeps its
usual result layout, and derivatives come from ``pad``, slicing and the indexing rules.
"""

from __future__ import annotations

import numpy as np

from fnarray.api._convert import as_operand
from fnarray.core.array import ArrayBase
from fnarray.core.shapes import is_inexact

MODES = ("promise_in_bounds", "clip", "drop", "fill")


def check_mode(mode, op: str) -> None:
    if mode is not None and mode not in MODES:
        raise ValueError(f"x.at[...].{op}: unknown mode {mode!r}; use one of {MODES} "
                         f"(or None: out-of-bounds indices raise IndexError)")


def _classify(k):
    """``('int', k)``, ``('array', a)`` for integer indices, or ``('other', k)``."""
    if isinstance(k, (bool, np.bool_)) or k is None or k is Ellipsis or isinstance(k, slice):
        return "other", k
    if isinstance(k, (int, np.integer)):
        return "int", int(k)
    a = k if isinstance(k, ArrayBase) else as_operand(k)
    return ("array", a) if a.dtype.kind in "iu" else ("mask", a)


def _entries(ndim: int, key) -> list:
    """``[(kind, entry, axis)]`` for each key entry; ``axis`` is the axis of ``x`` an
    integer entry indexes (None for the others)."""
    parts = [_classify(k) for k in (key if isinstance(key, tuple) else (key,))]
    consumed = sum(k.ndim if kind == "mask" else 1 for kind, k in parts
                   if k is not None and k is not Ellipsis)
    out, ax = [], 0
    for kind, k in parts:
        out.append((kind, k, ax if kind in ("int", "array") else None))
        if k is Ellipsis:
            ax += ndim - consumed
        elif kind == "mask":
            ax += k.ndim
        elif k is not None:
            ax += 1
    return out


def _remap(kind, k, n: int, clip: bool):
    """Index ``k`` into an axis of size ``n``: clamped (``clip``) or with out-of-bounds
    entries sent to the padding slot ``n``."""
    from fnarray.api.elementwise import clip as clip_, logical_and, where
    if kind == "int":
        i = k + n if k < 0 else k
        if clip:
            return min(max(i, 0), n - 1)
        return i if 0 <= i < n else n
    i = where(k < 0, k + n, k)
    if clip:
        return clip_(i, 0, n - 1)
    return where(logical_and(i >= 0, i < n), i, n)


def default_fill(dtype):
    """JAX's default ``fill_value`` for out-of-bounds reads of ``dtype``."""
    if is_inexact(dtype):
        return float("nan")
    if dtype.kind == "b":
        return True
    info = np.iinfo(dtype)
    return int(info.min) if dtype.kind == "i" else int(info.max)


def _prepare(x, key, mode):
    """``(x', key', padded_axes)`` implementing ``mode`` with an in-bounds index."""
    clip = mode in ("clip", "promise_in_bounds")
    entries = _entries(x.ndim, key)
    padded = sorted({ax for kind, _, ax in entries if ax is not None}) if not clip else []
    new_key = tuple(_remap(kind, k, x.shape[ax], clip) if ax is not None else k
                    for kind, k, ax in entries)
    return new_key, padded


def _pad(x, axes, value):
    from fnarray.api.manipulation import pad
    return pad(x, [(0, 1) if a in axes else (0, 0) for a in range(x.ndim)],
               constant_values=value)


def get(x, key, mode, fill_value):
    """``x.at[key].get(mode=..., fill_value=...)``."""
    from fnarray.api.indexing import getitem
    x = as_operand(x)
    key, padded = _prepare(x, key, mode)
    if padded:
        fill = default_fill(x.dtype) if fill_value is None else fill_value
        x = _pad(x, padded, fill)
    return getitem(x, key)


def update(ref, mode, run):
    """``run`` (a strict update of an ``_IndexRef``) applied with ``mode``."""
    from fnarray.api.indexing import getitem
    x = as_operand(ref.x)
    key, padded = _prepare(x, ref.key, mode)
    if not padded:
        return run(type(ref)(x, key))
    out = run(type(ref)(_pad(x, padded, 0), key))
    return getitem(out, tuple(slice(0, n) for n in x.shape))
