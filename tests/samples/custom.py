"""Samples for the call primitives: ``custom_jvp_call``, ``custom_vjp_call`` (from
``fnarray/transforms/custom.py``), ``checkpoint_call``, ``optimization_barrier`` and ``checkpoint_name``.

Each carries a small two-input, two-output function with a correct hand-written rule, so
the registry test checks that the transformations route derivatives and batching through
the rules properly (a wrong rule would be caught by ``check_grads`` in the user's tests).
"""

from __future__ import annotations

from hypothesis import strategies as st

import fnarray as fa
from tests.samples import Sample, floats, shapes


def fun(x, y):
    """``[sin(x) * y, exp(x) + y]``: the function behind every call sample."""
    return [fa.sin(x) * y, fa.exp(x) + y]


def fun_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    return fun(x, y), [fa.cos(x) * y * tx + fa.sin(x) * ty, fa.exp(x) * tx + ty]


def fun_fwd(x, y):
    return fun(x, y), (x, y)


def fun_bwd(res, cts):
    x, y = res
    c0, c1 = cts
    return [c0 * fa.cos(x) * y + c1 * fa.exp(x), c0 * fa.sin(x) + c1]


@st.composite
def _pair(draw, **params):
    shape = draw(shapes())
    x = draw(floats(shape, noncontiguous=draw(st.booleans())))
    y = draw(floats(shape))
    return Sample((x, y), dict(params), diff=(0, 1))


@st.composite
def _checkpointed(draw):
    """``fun`` traced into a checkpoint program, with a policy that saves the ``sin``."""
    from fnarray.core.device import default
    from fnarray.transforms.subprogram import trace_closed
    sample = draw(_pair())
    avals = [fa.asarray(a).aval for a in sample.args]
    program, _ = trace_closed(fun, avals, default(), "checkpoint")
    policy = draw(st.sampled_from([None, _save_sin, fa.checkpoint_policies.everything_saveable]))
    sample.params = dict(program=program, policy=policy, prevent_cse=True)
    return sample


@st.composite
def _named(draw):
    shape = draw(shapes())
    return Sample((draw(floats(shape)),), dict(name="h"))


def _save_sin(prim, *avals, **params):
    return prim.name == "sin"


SAMPLES = {
    "custom_jvp_call": lambda: _pair(fun=fun, jvp=fun_jvp, out_tree=None),
    "custom_vjp_call": lambda: _pair(fun=fun, fwd=fun_fwd, bwd=fun_bwd),
    "checkpoint_call": _checkpointed,
    "optimization_barrier": _pair,
    "checkpoint_name": _named,
}
