"""Array API data-type functions and the namespace inspection object."""

from __future__ import annotations

import numpy as np

from fnarray.core import device as _device
from fnarray.core import shapes
from fnarray.core.array import ArrayBase
from fnarray.core import bfloat16
from fnarray.core.shapes import is_float, is_inexact

_KINDS = {
    "bool": "b",
    "signed integer": "i",
    "unsigned integer": "u",
    "integral": "iu",
    "real floating": "f",
    "complex floating": "c",
    "numeric": "iufc",
}


def _dtype_of(x) -> np.dtype:
    return x.dtype if isinstance(x, ArrayBase) else shapes.canonical_dtype(x)


_WEAK = {"b": bool, "i": int, "u": int, "f": float, "c": complex}


def _kind(dt: np.dtype) -> str:
    """NumPy's kind letter, with bfloat16 (kind 'V' in NumPy) read as the float it is."""
    return "f" if is_float(dt) else dt.kind


def result_type(*arrays_and_dtypes):
    """The dtype fnarray's promotion gives these arrays, dtypes and Python scalars."""
    items = []
    for a in arrays_and_dtypes:
        if isinstance(a, (bool, int, float, complex)):
            items.append(a)
        elif isinstance(a, np.generic):  # NumPy scalars are weak, like Python scalars
            items.append(_WEAK[_kind(a.dtype)])
        elif isinstance(a, ArrayBase) and a.weak_type:
            items.append(_WEAK[_kind(a.dtype)])
        else:
            items.append(_dtype_of(a))
    if not items:
        raise ValueError("result_type: at least one array or dtype is required")
    return shapes.result_type(*items)


def can_cast(from_, to) -> bool:
    """Whether ``from_`` (an array or dtype) converts to ``to`` without losing values."""
    return bool(np.can_cast(_dtype_of(from_), shapes.canonical_dtype(to), casting="safe"))


class finfo_object:  # noqa: N801 - the Array API's name for it
    """Machine limits of a floating dtype, as the Array API specifies them: ``bits`` an
    int, ``eps``, ``max``, ``min`` and ``smallest_normal`` Python floats, ``dtype`` the
    real dtype (for a complex dtype, that of its components); plus NumPy's ``tiny``,
    ``resolution`` and ``precision``."""

    __slots__ = ("bits", "eps", "max", "min", "smallest_normal", "tiny", "resolution",
                 "precision", "dtype")

    def __init__(self, info: np.finfo):
        self.bits = int(info.bits)
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.smallest_normal = self.tiny = float(info.smallest_normal)
        self.resolution, self.precision = float(info.resolution), int(info.precision)
        self.dtype = np.dtype(info.dtype)

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"dtype={self.dtype.name})")


def finfo(type_) -> finfo_object:
    """Machine limits of a floating or complex dtype (or of an array's dtype)."""
    dt = _dtype_of(type_)
    if not is_inexact(dt):
        raise TypeError(f"finfo: {dt} is not a floating or complex dtype; use fa.iinfo for "
                        f"integer dtypes")
    return finfo_object(bfloat16.finfo(dt))  # NumPy's, or ml_dtypes' for bfloat16


def iinfo(type_):
    """Machine limits of an integer dtype (NumPy's ``iinfo``)."""
    return np.iinfo(_dtype_of(type_))


def isdtype(dtype, kind) -> bool:
    """Array API ``isdtype``: is ``dtype`` of ``kind`` (a name, a dtype, or a tuple of them)?"""
    dtype = np.dtype(dtype)
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        if kind not in _KINDS:
            raise ValueError(f"isdtype: unknown kind {kind!r}; use one of {sorted(_KINDS)}")
        return _kind(dtype) in _KINDS[kind]
    return dtype == shapes.canonical_dtype(kind)


class ArrayNamespaceInfo:
    """What ``fa.__array_namespace_info__()`` returns (Array API inspection)."""

    def capabilities(self) -> dict:
        return {"boolean indexing": True, "data-dependent shapes": True,
                "max dimensions": None}

    def default_device(self):
        return _device.default()

    def devices(self) -> list:
        return _device.devices()

    def default_dtypes(self, *, device=None) -> dict:
        return {"real floating": shapes.DEFAULT_FLOAT, "complex floating": shapes.DEFAULT_COMPLEX,
                "integral": shapes.DEFAULT_INT, "indexing": shapes.DEFAULT_INT}

    def dtypes(self, *, device=None, kind=None) -> dict:
        all_dtypes = {d.name: d for d in sorted(shapes.SUPPORTED_DTYPES, key=lambda d: d.name)}
        if kind is None:
            return all_dtypes
        return {n: d for n, d in all_dtypes.items() if isdtype(d, kind)}


def array_namespace_info() -> ArrayNamespaceInfo:
    return ArrayNamespaceInfo()
