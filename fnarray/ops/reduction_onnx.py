"""ONNX rules for the reduction primitives (``fnarray/ops/reduction.py``)."""

from __future__ import annotations

import numpy as np

from fnarray.onnx.rules import onnx_rule

_REDUCE = {"reduce_sum": "ReduceSum", "reduce_max": "ReduceMax", "reduce_min": "ReduceMin",
           "reduce_prod": "ReduceProd"}


def _reduce(op_type):
    def rule(g, ins, eqn, *, axes, keepdims, **_):
        return g.op(op_type, [ins[0], g.ints(axes)], keepdims=int(bool(keepdims)))
    return rule


for _name, _op in _REDUCE.items():
    onnx_rule(_name)(_reduce(_op))


def _arg(op_type):
    def rule(g, ins, eqn, *, axes, keepdims, **_):
        (axis,) = axes
        return g.op(op_type, ins, axis=int(axis), keepdims=int(bool(keepdims)))
    return rule


onnx_rule("argmax")(_arg("ArgMax"))
onnx_rule("argmin")(_arg("ArgMin"))


@onnx_rule("cumsum")
def _cumsum(g, ins, eqn, *, axis, reverse, **_):
    return g.op("CumSum", [ins[0], g.const(np.int64(axis))],
                reverse=int(bool(reverse)))
