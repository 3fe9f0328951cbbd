"""Recognising and building compat tensors without importing the compat layer eagerly.

The data layer and ``fa.save``/``fa.load`` sit below ``fnarray.compat`` but must hand
tensors back to PyTorch-style code.  They never import the compat layer at module import
time: a tensor is recognised by its shape (a handle with an ``array`` attribute holding a
core ``Array`` and a ``requires_grad`` flag), and tensors are built through
``fnarray.compat.tensor`` only when that package exists and provides it.
"""

from __future__ import annotations

import importlib

import numpy as np

from fnarray.core.array import Array


def compat_module():
    """``fnarray.compat`` when it is importable and provides ``tensor``, else ``None``."""
    try:
        module = importlib.import_module("fnarray.compat")
    except ImportError:
        return None
    return module if callable(getattr(module, "tensor", None)) else None


def is_tensor(x) -> bool:
    """True for a compat tensor (or any handle shaped like one)."""
    return (not isinstance(x, Array) and isinstance(getattr(x, "array", None), Array)
            and hasattr(x, "requires_grad"))


def to_numpy(x) -> np.ndarray:
    """The values of an ``Array``, a tensor or anything NumPy accepts, on the host."""
    if is_tensor(x):
        x = x.array
    return np.asarray(x)


def wrap_array(array: Array, as_tensor: bool, requires_grad: bool = False):
    """``array`` as a compat tensor when ``as_tensor`` and the compat layer exists.  The
    tensor holds ``array`` itself (arrays never change, so there is nothing to copy: a
    DataLoader batch used to be copied once more here)."""
    module = compat_module() if as_tensor else None
    if module is None:
        return array
    if not requires_grad:
        return module.as_tensor(array)
    return module.tensor(array, requires_grad=requires_grad)


def from_numpy(value: np.ndarray, device=None, as_tensor: bool = False):
    """A fresh host buffer as an ``Array`` (no copy on the CPU) or a tensor."""
    import fnarray as fa
    array = fa.asarray(value, copy=False)
    if device is not None and str(device) != "cpu":
        array = fa.device_put(array, device)
    return wrap_array(array, as_tensor)
