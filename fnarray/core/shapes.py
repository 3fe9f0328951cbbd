"""Abstract values: shapes, dtypes, weak types, broadcasting and type promotion.

An abstract value (``ShapedArray``) is what every transformation knows about an array
without looking at its numbers.  Promotion within a kind (bool, integer, float, complex)
follows NumPy 2 / the Array API standard's tables.  Across kinds it follows JAX's lattice:
an integer or bool array meeting a float or complex one takes the inexact operand's dtype
(``float32 * int64 -> float32``, not NumPy's ``float64``).  Python (and NumPy) scalars are
*weak*: they decide only the kind of the result, never its width (``float32_array * 2.0``
stays ``float32``; a float scalar meeting an integer array gives the default float).
"""

from __future__ import annotations

import math

import numpy as np

from fnarray.core import bfloat16 as _bf16

bool_ = np.dtype(np.bool_)
int8, int16, int32, int64 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
uint8, uint16, uint32, uint64 = (np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64))
float16, float32, float64 = (np.dtype(t) for t in (np.float16, np.float32, np.float64))
complex64, complex128 = np.dtype(np.complex64), np.dtype(np.complex128)

DEFAULT_FLOAT = float32
DEFAULT_INT = int64
DEFAULT_COMPLEX = complex64

SUPPORTED_DTYPES = frozenset(
    [bool_, int8, int16, int32, int64, uint8, uint16, uint32, uint64,
     float16, float32, float64, complex64, complex128]
)


def canonical_dtype(dtype) -> np.dtype:
    """Turn anything NumPy accepts as a dtype into a supported ``np.dtype`` or raise."""
    if dtype is float:
        return DEFAULT_FLOAT
    if dtype is int:
        return DEFAULT_INT
    if dtype is complex:
        return DEFAULT_COMPLEX
    if dtype is bool:
        return bool_
    if _bf16.is_bfloat16_name(dtype):
        return _bf16.bfloat16_dtype()
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{dtype!r} is not a dtype fnarray understands; use one of "
                        f"{sorted(str(d) for d in SUPPORTED_DTYPES)} or bfloat16") from e
    if dt not in SUPPORTED_DTYPES:
        if _bf16.is_bfloat16(dt):  # an ml_dtypes array or dtype met before fa.bfloat16
            return _bf16.bfloat16_dtype()
        raise TypeError(f"dtype {dt} is not supported by fnarray; supported dtypes are "
                        f"{sorted(str(d) for d in SUPPORTED_DTYPES)}")
    return dt


def is_float(dtype: np.dtype) -> bool:
    """Real floating point, bfloat16 included (its NumPy kind is 'V', see core/bfloat16.py):
    ask this, never ``dtype.kind == "f"``."""
    kind = dtype.kind
    return kind == "f" or (kind == "V" and _bf16.is_bfloat16(dtype))


def is_inexact(dtype: np.dtype) -> bool:
    """Floating or complex, bfloat16 included: ask this, never ``dtype.kind in "fc"``."""
    kind = dtype.kind
    return kind in "fc" or (kind == "V" and _bf16.is_bfloat16(dtype))


def is_differentiable(dtype: np.dtype) -> bool:
    """Only floating and complex values carry tangents and cotangents."""
    return is_inexact(dtype)


class ShapedArray:
    """What a transformation knows about a value: its shape, dtype and weak type."""

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape: tuple, dtype: np.dtype, weak_type: bool = False):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.weak_type = weak_type

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __eq__(self, other):
        return (isinstance(other, ShapedArray) and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))

    def str_short(self) -> str:
        return f"{self.dtype.name}[{','.join(map(str, self.shape))}]"

    def __repr__(self):
        return f"ShapedArray({self.str_short()}{', weak' if self.weak_type else ''})"


class ShapeError(ValueError, RuntimeError):
    """Operand shapes an operation cannot combine (broadcasting, reshape, matmul, concatenate).

    A ``ValueError``, fnarray's convention, and a ``RuntimeError``, which is what PyTorch
    raises for the same mistakes, so code written against either API catches it."""


def broadcast_shapes(*shapes: tuple, op: str = "broadcast") -> tuple:
    """NumPy broadcasting of shapes; the error names the op and every shape."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, d in enumerate(s, ndim - len(s)):
            if d != 1:
                if out[i] != 1 and out[i] != d:
                    shown = " and ".join(str(tuple(x)) for x in shapes)
                    raise ShapeError(
                        f"{op}: shapes {shown} cannot be broadcast together (dimension "
                        f"{i - ndim} is {out[i]} vs {d}); reshape or expand_dims one operand "
                        f"so that each dimension matches or is 1")
                out[i] = d
    return tuple(out)


_KIND_ORDER = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def promote_strong(dtypes) -> np.dtype:
    """The common dtype of strong dtypes: the inexact (float/complex) operands alone decide
    when there are any (JAX's lattice), otherwise the Array API / NumPy tables apply."""
    inexact = [d for d in dtypes if is_inexact(d)]
    pool = inexact or dtypes
    dt = pool[0]
    for d in pool[1:]:
        if d != dt:
            dt = _promote_pair(dt, d)
    return dt


def _promote_pair(a: np.dtype, b: np.dtype) -> np.dtype:
    """NumPy's promotion, plus JAX's rule for the two 16-bit floats (NumPy has no common
    type for bfloat16 and float16): ``bfloat16 + float16 -> float32``."""
    if (_bf16.is_bfloat16(a) or _bf16.is_bfloat16(b)) and float16 in (a, b):
        return float32
    return np.promote_types(a, b)


def _kind_rank(dt: np.dtype) -> int:
    """bool < integer < real float < complex, the order in which weak scalars promote."""
    return 2 if is_float(dt) else _KIND_ORDER[dt.kind]


def result_type(*items) -> np.dtype:
    """Promote dtypes and weak Python scalars the way fnarray's contract says.

    ``items`` are ``np.dtype`` (strong) or Python ``bool/int/float/complex`` values or
    types (weak).  Weak values only decide the *kind* of the result, never its width.
    """
    strong = []
    weak_kind = -1
    for it in items:
        if isinstance(it, np.dtype):
            strong.append(it)
        elif isinstance(getattr(it, "dtype", None), np.dtype) and not isinstance(it, np.generic):
            strong.append(it.dtype)  # a dtype stand-in (the compat layer's ``torch.float32``)
        else:
            t = it if isinstance(it, type) else type(it)
            k = (0 if issubclass(t, bool) else 1 if issubclass(t, int)
                 else 2 if issubclass(t, float) else 3)
            weak_kind = max(weak_kind, k)
    if not strong:
        return {0: bool_, 1: DEFAULT_INT, 2: DEFAULT_FLOAT, 3: DEFAULT_COMPLEX}[weak_kind]
    dt = promote_strong(strong)
    if weak_kind > _kind_rank(dt):
        if weak_kind == 1:
            dt = DEFAULT_INT
        elif weak_kind == 2:
            dt = DEFAULT_FLOAT if dt.kind in "biu" else dt
        else:
            dt = np.promote_types(dt if is_float(dt) else DEFAULT_FLOAT, DEFAULT_COMPLEX)
    return dt
