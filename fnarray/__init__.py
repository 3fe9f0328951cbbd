"""fnarray: composable function transformations on immutable arrays (NumPy or CuPy),
with a PyTorch-style training layer on top.  See README.md and API.md."""

# first, before NumPy loads OpenBLAS: importing it sets its thread timeout (fnarray/_openblas.py)
from fnarray import _openblas  # noqa: F401
from fnarray.core import tree  # noqa: F401
from fnarray.core.array import Array  # noqa: F401
from fnarray.core.device import Device, default_device, devices  # noqa: F401
from fnarray.core.shapes import (  # noqa: F401
    bool_, complex64, complex128, float16, float32, float64, int8, int16, int32, int64,
    uint8, uint16, uint32, uint64)
from fnarray.core.trace import ConcretizationError, UnexpectedTracerError  # noqa: F401
from fnarray.api import *  # noqa: F401,F403
from fnarray import random  # noqa: E402,F401
from fnarray.api import abs, all, any, max, min, pow, round, sum  # noqa: F401,A004
from fnarray.transforms import *  # noqa: F401,F403
from fnarray.api.control_flow import cond, fori_loop, map, scan, switch, while_loop  # noqa: F401,E402,A004
from fnarray.transforms.eval_shape import ShapeDtypeStruct, eval_shape  # noqa: F401,E402
from fnarray.callbacks import pure_callback  # noqa: F401,E402
from fnarray import debug, tree_util  # noqa: F401,E402
from fnarray import fft, linalg  # noqa: F401,E402
from fnarray.io import SerializationError, load, save  # noqa: F401,E402
from fnarray import _malloc  # noqa: E402

_malloc.tune()  # large buffers recycled without page faults (glibc; see fnarray/_malloc.py)

bool = bool_  # noqa: A001 - Array API dtype name
__array_namespace_info__ = array_namespace_info  # noqa: F405
__version__ = "0.1.0"
__array_api_version__ = "2023.12"
newaxis = None
e, pi, inf, nan = 2.718281828459045, 3.141592653589793, float("inf"), float("nan")


def __getattr__(name):
    """``fa.bfloat16`` is looked up here so that only code using it imports the optional
    ``ml_dtypes`` package (see ``fnarray/core/bfloat16.py``)."""
    if name == "bfloat16":
        from fnarray.core.bfloat16 import bfloat16_dtype
        return bfloat16_dtype()
    raise AttributeError(f"module 'fnarray' has no attribute {name!r}")
