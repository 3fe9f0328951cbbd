"""Turning user input into arrays, and promoting operands to a common dtype.

This is the hot path of every eager operation, so the common case — two ``Array``s of the
same dtype — returns after two type checks.
"""

from __future__ import annotations

import numbers

import numpy as np

from fnarray.core import device as _device
from fnarray.core.array import Array, ArrayBase
from fnarray.core.shapes import (DEFAULT_COMPLEX, DEFAULT_FLOAT, DEFAULT_INT, canonical_dtype,
                                 result_type)
from fnarray.core.trace import Tracer
from fnarray.core.shapes import is_float, is_inexact

_PY_SCALARS = (bool, int, float, complex)


def device_of(x):
    """The device of an array or tracer (without needing a concrete value)."""
    if isinstance(x, Array):
        return x._device
    if isinstance(x, Tracer):
        return x.device
    return _device.default()


def checked_dtype(dtype, op: str):
    """``canonical_dtype(dtype)``, with the operation named in the error message."""
    try:
        return canonical_dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{op}: {e}") from None


def from_python(obj, dtype=None, device=None, weak: bool = False) -> Array:
    """Build an ``Array`` from Python / NumPy data (always copies NumPy input)."""
    dev = _device.get_device(device)
    if dtype is not None:
        dtype = checked_dtype(dtype, "asarray")
    if isinstance(obj, np.ndarray) or isinstance(obj, np.generic):
        host = np.array(obj, dtype=dtype, copy=True)
    else:
        host = np.asarray(obj, dtype=dtype)
        if dtype is None:
            host = host.astype(_default_for(host.dtype), copy=False)
        elif host is obj:
            host = host.copy()
    if host.dtype not in _SUPPORTED:
        checked_dtype(host.dtype, "asarray")  # raises the standard message
    return Array(dev.backend.from_host(host, dev.index), dev, weak)


def _default_for(dt: np.dtype) -> np.dtype:
    """Python floats/ints/complexes become fnarray's default dtypes."""
    if is_float(dt):
        return DEFAULT_FLOAT
    if dt.kind == "c":
        return DEFAULT_COMPLEX
    if dt.kind in "iu":
        return DEFAULT_INT
    return dt


_SUPPORTED = {np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                      np.uint16, np.uint32, np.uint64, np.float16, np.float32,
                                      np.float64, np.complex64, np.complex128)}


def _is_python_scalar(x) -> bool:
    """A Python ``bool/int/float/complex`` (weakly typed); NumPy scalars such as
    ``np.float64`` subclass ``float`` but carry a dtype, so they are not."""
    return isinstance(x, _PY_SCALARS) and not isinstance(x, np.generic)


def as_operand(x):
    """An ``Array``/tracer as is; anything else converted (Python scalars become weak)."""
    if isinstance(x, ArrayBase):
        return x
    if _is_python_scalar(x):
        return from_python(x, weak=True)
    if isinstance(x, (list, tuple)) and any(isinstance(e, ArrayBase) for e in _flat(x)):
        from fnarray.api.manipulation import stack
        return stack([as_operand(e) for e in x])
    if hasattr(x, "__fnarray_array__"):
        return x.__fnarray_array__()
    return from_python(x)


def _flat(x):
    for e in x:
        if isinstance(e, (list, tuple)):
            yield from _flat(e)
        else:
            yield e


