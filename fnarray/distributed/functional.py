"""Collectives for pure code: ``psum`` and ``pmean`` work inside ``fa.grad``, ``fa.jit``
and ``fa.vmap`` (they bind the ``all_reduce_sum`` primitive, whose transpose is itself).

A data-parallel step without the compat layer::

    @fa.jit
    def step(params, batch):
        loss, grads = fa.value_and_grad(local_loss)(params, batch)
        return pmean(loss), pmean(grads)

On compat tensors they are recorded on the tape like any operation (``nn.SyncBatchNorm``
relies on it).  Every rank must run the same program.  Without an initialized process group the job is
one process and both functions return their argument.
"""

from __future__ import annotations

from fnarray import tree_util
from fnarray.core.trace import Tracer
from fnarray.ops.collectives import all_reduce_sum


def _is_value(x) -> bool:
    """Tracers are leaves: a compat tensor would otherwise flatten to its untracked array."""
    return isinstance(x, Tracer)


def _size(group) -> int:
    from fnarray import distributed as dist
    if group is None and not dist.is_initialized():
        return 1
    return dist.get_world_size(group)


def psum(x, group=None):
    """The sum of ``x`` (an array or a pytree of arrays) over the ranks of ``group``."""
    return tree_util.tree_map(lambda leaf: all_reduce_sum.bind(leaf, group=group), x,
                              is_leaf=_is_value)


def pmean(x, group=None):
    """The mean of ``x`` (an array or a pytree of arrays) over the ranks of ``group``."""
    n = _size(group)
    return tree_util.tree_map(lambda leaf: all_reduce_sum.bind(leaf, group=group) / n, x,
                              is_leaf=_is_value)
