"""ONNX rules for ``gather`` and ``scatter`` (``fnarray/ops/indexing.py``): one index
array is ``Gather`` on axis 0; ``k`` of them are stacked on a last axis for ``GatherND``
and ``ScatterND``."""

from __future__ import annotations

import numpy as np
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


@onnx_rule("scatter")
def _scatter(g, ins, eqn, *, mode, **_):
    """``ScatterND`` of ``v`` into ``x`` at the stacked indices: ``reduction='add'``
    accumulates repeated indices (a gather's transpose, an embedding's gradient); ``'set'``
    writes (where an index repeats, fnarray keeps the last value and ONNX leaves the winner
    unspecified).  Negative indices count from the end of their axis, as in NumPy; they are
    wrapped in the graph, as runtimes other than onnxruntime may refuse them in
    ``ScatterND``."""
    x, *idx, v = ins
    shape = eqn.invars[0].aval.shape
    last = g.ints([-1])
    wrapped = []
    for axis, i in enumerate(idx):
        i = g.op("Cast", [i], to=TensorProto.INT64)
        size = g.const(np.int64(shape[axis]))
        negative = g.op("Less", [i, g.const(np.int64(0))])
        wrapped.append(g.op("Unsqueeze", [g.op("Where", [negative, g.op("Add", [i, size]), i]),
                                          last]))
    stacked = wrapped[0] if len(wrapped) == 1 else g.op("Concat", wrapped, axis=-1)
    reduction = "add" if mode == "add" else "none"
    return g.op("ScatterND", [x, stacked, v], reduction=reduction)
