"""``import fnarray.compat as torch``: PyTorch-style tensors on fnarray's functional core.

There is one autodiff engine: tensors that require grad are tracers of a global reverse
trace (``tape.py``), so ``loss.backward()`` runs the same primitive rules as ``fa.vjp``.
"""

import numpy as _np

from fnarray.compat import autograd, cuda, linalg, return_types  # noqa: F401
from fnarray.compat.functional import *  # noqa: F401,F403
from fnarray.compat.grad_mode import (enable_grad, inference_mode, is_grad_enabled,  # noqa: F401
                                      no_grad, set_grad_enabled)
from fnarray.compat.ops import FUNCTIONS as _FUNCTIONS
from fnarray.compat import ops_scatter, ops_select, ops_stats, tensor_methods_misc  # noqa: F401,E501  (register ops)
from fnarray.compat.random import Generator, default_generator, initial_seed, manual_seed  # noqa: F401,E501
from fnarray.compat.tensor import Size, Tensor  # noqa: F401

globals().update(_FUNCTIONS)
_builtin_int = type(0)  # ``int`` below is the dtype, as in PyTorch

float32 = float = _np.dtype(_np.float32)  # noqa: A001
float64 = double = _np.dtype(_np.float64)
float16 = half = _np.dtype(_np.float16)
int8 = _np.dtype(_np.int8)
int16 = short = _np.dtype(_np.int16)
int32 = int = _np.dtype(_np.int32)  # noqa: A001
int64 = long = _np.dtype(_np.int64)
uint8 = _np.dtype(_np.uint8)
bool = _np.dtype(_np.bool_)  # noqa: A001
complex64 = cfloat = _np.dtype(_np.complex64)
complex128 = cdouble = _np.dtype(_np.complex128)
pi, e, inf, nan = _np.pi, _np.e, _np.inf, _np.nan
strided = "strided"


def is_tensor(obj) -> "bool":
    return isinstance(obj, Tensor)


def numel(input) -> "int":
    return input.numel()


def get_default_dtype():
    return float32


class device:
    """``device('cuda')``, ``device('cpu')``, ``device('cuda', 1)``: a device name.

    ``str(device)`` is what ``Tensor.device`` prints (``cpu``, ``cuda:0``)."""

    def __init__(self, type, index=None):  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index
        type = str(type)
        if ":" in type:
            type, idx = type.split(":")
            index = _builtin_int(idx)
        self.type, self.index = type, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __eq__(self, other):
        return str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


def save(obj, f, **kwargs):
    """Save tensors, arrays and containers (``fnarray.io.save``; no pickle)."""
    from fnarray import io
    return io.save(obj, f, **kwargs)


def load(f, map_location=None, **kwargs):
    """Load what ``save`` wrote (``fnarray.io.load``)."""
    from fnarray import io
    return io.load(f, map_location=map_location, **kwargs)