def promote(op: str, *args):
    """Operands as arrays of one common dtype, following fnarray's promotion rules."""
    if len(args) == 2:
        x, y = args
        tx, ty = type(x), type(y)
        # (``kind == "f"`` answers the common floats before the general ``is_float``.)
        if tx is Array:
            dt = x._value.dtype
            if ty is Array and dt == y._value.dtype:
                return args
            if (ty is float or ty is int) and (dt.kind == "f" or is_float(dt)):
                # array * 2.0, array + 1: the Python scalar is weak and takes the array's dtype
                return x, weak_constant(y, dt, x._device)
        elif ty is Array and (tx is float or tx is int):
            dt = y._value.dtype
            if dt.kind == "f" or is_float(dt):
                return weak_constant(x, dt, y._device), y
        if isinstance(x, ArrayBase):
            if isinstance(y, ArrayBase):
                if x.dtype == y.dtype:
                    return args  # tracers (and tensors) of one dtype: nothing to promote
            elif (ty is float or ty is int) and is_float(x.dtype):
                return x, _weak_scalar(y, x)  # a tracer or tensor next to a Python scalar
        elif isinstance(y, ArrayBase) and (tx is float or tx is int) and is_float(y.dtype):
            return _weak_scalar(x, y), y
    items = []
    # Weak arrays (from Python scalars) yield to strong operands; among themselves they
    # promote by their actual dtypes, so float64 weak values stay float64.  NumPy scalars
    # (``np.float64(2)``, ``np.sqrt(d)``) are weak next to an array, like Python scalars.
    any_strong = any(isinstance(a, ArrayBase) and not a.weak_type for a in args)
    any_array = any_strong or any(isinstance(a, ArrayBase) for a in args)
    for a in args:
        if isinstance(a, ArrayBase):
            items.append(a.dtype if (any_strong is False or not a.weak_type) else _weak_kind(a.dtype))
        elif _is_python_scalar(a):
            items.append(a)
        elif any_array and isinstance(a, np.generic):
            items.append(_weak_kind(a.dtype))
        elif isinstance(a, numbers.Number) or isinstance(a, np.ndarray):
            items.append(np.asarray(a).dtype)
        else:
            items.append(as_operand(a).dtype)
    dt = result_type(*items)
    dev = None
    for a in args:
        if isinstance(a, ArrayBase):
            dev = device_of(a)
            break
    out = []
    for a in args:
        if isinstance(a, ArrayBase):
            out.append(a if a.dtype == dt else astype(a, dt))
        elif any_array and isinstance(a, np.generic):
            # by value, as a Python scalar: np.int64(300) next to int8 overflows, never wraps
            out.append(from_python(a.item(), dtype=dt, device=dev))
        else:
            out.append(from_python(a, dtype=dt, device=dev, weak=_is_python_scalar(a)))
    return out


def _weak_scalar(value, like) -> Array:
    """The Python scalar ``value`` as a weak array of ``like``'s (floating) dtype."""
    return weak_constant(value, like.dtype, device_of(like))


# Python scalars met in arithmetic (``x + 1``, ``x * 0.5``) become 0-d weak arrays.  Arrays
# are immutable, so one array per (value, dtype, device) serves every use: the cache saves
# building a backend scalar and an ``Array`` per operation.  Zeros are never cached (0.0
# and -0.0 are equal keys but different values), NaNs never hit (NaN != NaN) and are not
# stored, and the cache stops growing at a fixed size (values past it are built each time).
_WEAK_CONSTANTS: dict = {}
_WEAK_CONSTANTS_MAX = 1024


def weak_constant(value, dtype, dev) -> Array:
    """The Python ``int``/``float`` ``value`` as a weak 0-d array of ``dtype`` on ``dev``."""
    key = (value, dtype, dev)
    hit = _WEAK_CONSTANTS.get(key)
    if hit is not None:
        return hit
    out = Array(dev.xp.asarray(value, dtype=dtype), dev, True)
    if value and value == value and len(_WEAK_CONSTANTS) < _WEAK_CONSTANTS_MAX:
        _WEAK_CONSTANTS[key] = out
    return out


def _weak_kind(dt):
    return {"b": bool, "i": int, "u": int, "f": float, "c": complex}[dt.kind]


def astype(x, dtype, copy: bool = True, device=None):
    """``x`` converted to ``dtype`` (a new array; the original is untouched), and put on
    ``device`` if one is given (Array API 2023.12).  Arrays are immutable, so an array that
    already has the dtype is returned as is whatever ``copy`` says."""
    dtype = checked_dtype(dtype, "astype")
    if type(x) in (float, complex) and is_inexact(dtype):
        x = from_python(x, dtype=dtype)  # direct: no rounding through the default float
    x = as_operand(x)
    if x.dtype != dtype:
        x = convert_element_type.bind(x, dtype=dtype)
    if device is not None:
        from fnarray.api.creation import device_put
        x = device_put(x, device)
    return x


def to_inexact(x):
    """Integer and boolean operands of float-valued functions become the default float."""
    if type(x) is Array and x._value.dtype.kind in "fc":
        return x  # the hot path; other inexact dtypes (bfloat16) take the general one below
    x = as_operand(x)
    return x if is_inexact(x.dtype) else astype(x, DEFAULT_FLOAT)


# Imported last: loading fnarray.ops imports this module (``device_of``), so the primitive
# is bound once here rather than by an import statement on every ``astype`` call (~1 us).
from fnarray.ops.elementwise import convert_element_type  # noqa: E402
