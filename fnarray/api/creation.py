"""Array creation.  New arrays are constants, so these are plain functions, not primitives;
functions of an existing array (``tril``, ``diag``, ``*_like``) compose primitives."""

from __future__ import annotations

import numpy as np

from fnarray.api._convert import as_operand, astype, checked_dtype, device_of, from_python
from fnarray.core import device as _device, tree as _tree
from fnarray.core.array import Array, ArrayBase
from fnarray.core.shapes import DEFAULT_FLOAT, DEFAULT_INT, is_float
from fnarray.core.trace import Tracer


def asarray(obj, dtype=None, device=None, copy: bool | None = None):
    """An array from ``obj``.  ``copy`` as in the Array API: ``True`` always copies,
    ``False`` never does (``ValueError`` if a copy is needed: Python data, a dtype or device
    change), ``None`` copies when needed.  NumPy input is copied unless ``copy=False``, so
    that a later write to the NumPy array cannot change an fnarray array."""
    if copy is False:
        _check_no_copy(obj, dtype, device)
    if isinstance(obj, ArrayBase):
        out = obj if dtype is None else astype(obj, dtype)
        if device is not None and isinstance(out, Array):
            out = device_put(out, device)
        if copy and out is obj and isinstance(obj, Array):
            out = Array(obj._device.xp.copy(obj._value), obj._device, obj.weak_type)
        return out
    if copy is False and isinstance(obj, np.ndarray):
        return Array(obj)
    if dtype is None and isinstance(obj, (list, tuple)):
        obj = as_operand(obj) if _holds_arrays(obj) else obj
        if isinstance(obj, ArrayBase):
            return obj if device is None else device_put(obj, device)
    if _foreign_device_array(obj):
        return from_dlpack(obj)
    if hasattr(obj, "__fnarray_array__"):
        return asarray(obj.__fnarray_array__(), dtype=dtype, device=device)
    return from_python(obj, dtype=dtype, device=device)


def _check_no_copy(obj, dtype, device) -> None:
    """Raise unless ``asarray(obj, dtype, device)`` can reuse ``obj``'s memory."""
    if isinstance(obj, ArrayBase):
        have_dtype, have_device = obj.dtype, device_of(obj)
    elif isinstance(obj, (np.ndarray, np.generic)):
        # (a NumPy scalar is immutable: holding its value is as good as sharing it)
        have_dtype, have_device = checked_dtype(obj.dtype, "asarray"), _device.CPU
    elif _foreign_device_array(obj) or hasattr(obj, "__fnarray_array__"):
        return
    else:
        raise ValueError(f"asarray(copy=False): an object of type {type(obj).__name__} cannot "
                         f"be used without copying it into a new array; pass copy=None (or "
                         f"True) to allow the copy")
    if dtype is not None and checked_dtype(dtype, "asarray") != have_dtype:
        raise ValueError(f"asarray(copy=False): converting {have_dtype} to "
                         f"{np.dtype(dtype)} needs a copy; pass copy=None to allow it")
    if device is not None and _device.get_device(device) is not have_device:
        raise ValueError(f"asarray(copy=False): moving an array from {have_device} to "
                         f"{device} needs a copy; pass copy=None to allow it")


def _foreign_device_array(obj) -> bool:
    """A CuPy or PyTorch array: exchanged zero-copy through DLPack."""
    return (hasattr(obj, "__dlpack__") and not isinstance(obj, np.ndarray)
            and type(obj).__module__.split(".")[0] in ("cupy", "torch"))


def _holds_arrays(obj) -> bool:
    return any(isinstance(e, ArrayBase) or (isinstance(e, (list, tuple)) and _holds_arrays(e))
               for e in obj)


def array(obj, dtype=None, device=None, copy: bool = True):
    return asarray(obj, dtype=dtype, device=device, copy=copy)


