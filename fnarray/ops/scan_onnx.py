"""ONNX rule for ``scan`` (``fnarray/ops/scan.py``): an ONNX ``Scan`` whose body graph is
the lowered body program.  Loop-invariant operands (``consts``) are read from the outer
graph by name, as ONNX sub-graphs may."""

from __future__ import annotations

from fnarray.onnx.rules import onnx_rule


@onnx_rule("scan", dynamic=True)  # ONNX Scan takes its length from the inputs
def _scan(g, ins, eqn, *, body, n_consts, n_carry, length, reverse, **_):
    n_xs = len(ins) - n_consts - n_carry
    if n_xs == 0:
        raise ValueError("a scan without scanned inputs (xs=None) has no ONNX Scan form")
    other_body = g.other_params["body"] if g.other_params is not None else None
    outer = list(ins[:n_consts]) + [None] * (len(ins) - n_consts)
    graph = g.subgraph(body, other_body, outer, "scan_body")
    n_ys = len(body.outvars) - n_carry
    direction = int(bool(reverse))
    return g.op("Scan", ins[n_consts:], n_out=len(eqn.outvars), body=graph,
                num_scan_inputs=n_xs, scan_input_directions=[direction] * n_xs,
                scan_output_directions=[direction] * n_ys)
