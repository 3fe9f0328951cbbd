"""PyTorch's process defaults: ``set_default_dtype`` and ``set_default_device``.

The default float dtype is process-wide, as in PyTorch (one module-level value, written
under a lock): it is the dtype of float factories (``tensor([1.5])``, ``zeros``, ``rand``,
``arange(0., 3)``), of Python floats meeting integer tensors (``int tensor * 2.5``), of new
``nn`` parameters and of ``Tensor(2, 3)``; the default complex dtype follows it
(``float64 -> complex128``).  fnarray's functional core keeps its own fixed float32
default, so ``fa.*`` code is unaffected.

The default device is per thread, as PyTorch's (its ``_GLOBAL_DEVICE_CONTEXT`` is thread
local): it is the core's default-device slot (``fnarray.core.device``), which every
factory called without ``device=`` already reads.
"""

from __future__ import annotations

import threading

import numpy as np

from fnarray.core import bfloat16 as _bf16
from fnarray.core import device as _device

_FLOAT32 = np.dtype(np.float32)
_lock = threading.Lock()
_float = _FLOAT32  # the default float dtype (a NumPy dtype)


def default_float() -> np.dtype:
    """The current default float dtype as a NumPy dtype (float32 unless changed)."""
    return _float


def default_complex() -> np.dtype:
    """The complex dtype paired with the default float: complex128 for float64, else
    complex64 (fnarray has no complex32, PyTorch's pair for float16)."""
    return np.dtype(np.complex128) if _float == np.float64 else np.dtype(np.complex64)


def _floating(d) -> np.dtype | None:
    """``d`` as a NumPy float dtype PyTorch accepts as the default, else ``None``."""
    if isinstance(d, type) or isinstance(d, str):  # torch rejects ``float`` and "float64"
        return None
    try:
        dt = np.dtype(d)
    except TypeError:
        return None
    if dt in (np.float16, np.float32, np.float64) or _bf16.is_bfloat16(dt):
        return dt
    return None


def set_default_dtype(d) -> None:
    """Make ``d`` (``float32``, ``float64``, ``float16`` or ``bfloat16``) the default float
    dtype; anything else raises ``TypeError`` as PyTorch does."""
    dt = _floating(d)
    if dt is None:
        if isinstance(d, type) or isinstance(d, str):
            raise TypeError("invalid dtype object: only floating-point types are supported as "
                            f"the default type (got {d!r}; pass torch.float32 or torch.float64)")
        raise TypeError(f"only floating-point types are supported as the default type (got "
                        f"{d}; pass torch.float32, torch.float64, torch.float16 or "
                        f"torch.bfloat16)")
    global _float
    with _lock:
        _float = dt


def get_default_dtype():
    """The default float dtype as a ``torch.float32``-style dtype object."""
    from fnarray.compat.dtypes import as_dtype
    return as_dtype(_float)


def set_default_device(device) -> None:
    """New tensors of this thread go to ``device`` (``'cpu'``, ``'cuda[:N]'`` when that GPU
    exists, or ``None`` for the CPU).  Unlike PyTorch, an unavailable GPU is refused here
    rather than at the next factory call."""
    if device is None:
        _device.set_default(None)
        return
    spec = device if isinstance(device, (str, _device.Device)) else str(device)
    if isinstance(spec, str) and spec.partition(":")[0] == "cuda" and not _device.devices()[1:]:
        raise RuntimeError(f"set_default_device({spec!r}): no NVIDIA GPU is available to "
                           f"fnarray (CUDA device count is 0); install the 'gpu' extra on a "
                           f"machine with a GPU, or use 'cpu'")
    try:
        _device.set_default(spec)
    except ValueError as e:
        raise RuntimeError(f"set_default_device: expected a device type such as 'cpu' or "
                           f"'cuda' at the start of the device string: {spec!r} ({e})") from e


def get_default_device():
    """This thread's default device as a ``torch.device``."""
    from fnarray.compat import device
    return device(str(_device.default()))
