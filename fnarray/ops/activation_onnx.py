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


@onnx_rule("gate")
def _gate(g, ins, eqn, *, lo, hi, inclusive, slope, **_):
    """``where(lo < x < hi, ct, slope * ct)`` (``<=`` when ``inclusive``; a None bound is
    open; ``slope`` 0 gives 0 outside): a clamp's or leaky_relu's derivative, broadcast to
    the operands' common shape."""
    ct, x = ins
    dtype = eqn.invars[1].aval.dtype
    tests = []
    for bound, strict, loose in ((lo, "Greater", "GreaterOrEqual"), (hi, "Less", "LessOrEqual")):
        if bound is not None:
            tests.append(g.op(loose if inclusive else strict,
                              [x, g.const(np.asarray(bound, dtype=dtype))]))
    if not tests:  # no bound: every x is inside
        return g.op("Expand", [ct, g.op("Shape", [x])])
    mask = tests[0] if len(tests) == 1 else g.op("And", tests)
    ct_dtype = eqn.invars[0].aval.dtype
    outside = (g.op("Mul", [ct, g.const(np.asarray(slope, dtype=ct_dtype))]) if slope
               else g.const(np.zeros((), ct_dtype)))
    return g.op("Where", [mask, ct, outside])
