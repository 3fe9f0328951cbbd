"""Helpers shared by primitive rules: axis moves for batching, and un-broadcasting.

Everything here is written with fnarray operations, so rules built on it stay
differentiable and batchable.
"""

from __future__ import annotations

from fnarray import api as fa
from fnarray.core.shapes import ShapedArray


def move_bdim(x, bdim, dst=0):
    """Move batch axis ``bdim`` of ``x`` to ``dst``."""
    if bdim == dst:
        return x
    return fa.moveaxis(x, bdim, dst)


def bdim_to_front(x, bdim, size):
    """Batch axis to the front, materialising it (by broadcasting) when ``bdim`` is None."""
    if bdim is None:
        return fa.broadcast_to(fa.expand_dims(x, 0), (size, *x.shape))
    return move_bdim(x, bdim, 0)


def batch_size(vals, dims) -> int:
    for v, d in zip(vals, dims):
        if d is not None:
            return v.shape[d]
    raise ValueError("no batched operand")


def unbroadcast(ct, shape: tuple):
    """Sum ``ct`` down to ``shape`` — the transpose of NumPy broadcasting."""
    if ct.shape == tuple(shape):
        return ct
    lead = ct.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, d in enumerate(shape) if d == 1 and ct.shape[i + lead] != 1)
    if axes:
        from fnarray.ops.reduction import reduce_sum  # (it imports this module)
        # The axes are normalised already, and the sum keeps ct's dtype.  Summing only the
        # leading (broadcast-added) axes gives ``shape`` directly.
        ct = reduce_sum.bind(ct, axes=axes, keepdims=len(axes) > lead)
    return ct if ct.shape == tuple(shape) else fa.reshape(ct, tuple(shape))


def same_aval(a: ShapedArray, **_):
    return a


def normalize_axis(axis: int, ndim: int, op: str) -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise ValueError(f"{op}: axis {axis} is out of bounds for an array with {ndim} dimension(s)")
    return axis % max(ndim, 1)


def linear_jvp(prim, primals, tangents, **params):
    """The JVP rule of a primitive linear in its first operand (any further operands, such
    as integer indices, carry no tangent): the primitive applied to the tangent."""
    out = prim.bind(*primals, **params)
    t = tangents[0]
    return out, (None if t is None else prim.bind(t, *primals[1:], **params))
