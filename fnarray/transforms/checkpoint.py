"""``checkpoint`` (rematerialisation): store only a function's inputs for the backward pass
and recompute its intermediates when the cotangents arrive.

It is a call primitive: under reverse mode the tape records one ``checkpoint_call`` node
(inputs and outputs) instead of every primitive inside; its VJP rule re-runs the function
under a fresh ``vjp`` to get the pullback.
"""

from __future__ import annotations

import functools
from typing import Callable

from fnarray.core import tree as tree_util
from fnarray.core.primitive import declare
from fnarray.transforms.custom import call_impl
from fnarray.transforms.ir import call_abstract


def _jvp(primals, tangents, *, fun):
    from fnarray import api as fa
    from fnarray.transforms.jvp import jvp_flat
    ts = [fa.zeros_like(p) if t is None else t for p, t in zip(primals, tangents)]
    return jvp_flat(fun, list(primals), ts)


def _vjp(cts, *primals, out, fun):
    from fnarray.transforms.reverse import vjp_flat
    _, pullback = vjp_flat(fun, list(primals))  # recompute the intermediates now
    grads = pullback(list(cts))
    return tuple(g if p.dtype.kind in "fc" else None for g, p in zip(grads, primals))


def _batch(vals, dims, *, fun):
    from fnarray.transforms.vmap import vmap_flat
    size = next(v.shape[d] for v, d in zip(vals, dims) if d is not None)
    batched = functools.partial(_vmapped, fun=fun, dims=tuple(dims), size=size, vmap_flat=vmap_flat)
    outs = checkpoint_call.bind(*vals, fun=batched)
    return outs, [0] * len(outs)


def _vmapped(*args, fun, dims, size, vmap_flat):
    return vmap_flat(fun, list(args), list(dims), size)


checkpoint_call = declare("checkpoint_call", impl=call_impl, abstract=call_abstract, jvp=_jvp,
                          vjp=_vjp, batch=_batch, multiple_results=True)


def checkpoint(fun: Callable) -> Callable:
    """``fun`` whose intermediates are recomputed in the backward pass instead of stored."""

    @functools.wraps(fun)
    def wrapped(*args):
        from fnarray import api as fa
        leaves, in_tree = tree_util.flatten(args)
        leaves = [fa.asarray(x) for x in leaves]
        out_trees: list = []

        def flat_fun(*xs):
            out = fun(*tree_util.unflatten(in_tree, xs))
            o, t = tree_util.flatten(out)
            out_trees.append(t)
            return [fa.asarray(v) for v in o]

        outs = checkpoint_call.bind(*leaves, fun=flat_fun)
        return tree_util.unflatten(out_trees[-1], outs)

    return wrapped


remat = checkpoint
