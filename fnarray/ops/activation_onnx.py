"""ONNX rules for the activation primitives (``fnarray/ops/activation.py``)."""

from __future__ import annotations

import numpy as np

from fnarray.onnx.rules import onnx_rule


@onnx_rule("clamp")
def _clamp(g, ins, eqn, *, lo, hi, **_):
    dtype = eqn.outvars[0].aval.dtype
    bounds = [g.const(np.asarray(b, dtype=dtype)) if b is not None else "" for b in (lo, hi)]
    while bounds and bounds[-1] == "":
        bounds.pop()
    return g.op("Clip", ins + bounds)


@onnx_rule("leaky_relu")
def _leaky_relu(g, ins, eqn, *, slope, **_):
    return g.op("LeakyRelu", ins, alpha=float(slope))


@onnx_rule("log_softmax")
def _log_softmax(g, ins, eqn, *, axis, **_):
    return g.op("LogSoftmax", ins, axis=int(axis))


@onnx_rule("log_softmax_grad")
def _log_softmax_grad(g, ins, eqn, *, axis, **_):
    """``ct - exp(y) * sum(ct, axis)`` (``y`` the log-probabilities), as the impl computes
    it."""
    ct, y = ins
    total = g.op("ReduceSum", [ct, g.ints([axis])], keepdims=1)
    return g.op("Sub", [ct, g.op("Mul", [g.op("Exp", [y]), total])])