def _shape(shape) -> tuple:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def _fill(shape, value, dtype, device, default, op="full"):
    dtype = default if dtype is None else checked_dtype(dtype, op)
    dev = _device.get_device(device)
    return Array(dev.xp.full(_shape(shape), value, dtype=dtype), dev)


def zeros(shape, dtype=None, device=None) -> Array:
    return _fill(shape, 0, dtype, device, DEFAULT_FLOAT, "zeros")


def ones(shape, dtype=None, device=None) -> Array:
    return _fill(shape, 1, dtype, device, DEFAULT_FLOAT, "ones")


def empty(shape, dtype=None, device=None) -> Array:
    """Like ``zeros``: an uninitialised immutable array would be useless."""
    return zeros(shape, dtype, device)


def full(shape, fill_value, dtype=None, device=None) -> Array:
    if dtype is None:
        dtype = (fill_value.dtype if isinstance(fill_value, ArrayBase)
                 else from_python(fill_value).dtype)
    if isinstance(fill_value, Tracer):
        return broadcast_like(fill_value, _shape(shape), dtype)
    return _fill(shape, np.asarray(fill_value).item() if isinstance(fill_value, ArrayBase)
                 else fill_value, dtype, device, DEFAULT_FLOAT)


def broadcast_like(value, shape, dtype):
    from fnarray.api.manipulation import broadcast_to
    return broadcast_to(astype(value, dtype), shape)


def _like(x, dtype, device):
    x = as_operand(x)
    return x.shape, (x.dtype if dtype is None else dtype), (device_of(x) if device is None else device)


def zeros_like(x, dtype=None, device=None) -> Array:
    return zeros(*_like(x, dtype, device))


def ones_like(x, dtype=None, device=None) -> Array:
    return ones(*_like(x, dtype, device))


def empty_like(x, dtype=None, device=None) -> Array:
    return zeros(*_like(x, dtype, device))


def full_like(x, fill_value, dtype=None, device=None) -> Array:
    shape, dt, dev = _like(x, dtype, device)
    return full(shape, fill_value, dt, dev)


def eye(n_rows: int, n_cols: int | None = None, k: int = 0, dtype=None, device=None) -> Array:
    dev = _device.get_device(device)
    dtype = DEFAULT_FLOAT if dtype is None else checked_dtype(dtype, "eye")
    return Array(dev.xp.eye(n_rows, n_cols, k, dtype=dtype), dev)


def identity(n: int, dtype=None, device=None) -> Array:
    return eye(n, dtype=dtype, device=device)


def arange(start, stop=None, step=1, dtype=None, device=None) -> Array:
    """Like ``numpy.arange``; integers give ``int64``, any float gives ``float32``."""
    if stop is None:
        start, stop = 0, start
    vals = [float(v) if isinstance(v, ArrayBase) and is_float(v.dtype) else
            (int(v) if isinstance(v, ArrayBase) else v) for v in (start, stop, step)]
    if dtype is None:
        dtype = DEFAULT_FLOAT if any(isinstance(v, float) for v in vals) else DEFAULT_INT
    dev = _device.get_device(device)
    return Array(dev.xp.arange(*vals, dtype=checked_dtype(dtype, "arange")), dev)


def linspace(start, stop, num: int = 50, endpoint: bool = True, dtype=None, device=None) -> Array:
    dtype = DEFAULT_FLOAT if dtype is None else checked_dtype(dtype, "linspace")
    dev = _device.get_device(device)
    return Array(dev.xp.linspace(float(start), float(stop), int(num), endpoint=endpoint).astype(dtype), dev)


def logspace(start, stop, num: int = 50, endpoint: bool = True, base=10.0, dtype=None, device=None):
    from fnarray.api.elementwise import pow
    return pow(float(base), linspace(start, stop, num, endpoint, dtype, device))


def tri(n: int, m: int | None = None, k: int = 0, dtype=None, device=None) -> Array:
    dev = _device.get_device(device)
    dtype = DEFAULT_FLOAT if dtype is None else checked_dtype(dtype, "tri")
    return Array(dev.xp.tri(n, m, k, dtype=dtype), dev)


