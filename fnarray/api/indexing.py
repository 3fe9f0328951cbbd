"""NumPy indexing (``x[key]``) and functional updates (``x.at[key].set(v)``).

Any index — ints, slices (any step), ``None``, ``...``, integer arrays, boolean masks — is
rewritten into at most four primitives: ``slice`` (+ ``rev`` for negative steps) for the
basic part, a transpose, ``gather`` for the advanced part, and a reshape.  Placement of the
advanced axes follows NumPy: together at the first advanced position when the advanced
indices are adjacent, in front otherwise.
"""

from __future__ import annotations

import numpy as np

from fnarray.api import index_modes
from fnarray.api._convert import as_operand, astype, device_of
from fnarray.core.array import ArrayBase
from fnarray.core.shapes import bool_, broadcast_shapes, int64
from fnarray.core.trace import ConcretizationError, Tracer
from fnarray.ops import indexing as ix
from fnarray.ops import shape as sh


def _index_array(k):
    a = as_operand(k) if not isinstance(k, ArrayBase) else k
    if a.dtype == bool_:
        return a
    if a.dtype.kind not in "iu":
        raise IndexError(f"indexing: arrays used as indices must be integer or boolean, "
                         f"got {a.dtype}; convert with .astype(int)")
    return a


def _normalize(x, key):
    """``(x', items)``: ``x`` with ``None`` axes inserted, and one int/slice/int-array per axis."""
    if not isinstance(key, tuple):
        key = (key,)
    items = []
    for k in key:
        if k is None or k is Ellipsis or isinstance(k, slice):
            items.append(k)
        elif isinstance(k, (bool, np.bool_)):
            items.append(_ScalarMask(bool(k)))
        elif isinstance(k, (int, np.integer)):
            items.append(int(k))
        else:
            a = _index_array(k)
            if a.dtype == bool_ and a.ndim == 0:
                items.append(_ScalarMask(bool(a)))
            elif a.dtype == bool_:
                from fnarray.api.searching import nonzero
                items.extend(nonzero(a))
            else:
                items.append(a)
    n_ell = sum(k is Ellipsis for k in items)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(1 for k in items if k is not None and k is not Ellipsis
               and not isinstance(k, _ScalarMask))
    if used > x.ndim:
        raise IndexError(f"too many indices for array: array is {x.ndim}-dimensional, "
                         f"but {used} were indexed")
    fill = [slice(None)] * (x.ndim - used)
    if n_ell:
        i = items.index(Ellipsis)
        items = items[:i] + fill + items[i + 1:]
    else:
        items = items + fill
    if any(k is None or isinstance(k, _ScalarMask) for k in items):
        shape, it = [], iter(x.shape)
        for k in items:
            shape.append(1 if k is None or isinstance(k, _ScalarMask) else next(it))
        from fnarray.api.manipulation import reshape
        x = reshape(x, tuple(shape))
        items = [slice(None) if k is None else k.index(device_of(x))
                 if isinstance(k, _ScalarMask) else k for k in items]
    return x, items


class _ScalarMask:
    """A 0-d boolean index (NumPy / Array API): a new axis that is kept (``True``, length
    1) or emptied (``False``, length 0) — an advanced index of shape (1,) or (0,) into a
    new length-1 axis."""

    __slots__ = ("value",)

    def __init__(self, value: bool):
        self.value = value

    def index(self, device):
        from fnarray.api.creation import zeros
        return zeros((int(self.value),), dtype=int64, device=device)


