"""Process-wide switches and small queries of the ``torch`` namespace: float32 matmul
precision, dtype promotion queries (``promote_types``, ``result_type``, ``can_cast``),
``is_nonzero`` and ``typename``.

``set_float32_matmul_precision`` only records its value: it chooses TF32 or bfloat16
arithmetic on NVIDIA GPUs, and fnarray computes float32 products in float32 everywhere.
"""

from __future__ import annotations

import warnings

import numpy as np

from fnarray.compat import promotion
from fnarray.compat.dtypes import as_dtype

_PRECISIONS = ("highest", "high", "medium")
_matmul_precision = {"value": "highest"}


def set_float32_matmul_precision(precision: str) -> None:
    if precision not in _PRECISIONS:
        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current"
                      f"setFloat32MatmulPrecision call has no effect.", UserWarning,
                      stacklevel=2)
        return
    _matmul_precision["value"] = precision


def get_float32_matmul_precision() -> str:
    return _matmul_precision["value"]


def promote_types(type1, type2):
    """The dtype PyTorch promotes two dtypes to (categories first, then width)."""
    return as_dtype(promotion._promote(np.dtype(type1), np.dtype(type2)))


def result_type(tensor1, tensor2):
    """The dtype of an arithmetic operation on the operands (tensors or numbers), with
    PyTorch's rules (dimensioned tensors over 0-d ones over Python numbers)."""
    return as_dtype(promotion.result_type(tensor1, tensor2))


def can_cast(from_, to) -> bool:
    """Whether an in-place result of dtype ``from_`` may be written into ``to``."""
    return promotion.can_cast(from_, to)


def is_nonzero(input) -> bool:
    """The truth of a one-element tensor."""
    if input.numel() != 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous"
                           if input.numel() else
                           "Boolean value of Tensor with no values is ambiguous")
    return bool(input.item() != 0)


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
               "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor",
               "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor",
               "bool": "BoolTensor", "complex64": "ComplexFloatTensor",
               "complex128": "ComplexDoubleTensor"}


def typename(obj) -> str:
    """``torch.FloatTensor`` for a float32 tensor, else the object's type name."""
    from fnarray.compat.tensor import Tensor
    if isinstance(obj, Tensor):
        return "torch." + _TYPE_NAMES.get(np.dtype(obj.dtype).name, "Tensor")
    cls = type(obj)
    return cls.__qualname__ if cls.__module__ == "builtins" else \
        f"{cls.__module__}.{cls.__qualname__}"
