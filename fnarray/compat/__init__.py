"""``import fnarray.compat as torch``: PyTorch-style tensors on fnarray's functional core.

There is one autodiff engine: tensors that require grad are tracers of a global reverse
trace (``tape.py``), so ``loss.backward()`` runs the same primitive rules as ``fa.vjp``.
"""

import sys as _sys

import numpy as _np

from fnarray.compat import _aliases
from fnarray.core import device as _core_device
from fnarray.compat import amp, autograd, backends, cuda, linalg, return_types, testing  # noqa: F401,E501
from fnarray.compat import autograd_functional as _autograd_functional
from fnarray.compat.amp import autocast, is_autocast_enabled  # noqa: F401
from fnarray.compat.formatting import set_printoptions  # noqa: F401
from fnarray.compat.function import Function as _Function
from fnarray.compat.functional import *  # noqa: F401,F403
from fnarray.compat.grad_mode import (enable_grad, inference_mode, is_grad_enabled,  # noqa: F401
                                      is_inference_mode_enabled, no_grad, set_grad_enabled)
from fnarray.compat.ops import FUNCTIONS as _FUNCTIONS
from fnarray.compat import ops_build, ops_extra, ops_scatter, ops_select, ops_stats, tensor_methods_misc  # noqa: F401,E501  (register ops)
from fnarray.compat.random import Generator, default_generator, initial_seed, manual_seed  # noqa: F401,E501
from fnarray.compat.tensor import Size, Tensor  # noqa: F401
from fnarray.compat.compiler import compile  # noqa: F401,A004
from fnarray.compat.defaults import (get_default_device, get_default_dtype,  # noqa: F401
                                     set_default_device, set_default_dtype)
from fnarray.compat.dtypes import as_dtype as _as_dtype, dtype  # noqa: F401
from fnarray.compat.out import with_out as _with_out
from fnarray.compat import gradcheck as _gradcheck  # noqa: F401  (autograd.gradcheck below)
from fnarray.compat.runtime import (  # noqa: F401
    can_cast, get_float32_matmul_precision, is_nonzero, promote_types, result_type,
    set_float32_matmul_precision, typename)

globals().update({_k: _with_out(_k, _f) for _k, _f in _FUNCTIONS.items()})  # + out=
_builtin_int = type(0)  # ``int`` below is the dtype, as in PyTorch

float32 = float = _as_dtype(_np.float32)  # noqa: A001
float64 = double = _as_dtype(_np.float64)
float16 = half = _as_dtype(_np.float16)
int8 = _as_dtype(_np.int8)
int16 = short = _as_dtype(_np.int16)
int32 = int = _as_dtype(_np.int32)  # noqa: A001
int64 = long = _as_dtype(_np.int64)
uint8 = _as_dtype(_np.uint8)
bool = _as_dtype(_np.bool_)  # noqa: A001
complex64 = cfloat = _as_dtype(_np.complex64)
complex128 = cdouble = _as_dtype(_np.complex128)
pi, e, inf, nan = _np.pi, _np.e, _np.inf, _np.nan
strided = "strided"


def is_tensor(obj) -> "bool":
    return isinstance(obj, Tensor)


def numel(input) -> "int":
    return input.numel()


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

    def __enter__(self):
        """``with torch.device('cpu'):`` new tensors of the block go to this device."""
        self._saved = getattr(self, "_saved", [])
        self._saved.append(_core_device.default())
        set_default_device(self)
        return self

    def __exit__(self, *exc):
        _core_device.set_default(self._saved.pop())


def save(obj, f, **kwargs):
    """Save tensors, arrays and containers (``fnarray.io.save``; no pickle)."""
    from fnarray import io
    return io.save(obj, f, **kwargs)


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None,
         **pickle_load_args):
    """Load what ``save`` wrote (``fnarray.io.load``).  The format holds only data and
    never runs code, so every load is what PyTorch's ``weights_only=True`` asks for;
    ``map_location`` may be a device, a name, a dict or a function, as in PyTorch."""
    from fnarray import io
    if isinstance(map_location, device):
        map_location = str(map_location)
    elif isinstance(map_location, dict):
        map_location = {str(k): str(v) for k, v in map_location.items()}
    return io.load(f, map_location=map_location)


# --- reach: the rest of ``torch`` under the compat name (see _aliases) ----------------------

