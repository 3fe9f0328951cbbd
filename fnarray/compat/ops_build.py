"""Searching sorted tensors and building tensors from others, under PyTorch names:
``searchsorted``, ``bucketize``, ``cross`` (with PyTorch's default ``dim``), ``block_diag``,
``cartesian_prod``, ``combinations`` and ``vander``.

Everything is a composition of recorded fnarray operations (shapes depend only on shapes),
so results carry gradients where PyTorch's do and the functions trace under ``compile``.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from fnarray import api as fa
from fnarray.compat.ops import FUNCTIONS, METHODS
from fnarray.compat.tensor import Tensor


def _count_below(sorted_sequence, values, right: bool):
    """For each value, how many entries of the sorted last axis are ``<`` it (``<=`` when
    ``right``): the insertion index.  Leading axes of ``sorted_sequence`` pair with those of
    ``values``; a 1-D sequence serves every value."""
    seq = fa.expand_dims(sorted_sequence, -2) if sorted_sequence.ndim > 1 else sorted_sequence
    below = seq <= fa.expand_dims(values, -1) if right else seq < fa.expand_dims(values, -1)
    return fa.sum(fa.astype(below, np.int64), axis=-1)


def searchsorted(sorted_sequence, values, *, out_int32: bool = False, right: bool = False,
                 side: str | None = None, sorter=None):
    """Indices at which ``values`` would be inserted to keep the last axis sorted."""
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but "
                               f"got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, "
                               "got side of left while right was True")
        right = side == "right"
    if sorter is not None:
        sorted_sequence = fa.take_along_axis(sorted_sequence, sorter, axis=-1)
    scalar = not isinstance(values, Tensor)
    values = fa.asarray(values) if scalar else values
    out = _count_below(sorted_sequence, values, right)
    return fa.astype(out, np.int32) if out_int32 else out


def bucketize(input, boundaries, *, out_int32: bool = False, right: bool = False):
    """The bucket of each element: ``boundaries[i-1] < x <= boundaries[i]`` (``right=False``)
    or ``boundaries[i-1] <= x < boundaries[i]``."""
    out = _count_below(boundaries, input, right)
    return fa.astype(out, np.int32) if out_int32 else out


def cross(input, other, dim: int | None = None):
    """The cross product along ``dim``; without ``dim``, the first dimension of size 3 (with
    PyTorch's deprecation warning)."""
    from fnarray.compat import linalg
    if dim is None:
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated.\n"
                      "Please either pass the dim explicitly or simply use torch.linalg.cross."
                      "\nThe default value of dim will change to agree with that of "
                      "linalg.cross in a future release.", UserWarning, stacklevel=2)
        shape = fa.broadcast_shapes(tuple(input.shape), tuple(other.shape))
        dim = next((i for i, n in enumerate(shape) if n == 3), None)
        if dim is None:
            raise RuntimeError(f"no dimension of size 3 in input (shapes {list(input.shape)} "
                               f"and {list(other.shape)})")
    return linalg.cross(input, other, dim=dim)


def block_diag(*tensors):
    """The tensors (scalars and vectors as one-row matrices) on the diagonal of a matrix."""
    blocks = [t.reshape(1, 1) if t.ndim == 0 else t.reshape(1, -1) if t.ndim == 1 else t
              for t in tensors]
    if any(b.ndim != 2 for b in blocks):
        raise RuntimeError("torch.block_diag: Input tensors must have 2 or fewer dimensions")
    width = sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        right = width - left - b.shape[1]
        rows.append(fa.pad(b, ((0, 0), (left, right))))
        left += b.shape[1]
    return fa.concatenate(rows, axis=0)


def cartesian_prod(*tensors):
    """All tuples of one element from each 1-D tensor, in order (one tensor: itself)."""
    if len(tensors) == 1:
        return tensors[0]
    grids = fa.meshgrid(*tensors, indexing="ij")
    return fa.stack([fa.reshape(g, (-1,)) for g in grids], axis=1)


def combinations(input, r: int = 2, with_replacement: bool = False):
    """The ``r``-element combinations of a 1-D tensor's elements, one per row."""
    pick = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    index = np.array(list(pick(range(input.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    if index.size == 0:
        return fa.zeros((0,) if r else (0,), dtype=input.dtype)
    return fa.take(input, fa.asarray(index), axis=0)


def vander(x, N: int | None = None, increasing: bool = False):
    """Columns are powers of ``x``: ``x^(N-1) ... x^0`` (``increasing``: ``x^0 ...``)."""
    n = x.shape[0] if N is None else N
    powers = range(n) if increasing else range(n - 1, -1, -1)
    return fa.stack([x ** p if p else fa.ones_like(x) for p in powers], axis=1)


for _f in (searchsorted, bucketize, cross, block_diag, cartesian_prod, combinations, vander):
    FUNCTIONS.setdefault(_f.__name__, _f)
for _name in ("cross",):
    METHODS.setdefault(_name, FUNCTIONS[_name])
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, FUNCTIONS[_name])
