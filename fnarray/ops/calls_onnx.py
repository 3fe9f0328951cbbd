"""ONNX rules for the call primitives of ``fnarray/transforms`` (``checkpoint.py``,
``custom.py``) and the markers around them.

A call is inlined: its program's equations are lowered into the calling graph, each by its
own primitive's rule.  ``checkpoint_call`` holds that program; ``custom_jvp_call`` and
``custom_vjp_call`` hold the primal function, which is traced here at the equation's
operand shapes (and, with dynamic axes, at the second trace's).  Their custom derivative
rules play no part in an exported graph, which evaluates; a gradient exported through them
was already taken while tracing.  ``optimization_barrier`` (which keeps recomputations
apart from the optimisation passes) and ``checkpoint_name`` (a tag for checkpoint
policies) are the identity.
"""

from __future__ import annotations

from fnarray.onnx.rules import onnx_rule


def _inline(g, program, other, ins: list) -> list:
    """Lower ``program`` (``other``: its trace at the grown dynamic sizes, or None) with its
    inputs bound to the ONNX values ``ins``; returns the values of its outputs."""
    env = {id(v): name for v, name in zip(program.invars, ins)}
    g.bind_consts(program, other, env)
    g.lower(program, other, env)
    return [env[id(v)] for v in program.outvars]


def _traced(fun, eqn):
    """``fun`` (flat operands -> flat outputs) traced at ``eqn``'s operand shapes."""
    from fnarray.core.device import default
    from fnarray.transforms import ir, passes
    program = ir.trace_flat(fun, [(v.aval, default()) for v in eqn.invars], name="call")
    return passes.optimize(program)


@onnx_rule("checkpoint_call")
def _checkpoint_call(g, ins, eqn, *, program, **_):
    other = g.other_params["program"] if g.other_params is not None else None
    return _inline(g, program, other, ins)


@onnx_rule("custom_jvp_call", "custom_vjp_call")
def _custom_call(g, ins, eqn, *, fun, **_):
    other = _traced(g.other_params["fun"], g.other_eqn) if g.other_params is not None else None
    return _inline(g, _traced(fun, eqn), other, ins)


@onnx_rule("optimization_barrier")
def _optimization_barrier(g, ins, eqn, **_):
    return list(ins)


@onnx_rule("checkpoint_name")
def _checkpoint_name(g, ins, eqn, **_):
    return ins[0]
