"""ONNX rules for ``cond`` and ``while`` (``fnarray/ops/control_flow.py``).

``cond`` is a chain of ``If`` nodes (branch ``i`` when ``index <= i``, the last branch
otherwise: the index is clamped as fnarray clamps it); branches read their operands from
the outer graph.  ``while`` is an ONNX ``Loop`` without a trip count: the condition is
evaluated once before the loop and again at the end of each body iteration."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from fnarray.onnx.builder import typed
from fnarray.onnx.rules import onnx_rule


def _other(g, key):
    return g.other_params[key] if g.other_params is not None else None


@onnx_rule("cond", dynamic=True)
def _cond(g, ins, eqn, *, branches, **_):
    index, ops = ins[0], list(ins[1:])
    others = _other(g, "branches") or (None,) * len(branches)
    dtype = np.dtype(eqn.invars[0].aval.dtype)
    n_out = len(eqn.outvars)

    def chain(builder, i):
        """Nodes choosing among ``branches[i:]`` appended to ``builder``."""
        graphs = [builder.subgraph(b, o, ops, "branch") for b, o in
                  zip(branches[i:i + 1], others[i:i + 1])]
        if i == len(branches) - 2:
            rest = builder.subgraph(branches[-1], others[-1], ops, "branch")
        else:
            sub = builder.child()
            outs = chain(sub, i + 1)
            outs = [outs] if isinstance(outs, str) else outs
            rest = helper.make_graph(sub.nodes, builder.fresh("branch"), [],
                                     [typed(o, v.aval) for o, v in zip(outs, eqn.outvars)],
                                     initializer=sub.initializers)
        take = builder.op("LessOrEqual", [index, builder.const(np.asarray(i, dtype=dtype))])
        return builder.op("If", [take], n_out=n_out, then_branch=graphs[0], else_branch=rest)

    if len(branches) == 1:
        return g.op("If", [g.const(np.asarray(True))], n_out=n_out,
                    then_branch=g.subgraph(branches[0], others[0], ops, "branch"),
                    else_branch=g.subgraph(branches[0], others[0], ops, "branch"))
    return chain(g, 0)


@onnx_rule("while", dynamic=True)
def _while(g, ins, eqn, *, cond_prog, body_prog, n_cc, n_bc, **_):
    cc, bc, carry = ins[:n_cc], ins[n_cc:n_cc + n_bc], ins[n_cc + n_bc:]
    other_cond, other_body = _other(g, "cond_prog"), _other(g, "body_prog")

    def test(builder, values):
        env = {id(v): name for v, name in zip(cond_prog.invars, list(cc) + list(values))}
        builder.bind_consts(cond_prog, other_cond, env)
        builder.lower(cond_prog, other_cond, env)
        return builder.op("Cast", [env[id(cond_prog.outvars[0])]], to=TensorProto.BOOL)

    sub = g.child()
    step, go = sub.fresh("loop_iter"), sub.fresh("loop_cond")
    inputs = [helper.make_tensor_value_info(step, TensorProto.INT64, []),
              helper.make_tensor_value_info(go, TensorProto.BOOL, [])]
    env = {id(v): name for v, name in zip(body_prog.invars, bc)}
    for v in body_prog.invars[n_bc:]:
        env[id(v)] = sub.fresh("loop_in")
        inputs.append(typed(env[id(v)], v.aval))
    sub.bind_consts(body_prog, other_body, env)
    sub.lower(body_prog, other_body, env)
    new = [env[id(v)] for v in body_prog.outvars]
    outs = [sub.op("Identity", [test(sub, new)])] + [sub.op("Identity", [n]) for n in new]
    avals = [v.aval for v in body_prog.outvars]
    outputs = ([helper.make_tensor_value_info(outs[0], TensorProto.BOOL, [])]
               + [typed(o, a) for o, a in zip(outs[1:], avals)])
    body = helper.make_graph(sub.nodes, g.fresh("loop_body"), inputs, outputs,
                             initializer=sub.initializers)
    return g.op("Loop", ["", test(g, carry), *carry], n_out=len(eqn.outvars), body=body)
