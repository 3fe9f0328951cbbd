"""PyTorch's type promotion for the compat layer's binary operations.

PyTorch promotes by *category* (bool < integer < floating < complex) and by operand
class: dimensioned tensors, then 0-d tensors, then Python/NumPy scalars.  A class only
changes the result when it brings a higher category, so ``float32 tensor * float64 0-d
tensor`` stays float32, ``int tensor * 2.5`` is the default float (``set_default_dtype``), and
``int32 tensor * tensor(5)`` stays int32.  NumPy's value-free rules would give float64 or
int64 in these cases.

``operands(a, b)`` casts tensor operands to the PyTorch result dtype before the core
operation runs (Python scalars stay weak: the core gives them the tensors' dtype), so the
core's own promotion has nothing left to decide.
"""

from __future__ import annotations

import numpy as np

from fnarray import api as fa
from fnarray.compat.defaults import default_complex, default_float
from fnarray.core.array import ArrayBase
from fnarray.core.shapes import is_float, promote_strong

_FLOAT32 = np.dtype(np.float32)
_INT64, _BOOL = np.dtype(np.int64), np.dtype(np.bool_)


def _wrapped(kind: str) -> np.dtype:
    """The dtype a Python scalar of NumPy ``kind`` stands for (PyTorch's defaults)."""
    if kind == "f":
        return default_float()
    return default_complex() if kind == "c" else _BOOL if kind == "b" else _INT64


_PLAIN = frozenset({int, float, bool, complex})
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _promote(a, b):
    """PyTorch's ``promote_types``: across categories the higher one's dtype wins
    (``int64 + float32 -> float32``; complex widens to hold a float64); within one
    category the wider type, as NumPy."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    ca, cb = _category(a), _category(b)
    if ca == cb:  # bfloat16 + float16 -> float32, as torch.promote_types
        return promote_strong([a, b])
    high, low = (a, b) if ca > cb else (b, a)
    if high.kind == "c" and is_float(low):
        return np.promote_types(high, low)
    return high


def _category(dt) -> int:
    """bool 0, integer 1, floating 2 (bfloat16 included), complex 3."""
    return 2 if is_float(dt) else _CATEGORY[dt.kind]


def _combine(higher, lower):
    """PyTorch's ``combine_categories``: ``lower`` matters only with a higher category."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.kind == "c":
        return higher
    if lower.kind == "c":
        return np.result_type(higher, np.complex64) if is_float(higher) else lower
    if is_float(higher):
        return higher
    if higher.kind == "b" or is_float(lower):
        return _promote(higher, lower)
    return higher


_TORCH_NAMES = {"float64": "Double", "float32": "Float", "float16": "Half",
                "bfloat16": "BFloat16", "int64": "Long", "int32": "Int", "int16": "Short",
                "int8": "Char", "uint8": "Byte", "bool": "Bool", "complex64": "ComplexFloat",
                "complex128": "ComplexDouble"}


def torch_name(dtype) -> str:
    """PyTorch's scalar-type name for ``dtype`` (``Float``, ``Double``, ``Long``, ...)."""
    name = np.dtype(dtype).name
    return _TORCH_NAMES.get(name, name)


def can_cast(src, dst) -> bool:
    """PyTorch's ``canCast`` for in-place results: never complex to real, floating to
    integral, or anything but bool to bool."""
    src, dst = np.dtype(src), np.dtype(dst)
    if src.kind == "c" and dst.kind != "c":
        return False
    if is_float(src) and dst.kind in "iu":
        return False
    return not (src.kind != "b" and dst.kind == "b")


def result_type(*operands) -> np.dtype:
    """The dtype PyTorch gives a binary (or n-ary) operation on ``operands``."""
    dim = zero = wrapped = None
    for x in operands:
        if isinstance(x, ArrayBase):
            if x.ndim:
                dim = _promote(dim, x.dtype)
            else:
                zero = _promote(zero, x.dtype)
        else:
            kind = "b" if isinstance(x, (bool, np.bool_)) else np.asarray(x).dtype.kind
            wrapped = _promote(wrapped, _wrapped(kind))
    return _combine(dim, _combine(zero, wrapped))


def operands(a, b):
    """``a, b`` ready for the core: tensors cast to PyTorch's result dtype, NumPy scalars
    as Python scalars (weak, like PyTorch's wrapped numbers)."""
    if type(b) in _PLAIN or type(a) in _PLAIN:  # the core already treats these as weak
        return (a, b) if default_float() is _FLOAT32 else _scalar_operands(a, b)
    if isinstance(a, ArrayBase) and isinstance(b, ArrayBase):
        if a.dtype == b.dtype:
            return a, b
        dt = result_type(a, b)
        return (a if a.dtype == dt else fa.astype(a, dt),
                b if b.dtype == dt else fa.astype(b, dt))
    if isinstance(a, np.generic):
        a = a.item()
    if isinstance(b, np.generic):
        b = b.item()
    return a, b


def float_input(x):
    """An integer or bool tensor ``x`` cast to the default float when that is not float32,
    for functions whose result is floating (``sqrt``, ``exp``, true division): the core
    computes those in its own float32 default, PyTorch in ``get_default_dtype()``."""
    if default_float() is _FLOAT32 or not isinstance(x, ArrayBase) or x.dtype.kind not in "biu":
        return x
    return fa.astype(x, default_float())


def _scalar_operands(a, b):
    """A tensor and a Python scalar under a default float other than float32: the core
    would give ``int tensor * 2.5`` its own float32 default, so a tensor of a lower
    category than the scalar is cast to PyTorch's result dtype first (float64 with
    ``set_default_dtype(torch.float64)``); the scalar stays weak."""
    t = a if isinstance(a, ArrayBase) else b
    if not isinstance(t, ArrayBase):
        return a, b
    dt = result_type(a, b)
    if dt == t.dtype:
        return a, b
    cast = fa.astype(t, dt)
    return (cast, b) if t is a else (a, cast)