_aliases.install()
autograd.Function = _Function
autograd.gradcheck = _sys.modules["fnarray.compat.gradcheck"].gradcheck
autograd.GradcheckError = _sys.modules["fnarray.compat.gradcheck"].GradcheckError
autograd.functional = _autograd_functional
autograd.function = _sys.modules["fnarray.compat.function"]
autograd.__path__ = []  # importable as a package: ``from torch.autograd.functional import``
__version__ = "2.13.0+fnarray"  # the PyTorch API release this layer follows
_LAZY = {"nn": "fnarray.nn", "optim": "fnarray.optim", "utils": "fnarray.compat.utils",
         "onnx": "fnarray.onnx", "distributed": "fnarray.distributed",
         "accelerator": "fnarray.compat.accelerator", "fft": "fnarray.compat.fft",
         "special": "fnarray.compat.special", "version": "fnarray.compat.version"}


def __getattr__(name):
    """``torch.nn``, ``torch.optim``, ``torch.utils``, ``torch.onnx``: imported on first use (they import
    this package themselves); ``torch.bfloat16`` likewise."""
    if name == "bfloat16":  # imports the optional ml_dtypes package (core/bfloat16.py)
        from fnarray.core.bfloat16 import bfloat16_dtype
        globals()["bfloat16"] = _as_dtype(bfloat16_dtype())
        return globals()["bfloat16"]
    if name in _LAZY:
        import importlib
        module = importlib.import_module(_LAZY[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'fnarray.compat' has no attribute {name!r}")


_threads = {"n": None}


def set_num_threads(n: int) -> None:
    """Limit the threads of NumPy's BLAS/OpenMP pools (through ``threadpoolctl`` when it
    is installed) and of fnarray's compiled kernels; the number is remembered either way."""
    n = _builtin_int(n)
    if n < 1:
        raise RuntimeError(f"set_num_threads expects a positive integer, got {n}")
    _threads["n"] = n
    from fnarray.backends import accel
    accel.set_num_threads(n)
    try:
        import threadpoolctl
    except ImportError:
        return
    threadpoolctl.threadpool_limits(n)


def get_num_threads() -> "int":
    """The number set by ``set_num_threads`` (else the BLAS pool size, else the CPUs)."""
    if _threads["n"] is not None:
        return _threads["n"]
    try:
        import threadpoolctl
        sizes = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
        if sizes:
            return max(sizes)
    except ImportError:
        pass
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)


def get_rng_state() -> Tensor:
    """The default generator's state as a uint8 tensor (``set_rng_state`` takes it back)."""
    key = default_generator.get_state()
    if key is None:
        from fnarray.api import random as _fr
        key = _fr.key(default_generator.initial_seed())
    return Tensor(_np.frombuffer(_np.asarray(key).tobytes(), dtype=_np.uint8).copy())


def set_rng_state(new_state) -> None:
    """Restore a state from ``get_rng_state``: later draws repeat."""
    from fnarray import api as _fa
    raw = _np.asarray(new_state.numpy() if isinstance(new_state, Tensor) else new_state,
                      dtype=_np.uint8)
    if raw.size != 8:
        raise RuntimeError(f"set_rng_state: expected the 8-byte state get_rng_state() "
                           f"returns, got {raw.size} bytes")
    default_generator.set_state(_fa.asarray(_np.frombuffer(raw.tobytes(), _np.uint32)))


_random_module = _sys.modules["fnarray.compat.random"]  # torch.random.get/set_rng_state
_random_module.get_rng_state, _random_module.set_rng_state = get_rng_state, set_rng_state


class _TensorTypeMeta(type):
    """``isinstance(t, torch.FloatTensor)`` is true for float32 tensors."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype


def _tensor_type(name: str, dt):
    def new(cls, *args, device=None):
        return Tensor(*args, dtype=dt, device=device) if args and not (
            len(args) == 1 and isinstance(args[0], (list, tuple, Tensor, _np.ndarray))) \
            else Tensor(_np.asarray(args[0] if args else [], dtype=dt), device=device)
    return _TensorTypeMeta(name, (), {"dtype": dt, "__new__": new,
                                      "__doc__": f"Legacy ``torch.{name}``: tensors of "
                                                 f"{dt.name}."})


FloatTensor = _tensor_type("FloatTensor", float32)
DoubleTensor = _tensor_type("DoubleTensor", float64)
HalfTensor = _tensor_type("HalfTensor", float16)
LongTensor = _tensor_type("LongTensor", int64)
IntTensor = _tensor_type("IntTensor", int32)
ShortTensor = _tensor_type("ShortTensor", int16)
CharTensor = _tensor_type("CharTensor", int8)
ByteTensor = _tensor_type("ByteTensor", uint8)
BoolTensor = _tensor_type("BoolTensor", bool)
