"""Devices: where an array's buffer lives, and the default-device context.

A ``Device`` pairs a backend (an array module such as NumPy or CuPy) with an index.
Operations never move data implicitly: mixing devices raises ``ValueError``.
"""

from __future__ import annotations

import contextlib
import threading

from fnarray.backends import cupy as _cupy_backend
from fnarray.backends import numpy as _numpy_backend


class Device:
    """A place arrays live: ``Device('cpu')`` or ``Device('cuda', 0)``."""

    __slots__ = ("platform", "index", "backend", "xp")

    def __init__(self, platform: str, index: int, backend):
        self.platform = platform
        self.index = index
        self.backend = backend
        self.xp = backend.xp

    @property
    def type(self) -> str:
        """The platform name, as ``torch.device.type`` reads it (``'cpu'``, ``'cuda'``)."""
        return self.platform

    def __repr__(self):
        return "cpu" if self.platform == "cpu" else f"{self.platform}:{self.index}"

    __str__ = __repr__

    def __reduce__(self):
        return (get_device, (repr(self),))


CPU = Device("cpu", 0, _numpy_backend)
_CUDA = [Device("cuda", i, _cupy_backend) for i in range(_cupy_backend.device_count())]


def devices() -> list[Device]:
    """Every usable device: the CPU, then each GPU CuPy can see."""
    return [CPU, *_CUDA]


def get_device(spec) -> Device:
    """Resolve ``'cpu'``, ``'cuda'``, ``'cuda:1'``, a ``Device`` or ``None`` (default)."""
    if spec is None:
        return default()
    if isinstance(spec, Device):
        return spec
    name = getattr(spec, "type", None)
    if name is not None and not isinstance(spec, str):  # e.g. fnarray.compat.device
        spec = str(spec)
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string like 'cpu' or 'cuda:0' or a Device, "
                        f"not {type(spec).__name__}")
    platform, _, idx = spec.partition(":")
    if platform == "cpu":
        return CPU
    if platform in ("cuda", "gpu"):
        i = int(idx) if idx else 0
        if i >= len(_CUDA):
            raise RuntimeError(
                f"device {spec!r} is not available: fnarray sees {len(_CUDA)} CUDA device(s). "
                f"Install the 'gpu' extra (pip install fnarray[gpu]) on a machine with a GPU, "
                f"or use 'cpu'")
        return _CUDA[i]
    raise ValueError(f"unknown device {spec!r}; use 'cpu' or 'cuda[:N]'")


_local = threading.local()


def default() -> Device:
    return getattr(_local, "device", CPU)


def set_default(spec) -> None:
    """Make ``spec`` this thread's default device until changed (``None``: the CPU)."""
    _local.device = CPU if spec is None else get_device(spec)


@contextlib.contextmanager
def default_device(spec):
    """Within the block, new arrays are created on ``spec``."""
    prev = default()
    _local.device = get_device(spec)
    try:
        yield _local.device
    finally:
        _local.device = prev


def device_of_buffer(value) -> Device:
    """The device holding a raw backend buffer."""
    if _CUDA and _cupy_backend.cupy is not None and isinstance(value, _cupy_backend.cupy.ndarray):
        return _CUDA[value.device.id]  # pragma: no cover
    return CPU
