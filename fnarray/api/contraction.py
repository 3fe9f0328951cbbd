"""Products and contractions, all built on the ``dot_general`` primitive."""

from __future__ import annotations

import numpy as np

from fnarray.api._convert import as_operand, promote
from fnarray.core.shapes import ShapeError, broadcast_shapes
from fnarray.ops.linalg import dot_general


def _dot(a, b, ca, cb, ba=(), bb=()):
    return dot_general.bind(a, b, contract=(tuple(ca), tuple(cb)), batch=(tuple(ba), tuple(bb)))


def matmul(x1, x2):
    """Matrix product with NumPy's rules for 1-D operands and broadcast batch axes."""
    a, b = promote("matmul", x1, x2)
    a_ndim, b_ndim, a_shape, b_shape = a.ndim, b.ndim, a.shape, b.shape
    if a_ndim == 0 or b_ndim == 0:
        raise ValueError(f"matmul: operands must be at least 1-D, got shapes {a_shape} and "
                         f"{b_shape}; use multiply for scalars")
    if a_shape[-1] != b_shape[-2 if b_ndim > 1 else 0]:
        raise ShapeError(
            f"matmul: shapes {a_shape} and {b_shape} are not aligned: the last axis of the "
            f"first ({a_shape[-1]}) must equal the {'second-to-last' if b_ndim > 1 else 'only'} "
            f"axis of the second ({b_shape[-2 if b_ndim > 1 else 0]})")
    if b_ndim <= 2:
        # ``a``'s leading axes are free axes of one contraction (no broadcast ``b``): one
        # GEMM over all their rows, and the cotangent of ``b`` (a layer's weight applied to
        # a batch of sequences) is one GEMM too, in ``b``'s layout, with no summing over a
        # broadcast batch.
        return dot_general.bind(a, b, contract=((a_ndim - 1,), (0,)), batch=((), ()))
    if a_ndim == 1:
        out = _dot(a, b, (0,), (b.ndim - 2,))
        return out
    from fnarray.api.manipulation import broadcast_to, reshape  # (import cycle; batched only)
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], op="matmul")
    a = broadcast_to(a, batch + a.shape[-2:])
    b = broadcast_to(b, batch + b.shape[-2:])
    nb = len(batch)
    out = _dot(a, b, (nb + 1,), (nb,), range(nb), range(nb))
    return reshape(out, out.shape)


def dot(a, b):
    """NumPy ``dot``: sum over the last axis of ``a`` and second-to-last of ``b``."""
    a, b = promote("dot", a, b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    cb = 0 if b.ndim == 1 else b.ndim - 2
    if a.shape[-1] != b.shape[cb]:
        raise ShapeError(f"dot: shapes {a.shape} and {b.shape} are not aligned "
                         f"({a.shape[-1]} != {b.shape[cb]})")
    return _dot(a, b, (a.ndim - 1,), (cb,))


def vdot(a, b):
    from fnarray.api.elementwise import conj
    from fnarray.api.manipulation import ravel
    a, b = promote("vdot", a, b)
    return _dot(ravel(conj(a) if a.dtype.kind == "c" else a), ravel(b), (0,), (0,))


def inner(a, b):
    a, b = promote("inner", a, b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return _dot(a, b, (a.ndim - 1,), (b.ndim - 1,))


def outer(a, b):
    from fnarray.api.manipulation import ravel, reshape
    a, b = promote("outer", a, b)
    a, b = ravel(a), ravel(b)
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


def tensordot(a, b, axes=2):
    a, b = promote("tensordot", a, b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        ca, cb = tuple(range(a.ndim - n, a.ndim)), tuple(range(n))
    else:
        ca, cb = axes
        ca = (ca,) if isinstance(ca, int) else tuple(ca)
        cb = (cb,) if isinstance(cb, int) else tuple(cb)
        ca = tuple(i % a.ndim for i in ca)
        cb = tuple(i % b.ndim for i in cb)
    for i, j in zip(ca, cb):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(f"tensordot: axis {i} of shape {a.shape} does not match axis {j} "
                             f"of shape {b.shape}")
    return _dot(a, b, ca, cb)


def vecdot(x1, x2, axis: int = -1):
    """Dot product of vectors along ``axis`` (conjugating ``x1``), broadcasting the rest."""
    from fnarray.api.elementwise import conj
    from fnarray.api.reductions import sum as sum_
    a, b = promote("vecdot", x1, x2)
    if a.shape[axis] != b.shape[axis]:
        raise ValueError(f"vecdot: axis {axis} has size {a.shape[axis]} vs {b.shape[axis]}")
    # the result has the promoted dtype (Array API), not the widened sum's
    return sum_((conj(a) if a.dtype.kind == "c" else a) * b, axis=axis, dtype=a.dtype)


def kron(a, b):
    from fnarray.api.manipulation import reshape
    a, b = promote("kron", a, b)
    nd = max(a.ndim, b.ndim)
    a = reshape(a, (1,) * (nd - a.ndim) + a.shape)
    b = reshape(b, (1,) * (nd - b.ndim) + b.shape)
    ea = reshape(a, sum(((d, 1) for d in a.shape), ()))
    eb = reshape(b, sum(((1, d) for d in b.shape), ()))
    return reshape(ea * eb, tuple(x * y for x, y in zip(a.shape, b.shape)))


def diagonal(x, offset: int = 0, axis1: int = 0, axis2: int = 1):
    """The ``offset`` diagonal of the ``(axis1, axis2)`` planes, as the last axis (NumPy)."""
    from fnarray.api.creation import arange
    from fnarray.api.manipulation import moveaxis
    from fnarray.ops.indexing import gather
    from fnarray.api._convert import device_of
    x = as_operand(x)
    if x.ndim < 2:
        raise ValueError(f"diagonal: needs at least 2 dimensions, got shape {x.shape}")
    a1, a2 = axis1 % x.ndim, axis2 % x.ndim
    if a1 == a2:
        raise ValueError("diagonal: axis1 and axis2 must differ")
    y = moveaxis(x, (a1, a2), (0, 1))
    n, m = y.shape[0], y.shape[1]
    r0, c0 = max(-offset, 0), max(offset, 0)
    length = max(0, min(n - r0, m - c0))
    rows = arange(r0, r0 + length, device=device_of(x))
    cols = arange(c0, c0 + length, device=device_of(x))
    return moveaxis(gather.bind(y, rows, cols), 0, -1)


def trace(x, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype=None):
    from fnarray.api.reductions import sum as sum_
    return sum_(diagonal(x, offset, axis1, axis2), axis=-1, dtype=dtype)
