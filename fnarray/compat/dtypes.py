"""PyTorch's dtype objects: ``torch.float32`` prints as ``torch.float32``.

NumPy dtypes cannot be subclassed, so a compat ``dtype`` holds one ``np.dtype`` and
stands in for it everywhere the old value was used: it compares and hashes equal to the
NumPy dtype (``x.dtype == np.float32``, dict keys; not to a string such as ``"float32"``,
which PyTorch's dtypes never equal), reads through to its attributes
(``kind``, ``itemsize``, ``name``) and, because NumPy turns any object with a ``.dtype``
attribute into that dtype, ``np.dtype(torch.float32)``, ``np.zeros(3, torch.float32)`` and
fnarray's own ``canonical_dtype`` accept it unchanged.  There is one object per NumPy
dtype, so ``x.dtype is torch.float32`` holds as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from fnarray.core import bfloat16 as _bf16
from fnarray.core.shapes import is_float

_INTERNED: dict[np.dtype, "dtype"] = {}


class dtype:  # noqa: N801  (PyTorch's name)
    """A PyTorch-style dtype wrapping the ``np.dtype`` in ``.dtype``."""

    __slots__ = ("dtype",)

    def __new__(cls, np_dtype) -> "dtype":
        return as_dtype(np_dtype)

    def __repr__(self) -> str:
        return f"torch.{self.dtype.name}"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        if isinstance(other, dtype):
            return self.dtype == other.dtype
        if other is None or isinstance(other, str):  # torch.float32 == "float32" is False
            return False
        try:
            return self.dtype == np.dtype(other)
        except TypeError:
            return NotImplemented

    def __hash__(self) -> int:
        return hash(self.dtype)

    def __getattr__(self, name: str):
        """``kind``, ``itemsize``, ``name``, ``char``, ``type`` ... of the NumPy dtype."""
        return getattr(object.__getattribute__(self, "dtype"), name)

    def __reduce__(self):
        return as_dtype, (self.dtype.name,)

    @property
    def is_floating_point(self) -> bool:
        return is_float(self.dtype)

    @property
    def is_complex(self) -> bool:
        return self.dtype.kind == "c"

    @property
    def is_signed(self) -> bool:
        return self.dtype.kind in "ifc" or is_float(self.dtype)

    def to_real(self) -> "dtype":
        """``complex64 -> float32``, ``complex128 -> float64``; real dtypes unchanged."""
        kind = self.dtype.kind
        return as_dtype(np.empty(0, self.dtype).real.dtype) if kind == "c" else self

    def to_complex(self) -> "dtype":
        """``float32 -> complex64``, ``float64 -> complex128`` (PyTorch's ``to_complex``)."""
        if self.dtype.kind == "c":
            return self
        if self.dtype.kind != "f":
            raise RuntimeError(f"to_complex is defined for floating dtypes, not {self}")
        return as_dtype(np.complex128 if self.dtype.itemsize == 8 else np.complex64)


def as_dtype(value) -> dtype:
    """The compat ``dtype`` for anything NumPy reads as a dtype (one object per dtype)."""
    if isinstance(value, dtype):
        return value
    np_dtype = _bf16.bfloat16_dtype() if _bf16.is_bfloat16_name(value) else np.dtype(value)
    found = _INTERNED.get(np_dtype)
    if found is None:
        found = object.__new__(dtype)
        found.dtype = np_dtype
        _INTERNED[np_dtype] = found
    return found
