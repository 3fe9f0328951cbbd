"""``Array``: an immutable value on a device, and the operator surface it shares with tracers.

``ArrayBase`` holds every Python operator and method; each one calls the user-facing
function of the same name (installed by ``fnarray.api``), so ``x + y`` on an ``Array`` and
on a tracer inside ``grad`` run exactly the same code.
"""

from __future__ import annotations

import math

import numpy as np

from fnarray.core import device as _device
from fnarray.core.shapes import ShapedArray

_api = None  # the namespace of user-facing functions, installed by fnarray.api


def install_api(namespace) -> None:
    global _api
    _api = namespace


class ArrayBase:
    """Operators and methods common to ``Array`` and every tracer."""

    __slots__ = ()
    __array_priority__ = 1000

    # --- attributes derived from the abstract value
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def T(self):
        return _api.permute_dims(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self):
        return _api.matrix_transpose(self)

    @property
    def at(self):
        return _api.IndexUpdateHelper(self)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __setitem__(self, key, value):
        raise TypeError(
            f"fnarray arrays are immutable: x[{_show_key(key)}] = ... cannot write into "
            f"the array. Use the functional update x = x.at[{_show_key(key)}].set(value) "
            f"(or .add/.multiply/.min/.max), which returns a new array")

    def __getitem__(self, key):
        return _api.getitem(self, key)

    # --- arithmetic
    def __add__(self, o): return _api.add(self, o)
    def __radd__(self, o): return _api.add(o, self)
    def __sub__(self, o): return _api.subtract(self, o)
    def __rsub__(self, o): return _api.subtract(o, self)
    def __mul__(self, o): return _api.multiply(self, o)
    def __rmul__(self, o): return _api.multiply(o, self)
    def __truediv__(self, o): return _api.divide(self, o)
    def __rtruediv__(self, o): return _api.divide(o, self)
    def __floordiv__(self, o): return _api.floor_divide(self, o)
    def __rfloordiv__(self, o): return _api.floor_divide(o, self)
    def __mod__(self, o): return _api.remainder(self, o)
    def __rmod__(self, o): return _api.remainder(o, self)
    def __pow__(self, o): return _api.pow(self, o)
    def __rpow__(self, o): return _api.pow(o, self)
    def __matmul__(self, o): return _api.matmul(self, o)
    def __rmatmul__(self, o): return _api.matmul(o, self)
    def __neg__(self): return _api.negative(self)
    def __pos__(self): return self
    def __abs__(self): return _api.abs(self)
    def __invert__(self): return _api.bitwise_invert(self)
    def __and__(self, o): return _api.bitwise_and(self, o)
    def __rand__(self, o): return _api.bitwise_and(o, self)
    def __or__(self, o): return _api.bitwise_or(self, o)
    def __ror__(self, o): return _api.bitwise_or(o, self)
    def __xor__(self, o): return _api.bitwise_xor(self, o)
    def __rxor__(self, o): return _api.bitwise_xor(o, self)
    def __lshift__(self, o): return _api.bitwise_left_shift(self, o)
    def __rlshift__(self, o): return _api.bitwise_left_shift(o, self)
    def __rshift__(self, o): return _api.bitwise_right_shift(self, o)
    def __rrshift__(self, o): return _api.bitwise_right_shift(o, self)
    def __eq__(self, o): return _api.equal(self, o)  # type: ignore[override]
    def __ne__(self, o): return _api.not_equal(self, o)  # type: ignore[override]
    def __lt__(self, o): return _api.less(self, o)
    def __le__(self, o): return _api.less_equal(self, o)
    def __gt__(self, o): return _api.greater(self, o)
    def __ge__(self, o): return _api.greater_equal(self, o)
    __hash__ = None  # type: ignore[assignment]

    # --- methods
    def astype(self, dtype, copy=True, device=None):
        return _api.astype(self, dtype, copy=copy, device=device)
    def reshape(self, *shape, order="C"):
        return _api.reshape(self, shape[0] if len(shape) == 1 else shape, order=order)
    def transpose(self, *axes):
        return _api.transpose(self, axes[0] if len(axes) == 1 else (axes or None))
    def swapaxes(self, a, b): return _api.swapaxes(self, a, b)
    def ravel(self, order="C"): return _api.ravel(self, order)
    def flatten(self, order="C"): return _api.ravel(self, order)
    def squeeze(self, axis=None): return _api.squeeze(self, axis)
    def sum(self, axis=None, keepdims=False, dtype=None, **kw):  # initial=, where=
        return _api.sum(self, axis=axis, keepdims=keepdims, dtype=dtype, **kw)
    def prod(self, axis=None, keepdims=False, dtype=None, **kw):
        return _api.prod(self, axis=axis, keepdims=keepdims, dtype=dtype, **kw)
    def mean(self, axis=None, keepdims=False, **kw):
        return _api.mean(self, axis=axis, keepdims=keepdims, **kw)
    def var(self, axis=None, keepdims=False, ddof=0, correction=None, **kw):
        return _api.var(self, axis=axis, keepdims=keepdims, ddof=ddof, correction=correction, **kw)
    def std(self, axis=None, keepdims=False, ddof=0, correction=None, **kw):
        return _api.std(self, axis=axis, keepdims=keepdims, ddof=ddof, correction=correction, **kw)
    def max(self, axis=None, keepdims=False, **kw):
        return _api.max(self, axis=axis, keepdims=keepdims, **kw)
    def min(self, axis=None, keepdims=False, **kw):
        return _api.min(self, axis=axis, keepdims=keepdims, **kw)
    def argmax(self, axis=None, keepdims=False): return _api.argmax(self, axis=axis, keepdims=keepdims)
    def argmin(self, axis=None, keepdims=False): return _api.argmin(self, axis=axis, keepdims=keepdims)
    def all(self, axis=None, keepdims=False, **kw):
        return _api.all(self, axis=axis, keepdims=keepdims, **kw)
    def any(self, axis=None, keepdims=False, **kw):
        return _api.any(self, axis=axis, keepdims=keepdims, **kw)
    def cumsum(self, axis=None): return _api.cumsum(self, axis=axis)
    def cumprod(self, axis=None): return _api.cumprod(self, axis=axis)
    def clip(self, min=None, max=None): return _api.clip(self, min, max)
    def dot(self, o): return _api.dot(self, o)
    def conj(self): return _api.conj(self)
    def round(self, decimals=0): return _api.round(self, decimals=decimals)
    def diagonal(self, offset=0, axis1=0, axis2=1): return _api.diagonal(self, offset, axis1, axis2)
    def trace(self, offset=0, axis1=0, axis2=1): return _api.trace(self, offset, axis1, axis2)
    def sort(self, axis=-1): return _api.sort(self, axis=axis)
    def argsort(self, axis=-1): return _api.argsort(self, axis=axis)
    def take(self, indices, axis=None): return _api.take(self, indices, axis=axis)
    def repeat(self, repeats, axis=None): return _api.repeat(self, repeats, axis=axis)
    @property
    def real(self): return _api.real(self)
    @property
    def imag(self): return _api.imag(self)

    def __array_namespace__(self, api_version=None):
        import fnarray
        if api_version not in (None, "2021.12", "2022.12", fnarray.__array_api_version__):
            raise ValueError(f"__array_namespace__: fnarray implements Array API version "
                             f"{fnarray.__array_api_version__!r} (and the earlier 2021.12 and "
                             f"2022.12), not {api_version!r}")
        return fnarray


