"""Forward mode: tracers carry (primal, tangent); a tangent of ``None`` is a symbolic zero."""

from __future__ import annotations

from fnarray.core import tree as tree_util
from fnarray.core.trace import PrimalTracer, Trace, new_main


class JVPTracer(PrimalTracer):
    """A primal with its tangent (``None`` for a symbolic zero)."""

    __slots__ = ("tangent",)

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent


class JVPTrace(Trace):
    __slots__ = ()

    def pure(self, value):
        return JVPTracer(self, value, None)

    def process_primitive(self, prim, tracers, params):
        primals = [t.primal for t in tracers]
        tangents = [t.tangent for t in tracers]
        if all(t is None for t in tangents) or not prim.differentiable:
            return prim.bind(*primals, **params)
        out, t_out = prim.jvp(primals, tangents, **params)
        if prim.multiple_results:
            return tuple(JVPTracer(self, o, t) for o, t in zip(out, t_out))
        return JVPTracer(self, out, t_out)


def _zeros_like(x):
    from fnarray import api
    return api.zeros_like(x)


def jvp_flat(fun, primals: list, tangents: list) -> tuple[list, list]:
    """Run ``fun`` (flat list -> flat list) in forward mode at one new level."""
    with new_main(JVPTrace, "jvp") as main:
        trace = JVPTrace(main)
        ins = [JVPTracer(trace, p, t) for p, t in zip(primals, tangents)]
        outs = fun(*ins)
        out_p, out_t = [], []
        for o in outs:
            if isinstance(o, JVPTracer) and o._trace.main is main:
                out_p.append(o.primal)
                out_t.append(_zeros_like(o.primal) if o.tangent is None else o.tangent)
            else:
                out_p.append(o)
                out_t.append(_zeros_like(o))
    return out_p, out_t


def jvp(fun, primals, tangents, has_aux: bool = False):
    """``(fun(*primals), J·tangents)`` for pytrees of arrays; see API.md section 2.

    With ``has_aux=True`` ``fun`` returns ``(output, aux)`` and the result is
    ``(out, tangent_out, aux)``, ``aux`` as plain values (as JAX)."""
    from fnarray import api
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples (one entry per argument), "
                        f"got {type(primals).__name__} and {type(tangents).__name__}")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    p_leaves, p_tree = tree_util.flatten(tuple(primals))
    t_leaves, t_tree = tree_util.flatten(tuple(tangents))
    if p_tree != t_tree:
        raise ValueError(f"jvp: primals structure {p_tree} differs from tangents {t_tree}")
    p_leaves = [api.asarray(p) for p in p_leaves]
    t_leaves = [api.asarray(t) for t in t_leaves]
    for p, t in zip(p_leaves, t_leaves):
        if p.shape != t.shape:
            raise ValueError(f"jvp: tangent shape {t.shape} does not match primal shape {p.shape}")
    out_tree = []

    def flat_fun(*leaves):
        out = fun(*tree_util.unflatten(p_tree, leaves))
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("has_aux=True requires the function to return a pair "
                                "(output, aux)")
            out, aux = out
            out_tree.append(aux)
        o_leaves, o_tree = tree_util.flatten(out)
        out_tree.insert(0, o_tree)
        return o_leaves

    out_p, out_t = jvp_flat(flat_fun, p_leaves, t_leaves)
    result = (tree_util.unflatten(out_tree[0], out_p), tree_util.unflatten(out_tree[0], out_t))
    if not has_aux:
        return result
    # aux values of the finished level come back as their primals (plain values)
    return result + (tree_util.map(_primal_of_finished, out_tree[1]),)


def _primal_of_finished(x):
    while isinstance(x, JVPTracer) and not x._trace.main.alive:
        x = x.primal
    return x
