"""A NumPy-backed test double of CuPy, for testing fnarray's ``nccl`` backend on machines
without a GPU (tests/test_distributed.py puts ``tests/fake_gpu`` first on ``PYTHONPATH`` of
the MPI worker processes only; nothing else imports it).

"Device memory" is host memory: ``ndarray`` is a NumPy subclass whose ``.data.ptr`` is the
address of its buffer, as CuPy's is a device pointer, so the code under test hands raw
pointers to ``cupy.cuda.nccl`` exactly as it does with the real library.  Array functions
are NumPy's, with results turned back into this ``ndarray``.  ``cupy.cuda`` provides the
device, stream and event objects; ``cupy.cuda.nccl`` implements NCCL's communicator over
mpi4py (see cupy/cuda/nccl.py).
"""

import numpy as _np

from cupy import cuda  # noqa: F401  (cupy.cuda is part of the public face)


class _Memory:
    __slots__ = ("ptr",)

    def __init__(self, ptr: int):
        self.ptr = ptr


class ndarray(_np.ndarray):  # noqa: N801 - CuPy's name
    """A host array posing as device memory on the current fake device."""

    @property
    def data(self):
        return _Memory(self.__array_interface__["data"][0])

    @property
    def device(self):
        return cuda.Device()

    def get(self):
        return _np.asarray(self).copy()


def _wrap(value):
    if isinstance(value, _np.ndarray) and not isinstance(value, ndarray):
        return value.view(ndarray)
    if isinstance(value, _np.generic):
        return _np.asarray(value).view(ndarray)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], _np.ndarray):
        return type(value)(_wrap(v) for v in value)
    return value


def _unwrap(value):
    return value.view(_np.ndarray) if isinstance(value, ndarray) else value


def asarray(value, dtype=None, order=None):
    return _wrap(_np.array(_unwrap(value), dtype=dtype, copy=True))


def asnumpy(value, stream=None):
    return _np.array(_unwrap(value), copy=True)


def __getattr__(name):
    """Every other array function: NumPy's, returning this module's ``ndarray``."""
    target = getattr(_np, name)
    if not callable(target) or isinstance(target, type):
        return target

    def function(*args, **kwargs):
        return _wrap(target(*args, **kwargs))
    function.__name__ = name
    return function
