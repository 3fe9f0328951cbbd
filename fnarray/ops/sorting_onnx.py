"""ONNX rules for ``fnarray/ops/sorting.py``: ``stop_gradient`` is the identity at run time."""

from __future__ import annotations

from fnarray.onnx.rules import onnx_rule


@onnx_rule("stop_gradient")
def _stop_gradient(g, ins, eqn, **_):
    return g.op("Identity", ins)
