"""Array API data-type functions and the namespace inspection object."""

from __future__ import annotations

import numpy as np

from fnarray.core import device as _device
from fnarray.core import shapes
from fnarray.core.array import ArrayBase

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


def result_type(*arrays_and_dtypes):
    """The dtype fnarray's promotion gives these arrays, dtypes and Python scalars."""
    items = []
    for a in arrays_and_dtypes:
        if isinstance(a, (bool, int, float, complex)):
            items.append(a)
        elif isinstance(a, ArrayBase) and a.weak_type:
            items.append({"b": bool, "i": int, "u": int, "f": float, "c": complex}[a.dtype.kind])
        else:
            items.append(_dtype_of(a))
    if not items:
        raise ValueError("result_type: at least one array or dtype is required")
    return shapes.result_type(*items)


def can_cast(from_, to) -> bool:
    """Whether ``from_`` (an array or dtype) converts to ``to`` without losing values."""
    return bool(np.can_cast(_dtype_of(from_), shapes.canonical_dtype(to), casting="safe"))


def finfo(type_):
    """Machine limits of a floating dtype (NumPy's ``finfo``)."""
    return np.finfo(_dtype_of(type_))


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
        return dtype.kind in _KINDS[kind]
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
