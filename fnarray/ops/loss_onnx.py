"""ONNX rules for the negative log-likelihood primitives (``fnarray/ops/loss.py``).

``class_nll`` picks each sample's log-probability with ``GatherElements`` along the class
axis (ignored samples pick class 0 and are masked to 0 by ``Where``), then reduces: kept,
``ReduceSum`` over every axis, or that sum divided by the count of non-ignored targets.
``class_nll_grad`` is its transpose: ``-ct`` (``'mean'``: ``-(ct / count)``) broadcast
over the samples, written where a class-index ``Range`` equals the target (``Equal`` and
``Where``, no scatter into zeros).

Out-of-range targets: fnarray raises an ``IndexError``; ONNX has no operation that fails
on a data condition.  ``class_nll`` sends a negative target (other than ``ignore_index``)
to ``C``, so that ``GatherElements``, which would read it from the end of the class axis,
gets an index past it in either case: onnxruntime then fails the run ("out of range value
in index tensor").  ``class_nll_grad`` gives such a sample no gradient (a program holding
only the gradient checks nothing).  Feed the exported model valid targets.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from fnarray.onnx.rules import onnx_rule


def _targets(g, target: str, ignore_index: int):
    """``(int64 targets, mask of non-ignored targets)``; the cast comes first so that any
    ``ignore_index`` compares exactly (a uint8 target against ``-100``)."""
    t = g.op("Cast", [target], to=TensorProto.INT64)
    valid = g.op("Not", [g.op("Equal", [t, g.const(np.int64(ignore_index))])])
    return t, valid


def _count(g, valid: str, dtype) -> str:
    """The number of non-ignored targets as a scalar of ``dtype`` (a sum of ones: exact
    up to 2**24 samples in float32)."""
    ones = g.op("Cast", [valid], to=_onnx_dtype(dtype))
    return g.op("ReduceSum", [ones], keepdims=0)


def _onnx_dtype(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


@onnx_rule("class_nll")
def _class_nll(g, ins, eqn, *, ignore_index, reduction, class_dim, **_):
    """``loss = where(valid, -logp[n, target, d...], 0)``, then the reduction."""
    logp, target = ins
    dtype = eqn.invars[0].aval.dtype
    t, valid = _targets(g, target, ignore_index)
    n_classes = eqn.invars[0].aval.shape[class_dim]
    # ignored targets read class 0; negative ones an index past the classes (refused)
    past = g.op("Where", [g.op("Less", [t, g.const(np.int64(0))]), g.const(np.int64(n_classes)),
                          t])
    safe = g.op("Where", [valid, past, g.const(np.int64(0))])
    axis = g.ints([class_dim])
    picked = g.op("GatherElements", [logp, g.op("Unsqueeze", [safe, axis])], axis=class_dim)
    picked = g.op("Squeeze", [picked, axis])
    losses = g.op("Where", [valid, g.op("Neg", [picked]), g.const(np.zeros((), dtype))])
    if reduction == "none":
        return losses
    total = g.op("ReduceSum", [losses], keepdims=0)
    if reduction == "sum":
        return total
    return g.op("Div", [total, _count(g, valid, dtype)])


@onnx_rule("class_nll_grad")
def _class_nll_grad(g, ins, eqn, *, ignore_index, reduction, class_dim, n_classes, **_):
    """Zeros of the log-probabilities' shape with ``-ct`` (``'mean'``: ``-(ct / count)``)
    at each non-ignored target."""
    ct, target = ins
    dtype = eqn.invars[0].aval.dtype
    t, valid = _targets(g, target, ignore_index)
    if reduction == "mean":
        ct = g.op("Div", [ct, _count(g, valid, dtype)])
    zero = g.const(np.zeros((), dtype))
    values = g.op("Where", [valid, g.op("Neg", [ct]), zero])  # broadcasts a scalar ct
    axis = g.ints([class_dim])
    # classes (C, 1, ...) against targets (N, 1, d...): the one-hot mask (N, C, d...)
    n_trailing = eqn.invars[1].aval.ndim - class_dim
    classes = np.arange(n_classes, dtype=np.int64).reshape((n_classes,) + (1,) * n_trailing)
    hit = g.op("Equal", [g.op("Unsqueeze", [t, axis]), g.const(classes)])
    return g.op("Where", [hit, g.op("Unsqueeze", [values, axis]), zero])
