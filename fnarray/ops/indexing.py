"""Advanced indexing in one canonical form.

``gather(x, *idx)``: the ``k = len(idx)`` leading axes of ``x`` are indexed by integer
arrays of one common shape ``S``; the result has shape ``S + x.shape[k:]``.
``scatter(x, *idx, v, mode)`` writes ``v`` (shape ``S + x.shape[k:]``) at those positions
into a copy of ``x``: ``mode='add'`` accumulates repeated indices, ``mode='set'`` keeps the
last.  The NumPy-style ``x[...]`` and ``x.at[...]`` in ``fnarray.api.indexing`` rewrite any
index into this form with transposes, slices and reshapes.
"""

from __future__ import annotations

from fnarray import api as fa
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray, int64
from fnarray.ops._util import batch_size, bdim_to_front, move_bdim


def _gather_impl(xp, x, *idx):
    return x[tuple(idx)]


def _gather_abstract(x, *idx):
    return ShapedArray(idx[0].shape + x.shape[len(idx):], x.dtype, x.weak_type)


def _gather_jvp(primals, tangents):
    x, *idx = primals
    return gather.bind(x, *idx), gather.bind(tangents[0], *idx)


def _gather_vjp(ct, x, *idx, out):
    return (scatter.bind(fa.zeros_like(x), *idx, ct, mode="add"),) + (None,) * len(idx)


def _batched_index(idx, dims, size):
    """Index arrays with the batch axis in front, led by an ``arange`` over the batch."""
    moved = [bdim_to_front(i, d, size) for i, d in zip(idx, dims)]
    s = moved[0].shape[1:]
    ar = fa.broadcast_to(fa.reshape(fa.arange(size, dtype=int64), (size,) + (1,) * len(s)),
                         (size, *s))
    return [ar, *moved]


def _gather_batch(vals, dims):
    x, *idx = vals
    dx, *didx = dims
    k = len(idx)
    if all(d is None for d in didx):
        x = move_bdim(x, dx, k)
        return gather.bind(x, *idx), idx[0].ndim
    size = batch_size(vals, dims)
    return gather.bind(bdim_to_front(x, dx, size), *_batched_index(idx, didx, size)), 0


gather = declare("gather", impl=_gather_impl, abstract=_gather_abstract, jvp=_gather_jvp,
                 vjp=_gather_vjp, batch=_gather_batch)


def _scatter_impl(xp, x, *args, mode):
    *idx, v = args
    out = x.copy()
    if mode == "add":
        if xp.__name__ == "numpy":
            xp.add.at(out, tuple(idx), v)
        else:  # pragma: no cover - CuPy
            import cupyx
            cupyx.scatter_add(out, tuple(idx), v)
    else:
        out[tuple(idx)] = v
    return out


def _scatter_jvp(primals, tangents, *, mode):
    x, *idx, v = primals
    tx, tv = tangents[0], tangents[-1]
    out = scatter.bind(x, *idx, v, mode=mode)
    tx = fa.zeros_like(x) if tx is None else tx
    tv = fa.zeros_like(v) if tv is None else tv
    return out, scatter.bind(tx, *idx, tv, mode=mode)


def _scatter_vjp(ct, x, *args, out, mode):
    *idx, v = args
    ct_v = gather.bind(ct, *idx)
    if mode == "add":
        return (ct,) + (None,) * len(idx) + (ct_v,)
    ct_x = scatter.bind(ct, *idx, fa.zeros_like(v), mode="set")
    ct_v = fa.where(_last_writes(x, idx, v), ct_v, fa.zeros((), ct_v.dtype))
    return (ct_x,) + (None,) * len(idx) + (ct_v,)


def _last_writes(x, idx, v):
    """For ``mode='set'``: which updates land (of repeated indices, the last write wins, as
    in the kernel), shaped to broadcast against ``v``.  Only they receive a cotangent."""
    s = idx[0].shape
    n = idx[0].size
    order = fa.reshape(fa.arange(n, dtype=int64, device=x.device), s)
    unset = fa.full(x.shape[:len(idx)], -1, dtype=int64, device=x.device)
    winner = scatter.bind(unset, *idx, order, mode="set")
    landed = gather.bind(winner, *idx) == order
    return fa.reshape(landed, s + (1,) * (v.ndim - len(s)))


def _scatter_batch(vals, dims, *, mode):
    x, *idx, v = vals
    dx, *didx, dv = dims
    size = batch_size(vals, dims)
    k = len(idx)
    if all(d is None for d in didx):
        s = idx[0].ndim
        x = move_bdim(x, dx, k) if dx is not None else fa.moveaxis(bdim_to_front(x, None, size), 0, k)
        v = move_bdim(v, dv, s) if dv is not None else fa.moveaxis(bdim_to_front(v, None, size), 0, s)
        return scatter.bind(x, *idx, v, mode=mode), k
    x = bdim_to_front(x, dx, size)
    v = bdim_to_front(v, dv, size)
    return scatter.bind(x, *_batched_index(idx, didx, size), v, mode=mode), 0


scatter = declare("scatter", impl=_scatter_impl,
                  abstract=lambda x, *args, mode: x,
                  jvp=_scatter_jvp, vjp=_scatter_vjp, batch=_scatter_batch)
