"""``eval_shape``: the shapes and dtypes of a function's result, computed by tracing it on
abstract values — nothing is computed and no input-sized buffer is allocated, so it
answers instantly even for arrays that would not fit in memory."""

from __future__ import annotations

from typing import Callable

import numpy as np

from fnarray.core import tree as tree_util
from fnarray.core.array import ArrayBase
from fnarray.core.shapes import ShapedArray


class ShapeDtypeStruct:
    """A stand-in for an array of the given shape and dtype (``eval_shape``'s inputs and
    outputs)."""

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape, dtype, weak_type: bool = False):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = bool(weak_type)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __eq__(self, other):
        return (isinstance(other, ShapeDtypeStruct) and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))

    def __repr__(self):
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name}{weak})"


def _aval(x) -> ShapedArray:
    if isinstance(x, ArrayBase):
        return x.aval
    if isinstance(x, (bool, int, float, complex)):
        from fnarray import api as fa
        return fa.asarray(x).aval
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return ShapedArray(tuple(x.shape), np.dtype(x.dtype), bool(getattr(x, "weak_type", False)))
    raise TypeError(f"eval_shape: argument leaf of type {type(x).__name__} has no shape and "
                    f"dtype; pass arrays or fa.ShapeDtypeStruct(shape, dtype)")


def eval_shape(fun: Callable, *args, **kwargs):
    """``fun(*args, **kwargs)``'s output structure with a ``ShapeDtypeStruct`` per array
    leaf.  Arguments may be arrays, ``ShapeDtypeStruct``s or anything with ``shape`` and
    ``dtype``."""
    from fnarray.core.device import default
    from fnarray.transforms.subprogram import out_avals, trace_closed
    leaves, in_tree = tree_util.flatten((args, kwargs))
    out_tree: list = []

    def flat(*xs):
        a, k = tree_util.unflatten(in_tree, xs)
        o_leaves, o_tree = tree_util.flatten(fun(*a, **k))
        out_tree.append(o_tree)
        return o_leaves

    prog, _ = trace_closed(flat, [_aval(x) for x in leaves], default(), "eval_shape")
    return tree_util.unflatten(out_tree[-1], [ShapeDtypeStruct(a.shape, a.dtype, a.weak_type)
                                              for a in out_avals(prog)])