def _triangle(x, k, lower):
    from fnarray.api.elementwise import where
    x = as_operand(x)
    if x.ndim < 2:
        raise ValueError(f"{'tril' if lower else 'triu'}: input must have at least 2 "
                         f"dimensions, got shape {x.shape}")
    n, m = x.shape[-2:]
    mask = tri(n, m, k if lower else k - 1, dtype=bool, device=device_of(x))
    if not lower:
        from fnarray.api.elementwise import logical_not
        mask = logical_not(mask)
    return where(mask, x, zeros((), x.dtype, device_of(x)))


def tril(x, k: int = 0):
    """Lower triangle of the last two axes (zero above the ``k``-th diagonal)."""
    return _triangle(x, k, True)


def triu(x, k: int = 0):
    """Upper triangle of the last two axes (zero below the ``k``-th diagonal)."""
    return _triangle(x, k, False)


def diag(v, k: int = 0):
    """1-D input: a 2-D array with ``v`` on diagonal ``k``; 2-D input: that diagonal."""
    from fnarray.api.contraction import diagonal
    v = as_operand(v)
    if v.ndim == 2:
        return diagonal(v, offset=k)
    if v.ndim != 1:
        raise ValueError(f"diag: input must be 1-D or 2-D, got shape {v.shape}")
    n = v.shape[0] + abs(k)
    rows = np.arange(v.shape[0]) + max(-k, 0)
    cols = np.arange(v.shape[0]) + max(k, 0)
    return zeros((n, n), v.dtype, device_of(v)).at[rows, cols].set(v)


def meshgrid(*arrays, indexing: str = "xy"):
    from fnarray.api.manipulation import broadcast_to, reshape
    arrays = [as_operand(a) for a in arrays]
    n = len(arrays)
    shape = [a.size for a in arrays]
    if indexing == "xy" and n >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, a in enumerate(arrays):
        axis = i
        if indexing == "xy" and n >= 2 and i < 2:
            axis = 1 - i
        s = [1] * n
        s[axis] = a.size
        out.append(broadcast_to(reshape(a, tuple(s)), tuple(shape)))
    return out


def device_put(x, device=None):
    """``x`` on ``device`` (a copy when it moves; arrays never move implicitly).  ``x`` may
    be a pytree: every leaf is put on ``device`` and the structure is kept."""
    dev = _device.get_device(device)
    if not isinstance(x, ArrayBase):
        leaves, treedef = _tree.flatten(x)
        if treedef is not _tree.LEAF:
            return _tree.unflatten(treedef, [_put(leaf, dev) for leaf in leaves])
    return _put(x, dev)


def _put(x, dev):
    if isinstance(x, Tracer):
        return x
    x = asarray(x)
    if x._device is dev:
        return x
    host = x._device.backend.to_host(x._value)
    return Array(dev.backend.from_host(host, dev.index), dev, x.weak_type)


def from_dlpack(obj, device=None, copy=None) -> Array:
    """Zero-copy exchange with NumPy, CuPy, PyTorch... through DLPack.

    ``device``: where the result lives (a move is a copy); ``copy=True`` always copies (so
    later writes to a mutable producer such as a NumPy array cannot show through),
    ``copy=False`` never does (a ``ValueError`` if ``device`` needs a move), ``None``
    copies only to move."""
    kind, _ = obj.__dlpack_device__()
    if kind == 1:  # CPU
        out = Array(np.from_dlpack(obj))
    else:  # pragma: no cover - needs a GPU
        dev = _device.get_device("cuda")
        out = Array(dev.xp.from_dlpack(obj), dev)
    target = out._device if device is None else _device.get_device(device)
    if target is not out._device:
        if copy is False:
            raise ValueError(f"from_dlpack: copy=False, but the data is on {out._device} "
                             f"and device={target} needs a copy")
        return _put(out, target)
    if copy:
        return Array(out._value.copy(), out._device)
    return out