def _basic(x, items):
    """Apply ints and slices; array entries must already be ``slice(None)``."""
    starts, limits, strides, rev_axes, drop = [], [], [], [], []
    trivial = True
    for ax, (k, n) in enumerate(zip(items, x.shape)):
        if isinstance(k, int):
            i = k + n if k < 0 else k
            if not 0 <= i < n:
                raise IndexError(f"index {k} is out of bounds for axis {ax} with size {n}")
            starts.append(i)
            limits.append(i + 1)
            strides.append(1)
            drop.append(ax)
            trivial = False
            continue
        start, stop, step = k.indices(n)
        m = len(range(start, stop, step))
        if step < 0:
            if m:
                first = start + (m - 1) * step
                starts.append(first)
                limits.append(start + 1)
                strides.append(-step)
                rev_axes.append(ax)
            else:
                starts.append(0)
                limits.append(0)
                strides.append(1)
        else:
            starts.append(start if m else 0)
            limits.append(start + (m - 1) * step + 1 if m else 0)
            strides.append(step)
        if (starts[-1], limits[-1], strides[-1]) != (0, n, 1):
            trivial = False
    if not trivial:
        x = sh.slice_.bind(x, starts=tuple(starts), limits=tuple(limits), strides=tuple(strides))
    if rev_axes:
        x = sh.rev.bind(x, axes=tuple(rev_axes))
    if drop:
        x = sh.reshape.bind(x, shape=tuple(d for i, d in enumerate(x.shape) if i not in drop))
    return x


def _wrap_negative(idx, n):
    """``idx`` with negative entries counted from the end (``+ n``); concrete indices are
    checked on the host (out of bounds is an error) and come back as they are when none is
    negative — also behind a tracer with a concrete value, such as a compat tensor."""
    from fnarray.api.elementwise import where
    concrete = idx
    if isinstance(idx, Tracer):
        try:
            concrete = idx.concrete()
        except ConcretizationError:
            concrete = None
    if isinstance(concrete, ArrayBase) and not isinstance(concrete, Tracer):
        host = np.asarray(concrete)
        if host.size and (host.min() < -n or host.max() >= n):
            bad = host[(host < -n) | (host >= n)].flat[0]
            raise IndexError(f"index {bad} is out of bounds for an axis with size {n}")
        if host.size == 0 or host.min() >= 0:
            return idx
    return where(idx < 0, idx + n, idx)


def _advanced(x, items):
    """``(x_t, idx, adv, rest)`` for ``gather``: advanced axes first, broadcast indices."""
    adv = [i for i, k in enumerate(items) if not isinstance(k, slice)]
    y = _basic(x, [k if isinstance(k, slice) else slice(None) for k in items])
    rest = [i for i in range(y.ndim) if i not in adv]
    from fnarray.api.manipulation import broadcast_to, permute_dims
    idx = [as_operand(items[i]) if not isinstance(items[i], int) else items[i] for i in adv]
    idx = [astype(as_operand(np.int64(i)) if isinstance(i, int) else i, int64) for i in idx]
    idx = [_wrap_negative(i, y.shape[a]) for i, a in zip(idx, adv)]
    shape = broadcast_shapes(*(i.shape for i in idx), op="indexing")
    idx = [broadcast_to(i, shape) for i in idx]
    return permute_dims(y, adv + rest), idx, adv, rest


def getitem(x, key):
    """``x[key]`` with NumPy semantics."""
    if type(key) is int and isinstance(x, ArrayBase) and x.ndim:
        n = x.shape[0]
        i = key + n if key < 0 else key
        if not 0 <= i < n:
            raise IndexError(f"index {key} is out of bounds for axis 0 with size {n}")
        y = sh.slice_.bind(x, starts=(i,) + (0,) * (x.ndim - 1), limits=(i + 1,) + x.shape[1:],
                           strides=(1,) * x.ndim)
        return sh.reshape.bind(y, shape=x.shape[1:])
    x, items = _normalize(as_operand(x), key)
    if not any(isinstance(k, ArrayBase) for k in items):
        return _basic(x, items)
    y, idx, adv, rest = _advanced(x, items)
    out = ix.gather.bind(y, *idx)
    contiguous = adv == list(range(adv[0], adv[-1] + 1))
    if contiguous and adv[0] > 0:
        s = len(idx[0].shape)
        before = adv[0]
        perm = list(range(s, s + before)) + list(range(s)) + list(range(s + before, out.ndim))
        from fnarray.api.manipulation import permute_dims
        out = permute_dims(out, perm)
    return out


