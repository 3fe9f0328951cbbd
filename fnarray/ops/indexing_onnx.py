"""ONNX rule for ``gather`` (``fnarray/ops/indexing.py``): one index array is ``Gather``
on axis 0; ``k`` of them are stacked on a last axis for ``GatherND``."""

from __future__ import annotations

from onnx import TensorProto

from fnarray.onnx.rules import onnx_rule


@onnx_rule("gather")
def _gather(g, ins, eqn, **_):
    x, *idx = ins
    idx = [g.op("Cast", [i], to=TensorProto.INT64) for i in idx]
    if len(idx) == 1:
        return g.op("Gather", [x, idx[0]], axis=0)
    last = g.ints([-1])
    stacked = g.op("Concat", [g.op("Unsqueeze", [i, last]) for i in idx], axis=-1)
    return g.op("GatherND", [x, stacked])
