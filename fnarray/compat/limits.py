"""``torch.finfo`` / ``torch.iinfo``: machine limits of a dtype, printed as PyTorch prints them.

The numbers come from NumPy's ``finfo``/``iinfo`` (``ml_dtypes``' for dtypes NumPy lacks,
such as bfloat16); what PyTorch adds is the interface: ``dtype`` is the dtype's name (a
string), ``finfo`` of a complex dtype describes its real component, a non-float (non-integer)
dtype is a ``TypeError`` naming the other function, and ``repr`` is
``finfo(resolution=1e-06, min=-3.40282e+38, ..., dtype=float32)``.
"""

from __future__ import annotations

import numpy as np


def _np_dtype(value) -> np.dtype:
    return np.dtype(getattr(value, "dtype", value))


def _g(x) -> str:
    return f"{x:.6g}"


class finfo:  # noqa: N801  (PyTorch's name)
    """Limits of a floating (or complex: its real part) dtype; the default dtype when none
    is given."""

    def __init__(self, type=None):  # noqa: A002  (PyTorch's argument name)
        from fnarray.compat import get_default_dtype
        dt = _np_dtype(get_default_dtype() if type is None else type)
        if dt.kind == "c":
            dt = np.empty(0, dt).real.dtype
        try:
            info = np.finfo(dt)
        except ValueError:
            info = None
            if dt.kind == "V":  # an ml_dtypes float (bfloat16, float8 ...)
                import ml_dtypes
                info = ml_dtypes.finfo(dt)
        if info is None or dt.kind not in "fV":
            raise TypeError(f"torch.finfo() requires a floating point input type. Use "
                            f"torch.iinfo to handle 'torch.finfo' (got {dt.name})")
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)  # exactly 1e-06, not float16(1e-3)
        self.dtype = dt.name

    def __repr__(self) -> str:
        return (f"finfo(resolution={_g(self.resolution)}, min={_g(self.min)}, "
                f"max={_g(self.max)}, eps={_g(self.eps)}, "
                f"smallest_normal={_g(self.smallest_normal)}, tiny={_g(self.tiny)}, "
                f"dtype={self.dtype})")

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, finfo) and other.dtype == self.dtype

    __hash__ = None  # as PyTorch: finfo objects are not hashable


class iinfo:  # noqa: N801  (PyTorch's name)
    """Limits of an integer dtype (``bits``, ``min``, ``max`` as Python ints)."""

    def __init__(self, type):  # noqa: A002  (PyTorch's argument name)
        dt = _np_dtype(type)
        if dt.kind not in "iu":
            raise TypeError(f"torch.iinfo() requires an integer input type. Use torch.finfo "
                            f"to handle 'torch.iinfo' (got {dt.name})")
        info = np.iinfo(dt)
        self.bits, self.min, self.max = int(info.bits), int(info.min), int(info.max)
        self.dtype = dt.name

    def __repr__(self) -> str:
        return f"iinfo(min={_g(self.min)}, max={_g(self.max)}, dtype={self.dtype})"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, iinfo) and other.dtype == self.dtype

    __hash__ = None