def _concrete_key(key):
    """The key with every array replaced by its NumPy value, or None if any is traced."""
    parts = key if isinstance(key, tuple) else (key,)
    out = []
    for k in parts:
        if isinstance(k, ArrayBase):
            try:
                out.append(np.asarray(k))
            except ConcretizationError:
                return None
        else:
            out.append(k)
    return tuple(out)


class _IndexRef:
    """``x.at[key]``: the pending functional update of ``x`` at ``key``."""

    __slots__ = ("x", "key")

    def __init__(self, x, key):
        self.x = x
        self.key = key

    def get(self, *, mode: str | None = None, fill_value=None,
            indices_are_sorted: bool = False, unique_indices: bool = False):
        """``x[key]``; ``mode``/``fill_value`` handle out-of-bounds indices as in JAX (see
        ``fnarray/api/index_modes.py``).  The two ``indices_*`` flags are JAX's performance
        hints and do not change the result."""
        if mode is None and fill_value is None:
            return getitem(self.x, self.key)
        index_modes.check_mode(mode, "get")
        return index_modes.get(self.x, self.key, mode or "fill", fill_value)

    def set(self, values, *, mode: str | None = None, indices_are_sorted: bool = False,
            unique_indices: bool = False):
        """``x`` with ``values`` written at ``key`` (of repeated indices the last wins)."""
        return self._method(mode, "set", lambda r: r._update(values, "set", None))

    def add(self, values, *, mode: str | None = None, indices_are_sorted: bool = False,
            unique_indices: bool = False):
        """``x`` with ``values`` added at ``key`` (repeated indices accumulate)."""
        return self._method(mode, "add", lambda r: r._update(values, "add", None))

    def multiply(self, values, *, mode: str | None = None, indices_are_sorted: bool = False,
                 unique_indices: bool = False):
        from fnarray.api.elementwise import multiply
        return self._method(mode, "multiply", lambda r: r._update(values, "set", multiply))

    def divide(self, values, *, mode: str | None = None, indices_are_sorted: bool = False,
               unique_indices: bool = False):
        """``x`` divided by ``values`` at ``key`` (integer arrays keep their dtype)."""
        from fnarray.api.elementwise import divide
        return self._method(mode, "divide", lambda r: r._update(
            values, "set", lambda old, new: astype(divide(old, new), old.dtype)))

    def power(self, values, *, mode: str | None = None, indices_are_sorted: bool = False,
              unique_indices: bool = False):
        """``x`` raised to ``values`` at ``key``."""
        from fnarray.api.elementwise import pow as pow_
        return self._method(mode, "power", lambda r: r._update(
            values, "set", lambda old, new: astype(pow_(old, new), old.dtype)))

    def min(self, values, *, mode: str | None = None, indices_are_sorted: bool = False,
            unique_indices: bool = False):
        from fnarray.api.elementwise import minimum
        return self._method(mode, "min", lambda r: r._update(values, "set", minimum))

    def max(self, values, *, mode: str | None = None, indices_are_sorted: bool = False,
            unique_indices: bool = False):
        from fnarray.api.elementwise import maximum
        return self._method(mode, "max", lambda r: r._update(values, "set", maximum))

    def apply(self, func, *, mode: str | None = None, indices_are_sorted: bool = False,
              unique_indices: bool = False):
        """``x`` with the elementwise function ``func`` applied at ``key`` (once per
        distinct position)."""
        return self._method(mode, "apply", lambda r: r._update(
            0, "set", lambda old, _: astype(func(old), old.dtype)))

    def _method(self, mode, name: str, run):
        """``run(ref)`` performs the strict update on a ``_IndexRef``; ``mode`` wraps it."""
        if mode is None:
            return run(self)
        index_modes.check_mode(mode, name)
        return index_modes.update(self, mode, run)

    def _update(self, values, mode, combine):
        """Scatter ``values``; ``combine(old, new)`` makes the value for read-modify-write
        updates (for those, repeated indices keep the last write, unlike ``add``)."""
        from fnarray.api.manipulation import broadcast_to, reshape
        x = as_operand(self.x)
        v = astype(as_operand(values), x.dtype)
        key = _concrete_key(self.key)
        if key is not None:
            positions = np.arange(x.size).reshape(x.shape)[key]
            flat_idx = as_operand(positions.reshape(-1))
            flat_idx = flat_idx if device_of(x) is flat_idx.device else _to(flat_idx, x)
            flat = reshape(x, (x.size,))
            v = reshape(broadcast_to(v, positions.shape), (-1,))
            if combine is not None:
                v = combine(ix.gather.bind(flat, flat_idx), v)
            return reshape(ix.scatter.bind(flat, flat_idx, v, mode=mode), x.shape)
        parts = self.key if isinstance(self.key, tuple) else (self.key,)
        if not all(isinstance(k, (ArrayBase, int)) for k in parts):
            raise TypeError("x.at[...]: with traced index arrays (e.g. under vmap or jit) the "
                            "index must be integer arrays/ints for the leading axes only")
        idx = [_wrap_negative(astype(as_operand(k), int64), n) for k, n in zip(parts, x.shape)]
        shape = broadcast_shapes(*(i.shape for i in idx), op="at[]")
        idx = [broadcast_to(i, shape) for i in idx]
        v = broadcast_to(v, shape + x.shape[len(idx):])
        if combine is not None:
            v = combine(ix.gather.bind(x, *idx), v)
        return ix.scatter.bind(x, *idx, v, mode=mode)


