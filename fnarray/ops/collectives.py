"""``all_reduce_sum``: a sum over the ranks of a data-parallel job, as a primitive.

It lets pure code (``fa.grad``, ``fa.jit``, ``fa.vmap``) contain a collective: every rank
runs the same program, and at run time the impl sums the operand across the ranks of
``group`` over MPI, or over NCCL for a GPU value in an ``nccl`` job (see
:mod:`fnarray.distributed`).  Rules: the JVP sums the tangents the
same way (the op is linear); the VJP is the op itself — rank r's input reaches every
rank's output with weight one, so its cotangent is the sum over ranks of their output
cotangents; batching keeps the batch axis where it is (the op is elementwise across ranks).

Without an initialized process group the job is one process, and the sum over its single
rank is the identity; this is also what lets the registry tests check the rules.
"""

from __future__ import annotations

import numpy as np

from fnarray.core.primitive import declare


def _impl(xp, x, *, group):
    from fnarray import distributed as dist
    from fnarray.distributed.collectives import Work, _wire
    if group is None and not dist.is_initialized():
        return xp.asarray(x)
    g = dist._group(group)
    if g.comm is None:
        raise RuntimeError(f"all_reduce_sum: this rank is not a member of {g}; every rank "
                           f"that runs the op must belong to its group")
    if g.nccl is not None and xp is not np:  # a GPU value of an nccl job: NCCL sums it
        (out,), _ = g.nccl.all_reduce([x], "sum", "all_reduce_sum")
        return out
    host = np.asarray(x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else x)
    send = _wire(host)
    recv = np.empty_like(send)
    Work([g.comm.Iallreduce(send, recv, op=dist._mpi().SUM)], lambda: None, g.timeout,
         "all_reduce_sum").wait()
    return xp.asarray(recv.astype(host.dtype))


def _jvp(primals, tangents, *, group):
    (x,), (t,) = primals, tangents
    out = all_reduce_sum.bind(x, group=group)
    return out, None if t is None else all_reduce_sum.bind(t, group=group)


def _vjp(ct, x, *, out, group):
    return (all_reduce_sum.bind(ct, group=group),)


def _batch(vals, dims, *, group):
    return all_reduce_sum.bind(vals[0], group=group), dims[0]


all_reduce_sum = declare("all_reduce_sum", impl=_impl, abstract=lambda x, **_: x,
                         jvp=_jvp, vjp=_vjp, batch=_batch)
