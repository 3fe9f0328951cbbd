"""Sorting primitives.  ``argsort`` is the only one: ``sort`` is ``take_along_axis`` of it,
so sort's derivative (including the tie rule: ties keep their original order, stable) comes
from ``gather``."""

from __future__ import annotations

from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray, int64
from fnarray.ops._util import move_bdim


def _argsort_impl(xp, x, *, axis, descending):
    if not descending:
        return xp.argsort(x, axis=axis, kind="stable").astype(xp.int64, copy=False)
    n = x.shape[axis]
    flipped = xp.argsort(xp.flip(x, axis), axis=axis, kind="stable")
    return (n - 1 - xp.flip(flipped, axis)).astype(xp.int64, copy=False)


def _no_derivative(*args, **kwargs):
    """Integer output: the transforms skip non-differentiable primitives."""
    return (None,)


argsort = declare(
    "argsort", impl=_argsort_impl,
    abstract=lambda a, *, axis, descending: ShapedArray(a.shape, int64),
    jvp=_no_derivative, vjp=_no_derivative,
    batch=lambda vals, dims, *, axis, descending: (
        argsort.bind(move_bdim(vals[0], dims[0], 0), axis=axis + 1, descending=descending), 0),
    differentiable=False)


def _stop_gradient_batch(vals, dims):
    return stop_gradient.bind(vals[0]), dims[0]


stop_gradient = declare(
    "stop_gradient", impl=lambda xp, x: x, abstract=lambda a: a,
    jvp=_no_derivative, vjp=_no_derivative, batch=_stop_gradient_batch, differentiable=False)
