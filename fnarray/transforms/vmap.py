"""Batching: tracers carry (value, batch axis); each primitive's rule moves axes, never loops."""

from __future__ import annotations

from fnarray.core import tree as tree_util
from fnarray.core.trace import ConcretizationError, Trace, Tracer, new_main
from fnarray.core.shapes import ShapedArray


class BatchTracer(Tracer):
    __slots__ = ("val", "bdim")

    def __init__(self, trace, val, bdim):
        self._trace = trace
        self.val = val
        self.bdim = bdim

    @property
    def aval(self):
        a = self.val.aval
        if self.bdim is None:
            return a
        return ShapedArray(a.shape[:self.bdim] + a.shape[self.bdim + 1:], a.dtype, a.weak_type)

    @property
    def device(self):
        return self.val.device

    def concrete(self, why="a concrete value"):
        if self.bdim is None:
            v = self.val
            return v.concrete(why) if isinstance(v, Tracer) else v
        from fnarray.transforms.ir import user_frame
        raise ConcretizationError(
            f"vmap: {why} on a value that differs across the batch{user_frame()}: each example "
            f"would take a different branch. Use fa.where(cond, a, b) to select per example, "
            f"or move the decision outside vmap (in_axes=None for an unbatched argument)")


class BatchTrace(Trace):
    __slots__ = ()

    def pure(self, value):
        return BatchTracer(self, value, None)

    def process_primitive(self, prim, tracers, params):
        vals = [t.val for t in tracers]
        dims = [t.bdim for t in tracers]
        if all(d is None for d in dims):
            return prim.bind(*vals, **params)
        out, out_dim = prim.batch(vals, dims, **params)
        if prim.multiple_results:
            return tuple(BatchTracer(self, o, d) for o, d in zip(out, out_dim))
        return BatchTracer(self, out, out_dim)


def _moveaxis(x, src, dst):
    from fnarray import api
    return api.moveaxis(x, src, dst)


def _broadcast_batch(x, size, axis):
    from fnarray import api
    x = api.expand_dims(x, axis)
    shape = list(x.shape)
    shape[axis] = size
    return api.broadcast_to(x, tuple(shape))


def vmap_flat(fun, args: list, in_dims: list, axis_size: int, out_axes_of=None):
    """Batch ``fun`` (flat -> flat).  ``out_axes_of(outs)`` gives each output's batch axis
    (default 0); it is called after tracing, once the outputs are known."""
    with new_main(BatchTrace, "vmap", data=axis_size) as main:
        trace = BatchTrace(main)
        ins = [a if d is None else BatchTracer(trace, a, d) for a, d in zip(args, in_dims)]
        outs = fun(*ins)
        out_axes = [0] * len(outs) if out_axes_of is None else out_axes_of(outs)
        results = []
        for i, o in enumerate(outs):
            target = out_axes[i]
            if isinstance(o, BatchTracer) and o._trace.main is main and o.bdim is not None:
                v = o.val
                if target is None:
                    raise ValueError("vmap: out_axes=None for an output that is batched")
                target = target % v.ndim
                results.append(v if o.bdim == target else _moveaxis(v, o.bdim, target))
            else:
                v = o.val if isinstance(o, BatchTracer) and o._trace.main is main else o
                if target is None:
                    results.append(v)
                else:
                    from fnarray import api
                    v = api.asarray(v)
                    results.append(_broadcast_batch(v, axis_size, target % (v.ndim + 1)))
    return results


def vmap(fun, in_axes=0, out_axes=0, axis_size=None):
    """Vectorise ``fun`` over a batch axis of its inputs; see API.md section 2."""
    from fnarray import api

    def batched(*args, **kwargs):
        # Keyword arguments are batched along axis 0, whatever in_axes says (as in JAX).
        a_leaves, a_tree = tree_util.flatten((args, kwargs))
        n_pos = len(tree_util.leaves(args))
        if isinstance(in_axes, list):
            axes_prefix = tuple(in_axes)
        else:
            axes_prefix = in_axes
        if isinstance(axes_prefix, int) or axes_prefix is None:
            dims = [axes_prefix] * n_pos
        else:
            if not isinstance(axes_prefix, tuple) or len(axes_prefix) != len(args):
                raise ValueError(f"vmap: in_axes {in_axes!r} must be an int, None, or a tuple "
                                 f"with one entry per positional argument ({len(args)})")
            dims = tree_util.broadcast_prefix(axes_prefix, args)
        dims += [0] * (len(a_leaves) - n_pos)
        a_leaves = [api.asarray(a) if d is not None else a for a, d in zip(a_leaves, dims)]
        sizes = set()
        for a, d in zip(a_leaves, dims):
            if d is not None:
                if not -a.ndim <= d < a.ndim:
                    raise ValueError(f"vmap: in_axes {d} is out of range for an argument of "
                                     f"shape {a.shape}")
                sizes.add(a.shape[d])
        dims = [None if d is None else d % a.ndim for a, d in zip(a_leaves, dims)]
        if axis_size is not None:
            sizes.add(axis_size)
        if len(sizes) != 1:
            shown = [(tuple(a.shape), d) for a, d in zip(a_leaves, dims) if d is not None]
            raise ValueError(
                "vmap: " + ("no batched argument and no axis_size given" if not sizes else
                            f"batched arguments have different sizes along in_axes: {shown}"))
        size = sizes.pop()
        out_tree = []

        def flat_fun(*leaves):
            f_args, f_kwargs = tree_util.unflatten(a_tree, leaves)
            out = fun(*f_args, **f_kwargs)
            o_leaves, o_tree = tree_util.flatten(out)
            out_tree.append(o_tree)
            return o_leaves

        def out_axes_of(outs):
            if isinstance(out_axes, int) or out_axes is None:
                return [out_axes] * len(outs)
            return tree_util.broadcast_prefix(out_axes, tree_util.unflatten(out_tree[0], outs))

        outs = vmap_flat(flat_fun, a_leaves, dims, size, out_axes_of)
        return tree_util.unflatten(out_tree[0], outs)

    batched.__wrapped__ = fun
    return batched

