"""Host callbacks as primitives: ``debug_callback`` (an effect with no result, behind
``fa.debug.print``/``fa.debug.callback``) and ``pure_callback`` (a host function with
declared result shapes and dtypes).

Both run when the program runs, not when it is traced: inside ``jit`` they are equations
of the program that the executor calls like any kernel.  ``debug_callback`` is
*effectful*, so optimisation passes never drop, merge or constant-fold it.  Under ``vmap``
both call the host function once per example (JAX's default, ``"sequential"``);
``pure_callback`` can instead be called once on the whole batch
(``vmap_method="expand_dims"`` or ``"broadcast_all"``).  ``pure_callback`` has no
derivative: its JVP and VJP raise an error naming ``fa.custom_jvp``/``fa.custom_vjp``.
"""

from __future__ import annotations

import numpy as np

from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray


def _to_host(b) -> np.ndarray:
    return b.get() if hasattr(b, "get") and not isinstance(b, np.ndarray) else np.asarray(b)


def _lanes(vals, dims, size):
    """Per example ``b``: the operands sliced at ``b`` along their batch axes."""
    from fnarray import api as fa
    for b in range(size):
        yield [v if d is None else fa.take(v, b, axis=d) for v, d in zip(vals, dims)]


# --- debug_callback --------------------------------------------------------------------------

def _debug_impl(xp, *bufs, callback):
    from fnarray.core.array import Array
    from fnarray.core.device import device_of_buffer
    callback(*[Array(b, device_of_buffer(b)) for b in bufs])
    return []


def _debug_jvp(primals, tangents, *, callback):
    debug_callback.bind(*primals, callback=callback)
    return [], []


def _debug_vjp(cts, *primals, out, callback):
    return (None,) * len(primals)


def _debug_batch(vals, dims, *, callback):
    size = next(v.shape[d] for v, d in zip(vals, dims) if d is not None)

    def per_example(*xs):
        for lane in _lanes(xs, dims, size):
            callback(*lane)

    debug_callback.bind(*vals, callback=per_example)
    return [], []


debug_callback = declare("debug_callback", impl=_debug_impl, abstract=lambda *a, **_: [],
                         jvp=_debug_jvp, vjp=_debug_vjp, batch=_debug_batch,
                         multiple_results=True, differentiable=False, effectful=True,
                         widen_bfloat16=False)


# --- pure_callback ---------------------------------------------------------------------------

def _pure_impl(xp, *bufs, callback, result_avals, vmap_method):
    outs = callback(*[_to_host(b) for b in bufs])
    if len(outs) != len(result_avals):
        raise TypeError(f"pure_callback: the callback returned {len(outs)} arrays, but "
                        f"{len(result_avals)} result shapes were declared")
    res = []
    for i, (o, a) in enumerate(zip(outs, result_avals)):
        o = np.asarray(o)
        if o.shape != a.shape:
            raise TypeError(f"pure_callback: result {i} of the callback has shape {o.shape}, "
                            f"but {a.str_short()} was declared in result_shape_dtypes")
        res.append(xp.asarray(o.astype(a.dtype, copy=False)))
    return res


def _pure_abstract(*avals, callback, result_avals, vmap_method):
    return list(result_avals)


def _no_derivative(*args, **params):
    raise TypeError("pure_callback: a host callback has no derivative fnarray can compute; "
                    "give the function that calls it a rule with fa.custom_jvp or "
                    "fa.custom_vjp (e.g. another pure_callback computing the derivative)")


def _pure_batch(vals, dims, *, callback, result_avals, vmap_method):
    from fnarray import api as fa
    from fnarray.ops._util import move_bdim
    size = next(v.shape[d] for v, d in zip(vals, dims) if d is not None)
    stacked = tuple(ShapedArray((size, *a.shape), a.dtype) for a in result_avals)
    if vmap_method == "sequential":
        def per_example(*xs):
            rows = [callback(*[x if d is None else np.take(x, b, axis=d)
                               for x, d in zip(xs, dims)]) for b in range(size)]
            return [np.stack([np.asarray(r[k]) for r in rows]) if rows else
                    np.empty(a.shape, a.dtype) for k, a in enumerate(stacked)]
        fn, args = per_example, vals
    else:  # one call on the whole batch
        args = [fa.expand_dims(v, 0) if d is None else move_bdim(v, d, 0)
                for v, d in zip(vals, dims)]
        if vmap_method == "broadcast_all":
            args = [fa.broadcast_to(a, (size, *a.shape[1:])) for a in args]
        fn = callback
    outs = pure_callback.bind(*args, callback=fn, result_avals=stacked,
                              vmap_method=vmap_method)
    return outs, [0] * len(outs)


pure_callback = declare("pure_callback", impl=_pure_impl, abstract=_pure_abstract,
                        jvp=_no_derivative, vjp=_no_derivative, batch=_pure_batch,
                        multiple_results=True, widen_bfloat16=False)