def _to(a, like):
    from fnarray.api.creation import device_put
    return device_put(a, device_of(like))


class IndexUpdateHelper:
    """What ``x.at`` returns; index it to get an updater."""

    __slots__ = ("x",)

    def __init__(self, x):
        self.x = x

    def __getitem__(self, key):
        return _IndexRef(self.x, key)


def take(x, indices, axis=None):
    """Elements of ``x`` at ``indices`` along ``axis`` (of the flattened array when None)."""
    from fnarray.api.manipulation import ravel
    x = as_operand(x)
    if axis is None:
        x, axis = ravel(x), 0
    axis = axis % x.ndim
    return getitem(x, (slice(None),) * axis + (as_operand(indices),))


def take_along_axis(x, indices, axis: int = -1):
    """``out[i, j, ...] = x[i, ..., indices[i, j, ...], ...]`` along ``axis``."""
    from fnarray.api.creation import arange
    from fnarray.api.manipulation import broadcast_to, reshape
    x, indices = as_operand(x), as_operand(indices)
    if x.ndim != indices.ndim:
        raise ValueError(f"take_along_axis: indices (shape {indices.shape}) must have the same "
                         f"number of dimensions as the array (shape {x.shape})")
    axis = axis % x.ndim
    indices = _index_array(indices)
    if indices.dtype == bool_:
        raise IndexError(f"take_along_axis: indices must be integers, got {indices.dtype}")
    # One gather indexing every axis: ``indices`` along ``axis``, an arange (broadcast
    # against ``indices``) along the others; ``x[key]`` with the same key would reach the
    # same gather through the general indexing code.
    n = x.ndim
    shape = broadcast_shapes(*(x.shape[d:d + 1] + (1,) * (n - d - 1) for d in range(n)
                               if d != axis), indices.shape, op="take_along_axis")
    key = []
    for d in range(n):
        if d == axis:
            i = _wrap_negative(astype(indices, int64), x.shape[d])
        else:
            i = reshape(arange(x.shape[d], device=device_of(x)),
                        (1,) * d + (x.shape[d],) + (1,) * (n - d - 1))
        key.append(broadcast_to(i, shape))
    return ix.gather.bind(x, *key)