def _show_key(key) -> str:
    def one(k):
        if isinstance(k, slice):
            parts = ["" if v is None else str(v) for v in (k.start, k.stop, k.step)]
            return ":".join(parts[:2] if k.step is None else parts)
        if k is Ellipsis:
            return "..."
        return "idx" if hasattr(k, "shape") and getattr(k, "shape", ()) != () else str(k)
    return ", ".join(one(k) for k in key) if isinstance(key, tuple) else one(key)


class Array(ArrayBase):
    """An immutable n-dimensional array on a device.

    ``_value`` is the backend buffer (``numpy.ndarray`` or ``cupy.ndarray``); no fnarray
    code writes into it after construction.  ``weak_type`` marks values that came from a
    Python scalar and so do not widen the other operand in promotion.
    """

    __slots__ = ("_value", "_device", "weak_type", "__weakref__")

    def __init__(self, value, device=None, weak_type: bool = False):
        self._value = value
        self._device = _device.CPU if device is None else device
        self.weak_type = weak_type

    @property
    def shape(self) -> tuple:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    @property
    def device(self):
        return self._device

    @property
    def aval(self) -> ShapedArray:
        return ShapedArray(self._value.shape, self._value.dtype, self.weak_type)

    def to_device(self, device, stream=None):
        return _api.device_put(self, device)

    to = to_device

    def block_until_ready(self):
        """Wait until the kernels computing this array have finished; returns the array
        (NumPy kernels are synchronous; on a GPU this waits for the device's stream)."""
        self._device.backend.synchronize(self._value)
        return self

    # --- conversion to Python / NumPy
    def _host(self) -> np.ndarray:
        return self._device.backend.to_host(self._value)

    def __array__(self, dtype=None, copy=None):
        host = self._host()
        if not isinstance(host, np.ndarray):  # NumPy ufuncs return scalars for 0-d inputs
            host = np.asarray(host)
        if dtype is not None and np.dtype(dtype) != host.dtype:
            return host.astype(dtype)
        if copy:
            return host.copy()
        view = host.view()
        view.flags.writeable = False
        return view

    def item(self, *args):
        return self._host().item(*args)

    def tolist(self):
        return self._host().tolist()

    def __bool__(self):
        return bool(self._host())

    def __int__(self):
        return int(self._host())

    def __float__(self):
        return float(self._host())

    def __complex__(self):
        return complex(self._host())

    def __index__(self):
        if self.dtype.kind not in "biu":
            raise TypeError(f"only integer arrays can be used as an index, not {self.dtype}")
        return int(self._host())

    def __format__(self, spec):
        if self.ndim == 0:
            return format(self._host().item(), spec)
        return format(str(self), spec)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Array API 2023.12 DLPack export.  The keywords added in 2023.12 go to the backend
        only when given, so consumers of the older protocol keep working."""
        extra = {k: v for k, v in (("max_version", max_version), ("dl_device", dl_device),
                                   ("copy", copy)) if v is not None}
        return self._value.__dlpack__(stream=stream, **extra)

    def __dlpack_device__(self):
        return self._value.__dlpack_device__()

    def __repr__(self):
        body = np.array2string(self._host(), separator=", ", prefix="Array(")
        return f"Array({body}, dtype={self.dtype.name})"

    def __str__(self):
        return str(self._host())

    def __reduce__(self):
        return (_api.asarray, (self._host(),))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self
