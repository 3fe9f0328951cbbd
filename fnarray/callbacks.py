"""Host functions inside traced programs: ``fa.pure_callback`` and the machinery behind
``fa.debug.print`` / ``fa.debug.callback`` (primitives in ``fnarray/ops/callbacks.py``)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from fnarray.core import tree as tree_util
from fnarray.core.array import ArrayBase
from fnarray.core.shapes import ShapedArray
from fnarray.core.trace import Tracer
from fnarray.ops.callbacks import debug_callback, pure_callback as _pure_callback_p

_VMAP_METHODS = ("sequential", "expand_dims", "broadcast_all")


def split_static(tree) -> tuple[list, Callable]:
    """``(arrays, rebuild)``: the array leaves of ``tree`` (operands of a callback) and a
    function putting (new values of) them back among the other, static leaves."""
    leaves, treedef = tree_util.flatten(tree, is_leaf=lambda x: isinstance(x, ArrayBase))
    where = [i for i, x in enumerate(leaves) if isinstance(x, ArrayBase)]

    def rebuild(values):
        full = list(leaves)
        for i, v in zip(where, values):
            full[i] = v
        return tree_util.unflatten(treedef, full)

    return [leaves[i] for i in where], rebuild


def _innermost_jit_trace():
    """The trace of the innermost enclosing ``jit`` (IR) transformation, or None."""
    from fnarray.core.trace import _stack
    from fnarray.transforms.ir import IRTrace
    for main in reversed(_stack.mains):
        if issubclass(main.trace_type, IRTrace):
            return main.trace_type(main)
    return None


def bind_staged(prim, args: list, params: dict):
    """Bind a primitive with a side effect so it runs when the program runs: with traced
    operands it goes to their transformation; with none, to the innermost enclosing
    ``jit`` trace (if any), so that it becomes part of the compiled program instead of
    running once, eagerly, while tracing."""
    if not any(isinstance(a, Tracer) for a in args):
        trace = _innermost_jit_trace()
        if trace is not None:
            return trace.process_primitive(prim, [trace.full_raise(a) for a in args], params)
    return prim.bind(*args, **params)


def bind_effect(args: list, callback: Callable) -> None:
    """Run ``callback(*args)`` whenever the program runs (as ``debug_callback``)."""
    if not args and _innermost_jit_trace() is None:
        callback()  # nothing traced and nothing staged: now is when the program runs
        return
    bind_staged(debug_callback, args, {"callback": callback})


def pure_callback(callback: Callable, result_shape_dtypes, *args,
                  vmap_method: str = "sequential", **kwargs):
    """Call the host function ``callback(*args, **kwargs)`` (on NumPy arrays) from traced
    code; ``result_shape_dtypes`` is a pytree of ``fa.ShapeDtypeStruct`` (or anything with
    ``shape`` and ``dtype``) describing its result.

    It must be pure: a transformation may call it any number of times, or not at all.
    Under ``vmap`` it is called once per example (``vmap_method="sequential"``) or once on
    the batch (``"expand_dims"``: unbatched arguments get a size-1 leading axis;
    ``"broadcast_all"``: they are broadcast to the batch size).  It has no derivative.
    """
    if vmap_method not in _VMAP_METHODS:
        raise ValueError(f"pure_callback: vmap_method must be one of {_VMAP_METHODS}, got "
                         f"{vmap_method!r}")
    from fnarray import api as fa
    operands, rebuild = split_static((args, kwargs))
    operands = [fa.asarray(x) if not isinstance(x, ArrayBase) else x for x in operands]
    res_leaves, res_tree = tree_util.flatten(result_shape_dtypes)
    avals = tuple(ShapedArray(tuple(r.shape), np.dtype(r.dtype)) for r in res_leaves)

    def flat_callback(*host):
        a, k = rebuild(list(host))
        return tree_util.leaves(callback(*a, **k))

    outs = _pure_callback_p.bind(*operands, callback=flat_callback, result_avals=avals,
                                 vmap_method=vmap_method)
    return tree_util.unflatten(res_tree, outs)
