"""ONNX rule for ``scan`` (``fnarray/ops/scan.py``): an ONNX ``Scan`` whose body graph is
the lowered body program.  Loop-invariant operands (``consts``) are read from the outer
graph by name, as ONNX sub-graphs may."""

from __future__ import annotations

import numpy as np
from onnx import helper

from fnarray.onnx.rules import onnx_rule


def _typed(name, aval):
    """A sub-graph value of known dtype and rank, sizes left free (they may follow the
    dynamic axes of the outer graph)."""
    return helper.make_tensor_value_info(
        name, helper.np_dtype_to_tensor_dtype(np.dtype(aval.dtype)), [None] * len(aval.shape))


@onnx_rule("scan", dynamic=True)  # ONNX Scan takes its length from the inputs
def _scan(g, ins, eqn, *, body, n_consts, n_carry, length, reverse, **_):
    n_xs = len(ins) - n_consts - n_carry
    if n_xs == 0:
        raise ValueError("a scan without scanned inputs (xs=None) has no ONNX Scan form")
    other_body = g.other_params["body"] if g.other_params is not None else None
    sub = g.child()
    env = {id(v): name for v, name in zip(body.invars[:n_consts], ins[:n_consts])}
    inputs = []
    for v in body.invars[n_consts:]:
        env[id(v)] = sub.fresh("scan_in")
        inputs.append(_typed(env[id(v)], v.aval))
    sub.bind_consts(body, other_body, env)
    sub.lower(body, other_body, env)
    outputs = []
    for v in body.outvars:  # fresh names: a body output may repeat or be an input
        name = sub.fresh("scan_out")
        sub.nodes.append(helper.make_node("Identity", [env[id(v)]], [name]))
        outputs.append(_typed(name, v.aval))
    graph = helper.make_graph(sub.nodes, g.fresh("scan_body"), inputs, outputs,
                              initializer=sub.initializers)
    n_ys = len(body.outvars) - n_carry
    direction = int(bool(reverse))
    return g.op("Scan", ins[n_consts:], n_out=len(eqn.outvars), body=graph,
                num_scan_inputs=n_xs, scan_input_directions=[direction] * n_xs,
                scan_output_directions=[direction] * n_ys)
